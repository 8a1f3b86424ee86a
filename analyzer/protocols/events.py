"""What the event-typed protocols (Anthropic Messages, OpenAI Responses, Gemini) share:
an event stream read into JSON payloads with arrival times, the marks timing needs, the
way a stream ends, and the request side read into chat messages.

Each protocol module folds the payloads into its own final object (`to_native()`) and
maps that onto the `Reconstruction`'s choices, so frames, charts and exports read every
protocol the same way.
"""

from __future__ import annotations

from typing import Any

import orjson

from analyzer.model import Exchange, Part, Reconstruction, StreamChunk, ToolCall, dumps_exact
from analyzer.sse import Event, decode, lenient_events


def preview(data: bytes, limit: int = 60) -> str:
    text = data[:limit].decode("utf-8", "replace")
    return repr(text + ("…" if len(data) > limit else ""))


def _payloads(events: list[Event], rec: Reconstruction) -> tuple[list[tuple[Event, Any]], int]:
    out: list[tuple[Event, Any]] = []
    bad = 0
    loads = orjson.loads
    for event in events:
        data = event.data
        try:
            out.append((event, loads(data)))
            continue
        except orjson.JSONDecodeError as exc:
            stripped = data.strip()
            if not stripped:
                continue
            if stripped == b"[DONE]":  # some gateways end every protocol's stream the OpenAI way
                rec.extras["done_marker"] = True
                continue
            bad += 1
            rec.warn("bad_chunk", f"event {len(out) + bad}: payload is not JSON ({exc}): {preview(data)}")
    return out, bad


def stream_payloads(exchange: Exchange, rec: Reconstruction) -> list[tuple[Event, Any]]:
    """The stream's events with their JSON payloads; unreadable ones become warnings."""
    response = exchange.response
    body = response.body if response else b""
    events, decoder = decode(body, response.chunks if response else None)
    rec.comments = [text for _, text in decoder.comments]
    payloads, bad = _payloads(events, rec)
    if bad:
        trial = Reconstruction(protocol=rec.protocol, streamed=True)
        lenient, lenient_bad = _payloads(lenient_events(body), trial)
        if lenient_bad < bad and len(lenient) >= len(payloads):
            rec.warnings = [w for w in rec.warnings if w.code != "bad_chunk"] + trial.warnings
            rec.warn(
                "lenient_sse",
                f"lenient SSE parse (payloads wrapped across lines): the strict parse left {bad} payload(s) unreadable",
            )
            return lenient
    if events and events[-1].unterminated:
        rec.warn("unterminated_event", "the last event has no blank line after it (the stream or the dump was cut)")
    return payloads


class Marks:
    """Indices into `rec.chunks` of the first generated text of any kind, the first answer
    text and the last generated text (DESIGN.md's timing vocabulary)."""

    __slots__ = ("first_answer", "first_token", "last_token")

    def __init__(self) -> None:
        self.first_token: int | None = None
        self.first_answer: int | None = None
        self.last_token: int | None = None

    def token(self, seq: int, answer: bool) -> None:
        if self.first_token is None:
            self.first_token = seq
        if answer and self.first_answer is None:
            self.first_answer = seq
        self.last_token = seq

    def as_dict(self) -> dict[str, int | None]:
        return {"first_token": self.first_token, "first_answer": self.first_answer, "last_token": self.last_token}


def add_chunk(rec: Reconstruction, event: Event | None, payload: Any) -> int:
    seq = len(rec.chunks)
    rec.chunks.append(StreamChunk(seq, event.t_ms if event is not None else None, payload))
    return seq


def ending(exchange: Exchange, rec: Reconstruction, finished: bool, what: str) -> None:
    """Whether the stream ended as the protocol says a stream ends (`what`), and why not."""
    if rec.error is not None:
        rec.truncated = not finished
        rec.warn("stream_error", f"error mid-stream: {error_text(rec.error)}")
    elif finished:
        rec.truncated = False
    else:
        rec.truncated = True
        rec.warn("truncated", f"stream ended before {what}: reconstructed as far as it got")
    if exchange.error:
        rec.warn("capture_error", f"the exchange ended early: {exchange.error}")
        rec.truncated = rec.truncated or not finished


def error_text(error: Any) -> str:
    if isinstance(error, dict):
        inner = error.get("error", error)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner.get("code") or inner.get("type") or inner)[:200]
        return str(inner)[:200]
    return str(error)[:200]


def json_text(value: Any) -> str:
    """Tool arguments given as an object, as the JSON string OpenAI's shape carries."""
    return dumps_exact(value) if value is not None else ""


def tool_call(index: int, call_id: Any, name: Any, arguments: str, kind: str = "function") -> ToolCall:
    call = ToolCall(
        index=index,
        id=call_id if isinstance(call_id, str) else None,
        type=kind,
        name=name if isinstance(name, str) else None,
        arguments=arguments,
    )
    call.parse()
    return call


def openai_usage(rec: Reconstruction) -> dict[str, Any] | None:
    """The normalised usage in chat/completions' shape (for `to_openai()`)."""
    usage = rec.usage
    if usage is None:
        return None
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_prompt_tokens is not None:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_prompt_tokens}
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def parts_of(kind_texts: list[tuple[str, str]], choice: int | None = 0) -> list[Part]:
    return [Part(choice, kind, text) for kind, text in kind_texts]


def text_of(content: Any) -> str:
    """Text of a request message's content in any protocol: a string or typed parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type"):
                    texts.append(f"[{part['type']}]")
        return "\n".join(texts)
    return str(content)
