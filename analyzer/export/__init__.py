"""Reconstructed transcripts out: one file per conversation (Markdown, self-contained HTML),
OpenAI chat-format JSONL (one conversation per line), the analysis frames as Parquet or CSV;
`markdown_text` shows one exchange (`chatcap show`).

Exports always redact credentials, whatever the input says about itself.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from analyzer.conversations import Conversation, Read, gather, plan, read
from analyzer.cost import cost_of
from analyzer.cost import notice as cost_notice
from analyzer.export.redaction import redacted
from analyzer.export.safemd import code, inline, literal, model, safe_link, unsafe
from analyzer.export.transcript import (
    Entry,
    Transcript,
    clipped,
    end_reason,
    heading,
    keeps,
    pretty_json,
    select,
    tool_title,
    transcript,
)
from analyzer.files import UnsafePath, open_private, private_dir, refused, write_one
from analyzer.ingest import PROGRESS_DELAY_S
from analyzer.metrics import format_ms
from analyzer.model import Exchange, dumps_exact
from analyzer.protocols import request_messages
from analyzer.protocols.events import content_text
from analyzer.protocols.server_tools import ServerTool, has_server_tools, segments
from analyzer.redact import redact_text
from analyzer.spill import Spill
from analyzer.tokens import usage_or_estimate

__all__ = ["conversation_markdown", "html", "jsonl", "markdown", "markdown_text", "plain_text", "select", "tables"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(exchange: Exchange, suffix: str) -> str:
    return _UNSAFE.sub("_", exchange.id).strip("_") + suffix


# The HTML the Markdown transcripts hold of their own; captured text brings none (safemd).
_OWN_HTML = ("<sub>", "</sub>", "</details>", "<details><summary>Reasoning</summary>",
             "<details><summary>Reasoning (from &lt;think&gt; in the content)</summary>")  # fmt: skip


def markdown_text(exchange: Exchange, collapsible: bool = True) -> str:
    """One exchange as a Markdown transcript: request history, reply, usage, timing, warnings.
    `collapsible=False` shows reasoning as a labelled quote (for terminals, which drop HTML).
    Captured text is made inert as in `conversation_markdown`."""
    document = _exchange_markdown(exchange, collapsible, model)
    if unsafe(document, _OWN_HTML, _exchange_headings(exchange)):
        document = _exchange_markdown(exchange, collapsible, _as_text)
    return document


def _as_text(text: str) -> str:
    """The model's Markdown shown literally: the fallback when a transcript is not inert."""
    return literal(text, "markdown")


def _exchange_headings(exchange: Exchange) -> int:
    """How many headings `markdown_text` writes: the id, the request and one per message,
    the reply and one per choice when there are several, the warnings."""
    exchange = redacted(exchange)
    rec = exchange.reconstruct()
    messages = request_messages(exchange)
    choices = len(rec.choices) if len(rec.choices) > 1 else 0
    return 2 + (1 + len(messages) if messages else 0) + choices + bool(rec.warnings)


def _exchange_markdown(exchange: Exchange, collapsible: bool, reply: Callable[[str], str]) -> str:
    exchange = redacted(exchange)
    rec = exchange.reconstruct()
    lines = [f"# {inline(exchange.id)}", ""]
    lines += [f"- **{name}**: {inline(value)}" for name, value in exchange_facts(exchange, rec)]
    messages = request_messages(exchange)
    if messages:
        lines += ["", "## Request", ""]
        for message in messages:
            lines += _message(message, reply)
    _heading(lines, "## Reply")
    if not rec.choices and not rec.error:
        missing = rec.has("body_not_recorded")
        lines += ["*(no reply: the producer kept no response body)*" if missing else "*(no reply)*", ""]
    if rec.error:
        lines += ["**Error:**", "", literal(dumps_exact(rec.error, indent=True), "json"), ""]
    for choice in rec.choices:
        if len(rec.choices) > 1:
            lines += [f"### choice {choice.index}", ""]
        reasoning = choice.reasoning or choice.think
        if reasoning:
            source = "" if choice.reasoning else " (from {} in the content)"
            if collapsible:  # inside HTML the tag must be escaped
                summary = "Reasoning" + source.format("&lt;think&gt;")
                lines += [f"<details><summary>{summary}</summary>", "", reply(reasoning), "", "</details>", ""]
            else:
                label = "Reasoning" + source.format("`<think>`")
                lines += [f"**{label}:**", "", *[f"> {line}" for line in reply(reasoning).split("\n")], ""]
        answer = choice.content if choice.think is None or choice.reasoning else choice.answer
        found = segments(rec, rec.choices.index(choice)) if has_server_tools(rec) else []
        if any(isinstance(segment, ServerTool) for segment in found):
            for segment in found:
                lines += [reply(segment), ""] if isinstance(segment, str) else [*_tool_markdown(segment), ""]
        elif answer:
            lines += [reply(answer), ""]
        if choice.refusal:
            lines += ["**Refusal:**", "", reply(choice.refusal), ""]
        for call in choice.tool_calls:
            lines += [
                f"**Tool call** {code(call.name)}" + (f" ({inline(str(call.id))})" if call.id else "") + ":",
                "",
                literal(pretty_json(call.arguments), "json"),
                "",
            ]
        lines += [f"*finish reason: {inline(choice.finish_reason or '—')}*", ""]
    ending = end_reason(exchange, rec)
    if ending and (ending.startswith("ended early") or ending == "cut off"):
        lines += [f"*{inline(ending)}*", ""]
    if rec.warnings:
        _heading(lines, "## Warnings")
        lines += [f"- {inline(w.message)}" for w in rec.warnings]
    return redact_text("\n".join(lines).rstrip() + "\n")


def exchange_facts(exchange: Exchange, rec: Any) -> list[tuple[str, str]]:
    """What `show` lists first about an exchange: source, URL, models, status, protocol,
    tokens, cost (or why there is none), timing, and how it ended when not simply."""
    facts = [
        ("source", f"{exchange.where} ({exchange.format})"),
        ("url", exchange.request.url if exchange.request else None),
        ("model", f"{rec.requested_model or '—'} requested, {rec.served_model or '—'} served"),
        ("status", exchange.response.status if exchange.response else None),
        ("protocol", f"{rec.protocol}, {'streamed' if rec.streamed else 'not streamed'}"),
    ]
    usage = usage_or_estimate(rec, request_messages(exchange), None)
    if usage is not None:
        mark = "~" if usage.source == "estimated" else ""
        facts.append(("tokens", f"{mark}{usage.prompt_tokens} prompt, {mark}{usage.completion_tokens} completion"))
    cost = cost_of(exchange, rec, usage)
    if cost.usd is not None:
        facts.append(("cost", f"${cost.usd:.6g} ({cost.detail})"))
    elif (missing := cost_notice(cost)) is not None:
        facts.append(("cost", f"unknown: {missing.message}"))
    if rec.timing and rec.timing.source != "none":
        t = rec.timing
        ttft, duration = format_ms(t.ttft_ms, t.resolution_ms), format_ms(t.duration_ms, t.resolution_ms)
        facts.append(("timing", f"TTFT {ttft}, duration {duration} (source: {t.source})"))
    ending = end_reason(exchange, rec)
    if ending:
        facts.append(("ended", ending))
    return [(name, str(value)) for name, value in facts if value is not None]


def plain_text(exchange: Exchange) -> str:
    """One exchange as plain text, every captured text exactly as it came (`chatcap show`):
    the facts, the request's messages, the reply with its reasoning, server tools in their
    place and tool calls, the warnings. Redacted."""
    exchange = redacted(exchange)
    rec = exchange.reconstruct()
    facts = exchange_facts(exchange, rec)
    width = max(len(name) for name, _ in facts)
    lines = [exchange.id, *(f"  {name:<{width}}  {value}" for name, value in facts)]
    messages = request_messages(exchange)
    if messages:
        lines += ["", "━━ request ━━"]
        for message in messages:
            role = str(message.get("role", "?"))
            label = message.get("name") or (
                f"result of {message['tool_call_id']}" if message.get("tool_call_id") else None
            )
            lines += ["", f"[{role}" + (f": {label}" if label else "") + "]"]
            text = content_text(message.get("content"))
            if text:
                lines.append(text)
            for call in message.get("tool_calls") or []:
                function = (
                    call.get("function") if isinstance(call, dict) and isinstance(call.get("function"), dict) else {}
                )
                call_id = call.get("id") if isinstance(call, dict) else None
                lines += [f"→ tool call {function.get('name')}" + (f" ({call_id})" if call_id else ""),
                          pretty_json(str(function.get("arguments", "")))]  # fmt: skip
    lines += ["", "━━ reply ━━"]
    if rec.error:
        lines += ["", "[error]", dumps_exact(rec.error, indent=True)]
    elif not rec.choices:
        lines += [
            "",
            "(no reply: the producer kept no response body)" if rec.has("body_not_recorded") else "(no reply)",
        ]
    for choice in rec.choices:
        lines += ["", f"[choice {choice.index}]"] if len(rec.choices) > 1 else []
        reasoning = choice.reasoning or choice.think
        if reasoning:
            lines += ["", "[reasoning" + ("" if choice.reasoning else ", from <think> in the content") + "]", reasoning]
        answer = choice.content if choice.think is None or choice.reasoning else choice.answer
        found = segments(rec, rec.choices.index(choice)) if has_server_tools(rec) else []
        if not any(isinstance(segment, ServerTool) for segment in found):
            found = [answer] if answer else []
        for segment in found:
            lines += ["", "[answer]", segment] if isinstance(segment, str) else ["", *_tool_lines(segment)]
        if choice.refusal:
            lines += ["", "[refusal]", choice.refusal]
        for call in choice.tool_calls:
            lines += [
                "",
                f"[tool call {call.name}" + (f" ({call.id})" if call.id else "") + "]",
                pretty_json(call.arguments),
            ]
        lines += ["", f"finish reason: {choice.finish_reason or '—'}"]
    if rec.warnings:
        lines += ["", "━━ warnings ━━", *(f"- {w.message}" for w in rec.warnings)]
    return redact_text("\n".join(lines) + "\n")


def _tool_lines(tool: ServerTool) -> list[str]:
    lines = [f"[{tool_title(tool)}]"]
    if tool.request:
        lines.append(tool.request)
    if tool.result:
        lines += ["→ result:", clipped(tool.result)]
    lines += [f"→ source: {title + ' — ' if title else ''}{url}" for title, url in tool.sources]
    return lines


def _heading(lines: list[str], heading: str) -> None:
    """Append a heading with exactly one blank line before and after it."""
    while lines and not lines[-1]:
        lines.pop()
    lines += ["", heading, ""]


def _message(message: dict[str, Any], reply: Callable[[str], str]) -> list[str]:
    role = str(message.get("role", "?"))
    label = message.get("name") or (f"result of {message['tool_call_id']}" if message.get("tool_call_id") else None)
    lines = [f"### {inline(role)}" + (f" ({inline(str(label))})" if label else ""), ""]
    text = content_text(message.get("content"))
    if text:  # the model's own Markdown, or someone else's text shown exactly
        lines += [reply(text) if role == "assistant" else literal(text), ""]
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) and isinstance(call.get("function"), dict) else {}
        call_id = call.get("id") if isinstance(call, dict) else None
        lines += [
            f"**Tool call** {code(str(function.get('name')))} ({inline(str(call_id))}):",
            "",
            literal(pretty_json(str(function.get("arguments", ""))), "json"),
            "",
        ]
    return lines


def conversation_markdown(transcript: Transcript) -> str:
    """One conversation as Markdown: the system prompt, each turn with role headings,
    reasoning folded in `<details>`, tool calls as fenced JSON with their results, a footer
    per reply (model, TTFT, tokens, cost). Redacted.

    Captured text renders inert (`analyzer.export.safemd`): user, system and tool text, tool
    arguments and results are fenced, shown exactly; the model's replies and reasoning keep
    their Markdown without HTML, pictures or unsafe links, their headings below the role
    headings. Should the whole file still hold any of that, the model's text is fenced too."""
    headings = 1 + sum(entry.role != "note" for entry in transcript.entries)
    document = _conversation_markdown(transcript, model)
    if unsafe(document, _OWN_HTML, headings):
        document = _conversation_markdown(transcript, _as_text)
    return redact_text(document)


def _conversation_markdown(transcript: Transcript, reply: Callable[[str], str]) -> str:
    lines = [f"# {inline(transcript.title)}", ""]
    lines += [f"- **{name}**: {inline(value)}" for name, value in transcript.facts]
    for entry in transcript.entries:
        lines += _markdown_entry(entry, reply)
    return "\n".join(lines).rstrip() + "\n"


def _markdown_entry(entry: Entry, reply: Callable[[str], str]) -> list[str]:
    if entry.role == "note":
        return ["", f"> *{entry.text}*"]
    if entry.role == "tool":
        label = f"Tool result: {code(entry.call_name)}" + (f" ({inline(entry.call_id)})" if entry.call_id else "")
        return ["", f"### {label}", "", literal(pretty_json(entry.text))]
    lines = ["", f"### {inline(heading(entry))}", ""]
    if entry.reasoning:
        lines += ["<details><summary>Reasoning</summary>", "", reply(entry.reasoning), "", "</details>", ""]
    if entry.role == "error":
        lines += [literal(entry.text, "json"), ""]
    elif entry.segments:  # the reply with the tools its provider ran, in their place
        for segment in entry.segments:
            lines += [reply(segment), ""] if isinstance(segment, str) else [*_tool_markdown(segment), ""]
    elif entry.text:  # the model's own Markdown, or someone else's text shown exactly
        lines += [reply(entry.text) if entry.role == "assistant" else literal(entry.text), ""]
    for call in entry.calls:
        lines += [f"**Tool call** {code(call.name)}" + (f" ({inline(call.id)})" if call.id else "") + ":", ""]
        lines += [literal(pretty_json(call.arguments), "json"), ""]
    if entry.footer:
        lines += [f"<sub>{' · '.join(inline(fact) for fact in entry.footer)}</sub>", ""]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _tool_markdown(tool: ServerTool) -> list[str]:
    """A server-side tool as a transcript shows it: what was asked, what came back, the sources."""
    lines = [f"**{inline(tool_title(tool))}**" + (":" if tool.request or tool.result or tool.sources else ""), ""]
    if tool.request:
        lines += [literal(tool.request, "python" if tool.kind == "code_execution" else ""), ""]
    if tool.result:
        lines += ["Result:", "", literal(clipped(tool.result)), ""]
    for title, url in tool.sources:
        shown = inline(title or url)
        lines.append(
            f"- [{shown}](<{url}>)" if safe_link(url) and not set(url) & set("<>\n\r ") else f"- {shown}: {code(url)}"
        )
    return lines


def _chats(
    exchanges: Iterable[Exchange], select: dict[str, Any] | None, only: Collection[str] | None
) -> Iterator[tuple[int, Conversation]]:
    """The conversations of `exchanges`, each redacted (export.redaction), with their places
    among the conversations, each as soon as it is complete (`conversations.gather`): threaded
    over all the exchanges, so ids never depend on a filter; with `only` (ids) or `select`
    (`export.select`'s arguments), only those holding an exchange both keep, none matching
    `select` a `ValueError`.

    When `exchanges` can be iterated again (a list, or the CLI's files, read again), this
    takes two passes: the first threads every exchange (`conversations.plan`: a few hundred
    bytes a message), the second reads each again and gives a conversation when its last
    exchange is read, so memory holds the conversations still open, not the input. Exchanges
    that can be read once (an iterator) are kept as the transcripts need them instead
    (`conversations.read`, light: no bodies, raw record or stream chunks, a message resent by
    every request held once). Progress bars show past half a second in a terminal or notebook."""
    again = iter(exchanges) is not exchanges
    kept: list[Read] = []
    same: dict[tuple[str, str], dict[str, Any]] = {}
    chosen: set[str] | None = set() if select else None
    count = 0
    # The exchanges redaction left as they were (a capture the addon redacted), by the digest
    # of their raw bytes: read again with the same bytes, they need no second redaction.
    clean: dict[str, bytes] = {}

    def first() -> Iterator[Exchange]:
        nonlocal count
        for exchange in _bar(exchanges, "reconstructing", " exchanges"):
            found = redacted(exchange)
            if again and found is exchange and exchange.raw:
                clean[exchange.id] = _digest(exchange.raw)
            exchange = found
            count += 1
            if chosen is not None and keeps(exchange, **select):  # type: ignore[arg-type]
                chosen.add(exchange.id)
            if not again:
                kept.append(read(exchange, same, light=True))
            yield exchange

    planned = plan(first())
    if chosen is not None and not chosen:
        raise ValueError("no exchange matches the filter")
    wanted = _wanted(only, chosen)
    if wanted is not None:
        keys = {found.thread.conversation for key, found in planned.items() if key in wanted}
        planned = {key: found for key, found in planned.items() if found.thread.conversation in keys}
    # Again, only the exchanges threaded the first time: one that did not reconstruct is not (redaction keeps ids).
    second = (
        x if x.id in clean and clean[x.id] == _digest(x.raw) else redacted(x)
        for x in _bar(exchanges, "writing", " exchanges", count)
        if x.id in planned
    )
    yield from gather(second if again else kept, planned)


def _digest(raw: bytes) -> bytes:
    """The first 16 bytes of the SHA-256 of an exchange's raw record."""
    return hashlib.sha256(raw).digest()[:16]


def _wanted(only: Collection[str] | None, chosen: set[str] | None) -> set[str] | None:
    """The exchanges both filters keep (`only`: ids given; `chosen`: what `select` kept), None
    when there is no filter: a conversation is exported when it holds one of them."""
    if only is None:
        return chosen
    return set(only) if chosen is None else chosen & set(only)


def _bar(items: Iterable[Any], what: str, unit: str, total: int | None = None) -> Iterable[Any]:
    """`items` under a progress bar on stderr when going through them takes more than half a
    second in a terminal or a notebook (`unit` with its space: "457 exchanges")."""
    from tqdm.auto import tqdm

    shown = sys.stderr.isatty() or "ipykernel" in sys.modules
    return tqdm(items, desc=what, unit=unit, total=total, delay=PROGRESS_DELAY_S, disable=not shown, leave=False)


def _transcripts(
    exchanges: Iterable[Exchange],
    select: dict[str, Any] | None,
    reasoning: bool,
    conversation: str | None,
    only: Collection[str] | None,
) -> Iterator[tuple[int, Transcript]]:
    """The transcripts of `_chats`, one at a time, with their places; with `conversation`,
    the one with that id, file name or exchange."""
    found = False
    for place, chat in _chats(exchanges, select, only):
        made = transcript(chat, reasoning=reasoning)
        ids = [turn.exchange.id for turn in chat.turns]
        if conversation is not None and conversation not in (made.id, made.stem) and conversation not in ids:
            continue
        found = True
        yield place, made
    if conversation is not None and not found:
        raise ValueError(f"no conversation {conversation!r} (give its id, like c1, or one of its exchanges' ids)")


def markdown(
    exchanges: Iterable[Exchange],
    out_dir: str | Path,
    *,
    reasoning: bool = True,
    conversation: str | None = None,
    only: Collection[str] | None = None,
    select: dict[str, Any] | None = None,
) -> list[Path]:
    """Write one Markdown transcript per conversation into `out_dir` (all, or the one with
    id `conversation`, or those holding an exchange whose id is in `only` and that `select`
    keeps: `export.select`'s arguments, `{"model": "gpt-4o*"}`); returns the files written.
    Conversations are found in all of `exchanges`, so a filter never renumbers them.
    `exchanges` are taken one at a time: read twice when they can be (a list, or an object
    whose `iter` reads the files again), each transcript written as soon as its conversation
    is complete; read once (`analyzer.stream`), what the transcripts show of each is held."""
    out = private_dir(out_dir)
    written: list[tuple[int, Path]] = []
    for place, made in _transcripts(exchanges, select, reasoning, conversation, only):
        done: list[Path] = []
        write_one(out / f"{made.stem}.md", conversation_markdown(made), done)
        written += [(place, path) for path in done]
    return [path for _, path in sorted(written)]  # places are unique: nothing else is compared


# The keys of a chat message the OpenAI fine-tuning format knows.
_CHAT_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id", "refusal")


def _chat_message(message: dict[str, Any], reasoning: bool) -> dict[str, Any]:
    out = {key: message[key] for key in _CHAT_KEYS if message.get(key) is not None}
    out.setdefault("content", None)
    if out.get("role") == "developer":
        out["role"] = "system"
    if out.get("tool_calls"):
        out["tool_calls"] = [_chat_call(c) for c in out["tool_calls"] if isinstance(c, dict)]
    kept = message.get("reasoning_content") or message.get("reasoning")
    if reasoning and out.get("role") == "assistant" and isinstance(kept, str) and kept:
        out["reasoning_content"] = kept
    return out


def _chat_call(call: dict[str, Any]) -> dict[str, Any]:
    """A tool call as OpenAI's chat format has it: a function call, or a custom tool's input."""
    if call.get("type") == "custom" and isinstance(call.get("custom"), dict):
        return {"id": call.get("id"), "type": "custom", "custom": call["custom"]}
    return {"id": call.get("id"), "type": "function", "function": call.get("function")}


def _fill_ids(messages: list[dict[str, Any]]) -> int:
    """Ids where a client sent none (a tool call without `id`, a tool result without
    `tool_call_id`: Writer's API takes such a history; OpenAI's format needs them): each
    result answers the earliest call still unanswered, as the order of a history says.
    How many were filled."""
    filled = 0
    waiting: list[str] = []
    for message in messages:
        if message.get("role") == "assistant":
            waiting = []
            for call in message.get("tool_calls") or ():
                if not isinstance(call.get("id"), str) or not call["id"]:
                    filled += 1
                    call["id"] = f"call_chatcap_{filled}"
                waiting.append(call["id"])
        elif message.get("role") == "tool":
            if isinstance(message.get("tool_call_id"), str) and message["tool_call_id"]:
                waiting = [w for w in waiting if w != message["tool_call_id"]]
            else:
                filled += 1
                message["tool_call_id"] = waiting.pop(0) if waiting else f"call_chatcap_{filled}"
    return filled


def jsonl(
    exchanges: Iterable[Exchange],
    path: str | Path,
    *,
    reasoning: bool = False,
    conversation: str | None = None,
    only: Collection[str] | None = None,
    select: dict[str, Any] | None = None,
) -> Path:
    """One conversation per line in OpenAI's chat format, `{"messages": [...], "tools": [...]}`:
    the history the conversation's latest reply answered, then that reply (with its tool
    calls; with `reasoning_content` when `reasoning`). Ready for fine-tuning tools; redacted.
    `conversation`, `only` and `select` choose conversations as for `markdown`."""
    target = Path(path)
    private_dir(target.parent)
    with Spill() as lines:  # each conversation's line, written in the conversations' order at the end
        for place, chat in _chats(exchanges, select, only):
            if conversation is not None and chat.id != conversation and all(t.exchange.id != conversation for t in chat.turns):  # fmt: skip
                continue
            line = _jsonl_line(chat, reasoning)
            if line is not None:
                lines[place] = line
        with open_private(target) as handle:
            for place in sorted(lines):
                handle.write(lines[place])
    return target


def _jsonl_line(chat: Conversation, reasoning: bool) -> bytes | None:
    """`jsonl`'s line for one conversation, None when it got no reply."""
    leaf = chat.leaf()
    if leaf is None:
        return None
    messages = [_chat_message(m, reasoning) for m in leaf.history]
    messages.append(_chat_message({**leaf.reply, "role": "assistant"}, reasoning))  # whatever the wire said
    line: dict[str, Any] = {"messages": messages}
    metadata: dict[str, Any] = {}
    if filled := _fill_ids(messages):
        metadata["filled_ids"] = filled  # ids the client did not send, made up in order
    functions, builtins = _function_tools(chat.tools)
    if functions:
        line["tools"] = functions
    if builtins:  # a provider's own tools (web search, code execution): not OpenAI tool input
        metadata["builtin_tools"] = builtins
    if metadata:
        line["metadata"] = metadata
    return redact_text(dumps_exact(line)).encode() + b"\n"


_FUNCTION_KEYS = ("name", "description", "parameters", "strict")


def _function_tools(tools: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The request's tools as OpenAI function tools, and the names of the others: built-in
    tools (`web_search_20250305`, `googleSearch`, `codeExecution`, `{"type": "web_search"}`)
    that a chat-format consumer would reject."""
    functions, builtins = [], []
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            isinstance(function, dict)
            and tool.get("type") in (None, "function")
            and isinstance(function.get("name"), str)
        ):
            kept = {key: function[key] for key in _FUNCTION_KEYS if function.get(key) is not None}
            functions.append({"type": "function", "function": kept})
        elif isinstance(tool, dict) and tool:
            name = tool.get("type") if isinstance(tool.get("type"), str) else next(iter(tool))
            builtins.append(str(tool.get("name") or name) if name in ("custom",) else str(name))
        else:
            builtins.append(dumps_exact(tool))
    return functions, builtins


def html(
    exchanges: Iterable[Exchange],
    out_dir: str | Path,
    *,
    reasoning: bool = True,
    conversation: str | None = None,
    only: Collection[str] | None = None,
    select: dict[str, Any] | None = None,
) -> list[Path]:
    """Write one self-contained HTML transcript per conversation and an `index.html` listing
    them into `out_dir` (no scripts, fonts or styles from elsewhere: they open from disk);
    returns the files written, the index last. The conversations are chosen as for `markdown`."""
    from analyzer.export import htmlpage

    return htmlpage.write(_transcripts(exchanges, select, reasoning, conversation, only), Path(out_dir))


TABLE_FORMATS = ("parquet", "csv")


def tables(
    exchanges: Iterable[Exchange], out_dir: str | Path, fmt: str = "parquet", *, only: Collection[str] | None = None
) -> list[Path]:
    """The four frames of `analyzer.frames` (exchanges, chunks, messages, tool_calls) in
    `out_dir`: Parquet as a dataset partitioned by date (`analyzer.dataset.write`;
    docs/schema.md), CSV as one file per table (lists and parsed JSON as JSON text; text
    redacted). In CSV a text cell a spreadsheet would take for a formula gets a leading `'`
    (see `csv_cell`); Parquet keeps every text exact. With `only`, the rows of those
    exchanges, threaded among all of `exchanges` (conversation ids as in the whole input).
    `exchanges` are redacted and made into rows one at a time: from `analyzer.stream`, memory
    holds the frames, not the input."""
    from analyzer import frames

    _can_write(fmt)
    return write_tables(frames.all_frames(map(redacted, exchanges)), out_dir, fmt, only=only)


def _can_write(fmt: str) -> None:
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"tables are written as {' or '.join(TABLE_FORMATS)}, not {fmt!r}")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ValueError("Parquet needs pyarrow: pip install 'chatcap[lab]' (or use --format csv)")


def write_tables(
    built: dict[str, Any], out_dir: str | Path, fmt: str = "parquet", *, only: Collection[str] | None = None
) -> list[Path]:
    """`tables` for frames already built (of redacted exchanges)."""
    _can_write(fmt)
    out = private_dir(out_dir)
    if fmt == "parquet":
        from analyzer import dataset

        return dataset.write(built, out, only=only)[0]
    written = []
    for name, frame in built.items():
        if only is not None:
            frame = frame[frame["id" if name == "exchanges" else "exchange"].isin(list(only))].reset_index(drop=True)
        frame = table_values(frame, fmt)
        path = out / f"{name}.{fmt}"
        try:
            with open_private(path) as handle:  # RFC 4180 line ends, so a text holding a lone CR is quoted too
                frame.to_csv(handle, index=False, lineterminator="\r\n")
        except UnsafePath as exc:
            refused(exc)
            continue
        written.append(path)
    return written


def table_values(frame: Any, fmt: str, *, cells_ready: Collection[str] = ()) -> Any:
    """A frame's cells as a table file holds them: categories as text, text redacted, lists
    and parsed JSON as (redacted) JSON text; for CSV, formulas made text (`csv_cell`).
    `cells_ready`: columns whose cells are `table_cell`s already (made where the rows were)."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == "category":  # model names, roles, tool names: text too
            frame[column] = frame[column].astype("object")
        if frame[column].dtype in ("object", "string") and column not in cells_ready:
            frame[column] = frame[column].map(each_text_once(), na_action="ignore")
        if fmt == "csv" and frame[column].dtype in ("object", "string", "category"):
            frame[column] = frame[column].astype("object").map(csv_cell, na_action="ignore")
        elif fmt == "csv" and str(frame[column].dtype).startswith("datetime64"):
            # Every time to the microsecond (`2025-10-01 12:00:00.250000+00:00`), not as pandas writes
            # a column (every fraction as long as the longest): the same however the rows are batched.
            frame[column] = frame[column].astype("object").map(_csv_time, na_action="ignore")
    return frame


def column_cells(values: list[Any], dtype: str) -> list[Any]:
    """A text column's cells as `table_values` makes them for Parquet, from the values the rows
    were made with (`dtype`, the frame's: string, category or object): text redacted, any other
    value as (redacted) JSON text, a missing one (None; in an object column, NaN too) None."""
    cell = each_text_once()
    if dtype == "object":
        return [None if value is None or (type(value) is float and value != value) else cell(value) for value in values]
    return [None if value is None else cell(value) for value in values]


# OWASP, "CSV Injection": a cell starting with one of these is a formula to Excel, LibreOffice
# and Google Sheets; a single quote before it makes it text (and is not shown).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _csv_time(moment: Any) -> str:
    return str(moment.isoformat(sep=" ", timespec="microseconds"))


def csv_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs: text starting with = + - @, tab or CR gets a
    leading `'`, unless it is a plain number (`-3`, `+1.5e3`), which stays a number."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def table_cell(value: Any) -> Any:
    """A cell as written: text redacted, lists and parsed JSON as (redacted) JSON text; None stays None."""
    return None if value is None else _table_value(value)


def each_text_once() -> Callable[[Any], Any]:
    """`table_cell` of a value that is not None, made once per distinct text: ids, hosts, models
    and roles repeat from row to row (the messages' exchange and first sender: each id on every
    message it sent), and so do a stream's pieces."""
    made: dict[str, Any] = {}

    def cell(value: Any) -> Any:
        if type(value) is not str:
            return _table_value(value)
        found = made.get(value)
        if found is None:
            found = made[value] = _table_value(value)
        return found

    return cell


def _table_value(value: Any) -> Any:
    """A cell as written: text redacted, lists and parsed JSON as (redacted) JSON text."""
    if isinstance(value, str):
        return redact_text(value)
    return redact_text(dumps_exact(value))
