"""Seeded generator of valid OpenAI `chat.completion.chunk` streams, framed as SSE bodies.

Written from the OpenAI API reference ("Streaming", "The chat completion chunk object")
and the WHATWG event-stream grammar:
https://platform.openai.com/docs/api-reference/chat-streaming
https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream

`generate(seed)` returns the body bytes, the chunk objects in the order they were sent
(so the SDK's accumulator can be fed the same chunks), the exact data of every event,
and what a correct reconstruction must contain. The same seed always gives the same
stream.

By default a stream uses only what the SDK's generic delta concatenation handles
correctly: `role` only in a choice's first delta, a tool call's `id`/`type`/`name` only
in its first fragment, choices and tool calls first appearing in index order.
`provider_quirks=True` breaks those (as Qwen, OpenRouter→Novita and others do), which
still has one correct reconstruction but not one the SDK gets right.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# What the model "says": ASCII, CJK, emoji (with ZWJ sequences, skin tones, flags),
# combining marks, characters str.splitlines() would wrongly treat as line ends, and
# characters JSON must escape. Joined and then cut at any code point, so deltas split
# grapheme clusters the way tokenizers do.
TEXT_ATOMS: tuple[str, ...] = (
    "Hello", "world", "the", "answer", "is", "42", ".", ",", "!", "?", " ", " ", " ",
    "你好", "世界", "中文文本", "日本語のテキスト", "한국어", "Ελληνικά", "русский", "עברית", "العربية",
    "😀", "🚀", "👩\u200d💻", "👍🏽", "🇯🇵", "🏳️\u200d🌈", "∑", "€", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "e\u0301", "n\u0303", "a\u0308\u0304", "\u0301",
    "\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e",
    '"', '\\"', "\\", "\\\\", "\\n", "\n", "\r\n", "\r", "\t", "\x00", "\x1b[0m", "\x7f",
    "data: [DONE]", "\n\ndata: {}\n\n", ": keep-alive", "[DONE]", "<think>", "</think>", "{", "}",
)  # fmt: skip

TOOL_NAMES = ("get_weather", "search_web", "lookup_order", "run_sql", "read_file", "send_email", "calc")
ARGUMENT_KEYS = ("location", "query", "unit", "limit", "filters", "note", "path", "sql", "to", "body", "x")
MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4.1-2025-04-14", "deepseek-reasoner", "qwen-max", "o3-mini")
FINISH_TEXT = ("stop", "stop", "stop", "length", "content_filter")
COMMENTS = (": keep-alive", ":", ": OPENROUTER PROCESSING", ":ping", ": data: [DONE]", ":  Ünïcödé 😀 ")


@dataclass(slots=True)
class ExpectedToolCall:
    index: int
    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class ExpectedChoice:
    """What a correct reconstruction of one choice contains."""

    index: int
    kind: str  # "text" | "tools" | "function" | "refusal"
    content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ExpectedToolCall] = field(default_factory=list)
    function_call: tuple[str, str] | None = None  # name, arguments
    finish_reason: str | None = None
    content_logprobs: list[dict[str, Any]] = field(default_factory=list)
    refusal_logprobs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class GeneratedStream:
    seed: int
    body: bytes
    # The chunk objects in the order sent (without the final [DONE]).
    chunks: list[dict[str, Any]]
    # The data of every event in order, as a correct SSE decoder yields it (ends with b"[DONE]").
    events: list[bytes]
    # Per event: the byte offset whose arrival completes it (see `Framed.event_ends`).
    event_ends: list[int]
    # Comment lines as the decoder reports them (text after ":", stripped).
    comments: list[str]
    choices: list[ExpectedChoice]
    usage: dict[str, Any] | None
    id: str
    model: str
    created: int
    system_fingerprint: str | None
    service_tier: str | None
    # How the body was framed, for failure messages.
    framing: str


def generate(seed: int, *, provider_quirks: bool = False, texts: Sequence[str] | None = None) -> GeneratedStream:
    """A valid chat.completion.chunk stream; `texts` (if given and non-empty) replaces the text atoms."""
    rng = random.Random(seed)
    atoms = tuple(texts) if texts else TEXT_ATOMS
    n = rng.choice((1, 1, 1, 2, 3))
    with_logprobs = rng.random() < 0.3
    include_usage = rng.random() < 0.6
    expected: list[ExpectedChoice] = []
    per_choice: list[list[dict[str, Any]]] = []
    for index in range(n):
        choice, deltas = _choice(rng, index, atoms, with_logprobs, provider_quirks)
        expected.append(choice)
        per_choice.append(deltas)

    stream_id = "chatcmpl-" + _token(rng, 29)
    model = rng.choice(MODELS)
    created = rng.randint(1_700_000_000, 1_760_000_000)
    fingerprint = "fp_" + _token(rng, 10, string.hexdigits.lower()) if rng.random() < 0.7 else None
    envelope: dict[str, Any] = {"id": stream_id, "object": "chat.completion.chunk", "created": created, "model": model}
    if rng.random() < 0.3:
        envelope["service_tier"] = "default"
    if fingerprint is not None:
        envelope["system_fingerprint"] = fingerprint
    if rng.random() < 0.15:
        # Fields no OpenAI type has, as gateways add them (OpenRouter's provider and
        # native_finish_reason, Azure's content_filter_results): kept as extras, never fatal.
        envelope["provider"] = rng.choice(("OpenAI", "Azure", "Together"))
        for deltas in per_choice:
            for entry in deltas:
                if rng.random() < 0.5:
                    entry["content_filter_results"] = {"hate": {"filtered": False, "severity": "safe"}}
            deltas[-1]["native_finish_reason"] = deltas[-1].get("finish_reason")
    obfuscate = rng.random() < 0.3
    shuffle_keys = rng.random() < 0.2

    def chunk(choices: list[dict[str, Any]], usage: Any = None, with_usage_key: bool = include_usage) -> dict[str, Any]:
        obj = {**envelope, "choices": choices}
        if with_usage_key:
            obj["usage"] = usage
        if obfuscate:
            obj["obfuscation"] = _token(rng, rng.randint(1, 12))
        if shuffle_keys:
            keys = list(obj)
            rng.shuffle(keys)
            obj = {key: obj[key] for key in keys}
        return obj

    if provider_quirks and rng.random() < 0.3:
        # Azure OpenAI opens with a chunk of blank id/model/object, created 0 and no choices,
        # carrying prompt_filter_results; the SDK would take its blanks as the stream's.
        chunks_head: list[dict[str, Any]] = [
            {
                "choices": [],
                "created": 0,
                "id": "",
                "model": "",
                "object": "",
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
            }
        ]
    else:
        chunks_head = []
    # n > 1: each round carries the next delta of every unfinished choice, in index order,
    # either one choice per chunk (as OpenAI sends them) or all of them in one chunk.
    together = n > 1 and rng.random() < 0.3
    chunks: list[dict[str, Any]] = chunks_head
    for round_number in range(max(len(deltas) for deltas in per_choice)):
        live = [deltas[round_number] for deltas in per_choice if round_number < len(deltas)]
        if provider_quirks and rng.random() < 0.3:
            rng.shuffle(live)
        if together:
            chunks.append(chunk(live))
        else:
            chunks.extend(chunk([one]) for one in live)

    usage = None
    if include_usage:
        usage = _usage(rng, expected)
        chunks.append(chunk([], usage, with_usage_key=True))

    framed = frame(chunks, rng)
    return GeneratedStream(
        seed=seed,
        body=framed.body,
        chunks=chunks,
        events=framed.events,
        event_ends=framed.event_ends,
        comments=framed.comments,
        choices=expected,
        usage=usage,
        id=stream_id,
        model=model,
        created=created,
        system_fingerprint=fingerprint,
        service_tier=envelope.get("service_tier"),
        framing=framed.framing,
    )


def _token(rng: random.Random, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _text(rng: random.Random, atoms: Sequence[str], low: int = 1, high: int = 30) -> str:
    return "".join(rng.choice(atoms) for _ in range(rng.randint(low, high)))


def _cut(rng: random.Random, text: str, max_piece: int = 6) -> list[str]:
    """`text` cut at code points into pieces of 1..max_piece characters (a few empty ones too)."""
    pieces: list[str] = []
    position = 0
    while position < len(text):
        if rng.random() < 0.03:
            pieces.append("")
        size = rng.randint(1, max_piece)
        pieces.append(text[position : position + size])
        position += size
    return pieces or [""]


def _cut_arguments(rng: random.Random, arguments: str) -> list[str]:
    """JSON arguments cut into fragments, often right after a backslash (mid-escape) or
    inside a \\uXXXX escape: to the stream they are just text."""
    cuts = {i + 1 for i, char in enumerate(arguments) if char == "\\" and rng.random() < 0.5}
    cuts |= {m.start() + rng.randint(2, 5) for m in re.finditer(r"\\u", arguments) if rng.random() < 0.5}
    position = 0
    while position < len(arguments):
        position += rng.randint(1, 12)
        cuts.add(position)
    ordered = sorted(cut for cut in cuts if 0 < cut < len(arguments))
    bounds = [0, *ordered, len(arguments)]
    return [arguments[a:b] for a, b in itertools.pairwise(bounds)] or [""]


def _arguments(rng: random.Random, atoms: Sequence[str]) -> str:
    def value(depth: int) -> Any:
        kind = rng.randrange(8 if depth < 2 else 6)
        if kind <= 1:
            return _text(rng, atoms, 0, 8)
        if kind == 2:
            return rng.randint(-(10**12), 10**12)
        if kind == 3:
            return rng.choice((0.5, -1.25, 3.0e-7, 1e21, 98.6))
        if kind == 4:
            return rng.choice((True, False, None))
        if kind == 5:
            return [_text(rng, atoms, 0, 3) for _ in range(rng.randint(0, 3))]
        return {rng.choice(ARGUMENT_KEYS): value(depth + 1) for _ in range(rng.randint(0, 3))}

    obj = {rng.choice(ARGUMENT_KEYS): value(0) for _ in range(rng.randint(0, 4))}
    separators = rng.choice(((",", ":"), (", ", ": ")))
    return json.dumps(obj, ensure_ascii=rng.random() < 0.4, separators=separators)


def _token_logprob(rng: random.Random, token: str) -> dict[str, Any]:
    def entry(text: str) -> dict[str, Any]:
        return {"token": text, "logprob": -round(rng.expovariate(1.5), 6), "bytes": list(text.encode("utf-8"))}

    top = [entry(token if k == 0 else _token(rng, rng.randint(1, 4))) for k in range(rng.randint(0, 3))]
    return {**entry(token), "top_logprobs": top}


def _choice(
    rng: random.Random, index: int, atoms: Sequence[str], with_logprobs: bool, quirks: bool
) -> tuple[ExpectedChoice, list[dict[str, Any]]]:
    """One choice's deltas (each a `choices[]` item) and what they must reconstruct to."""
    kind = rng.choice(("text", "text", "text", "tools", "tools", "function", "refusal"))
    expected = ExpectedChoice(index=index, kind=kind)
    items: list[dict[str, Any]] = []
    explicit_nulls = rng.random() < 0.5  # "logprobs": null, "finish_reason": null in every item

    def item(delta: dict[str, Any], logprobs: Any = None) -> None:
        if quirks or not items:
            delta = {"role": "assistant", **delta}
        entry: dict[str, Any] = {"index": index, "delta": delta}
        if logprobs is not None or explicit_nulls:
            entry["logprobs"] = logprobs
        if explicit_nulls:
            entry["finish_reason"] = None
        items.append(entry)

    def add_content(piece: str) -> None:
        expected.content = (expected.content or "") + piece
        logprobs = None
        if with_logprobs:
            token = _token_logprob(rng, piece)
            expected.content_logprobs.append(token)
            logprobs = {"content": [token], "refusal": None}
        item({"content": piece}, logprobs)

    # The opening delta: role (always), and what OpenAI-compatible servers put beside it.
    opening: dict[str, Any] = {}
    if kind == "text" and rng.random() < 0.7:
        opening["content"] = ""
        expected.content = ""
    elif rng.random() < 0.5:
        opening["content"] = None
    if rng.random() < 0.4:
        opening["refusal"] = None
    first_logprobs = {"content": [], "refusal": None} if with_logprobs and rng.random() < 0.5 else None
    item(opening, first_logprobs)

    if kind in ("text", "tools") and rng.random() < 0.4:
        # Reasoning streams before any content: `reasoning_content` (DeepSeek, Qwen, vLLM)
        # or `reasoning` (OpenRouter, Ollama).
        field_name = "reasoning_content" if rng.random() < 0.8 else "reasoning"
        reasoning_pieces = _cut(rng, _text(rng, atoms, 1, 40))
        expected.reasoning = "".join(reasoning_pieces)
        for piece in reasoning_pieces:
            delta: dict[str, Any] = {field_name: piece}
            if rng.random() < 0.3:
                delta["content"] = None
            item(delta)

    if kind == "text":
        for piece in _cut(rng, _text(rng, atoms, 1, 60)):
            add_content(piece)
        expected.finish_reason = rng.choice(FINISH_TEXT)
    elif kind == "refusal":
        expected.refusal = ""
        item({"refusal": ""})
        for piece in _cut(rng, _text(rng, atoms, 1, 25)):
            expected.refusal += piece
            logprobs = None
            if with_logprobs:
                token = _token_logprob(rng, piece)
                expected.refusal_logprobs.append(token)
                logprobs = {"content": None, "refusal": [token]}
            item({"refusal": piece}, logprobs)
        expected.finish_reason = "stop"
    elif kind == "function":
        name = rng.choice(TOOL_NAMES)
        arguments = _arguments(rng, atoms)
        expected.function_call = (name, arguments)
        fragments = _cut_arguments(rng, arguments)
        item({"function_call": {"name": name, "arguments": ""}})
        for fragment in fragments:
            function: dict[str, Any] = {"arguments": fragment}
            if quirks:
                function = {"name": name, **function}
            item({"function_call": function})
        expected.finish_reason = "function_call"
    else:
        if rng.random() < 0.3:  # a short preamble before the calls
            for piece in _cut(rng, _text(rng, atoms, 1, 8)):
                add_content(piece)
        for delta in _tool_call_deltas(rng, expected, atoms, quirks):
            item(delta)
        expected.finish_reason = "tool_calls"

    # The finish reason: in a last delta of its own (OpenAI) or on the last content delta.
    if rng.random() < 0.8 or len(items) == 1:
        item({})
    items[-1]["finish_reason"] = expected.finish_reason
    if rng.random() < 0.5:
        items[-1].setdefault("logprobs", None)
    return expected, items


def _tool_call_deltas(
    rng: random.Random, expected: ExpectedChoice, atoms: Sequence[str], quirks: bool
) -> list[dict[str, Any]]:
    """Deltas for 1..4 parallel tool calls: id, type and name in the first fragment,
    arguments in fragments; calls one after another, or round-robin."""
    # How continuation fragments look: bare (OpenAI), explicit nulls (vLLM and others), empty
    # strings. With quirks: id/type/name repeated in full (Qwen, OpenRouter→Novita), or
    # "type": null (which the SDK takes as the new type, as it replaces `type` outright).
    style = rng.choice(("repeat", "repeat", "null_type")) if quirks else rng.choice(("bare", "bare", "nulls", "empty"))
    fragments_per_call: list[list[dict[str, Any]]] = []
    for call_index in range(rng.choice((1, 1, 2, 3, 4))):
        call_id = "call_" + _token(rng, 24)
        name = rng.choice(TOOL_NAMES)
        arguments = _arguments(rng, atoms)
        expected.tool_calls.append(ExpectedToolCall(call_index, call_id, name, arguments))
        pieces = [arguments] if rng.random() < 0.15 else _cut_arguments(rng, arguments)  # whole, or fragments
        first_arguments = pieces.pop(0) if rng.random() < 0.3 or len(pieces) == 1 else ""
        fragments = [
            {
                "index": call_index,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": first_arguments},
            }
        ]
        for piece in pieces:
            if style == "repeat":
                fragment = {
                    "index": call_index,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": piece},
                }
            elif style == "nulls":
                fragment = {"index": call_index, "id": None, "function": {"name": None, "arguments": piece}}
            elif style == "null_type":
                fragment = {
                    "index": call_index,
                    "id": None,
                    "type": None,
                    "function": {"name": None, "arguments": piece},
                }
            elif style == "empty":
                fragment = {"index": call_index, "id": "", "function": {"name": "", "arguments": piece}}
            else:
                fragment = {"index": call_index, "function": {"arguments": piece}}
            fragments.append(fragment)
        fragments_per_call.append(fragments)

    deltas: list[dict[str, Any]] = []
    if len(fragments_per_call) > 1 and rng.random() < 0.25:
        for round_number in range(max(len(f) for f in fragments_per_call)):
            batch = [f[round_number] for f in fragments_per_call if round_number < len(f)]
            deltas.append({"tool_calls": batch})
    else:
        for fragments in fragments_per_call:
            deltas.extend({"tool_calls": [fragment]} for fragment in fragments)
    if rng.random() < 0.5:
        deltas[0] = {"content": None, **deltas[0]}
    return deltas


def _usage(rng: random.Random, choices: list[ExpectedChoice]) -> dict[str, Any]:
    prompt = rng.randint(5, 5000)
    completion = rng.randint(1, 4000)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if rng.random() < 0.8:
        usage["prompt_tokens_details"] = {"cached_tokens": rng.choice((0, prompt // 2)), "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": rng.randint(0, completion) if any(c.reasoning for c in choices) else 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return usage


@dataclass(slots=True)
class Framed:
    body: bytes
    # Every event's data, in order, as a correct decoder yields it.
    events: list[bytes]
    # For every event, the byte offset just past the first character of the line end that
    # dispatches it: the read that reaches this offset is the one that completed the event.
    event_ends: list[int]
    # Comment lines as the decoder reports them (text after ":", stripped).
    comments: list[str]
    framing: str


def frame(chunks: Sequence[dict[str, Any]], rng: random.Random, *, done: bool = True) -> Framed:
    """Frame chunk objects (then `[DONE]`) as an event stream with varied, valid SSE syntax."""
    line_end = rng.choice(("\n", "\n", "\n", "\n", "\r\n", "\r\n", "\r", "mixed"))
    ensure_ascii = rng.random() < 0.3
    separators = rng.choice(((",", ":"), (", ", ": ")))
    space_after_colon = rng.random()  # chance that a field has "data: " rather than "data:"
    bom = rng.random() < 0.03
    framing = f"line_end={line_end!r} ensure_ascii={ensure_ascii} separators={separators} bom={bom}"

    out = bytearray("\ufeff".encode() if bom else b"")
    events: list[bytes] = []
    event_ends: list[int] = []
    comments: list[str] = []
    previous_end = ""

    def line(text: str) -> None:
        nonlocal previous_end
        if line_end != "mixed":
            ending = line_end
        elif text == "" and previous_end == "\r":
            ending = rng.choice(("\r\n", "\r"))  # an LF here would only complete the CR LF pair
        else:
            ending = rng.choice(("\n", "\r\n", "\r"))
        previous_end = ending
        out.extend(text.encode("utf-8"))
        out.extend(ending.encode("ascii"))

    def field(name: str, value: str) -> None:
        space = rng.random() < space_after_colon or value[:1] == " "  # one space after the colon is dropped
        line(f"{name}:{' ' if space else ''}{value}")

    payloads: list[Any] = [*chunks, "[DONE]"] if done else list(chunks)
    for number, payload in enumerate(payloads, 1):
        if rng.random() < 0.1:
            comment = rng.choice(COMMENTS)
            line(comment)
            comments.append(comment[1:].strip())
        if rng.random() < 0.04:
            line("")  # a blank line with no data: dispatches nothing
        if rng.random() < 0.05:
            field("retry", str(rng.choice((1000, 3000, 15000))))
        if rng.random() < 0.08:
            field("event", rng.choice(("message", "chunk", "completion")))
        if rng.random() < 0.08:
            field("id", str(number))
        if number > 1 and rng.random() < 0.02:  # (a stream that starts with one is not sniffed as SSE)
            field("x-unknown-field", "ignored")
        if payload == "[DONE]":
            field("data", "[DONE]")
            events.append(b"[DONE]")
        else:
            indent = rng.choice((1, 2)) if rng.random() < 0.05 else None
            text = json.dumps(payload, ensure_ascii=ensure_ascii, separators=separators, indent=indent)
            lines = text.split("\n")  # json.dumps escapes newlines inside strings: these are between tokens
            if rng.random() < 0.03:
                lines[0] = rng.choice(("\t", " ", "  ")) + lines[0]  # whitespace before JSON is still JSON
            if rng.random() < 0.03:
                # An empty first data line: the payload starts with LF. (A bare "data" field is not
                # sniffed as SSE at the very start of a body, so only later.)
                line(rng.choice(("data", "data:")) if number > 1 else "data:")
                lines.insert(0, "")
                for value in lines[1:]:
                    field("data", value)
            else:
                for value in lines:
                    field("data", value)
            events.append("\n".join(lines).encode("utf-8"))
        line("")
        event_ends.append(len(out) - len(previous_end.encode()) + 1)
    return Framed(bytes(out), events, event_ends, comments, framing)


_INTERESTING = re.compile(rb"[\x80-\xbf\r\n]")


def interesting_offsets(body: bytes) -> list[int]:
    """Offsets where a cut lands inside a multi-byte UTF-8 character or next to a line end
    (between CR and LF among them)."""
    return [m.start() for m in _INTERESTING.finditer(body)]


def split_points(body: bytes, rng: random.Random, max_reads: int = 40) -> list[int]:
    """Byte offsets to cut `body` at, biased towards `interesting_offsets`."""
    interesting = interesting_offsets(body)
    cuts: set[int] = set()
    for _ in range(rng.randint(0, max_reads)):
        if interesting and rng.random() < 0.6:
            cuts.add(rng.choice(interesting) + rng.choice((0, 0, 1)))
        else:
            cuts.add(rng.randint(0, len(body)))
    return sorted(cut for cut in cuts if 0 < cut < len(body))


def network_reads(body: bytes, cuts: Sequence[int], rng: random.Random | None = None) -> list[tuple[float, int]]:
    """`Response.chunks` for reads ending at `cuts` and at the end of the body: (arrival ms, end byte)."""
    rng = rng or random.Random(len(body))
    reads: list[tuple[float, int]] = []
    t_ms = rng.uniform(50, 900)
    for end in [*sorted(set(cuts)), len(body)]:
        reads.append((round(t_ms, 3), end))
        t_ms += rng.choice((0.0, rng.uniform(0.01, 40), rng.uniform(0.01, 40), 1500.0))
    return reads
