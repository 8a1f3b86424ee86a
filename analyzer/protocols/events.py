"""What the event-typed protocols (Anthropic Messages, OpenAI Responses, Gemini) share:
an event stream read into JSON payloads with arrival times, the marks timing needs, the
way a stream ends, and the request side read into chat messages.

Each protocol module folds the payloads into its own final object (`to_native()`) and
maps that onto the `Reconstruction`'s choices, so frames, charts and exports read every
protocol the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import msgspec
import orjson

from analyzer.model import Exchange, Reconstruction, StreamChunk, ToolCall, dumps_exact
from analyzer.sse import Cut, Event, cut, lenient_events, read

# Plain JSON values, integers past 64 bits kept exact (orjson would make them floats); the
# general path and the fast path parse alike.
_decode_any = msgspec.json.Decoder().decode
_decode_any_lines = msgspec.json.Decoder().decode_lines
_encode = msgspec.json.Encoder().encode


def preview(data: bytes, limit: int = 60) -> str:
    text = data[:limit].decode("utf-8", "replace")
    return repr(text + ("…" if len(data) > limit else ""))


# One stream event as the protocol modules read it: arrival time, `event:` name, JSON payload.
Payload = tuple[float | None, str | None, Any]


def _payloads(events: list[Event], rec: Reconstruction) -> tuple[list[Payload], int]:
    out: list[Payload] = []
    bad = 0
    loads = _decode_any
    for event in events:
        data = event.data
        try:
            out.append((event.t_ms, event.event, loads(data)))
            continue
        except (ValueError, RecursionError) as exc:  # msgspec's errors, invalid UTF-8, nesting past its limit
            stripped = data.strip()
            if not stripped:
                continue
            if stripped == b"[DONE]":  # some gateways end every protocol's stream the OpenAI way
                rec.extras["done_marker"] = True
                continue
            if isinstance(exc, RecursionError):  # nested past the stack: orjson goes 1,024 levels deep
                try:
                    out.append((event.t_ms, event.event, orjson.loads(data)))
                    continue
                except orjson.JSONDecodeError:
                    pass
            readable = read_as_utf8(data, loads)
            if readable is not UNREADABLE:
                out.append((event.t_ms, event.event, readable))
                not_utf8_warning(rec, len(out) + bad)
                continue
            bad += 1
            rec.warn("bad_chunk", f"event {len(out) + bad}: payload is not JSON ({exc}): {preview(data)}")
    return out, bad


UNREADABLE = object()


def read_as_utf8(data: bytes, loads: Any) -> Any:
    """A payload that is JSON but for bytes that are not UTF-8 (a proxy or a server that cut a
    character in two), parsed with those bytes read as U+FFFD: the rest of the event is kept.
    `UNREADABLE` when the bytes are UTF-8 (the payload is not JSON for another reason) or
    still do not parse."""
    try:
        data.decode("utf-8")
        return UNREADABLE
    except UnicodeDecodeError:
        pass
    try:
        return loads(data.decode("utf-8", "replace").encode())
    except (ValueError, RecursionError):
        return UNREADABLE


def not_utf8_warning(rec: Reconstruction, event: int) -> None:
    rec.warn("not_utf8", f"event {event}: bytes that are not UTF-8, read as U+FFFD")


# Tests switch this off to hold the fast path to the general decoder's results.
WHOLE_STREAM = True


def stream_payloads(exchange: Exchange, rec: Reconstruction) -> list[Payload]:
    """The stream's events as (arrival ms, event name, JSON payload); unreadable ones become
    warnings. Bodies whose every event is a JSON object, however framed, take a fast path
    (`whole_stream`) that gives no event names: these protocols name each event in its
    payload's `type` as well."""
    response = exchange.response
    body = response.body if response else b""
    reads = response.chunks if response else None
    fast = whole_stream(body, reads, rec) if WHOLE_STREAM else None
    if fast is not None:
        return fast
    stream = read(body, reads)
    events = stream.events
    rec.comments = stream.comments
    other_fields(rec, stream.fields)
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
        unterminated_warning(rec)
    return payloads


def unterminated_warning(rec: Reconstruction) -> None:
    rec.warn("unterminated_event", "the last event has no blank line after it (the stream or the dump was cut)")


def framing(rec: Reconstruction, whole: Cut) -> None:
    """What a stream said besides its events, on the fast path as the general path says it
    (`stream_payloads`): its comments, an `error:` field, a `[DONE]` at the end, a last event
    without its blank line."""
    rec.comments = whole.comments
    other_fields(rec, whole.fields)
    if whole.done:  # some gateways end every protocol's stream the OpenAI way
        rec.extras["done_marker"] = True
    if whole.unterminated:
        unterminated_warning(rec)


def decode_whole(whole: Cut | None, decoders: Sequence[Any]) -> list[Any] | None:
    """The events of a cut body (`analyzer.sse.cut`) decoded in one call by the first of
    `decoders` (msgspec `decode_lines`, typed) that takes them all, one value per event; or None."""
    if whole is None:
        return None
    for decode_lines in decoders:
        try:
            decoded = decode_lines(whole.payloads)
        except (ValueError, RecursionError):  # msgspec's errors, invalid UTF-8, nesting past its limit
            continue
        return decoded if len(decoded) == whole.count else None
    return None


def typed_events(
    exchange: Exchange, rec: Reconstruction, *decoders: Any, accept: Callable[[list[Any]], bool] | None = None
) -> tuple[list[Any], list[Any]] | None:
    """The stream's events decoded typed in one call (`decode_whole`), with their arrival
    times, when every event is a JSON object the types know (and `accept` takes them); else
    None. The typed events carry their `type` (the tag), so `event:` names are not needed.
    What the framing said besides the events goes to `rec` (`framing`)."""
    response = exchange.response
    if response is None or not WHOLE_STREAM:
        return None
    whole = cut(response.body, response.chunks, done=True)
    decoded = decode_whole(whole, decoders)
    if decoded is None or (accept is not None and not accept(decoded)):
        return None
    framing(rec, whole)  # type: ignore[arg-type]
    return decoded, whole.times  # type: ignore[union-attr]


def whole_stream(body: bytes, reads: list[tuple[float, int]] | None, rec: Reconstruction) -> list[Payload] | None:
    """The events of a body whose every event is a JSON object (`analyzer.sse.cut`) parsed in
    one call, or None: the general decoder takes over."""
    whole = cut(body, reads, done=True)
    payloads = decode_whole(whole, (_decode_any_lines,))
    if payloads is None:
        return None
    if whole.names is not None and not all(type(p) is dict and p.get("type") for p in payloads):  # type: ignore[union-attr]
        return None  # an event typed only by its `event:` line: the general decoder reads the name
    framing(rec, whole)  # type: ignore[arg-type]
    return list(zip(whole.times, [None] * len(payloads), payloads, strict=True))  # type: ignore[union-attr]


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


def as_text(value: Any) -> str:
    """A text field as text: a string as it is; null, or a value of another type, as nothing."""
    return value if isinstance(value, str) else ""


def as_list(value: Any) -> list[Any]:
    """A list field as a list: anything else (null, an object, a number) as an empty one."""
    return value if isinstance(value, list) else []


# The largest choice or tool call index a stream may name (OpenAI allows n up to 128): a larger
# or a negative one is a corrupt or hostile value, which the protocols drop with a warning.
MAX_INDEX = 2**15 - 1
Index = Annotated[int, msgspec.Meta(ge=0, le=MAX_INDEX)]


def index_of(value: Any) -> int | None:
    """`value` when it is an index (an integer from 0 to MAX_INDEX, not a bool), else None."""
    return value if type(value) is int and 0 <= value <= MAX_INDEX else None


def payload_of(payload: Any) -> Any:
    """A chunk's payload as plain JSON values: a typed event (a fast path's) as the dict it was,
    a field it kept raw (`msgspec.Raw`, e.g. Gemini's usage) parsed where it stands."""
    if type(payload) is dict:
        return payload
    try:
        return msgspec.to_builtins(payload)
    except TypeError:  # a msgspec.Raw inside, which to_builtins does not take: through its JSON
        return _decode_any(_encode(payload))


# What a field of an unexpected type raises in a fold (a list where an object belongs, an
# index that is a string): one event's problem, not the stream's.
FIELD_ERRORS = (TypeError, AttributeError, ValueError, KeyError, IndexError)


def guarded(rec: Reconstruction, seq: int, step: Any, *args: Any) -> None:
    """Event `seq`'s step of a fold; a field of an unexpected type is a warning, not an exception."""
    try:
        step(*args)
    except FIELD_ERRORS as exc:
        rec.warn("chunk_shape", f"event {seq + 1}: a field of an unexpected type ({exc}): ignored")


def add_chunk(rec: Reconstruction, t_ms: float | None, payload: Any) -> int:
    seq = len(rec.chunks)
    rec.chunks.append(StreamChunk(seq=seq, t_ms=t_ms, payload=payload))
    return seq


def other_fields(rec: Reconstruction, fields: list[tuple[str, str]]) -> None:
    """Lines whose field the SSE spec does not know, (name, value): an `error:` line is the
    server's error (some servers end a failed stream so); any other is ignored, as the spec
    says and every SSE client does (its bytes stay in the body kept beside the reconstruction)."""
    for name, value in fields:
        if name.strip().lower() == "error" and rec.error is None:
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                parsed = value
            if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
                parsed = parsed["error"]
            rec.error = parsed if isinstance(parsed, dict) else {"message": shown(parsed)}


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
            return shown(inner.get("message") or inner.get("code") or inner.get("type") or inner)[:200]
        return shown(inner)[:200]
    return shown(error)[:200]


def shown(value: Any) -> str:
    """A wire value as text for a person: a string as it is, a list or an object as JSON
    (which, unlike `str`, never recurses past `dumps_exact`'s depth), anything else by `str`."""
    if isinstance(value, str):
        return value
    return dumps_exact(value) if isinstance(value, dict | list) else str(value)


def json_text(value: Any) -> str:
    """Tool arguments given as an object, as the JSON string OpenAI's shape carries."""
    return dumps_exact(value) if value is not None else ""


def tool_call(index: int, call_id: Any, name: Any, arguments: str, kind: str = "function") -> ToolCall:
    call_id = call_id if isinstance(call_id, str) else None
    name = name if isinstance(name, str) else None
    call = ToolCall(index=index, id=call_id, type=kind, name=name, arguments=arguments)
    call.parse()
    return call


def history_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    """A tool call in a request's history, in chat/completions' shape (arguments as JSON text)."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json_text(arguments)}}


def history_turn(
    out: list[dict[str, Any]],
    role: Any,
    text: str,
    reasoning: str,
    calls: list[dict[str, Any]],
    results: list[dict[str, Any]],
) -> None:
    """Append one message of a request's history in chat's shape: first the tool results it
    carries (they answer the previous turn's calls), then the message itself, with its
    reasoning and tool calls, unless it held nothing but results."""
    out.extend(results)
    if text or calls or reasoning or not results:
        message: dict[str, Any] = {"role": role, "content": text}
        if reasoning:
            message["reasoning_content"] = reasoning
        if calls:
            message["tool_calls"] = calls
        out.append(message)


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


def content_text(content: Any) -> str:
    """A message's content as text, in any protocol: a string, or the text of its typed parts
    (one part alone, or a list; other parts as `[type]`)."""
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
                    texts.append(f"[{shown(part['type'])}]")
        return "\n".join(texts)
    return str(content)
