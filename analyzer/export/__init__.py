"""Reconstructed transcripts out: Markdown (one file per exchange) and OpenAI-format JSONL.

Exports always redact credentials, whatever the input says about itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from analyzer.metrics import format_ms, reported_cost
from analyzer.model import Exchange
from analyzer.protocols import request_messages
from analyzer.protocols.openai_chat import content_text
from analyzer.redact import redact_text

__all__ = ["jsonl", "markdown", "markdown_text"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(exchange: Exchange, suffix: str) -> str:
    return _UNSAFE.sub("_", exchange.id).strip("_") + suffix


def _fence(text: str, lang: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def markdown_text(exchange: Exchange, collapsible: bool = True) -> str:
    """One exchange as a Markdown transcript: request history, reply, usage, timing, warnings.
    `collapsible=False` shows reasoning as a labelled quote (for terminals, which drop HTML)."""
    rec = exchange.reconstruct()
    lines = [f"# {exchange.id}", ""]
    facts = [
        ("source", f"{exchange.where} ({exchange.format})"),
        ("url", exchange.request.url if exchange.request else None),
        ("model", f"{rec.requested_model or '—'} requested, {rec.served_model or '—'} served"),
        ("status", exchange.response.status if exchange.response else None),
        ("protocol", f"{rec.protocol}, {'streamed' if rec.streamed else 'not streamed'}"),
    ]
    if rec.usage:
        facts.append(("tokens", f"{rec.usage.prompt_tokens} prompt, {rec.usage.completion_tokens} completion"))
    cost = reported_cost(rec)
    if cost is not None:
        facts.append(("cost", f"${cost:g} (reported by the provider)"))
    if rec.timing and rec.timing.source != "none":
        t = rec.timing
        ttft, duration = format_ms(t.ttft_ms, t.resolution_ms), format_ms(t.duration_ms, t.resolution_ms)
        facts.append(("timing", f"TTFT {ttft}, duration {duration} (source: {t.source})"))
    lines += [f"- **{name}**: {value}" for name, value in facts if value is not None]
    messages = request_messages(exchange)
    if messages:
        lines += ["", "## Request", ""]
        for message in messages:
            lines += _message(message)
    _heading(lines, "## Reply")
    if not rec.choices and not rec.error:
        missing = rec.has("body_not_recorded")
        lines += ["*(no reply: the producer kept no response body)*" if missing else "*(no reply)*", ""]
    if rec.error:
        lines += ["**Error:**", "", _fence(orjson.dumps(rec.error, option=orjson.OPT_INDENT_2).decode(), "json"), ""]
    for choice in rec.choices:
        if len(rec.choices) > 1:
            lines += [f"### choice {choice.index}", ""]
        reasoning = choice.reasoning or choice.think
        if reasoning:
            source = "" if choice.reasoning else " (from {} in the content)"
            if collapsible:  # inside HTML the tag must be escaped
                summary = "Reasoning" + source.format("&lt;think&gt;")
                lines += [f"<details><summary>{summary}</summary>", "", reasoning, "", "</details>", ""]
            else:
                label = "Reasoning" + source.format("`<think>`")
                lines += [f"**{label}:**", "", *[f"> {line}" for line in reasoning.splitlines()], ""]
        answer = choice.content if choice.think is None or choice.reasoning else choice.answer
        if answer:
            lines += [answer, ""]
        if choice.refusal:
            lines += [f"**Refusal:** {choice.refusal}", ""]
        for call in choice.tool_calls:
            lines += [
                f"**Tool call** `{call.name}` ({call.id}):",
                "",
                _fence(_pretty_arguments(call.arguments), "json"),
                "",
            ]
        lines += [f"*finish reason: {choice.finish_reason or '—'}*", ""]
    if rec.warnings:
        _heading(lines, "## Warnings")
        lines += [f"- {w.message}" for w in rec.warnings]
    return redact_text("\n".join(lines).rstrip() + "\n")


def _heading(lines: list[str], heading: str) -> None:
    """Append a heading with exactly one blank line before and after it."""
    while lines and not lines[-1]:
        lines.pop()
    lines += ["", heading, ""]


def _pretty_arguments(arguments: str) -> str:
    try:
        return orjson.dumps(orjson.loads(arguments), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return arguments


def _message(message: dict[str, Any]) -> list[str]:
    role = str(message.get("role", "?"))
    label = message.get("name") or (f"result of {message['tool_call_id']}" if message.get("tool_call_id") else None)
    lines = [f"### {role}" + (f" ({label})" if label else ""), ""]
    text = content_text(message.get("content"))
    if text:
        lines += [text, ""]
    for call in message.get("tool_calls") or []:
        function = call.get("function", {}) if isinstance(call, dict) else {}
        call_id = call.get("id") if isinstance(call, dict) else None
        lines += [
            f"**Tool call** `{function.get('name')}` ({call_id}):",
            "",
            _fence(_pretty_arguments(str(function.get("arguments", ""))), "json"),
            "",
        ]
    return lines


def markdown(exchanges: Iterable[Exchange], out_dir: str | Path) -> list[Path]:
    """Write one Markdown transcript per exchange into `out_dir`; returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for exchange in exchanges:
        path = out / file_name(exchange, ".md")
        path.write_text(markdown_text(exchange), encoding="utf-8")
        written.append(path)
    return written


def jsonl(exchanges: Iterable[Exchange], path: str | Path) -> Path:
    """One line per exchange: `{"id", "messages": request history + reply, "response": to_openai()}`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        for exchange in exchanges:
            rec = exchange.reconstruct()
            response = rec.to_openai()
            messages = request_messages(exchange) + [choice["message"] for choice in response["choices"][:1]]
            line = orjson.dumps({"id": exchange.id, "messages": messages, "response": response})
            handle.write(redact_text(line.decode()).encode() + b"\n")
    return target
