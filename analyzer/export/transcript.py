"""One conversation as a transcript: what the Markdown and HTML exports both show.

A transcript is a list of entries in reading order: the system prompt, then per turn the
messages that exchange sent first (a resent history is not repeated), a note when the turn
regenerates or edits an earlier one, and the reply with a footer (model, TTFT, tokens,
cost). Tool calls are shown with their arguments and, where a later request sent one back,
their result, labelled with the call's name. Reasoning is kept apart so each format can fold
it away (or leave it out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

import orjson

from analyzer import tokens
from analyzer.anomalies import same_model
from analyzer.conversations import Conversation, Turn, arrival_curve, message_text
from analyzer.cost import cost_of
from analyzer.metrics import format_ms
from analyzer.model import Exchange, as_utc, dumps_exact, url_parts
from analyzer.protocols.events import error_text
from analyzer.protocols.server_tools import ServerTool, has_server_tools, segments

_SLUG = re.compile(r"[^a-z0-9]+")


# Each role's heading, in every format.
HEADINGS = {"system": "System prompt", "user": "User", "assistant": "Assistant", "error": "Error"}


def heading(entry: Entry) -> str:
    """An entry's heading: its role's, with its label (`Assistant (choice 1)`)."""
    return HEADINGS.get(entry.role, entry.role.title()) + (f" ({entry.label})" if entry.label else "")


def pretty_json(text: str) -> str:
    """Tool arguments or results indented when they are JSON, as they are when not."""
    try:
        return dumps_exact(orjson.loads(text), indent=True)
    except orjson.JSONDecodeError:
        return text


@dataclass(slots=True)
class Call:
    id: str | None
    name: str | None
    arguments: str


@dataclass(slots=True)
class Entry:
    """One message as shown: who, the text, and what goes with it."""

    role: str  # system, user, assistant, tool, error, note
    text: str = ""
    reasoning: str | None = None
    calls: list[Call] = field(default_factory=list)
    # For a tool result: the call it answers.
    call_name: str | None = None
    call_id: str | None = None
    # For a reply: the footer's facts and the arrival curve (ms, characters so far).
    footer: list[str] = field(default_factory=list)
    curve: list[tuple[float, int]] = field(default_factory=list)
    exchange: str | None = None
    origin: str = "request"  # request or reply
    # What to add to the role's heading: "choice 1" (an n>1 reply), "as sent back" (an
    # assistant message from a request's history, not a reply the capture holds).
    label: str | None = None
    # A reply whose provider ran tools itself: its text and those tools in the order they
    # came (protocols.server_tools); empty otherwise, and `text` is the whole answer.
    segments: list[str | ServerTool] = field(default_factory=list)


# How each kind of server tool is named in a transcript.
TOOL_NAMES = {
    "web_search": "Web search", "web_fetch": "Web fetch", "code_execution": "Code execution",
    "file_search": "File search", "mcp": "MCP tool", "mcp_list_tools": "MCP tools listed",
    "url_context": "URL context", "x_search": "X search", "image_generation": "Image generation",
    "citations": "Sources",
}  # fmt: skip
# A tool's result is cut to this many characters in a transcript (a fetched page can be long).
RESULT_SHOWN = 2000


def tool_title(tool: ServerTool) -> str:
    """`Web search (google_search, completed)`: the kind, with the tool's own name and status."""
    title = TOOL_NAMES.get(tool.kind, tool.kind.replace("_", " ").capitalize())
    details = [part for part in (tool.name, tool.status) if part]
    return title + (f" ({', '.join(details)})" if details else "")


def clipped(text: str, limit: int = RESULT_SHOWN) -> str:
    """`text`, or its first `limit` characters and how many more there were."""
    return text if len(text) <= limit else f"{text[:limit]}\n… ({len(text) - limit:,} more characters)"


@dataclass(slots=True)
class Transcript:
    id: str
    title: str
    facts: list[tuple[str, str]]
    entries: list[Entry]
    exchanges: list[str]

    @property
    def stem(self) -> str:
        """A file name for it: the conversation id and the start of its title."""
        slug = _SLUG.sub("-", self.title.lower()).strip("-")[:48].rstrip("-")
        return f"{self.id}-{slug}" if slug and self.title != self.id else self.id


def select(
    xs: Iterable[Exchange],
    *,
    model: str | None = None,
    host: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Exchange]:
    """The exchanges a filter keeps: `model` and `host` are shell patterns (`gpt-4o*`,
    `*.openai.com`) matched against the requested and the served model and the URL's host;
    `since` / `until` bound the start time (an exchange without one is kept only when no
    date is asked for)."""
    return [exchange for exchange in xs if keeps(exchange, model=model, host=host, since=since, until=until)]


def keeps(
    exchange: Exchange,
    *,
    model: str | None = None,
    host: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> bool:
    """Whether `select` with these arguments keeps `exchange`."""
    models: tuple[str | None, ...] = ()
    if model is not None:
        rec = exchange.reconstruct()
        models = (rec.requested_model, rec.served_model)
    parts = url_parts(exchange.request.url) if host is not None and exchange.request else None
    host_name = parts.hostname if parts else None
    return passes(models, host_name, exchange.started_at, model=model, host=host, since=since, until=until)


def passes(
    models: Iterable[object],
    host_name: str | None,
    started: datetime | None,
    *,
    model: str | None = None,
    host: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> bool:
    """Whether an exchange of these requested and served `models`, URL host and start passes
    `select`'s filter (a naive start is taken as UTC); `dataset.chosen` asks it of table rows."""
    names = [name.lower() for name in models if isinstance(name, str) and name]
    if model is not None and not any(fnmatchcase(name, model.lower()) for name in names):
        return False
    if host is not None and not fnmatchcase((host_name or "").lower(), host.lower()):
        return False
    if since is not None or until is not None:
        if started is None:
            return False
        started = started if started.tzinfo else started.replace(tzinfo=UTC)
        if (since is not None and started < since) or (until is not None and started >= until):
            return False
    return True


def transcript(conversation: Conversation, *, reasoning: bool = True) -> Transcript:
    """The conversation in reading order (see the module docstring)."""
    entries: list[Entry] = []
    names: dict[str, str | None] = {}  # tool call id → tool name, from the replies and histories seen
    model: str | None = None
    for turn in conversation.turns:
        served = turn.rec.served_model or turn.rec.requested_model
        if model and served and not same_model(model, served):
            entries.append(Entry("note", f"Model changed: {model} → {served}."))
        model = served or model
        if turn.branch == "regeneration":
            entries.append(Entry("note", "Regenerated: the same request was sent again and got another reply."))
        elif turn.branch == "edit":
            entries.append(Entry("note", "Edited: this turn replaces the end of an earlier one with another message."))
        for position in turn.new:
            entries.append(_request_entry(turn.history[position], turn, names, reasoning))
        entries.extend(_reply_entries(turn, names, reasoning))
    first = conversation.turns[0].exchange if conversation.turns else None
    started = conversation.started_at
    endpoints = dict.fromkeys(_endpoint(turn.exchange) for turn in conversation.turns)
    facts = [
        ("conversation", f"{conversation.id}, {len(conversation.turns)} exchange(s)"),
        ("models", ", ".join(conversation.models) or "—"),
        ("endpoint", ", ".join(e for e in endpoints if e) or "—"),
        ("started", _started_text(started) if started else "—"),
        ("source", first.source if first else "—"),
    ]
    return Transcript(
        conversation.id, conversation.title, facts, entries, [turn.exchange.id for turn in conversation.turns]
    )


def _started_text(started: datetime) -> str:
    utc = as_utc(started)  # None: in UTC it would fall before year 1 or after 9999
    return utc.strftime("%Y-%m-%d %H:%M:%S UTC") if utc else started.isoformat()


def _endpoint(exchange: Exchange) -> str | None:
    """Host and path the request went to (no query: it may hold a key)."""
    parts = url_parts(exchange.request.url if exchange.request else None)
    if parts is None:
        return None
    return f"{parts.netloc.rpartition('@')[2]}{parts.path}" if parts.netloc else parts.path or None


def _calls(message: dict[str, Any], names: dict[str, str | None]) -> list[Call]:
    calls = []
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        arguments = function.get("arguments")
        text = arguments if isinstance(arguments, str) else dumps_exact(arguments)
        calls.append(Call(call.get("id"), function.get("name"), text))
        if isinstance(call.get("id"), str):
            names[call["id"]] = function.get("name")
    return calls


def _request_entry(message: dict[str, Any], turn: Turn, names: dict[str, str | None], reasoning: bool) -> Entry:
    role = str(message.get("role") or "?")
    if role == "developer":
        role = "system"
    entry = Entry(role, message_text(message), exchange=turn.exchange.id)
    if role == "assistant":
        entry.label = "as sent back"
        kept = message.get("reasoning_content") or message.get("reasoning")
        entry.reasoning = kept if reasoning and isinstance(kept, str) and kept else None
        entry.calls = _calls(message, names)
    if role == "tool":
        entry.call_id = message.get("tool_call_id")
        entry.call_name = names.get(entry.call_id or "") or message.get("name")
    return entry


def _reply_entries(turn: Turn, names: dict[str, str | None], reasoning: bool) -> list[Entry]:
    rec = turn.rec
    out = []
    if rec.error is not None:
        status = turn.exchange.response.status if turn.exchange.response else None
        text = dumps_exact(rec.error, indent=True)
        out.append(Entry("error", text, footer=[f"HTTP {status}"] if status else [], exchange=turn.exchange.id))
    if turn.reply is None:
        if rec.error is None:
            why = "the producer kept no response body" if rec.has("body_not_recorded") else "no reply recorded"
            out.append(Entry("note", f"No reply: {why}.", exchange=turn.exchange.id))
        return out
    for choice, message in zip(rec.choices, turn.replies, strict=True):
        thought = choice.reasoning or choice.think
        text = choice.content if choice.think is None or choice.reasoning else choice.answer
        if choice.refusal:
            text = (text + "\n\n" if text else "") + f"Refused: {choice.refusal}"
        first = choice is rec.choices[0]
        entry = Entry(
            "assistant",
            text or "",
            reasoning=thought if reasoning else None,
            calls=_calls(message, names),
            footer=footer(turn) if first else [],
            curve=curve(turn) if first else [],
            exchange=turn.exchange.id,
            origin="reply",
            label=f"choice {choice.index}" if len(rec.choices) > 1 else None,
        )
        if has_server_tools(rec):
            found = segments(rec, rec.choices.index(choice))
            if any(isinstance(segment, ServerTool) for segment in found):
                entry.segments = found + ([f"Refused: {choice.refusal}"] if choice.refusal else [])
        out.append(entry)
    return out


def footer(turn: Turn) -> list[str]:
    """Model, TTFT, tokens, cost and how the reply ended, for the line under it."""
    rec, exchange = turn.rec, turn.exchange
    facts = [rec.served_model or rec.requested_model or "model unknown"]
    timing = rec.timing
    if timing and timing.ttft_ms is not None:
        facts.append(f"TTFT {format_ms(timing.ttft_ms, timing.resolution_ms)}")
    if timing and timing.duration_ms is not None:
        facts.append(f"{format_ms(timing.duration_ms, timing.resolution_ms)} in all")
    usage = tokens.usage_or_estimate(rec, turn.history, None)
    if usage is not None:
        mark = "~" if usage.source == "estimated" else ""
        prompt = "?" if usage.prompt_tokens is None else usage.prompt_tokens
        completion = "?" if usage.completion_tokens is None else usage.completion_tokens
        facts.append(f"{mark}{prompt}→{completion} tokens")
    cost = cost_of(exchange, rec, usage)
    if cost.usd is not None:
        mark = "" if cost.source == "reported" else "≈"
        facts.append(f"{mark}${cost.usd:.6f}".rstrip("0").rstrip("."))
    facts += [ending] if (ending := end_reason(exchange, rec)) else []
    facts.append(exchange.id)
    return facts


def end_reason(exchange: Exchange, rec: Any) -> str | None:
    """How a reply ended when it did not simply stop: the server's error, the proxy's reason
    (a shutdown, a reset, a failed upstream TLS handshake), a finish reason other than stop;
    "cut off" only when nothing explains the end."""
    if rec.error is not None:
        return f"error: {error_text(rec.error)}"
    if exchange.error:
        return f"ended early: {exchange.error}"
    if rec.truncated:
        return "cut off"
    finish = rec.choices[0].finish_reason if rec.choices else None
    return f"ended: {finish}" if finish and finish != "stop" else None


def curve(turn: Turn) -> list[tuple[float, int]]:
    """(arrival ms, generated characters so far) per stream chunk, for the sparkline."""
    return turn.curve if turn.curve is not None else arrival_curve(turn.rec)


def transcripts(conversations: Sequence[Conversation], *, reasoning: bool = True) -> list[Transcript]:
    return [transcript(c, reasoning=reasoning) for c in conversations if c.turns]
