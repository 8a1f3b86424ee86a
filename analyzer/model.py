"""The data model: what ingest produces (Exchange) and what protocols produce (Reconstruction).

Plain dataclasses; dicts appear only where the wire had JSON we keep as is (usage,
logprobs, provider extras).
"""

from __future__ import annotations

import functools
import gc
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import SplitResult, urlsplit

import msgspec
import orjson

if TYPE_CHECKING:
    from analyzer.metrics import Timing


T = TypeVar("T")

# Gemini names the model in the path: …/models/gemini-2.5-pro:streamGenerateContent
_MODEL_IN_PATH = re.compile(r"/models/([^/:?]+):[A-Za-z]+")
# A `created` this large is milliseconds: in seconds it would be past the year 5000.
CREATED_MS_FROM = 100_000_000_000


@functools.lru_cache(maxsize=4096)  # a capture calls a handful of endpoints, thousands of times
def _model_in_path(url: str) -> str | None:
    match = _MODEL_IN_PATH.search(url)
    return match.group(1) if match else None


def created_unit_ms(created: float) -> float:
    """How many ms one unit of a chunk's `created` is: 1000 (seconds, the spec) or 1 (some local servers)."""
    return 1.0 if created >= CREATED_MS_FROM else 1000.0


@dataclass(slots=True, frozen=True)
class Notice:
    """Something odd about an input or a reconstruction: a stable `code` and a readable `message`."""

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def collector_paused(work: Callable[..., T], *args: Any) -> T:
    """`work(*args)` with the garbage collector paused, for code that may recurse to Python's
    limit: a decoder or writer given JSON nested past it, whose RecursionError is read as
    "too deep". A collection that started there would run other objects' finalizers (a
    generator's close, a file's ResourceWarning) with no stack left; they fail, and Python
    prints "Exception ignored in …" on stderr. A call inside another leaves the collector to
    the outer one. (A function, not a context manager: it costs 0.2 µs a call, a
    `contextlib.contextmanager` 2.9 µs, and every reconstruction makes one.)"""
    if not gc.isenabled():
        return work(*args)
    gc.disable()
    try:
        return work(*args)
    finally:
        gc.enable()


_LONG_INTEGER = re.compile(r"\d{19,}")
_decode_exact = msgspec.json.Decoder().decode  # integers of any size as int, not float


def loads_exact(text: str | bytes) -> Any:
    """JSON parsed keeping integers past 64 bits exact, for tool arguments, where an id like
    123456789012345678901234567890 must survive. msgspec keeps them (orjson reads them as
    floats); when it refuses the text, orjson's error says where the JSON breaks."""
    return collector_paused(_loads_exact, text)


def _loads_exact(text: str | bytes) -> Any:
    try:
        return _decode_exact(text)
    except (ValueError, RecursionError):  # msgspec.DecodeError, or nested past the stack
        value = orjson.loads(text)  # raises, with a line and column: the usual case
    # Valid JSON msgspec did not take (nested deeper than Python's recursion limit lets it
    # go): orjson's value, unless a long integer needs the standard library, which goes as
    # deep as the recursion limit and no further.
    if _LONG_INTEGER.search(text if isinstance(text, str) else text.decode("utf-8", "replace")):
        try:
            return json.loads(text)
        except RecursionError:
            raise TooDeepForExactIntegers from None
    return value


class TooDeepForExactIntegers(ValueError):
    """Valid JSON nested deeper than Python's recursion limit, holding an integer past 64
    bits: no reader here keeps that integer exact, so it is not parsed (the text is kept)."""

    def __str__(self) -> str:
        return "nested deeper than Python's recursion limit with an integer past 64 bits: not parsed, kept as text"


def dumps_exact(value: Any, *, sort_keys: bool = False, indent: bool = False) -> str:
    """JSON text of `value`, compact (or indented by 2); integers past 64 bits (which orjson
    refuses) included. Containers nested deeper than a JSON writer goes (orjson stops at 255
    levels, the standard library at Python's recursion limit, and a parsed body may hold
    1,024) are written down to MAX_DEPTH levels, each deeper one as the string TOO_DEEP."""
    option = (orjson.OPT_SORT_KEYS if sort_keys else 0) | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        return orjson.dumps(value, option=option).decode()
    except TypeError:  # orjson.JSONEncodeError: a long integer, or nested too deep
        pass
    return collector_paused(_standard_dumps, value, sort_keys, indent)


def _standard_dumps(value: Any, sort_keys: bool, indent: bool) -> str:
    layout: dict[str, Any] = {"indent": 2} if indent else {"separators": (",", ":")}
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=sort_keys, **layout)
    except RecursionError:
        return json.dumps(_cut(value, MAX_DEPTH), ensure_ascii=False, sort_keys=sort_keys, **layout)


MAX_DEPTH = 200
TOO_DEEP = "…(nested too deep)"


def _cut(value: Any, depth: int) -> Any:
    """`value` with its containers below `depth` levels replaced by TOO_DEEP."""
    if isinstance(value, dict):
        return {key: _cut(item, depth - 1) for key, item in value.items()} if depth else TOO_DEEP
    if isinstance(value, list | tuple):
        return [_cut(item, depth - 1) for item in value] if depth else TOO_DEEP
    return value


def as_utc(moment: datetime) -> datetime | None:
    """`moment` in UTC (a naive one taken as UTC, as HAR producers mean it), or None when in
    UTC it would fall outside the years a datetime holds (1 January of year 1 at +05:00)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


def url_parts(url: str | None) -> SplitResult | None:
    """`url` split into its parts, or None when there is no URL or Python refuses to split it
    (an IPv6 host whose bracket is not closed)."""
    try:
        return urlsplit(url) if url else None
    except ValueError:
        return None


def header_value(headers: list[tuple[str, str]], name: str) -> str | None:
    """The first value of header `name` (case-insensitive), or None."""
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


@dataclass(slots=True)
class Request:
    method: str | None = None
    url: str | None = None
    http_version: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    def json(self) -> Any:
        """The body parsed as JSON, or None when there is no body or it is not JSON. A byte
        that is not UTF-8 (a client that sent Latin-1) is read as U+FFFD, not the end of it."""
        if not self.body:
            return None
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            pass
        try:
            self.body.decode("utf-8")
        except UnicodeDecodeError:
            try:
                return orjson.loads(self.body.decode("utf-8", "replace"))
            except orjson.JSONDecodeError:
                return None
        return None


@dataclass(slots=True)
class Response:
    status: int | None = None
    reason: str | None = None
    http_version: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # Each network read: (ms since the exchange started, byte offset in `body` where the read ended).
    chunks: list[tuple[float, int]] | None = None

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


@dataclass(slots=True, eq=False)
class Exchange:
    """One request/response pair as found in an input, with its raw bytes kept."""

    id: str
    source: str
    format: str
    request: Request | None
    response: Response | None
    raw: bytes = b""
    position: str = ""
    started_at: datetime | None = None
    # HAR timings in ms: send, wait, receive (and others a producer wrote).
    timings: dict[str, float] | None = None
    # Who measured `timings`: "har" (a HAR producer) or "mitmproxy" (a flow file's timestamps).
    timings_source: str = "har"
    error: str | None = None
    complete: bool | None = None
    redacted: list[str] = field(default_factory=list)
    warnings: list[Notice] = field(default_factory=list)
    _reconstruction: Reconstruction | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """File and position, for messages: `captures/x.jsonl line 3`."""
        return f"{self.source} {self.position}".strip()

    def requested_model(self) -> str | None:
        """The model the request named: its body's `model`, or Gemini's `…/models/<model>:…` path."""
        body = self.request.json() if self.request else None
        model = body.get("model") if isinstance(body, dict) else None
        if isinstance(model, str) and model.strip():
            return model
        return _model_in_path(self.request.url or "") if self.request else None

    def reconstruct(self) -> Reconstruction:
        """Reconstruct the response (cached); never raises for bad input, see `warnings`."""
        if self._reconstruction is None:
            reconstruct, timing = _pipeline()
            rec = reconstruct(self)
            rec.timing = timing(self, rec)
            self._reconstruction = rec
        return self._reconstruction


@functools.cache
def _pipeline() -> tuple[Any, Any]:
    """analyzer.protocols.reconstruct and analyzer.metrics.timing, imported once on first use
    (both import this module)."""
    from analyzer.metrics import timing
    from analyzer.protocols import reconstruct

    return reconstruct, timing


# The reconstruction's model: msgspec structs, built by keyword only (kw_only) with the
# constructor in C, so a field added or moved changes no caller. They are left out of the
# garbage collector (gc=False): nothing in them ever refers back to one, so they are never
# part of a cycle, and a run holding thousands of reconstructions does not make each
# collection walk them. `msgspec.structs.replace` makes a changed copy.
class ToolCall(msgspec.Struct, kw_only=True, gc=False):
    index: int
    id: str | None = None
    type: str | None = None
    name: str | None = None
    arguments: str = ""
    parsed_arguments: Any = None
    parse_error: str | None = None

    def parse(self) -> None:
        """Fill `parsed_arguments` / `parse_error` from `arguments`."""
        if not self.arguments:
            self.parsed_arguments, self.parse_error = None, None
            return
        try:
            self.parsed_arguments, self.parse_error = loads_exact(self.arguments), None
        except ValueError as exc:  # orjson's and json's decode errors both are
            self.parsed_arguments, self.parse_error = None, str(exc)


class Choice(msgspec.Struct, kw_only=True, gc=False):
    index: int
    role: str | None = None
    content: str | None = None
    reasoning: str | None = None
    # Which wire field the reasoning came from, e.g. "reasoning_content".
    reasoning_source: str | None = None
    # OpenRouter's structured reasoning entries (summary / text / encrypted), in order.
    reasoning_details: list[Any] = msgspec.field(default_factory=list)
    refusal: str | None = None
    tool_calls: list[ToolCall] = msgspec.field(default_factory=list)
    function_call: ToolCall | None = None
    logprobs: dict[str, list[Any]] | None = None
    finish_reason: str | None = None
    annotations: list[Any] = msgspec.field(default_factory=list)
    # Choice- and delta-level fields no OpenAI type has (last value wins), e.g. Azure's content_filter_results.
    extras: dict[str, Any] = msgspec.field(default_factory=dict)
    # Interpretation, not wire: a `<think>…</think>` block opening the content (DeepSeek-R1
    # served by Together or the HF router) split out of it. `content` stays as streamed.
    think: str | None = None
    answer: str | None = None


class Usage(msgspec.Struct, kw_only=True, gc=False):
    """Token usage as reported, with the common figures normalised across providers."""

    raw: dict[str, Any]
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_prompt_tokens: int | None = None
    reasoning_tokens: int | None = None
    # Prompt tokens written to a cache (Anthropic's cache_creation_input_tokens), priced apart.
    cache_write_tokens: int | None = None
    # "reported" by the provider, or "estimated" by chatcap from the text (analyzer.tokens).
    source: str = "reported"


class StreamChunk(msgspec.Struct, kw_only=True, gc=False):
    """One decoded stream event: its sequence number, arrival time (if known) and payload."""

    seq: int
    t_ms: float | None
    payload: Any
    created: int | float | None = None
    # Fields of this chunk no protocol type has (provider extensions), or None.
    extras: dict[str, Any] | None = None


def numbered_chunks(
    times: Sequence[float | None],
    payloads: Sequence[Any],
    created: Sequence[int | float | None] | None = None,
    extras: Sequence[dict[str, Any] | None] | None = None,
) -> list[StreamChunk]:
    """A whole stream's decoded events as chunks numbered from 0: the i-th of each sequence
    (all as long as `payloads`; `created` and `extras` None when not given) makes chunk i."""
    nothing = [None] * len(payloads)
    return [
        StreamChunk(seq=seq, t_ms=t_ms, payload=payload, created=made, extras=extra)
        for seq, (t_ms, payload, made, extra) in enumerate(
            zip(times, payloads, created or nothing, extras or nothing, strict=True)
        )
    ]


@dataclass(slots=True, frozen=True)
class Part:
    """One piece of information a stream chunk carries, for one choice.

    kind: role, reasoning, content, tool_call, refusal, usage, extra or error.
    """

    choice: int | None
    kind: str
    text: str = ""

    @property
    def generated(self) -> bool:
        """Text the model generated: reasoning, content, tool call arguments or a refusal."""
        return self.kind in GENERATED_KINDS


GENERATED_KINDS = frozenset({"reasoning", "content", "tool_call", "refusal"})


class Reconstruction(msgspec.Struct, kw_only=True, gc=False):
    protocol: str
    streamed: bool
    id: str | None = None
    object: str | None = None
    created: int | float | None = None
    served_model: str | None = None
    requested_model: str | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    choices: list[Choice] = msgspec.field(default_factory=list)
    usage: Usage | None = None
    error: dict[str, Any] | None = None
    done: bool = False
    truncated: bool = False
    # Top-level fields no OpenAI type has (last value wins), e.g. Perplexity's citations.
    extras: dict[str, Any] = msgspec.field(default_factory=dict)
    # Payloads that arrived after `data: [DONE]`, e.g. a gateway's {"cost": ...}.
    after_done: list[Any] = msgspec.field(default_factory=list)
    chunks: list[StreamChunk] = msgspec.field(default_factory=list)
    comments: list[str] = msgspec.field(default_factory=list)
    warnings: list[Notice] = msgspec.field(default_factory=list)
    # Indices into `chunks`: first_token (any generated text), first_answer (content), last_token.
    marks: dict[str, int | None] = msgspec.field(default_factory=dict)
    # The chunks' `created` values (zeros skipped): first, last, and the latest seen.
    created_range: tuple[int | float, int | float, int | float] | None = None
    timing: Timing | None = None
    # The protocol's own final object (Anthropic's message, the Responses API's response,
    # Gemini's merged GenerateContentResponse); None for chat/completions, whose own is to_openai().
    native: Any = None

    def warn(self, code: str, message: str) -> None:
        self.warnings.append(Notice(code, message))

    def has(self, code: str) -> bool:
        """Whether a warning with this code was raised."""
        return any(w.code == code for w in self.warnings)

    def to_openai(self) -> dict[str, Any]:
        """The equivalent non-streaming `chat.completion` object."""
        from analyzer.protocols.openai_chat import to_openai

        return to_openai(self)

    def to_native(self) -> dict[str, Any]:
        """The protocol's own final object, as its non-streaming API would have returned it."""
        if self.protocol == "openai_chat":
            return self.to_openai()
        return self.native if self.native is not None else {}
