"""Seeded generator of valid OpenAI Responses API streams, framed as SSE bodies.

Written from the API reference's "Streaming events" and "The response object" pages:
https://platform.openai.com/docs/api-reference/responses-streaming
https://platform.openai.com/docs/api-reference/responses/object

Every event is framed `event: <type>` + `data: <json>` + a blank line and carries a
`sequence_number`. A stream opens with `response.created` and `response.in_progress`;
then output items one after another, each `response.output_item.added` (the item
empty), its own events, `response.output_item.done` (the item whole); it ends with
`response.completed`, `response.incomplete` or an `error` event and `response.failed`,
each carrying the whole response.

Items: `message` (output_text parts, with url_citation annotations and sometimes
logprobs, or a refusal part), `reasoning` (summary parts, sometimes `encrypted_content`),
`function_call` (arguments cut mid-string and mid-escape), `custom_tool_call` (free-text
input) and `web_search_call` (status events only). Text is cut at code points, so a
delta may split a grapheme cluster, and deltas may be empty.

`generate(seed)` returns the body, the event objects in order, where each event ends in
the body, the terminal response, and per event what it adds to the output (`effects`),
so that `expected_output(stream, n)` gives what the first `n` events add up to without
folding the events themselves. `cut(stream, rng)` cuts a body anywhere before its
terminal event (after an event or inside one).
"""

from __future__ import annotations

import itertools
import json
import random
import string
from dataclasses import dataclass
from typing import Any

from streamgen import TEXT_ATOMS

MODELS = ("gpt-4.1-2025-04-14", "gpt-5-2025-08-07", "o4-mini-2025-04-16", "gpt-4o-mini-2024-07-18", "gpt-5.1")
TOOL_NAMES = ("get_weather", "search_docs", "lookup_order", "calculator", "read_file")
CUSTOM_TOOL_NAMES = ("write_sql", "apply_patch", "run_shell")
ARGUMENT_KEYS = ("location", "query", "unit", "limit", "path", "note", "a", "b", "op")
CUSTOM_INPUTS = (
    "SELECT * FROM users WHERE name = 'Zoë' AND note LIKE '%\\n%';",
    '*** Begin Patch\n*** Update File: a.py\n@@\n-print("hi")\n+print("héllo 🌍")\n*** End Patch',
    'grep -rn "\\\\u00e9" . | head -n 3\t# 你好',
)
CITATIONS = (
    ("Example Domain", "https://example.com/?utm_source=openai"),
    ("Wetter – Zürich", "https://weather.example.ch/zürich?utm_source=openai"),
    ("东京天气", "https://tenki.example.jp/東京"),
)
ENDINGS = ("completed",) * 6 + ("max_output_tokens", "content_filter", "failed", "failed")
COMMENTS = (": keep-alive", ": OPENROUTER PROCESSING")
# Two shapes of the `error` event: the API reference's (code/message at the top level) and
# the one OpenAI sends in practice (an `error` object), which the SDK's Stream raises on.
ERRORS = (
    {"code": "server_error", "message": "The server had an error while processing your request.", "param": None},
    {"error": {"type": "insufficient_quota", "code": "insufficient_quota", "message": "You exceeded your quota."}},
)


@dataclass(slots=True)
class GeneratedResponseStream:
    seed: int
    body: bytes
    # The event objects in the order sent.
    events: list[dict[str, Any]]
    # Per event: the offset just past its blank line, and just past its JSON text.
    event_ends: list[int]
    data_ends: list[int]
    # Per event: what it adds to the output (see `expected_output`).
    effects: list[list[tuple[Any, ...]]]
    # The response as `response.created` announced it (status in_progress, output empty).
    created: dict[str, Any]
    # The terminal event's type and response (`response.completed`, `.incomplete` or `.failed`).
    terminal: str
    final: dict[str, Any]
    # The error event's object for failed streams.
    error_event: dict[str, Any] | None
    framing: str

    @property
    def terminal_index(self) -> int:
        return len(self.events) - 1


def generate(seed: int, *, ending: str | None = None, done_events: bool = True) -> GeneratedResponseStream:
    """A valid Responses stream. `ending`: completed, max_output_tokens, content_filter or
    failed (random if None). `done_events=False` leaves out every `….done` event (the
    deltas alone carry the output, the terminal response still has all of it)."""
    rng = random.Random(seed)
    ending = ending or rng.choice(ENDINGS)
    created = _envelope(rng)
    events: list[dict[str, Any]] = []
    effects: list[list[tuple[Any, ...]]] = []

    def emit(kind: str, fields: dict[str, Any], *effect: tuple[Any, ...]) -> None:
        event = {"type": kind, "sequence_number": len(events), **fields}
        if kind.endswith(".delta") and rng.random() < 0.3:
            event["obfuscation"] = _token(rng, rng.randint(1, 14))  # OpenAI pads deltas with this
        events.append(event)
        effects.append(list(effect))

    emit("response.created", {"response": created})
    emit("response.in_progress", {"response": created})

    items = [_ITEMS[kind](rng, index) for index, kind in enumerate(_plan(rng))]
    # A failure comes between items (`stop_event` 0: item `stop_item` never starts) or
    # inside one (its first `stop_event` events were sent).
    stop_item, stop_event = len(items), 0
    if ending == "failed":
        stop_item = rng.randint(0, len(items))
        if stop_item < len(items) and rng.random() < 0.6:
            stop_event = rng.randint(1, max(1, len(items[stop_item].events) - 1))
    done_items: list[dict[str, Any]] = []
    for number, item in enumerate(items[: stop_item + 1]):
        whole = number < stop_item
        if ending in ("max_output_tokens", "content_filter") and number == len(items) - 1:
            item.done["status"] = "incomplete"  # the item the limit cut short
        for kind, fields, effect in item.events if whole else item.events[:stop_event]:
            if done_events or not kind.endswith(".done"):
                emit(kind, fields, *effect)
        if whole:
            if done_events:
                emit("response.output_item.done", {"output_index": number, "item": item.done})
            done_items.append(item.done)

    final = {**created, "output": done_items}
    error_event: dict[str, Any] | None = None
    if ending == "completed":
        terminal = "response.completed"
        final.update(status="completed", completed_at=created["created_at"] + rng.randint(1, 90))
    elif ending in ("max_output_tokens", "content_filter"):
        terminal = "response.incomplete"
        final.update(status="incomplete", incomplete_details={"reason": ending})
    else:
        terminal = "response.failed"
        error_event = dict(rng.choice(ERRORS))
        emit("error", error_event)
        inner = error_event.get("error", error_event)
        final.update(status="failed", error={"code": inner["code"], "message": inner["message"]})
        if stop_event or rng.random() < 0.5:
            final["output"] = []  # as OpenAI sends it: no output on a failed response
    if ending != "failed" or rng.random() < 0.5:
        final["usage"] = _usage(rng, done_items)
    emit(terminal, {"response": final})
    body, event_ends, data_ends, framing = frame(events, rng)
    return GeneratedResponseStream(
        seed=seed,
        body=body,
        events=events,
        event_ends=event_ends,
        data_ends=data_ends,
        effects=effects,
        created=created,
        terminal=terminal,
        final=final,
        error_event=error_event,
        framing=framing,
    )


def expected_output(stream: GeneratedResponseStream, received: int) -> list[dict[str, Any]]:
    """The output items the first `received` events add up to, in the shape `item_view` gives."""
    items: list[dict[str, Any]] = []
    for effect in (fx for fxs in stream.effects[:received] for fx in fxs):
        if effect[0] == "item":
            items.append(json.loads(json.dumps(effect[2])))
            continue
        item = items[effect[1]]
        if effect[0] == "part":  # ("part", output_index, field, part)
            item[effect[2]].append(dict(effect[3]))
        elif effect[0] == "append":  # ("append", output_index, (field, index, key) or (key,), text)
            *path, key = effect[2]
            target = item[path[0]][path[1]] if path else item
            target[key] += effect[3]
        elif effect[0] == "extend":  # ("extend", output_index, (field, index, key), values)
            field, index, key = effect[2]
            item[field][index][key] = [*item[field][index][key], *effect[3]]
    return [item_view(item) for item in items]


def item_view(item: dict[str, Any]) -> dict[str, Any]:
    """What an output item says, without its status or other bookkeeping: the shape
    `expected_output` builds, for comparing any version of an item with any other."""
    kind = item.get("type")
    if kind == "message":
        parts = []
        for part in item.get("content") or ():
            if part.get("type") == "refusal":
                parts.append({"type": "refusal", "refusal": part.get("refusal")})
            else:
                parts.append(
                    {
                        "type": part.get("type"),
                        "text": part.get("text"),
                        "annotations": list(part.get("annotations") or ()),
                        "logprobs": list(part.get("logprobs") or ()),
                    }
                )
        return {"type": kind, "id": item.get("id"), "role": item.get("role"), "content": parts}
    if kind == "reasoning":
        summary = [{"type": part.get("type"), "text": part.get("text")} for part in item.get("summary") or ()]
        return {"type": kind, "id": item.get("id"), "summary": summary}
    if kind == "function_call":
        fields = ("call_id", "name", "arguments")
    elif kind == "custom_tool_call":
        fields = ("call_id", "name", "input")
    else:
        fields = ()
    return {"type": kind, "id": item.get("id"), **{name: item.get(name) for name in fields}}


def cut(stream: GeneratedResponseStream, rng: random.Random, *, inside: bool) -> tuple[bytes, int]:
    """The body cut before its terminal event: right after an event (`inside=False`) or at
    any byte before the terminal event's JSON ends. Returns the cut body and how many events
    in it are whole (a last event counts once its JSON text is: its line end and blank line
    may be missing, as in a dump cut short)."""
    last = stream.terminal_index
    end = rng.randrange(0, stream.data_ends[last]) if inside else stream.event_ends[rng.randrange(last)]
    received = sum(1 for data_end in stream.data_ends if data_end <= end)
    return stream.body[:end], received


# -- the pieces ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    # (event type, fields, effects) from output_item.added up to (not including) output_item.done.
    events: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]]
    done: dict[str, Any]


def _token(rng: random.Random, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _hex_id(rng: random.Random, prefix: str) -> str:
    return prefix + _token(rng, 48, "0123456789abcdef")


def _text(rng: random.Random, low: int = 1, high: int = 30) -> str:
    return "".join(rng.choice(TEXT_ATOMS) for _ in range(rng.randint(low, high)))


def _cut_text(rng: random.Random, text: str, max_piece: int = 6) -> list[str]:
    """`text` cut at code points into pieces of 1..max_piece characters, a few empty ones among them."""
    pieces: list[str] = []
    position = 0
    while position < len(text):
        if rng.random() < 0.05:
            pieces.append("")
        size = rng.randint(1, max_piece)
        pieces.append(text[position : position + size])
        position += size
    return pieces or [""]


def _cut_json(rng: random.Random, text: str) -> list[str]:
    """JSON text cut into pieces, often right after a backslash or inside a \\uXXXX escape."""
    cuts = {i + 1 for i, char in enumerate(text) if char == "\\" and rng.random() < 0.5}
    cuts |= {i + rng.randint(2, 5) for i in range(len(text) - 1) if text[i : i + 2] == "\\u" and rng.random() < 0.5}
    position = 0
    while position < len(text):
        position += rng.randint(1, 10)
        cuts.add(position)
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(text)), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)] or [""]


def _arguments(rng: random.Random) -> str:
    def value() -> Any:
        kind = rng.randrange(5)
        if kind <= 1:
            return _text(rng, 0, 6)
        if kind == 2:
            return rng.randint(-(10**9), 10**9)
        if kind == 3:
            return rng.choice((0.5, -1.25, True, False, None))
        return [_text(rng, 0, 3) for _ in range(rng.randint(0, 2))]

    obj = {rng.choice(ARGUMENT_KEYS): value() for _ in range(rng.randint(0, 4))}
    return json.dumps(obj, ensure_ascii=rng.random() < 0.4, separators=rng.choice(((",", ":"), (", ", ": "))))


def _logprob(rng: random.Random, token: str) -> dict[str, Any]:
    def entry(text: str) -> dict[str, Any]:
        return {"token": text, "bytes": list(text.encode("utf-8")), "logprob": -round(rng.expovariate(1.5), 6)}

    return {**entry(token), "top_logprobs": [entry(_token(rng, 3)) for _ in range(rng.randint(0, 2))]}


def _plan(rng: random.Random) -> list[str]:
    """The output items' kinds, in order."""
    if rng.random() < 0.03:
        return []
    kinds: list[str] = []
    if rng.random() < 0.45:
        kinds.append("reasoning")
    if rng.random() < 0.15:
        kinds.append("web_search_call")
        if rng.random() < 0.5:
            kinds.append("reasoning")
    calls = rng.choice((0, 0, 0, 1, 1, 2, 3))
    if calls == 0 or rng.random() < 0.3:
        kinds.append("message")
    kinds += ["function_call"] * calls
    if rng.random() < 0.1:
        kinds.append("custom_tool_call")
    if rng.random() < 0.1:
        kinds.append("message")  # a second message: content is both messages' text joined
    return kinds


def _message(rng: random.Random, index: int) -> _Item:
    item_id = _hex_id(rng, "msg_")
    added = {"id": item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
    events: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]] = [
        ("response.output_item.added", {"output_index": index, "item": added}, [("item", index, added)])
    ]
    where = {"item_id": item_id, "output_index": index}
    parts: list[dict[str, Any]] = []
    kinds = ["refusal"] if rng.random() < 0.12 else ["output_text"] * rng.choice((1, 1, 1, 2))
    with_logprobs = rng.random() < 0.25
    for content_index, kind in enumerate(kinds):
        at = {**where, "content_index": content_index}
        if kind == "refusal":
            text = _text(rng, 1, 20)
            events.append(
                (
                    "response.content_part.added",
                    {**at, "part": {"type": "refusal", "refusal": ""}},
                    [("part", index, "content", {"type": "refusal", "refusal": ""})],
                )
            )
            for piece in _cut_text(rng, text):
                events.append(
                    (
                        "response.refusal.delta",
                        {**at, "delta": piece},
                        [("append", index, ("content", content_index, "refusal"), piece)],
                    )
                )
            events.append(("response.refusal.done", {**at, "refusal": text}, []))
            part = {"type": "refusal", "refusal": text}
        else:
            text = _text(rng, 1, 40)
            empty = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
            events.append(
                ("response.content_part.added", {**at, "part": dict(empty)}, [("part", index, "content", empty)])
            )
            citations = _citations(rng, text)
            annotations: list[dict[str, Any]] = []
            logprobs: list[dict[str, Any]] = []
            position = 0
            path = ("content", content_index)
            for piece in _cut_text(rng, text):
                token_logprobs = [_logprob(rng, piece)] if with_logprobs and piece else []
                logprobs += token_logprobs
                effect = [("append", index, (*path, "text"), piece)]
                if token_logprobs:
                    effect.append(("extend", index, (*path, "logprobs"), token_logprobs))
                events.append(
                    ("response.output_text.delta", {**at, "delta": piece, "logprobs": token_logprobs}, effect)
                )
                position += len(piece)
                while citations and citations[0]["end_index"] <= position:  # cited once its text is out
                    annotation = citations.pop(0)
                    fields = {**at, "annotation_index": len(annotations), "annotation": annotation}
                    events.append(
                        (
                            "response.output_text.annotation.added",
                            fields,
                            [("extend", index, (*path, "annotations"), [annotation])],
                        )
                    )
                    annotations.append(annotation)
            events.append(("response.output_text.done", {**at, "text": text, "logprobs": logprobs}, []))
            part = {"type": "output_text", "annotations": annotations, "logprobs": logprobs, "text": text}
        events.append(("response.content_part.done", {**at, "part": part}, []))
        parts.append(part)
    return _Item(events, {**added, "status": "completed", "content": parts})


def _citations(rng: random.Random, text: str) -> list[dict[str, Any]]:
    """0..3 url_citation annotations over spans of `text` (start_index/end_index in characters)."""
    out = []
    for _ in range(rng.choice((0, 0, 0, 1, 2, 3))):
        start = rng.randrange(len(text))
        end = rng.randint(start, len(text))
        title, url = rng.choice(CITATIONS)
        out.append({"type": "url_citation", "start_index": start, "end_index": end, "title": title, "url": url})
    return sorted(out, key=lambda a: a["end_index"])


def _reasoning(rng: random.Random, index: int) -> _Item:
    item_id = _hex_id(rng, "rs_")
    added: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": []}
    encrypted = rng.random() < 0.5
    if encrypted:  # asked for with include=["reasoning.encrypted_content"]; a new blob when done
        added["encrypted_content"] = "gAAAAAB" + _token(rng, rng.randint(40, 200))
    events: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]] = [
        ("response.output_item.added", {"output_index": index, "item": added}, [("item", index, added)])
    ]
    summary: list[dict[str, Any]] = []
    for summary_index in range(rng.choice((0, 1, 1, 2, 3))):
        at = {"item_id": item_id, "output_index": index, "summary_index": summary_index}
        empty = {"type": "summary_text", "text": ""}
        events.append(
            ("response.reasoning_summary_part.added", {**at, "part": dict(empty)}, [("part", index, "summary", empty)])
        )
        text = "**" + _text(rng, 1, 4) + "**\n\n" + _text(rng, 1, 30)
        for piece in _cut_text(rng, text):
            events.append(
                (
                    "response.reasoning_summary_text.delta",
                    {**at, "delta": piece},
                    [("append", index, ("summary", summary_index, "text"), piece)],
                )
            )
        events.append(("response.reasoning_summary_text.done", {**at, "text": text}, []))
        events.append(
            ("response.reasoning_summary_part.done", {**at, "part": {"type": "summary_text", "text": text}}, [])
        )
        summary.append({"type": "summary_text", "text": text})
    done = {**added, "summary": summary}
    if encrypted:
        done["encrypted_content"] = "gAAAAAB" + _token(rng, rng.randint(40, 200))
    return _Item(events, done)


def _function_call(rng: random.Random, index: int) -> _Item:
    item_id = _hex_id(rng, "fc_")
    name = rng.choice(TOOL_NAMES)
    added = {
        "id": item_id,
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "call_" + _token(rng, 24),
        "name": name,
    }
    events: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]] = [
        ("response.output_item.added", {"output_index": index, "item": added}, [("item", index, added)])
    ]
    arguments = _arguments(rng)
    where = {"item_id": item_id, "output_index": index}
    for piece in _cut_json(rng, arguments):
        events.append(
            (
                "response.function_call_arguments.delta",
                {**where, "delta": piece},
                [("append", index, ("arguments",), piece)],
            )
        )
    events.append(("response.function_call_arguments.done", {**where, "name": name, "arguments": arguments}, []))
    return _Item(events, {**added, "status": "completed", "arguments": arguments})


def _custom_tool_call(rng: random.Random, index: int) -> _Item:
    item_id = _hex_id(rng, "ctc_")
    added = {
        "type": "custom_tool_call",
        "id": item_id,
        "call_id": "call_" + _token(rng, 24),
        "name": rng.choice(CUSTOM_TOOL_NAMES),
        "input": "",
    }
    events: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]] = [
        ("response.output_item.added", {"output_index": index, "item": added}, [("item", index, added)])
    ]
    text = rng.choice(CUSTOM_INPUTS) + _text(rng, 0, 6)
    where = {"item_id": item_id, "output_index": index}
    for piece in _cut_text(rng, text, 8):
        events.append(
            ("response.custom_tool_call_input.delta", {**where, "delta": piece}, [("append", index, ("input",), piece)])
        )
    events.append(("response.custom_tool_call_input.done", {**where, "input": text}, []))
    return _Item(events, {**added, "input": text, "status": "completed"})


def _web_search_call(rng: random.Random, index: int) -> _Item:
    item_id = _hex_id(rng, "ws_")
    added = {"id": item_id, "type": "web_search_call", "status": "in_progress"}
    where = {"output_index": index, "item_id": item_id}
    events: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]] = [
        ("response.output_item.added", {"output_index": index, "item": added}, [("item", index, added)]),
        ("response.web_search_call.in_progress", where, []),
        ("response.web_search_call.searching", where, []),
        ("response.web_search_call.completed", where, []),
    ]
    action: dict[str, Any] = {"type": "search", "query": _text(rng, 1, 5)}
    if rng.random() < 0.5:
        action["sources"] = [{"type": "url", "url": url} for _, url in CITATIONS[: rng.randint(1, 3)]]
    return _Item(events, {**added, "status": "completed", "action": action})


_ITEMS = {
    "message": _message,
    "reasoning": _reasoning,
    "function_call": _function_call,
    "custom_tool_call": _custom_tool_call,
    "web_search_call": _web_search_call,
}


def _envelope(rng: random.Random) -> dict[str, Any]:
    """The response object as `response.created` carries it."""
    return {
        "id": _hex_id(rng, "resp_"),
        "object": "response",
        "created_at": rng.randint(1_740_000_000, 1_780_000_000),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": rng.choice((None, "You are a helpful assistant.")),
        "max_output_tokens": rng.choice((None, 256, 4096)),
        "model": rng.choice(MODELS),
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": rng.choice((None, "low", "medium", "high")), "summary": rng.choice((None, "auto"))},
        "service_tier": rng.choice(("auto", "default")),
        "store": rng.random() < 0.7,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": {},
    }


def _usage(rng: random.Random, items: list[dict[str, Any]]) -> dict[str, Any]:
    prompt = rng.randint(5, 9000)
    output = rng.randint(1, 5000)
    reasoning = rng.randint(0, output) if any(item["type"] == "reasoning" for item in items) else 0
    input_details: dict[str, int] = {"cached_tokens": rng.choice((0, prompt // 2, prompt))}
    if rng.random() < 0.5:
        input_details["cache_write_tokens"] = 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": input_details,
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + output,
    }


def frame(events: list[dict[str, Any]], rng: random.Random) -> tuple[bytes, list[int], list[int], str]:
    """`event: <type>` + `data: <json>` + blank line per event (the `event:` line now and
    then left out, as some gateways do), a keep-alive comment here and there."""
    line_end = rng.choice(("\n",) * 5 + ("\r\n",))
    ensure_ascii = rng.random() < 0.3
    event_lines = rng.random() < 0.9
    framing = f"line_end={line_end!r} ensure_ascii={ensure_ascii} event_lines={event_lines}"
    out = bytearray()
    event_ends: list[int] = []
    data_ends: list[int] = []
    for event in events:
        if rng.random() < 0.03:
            out += (rng.choice(COMMENTS) + line_end * 2).encode()
        if event_lines:
            out += f"event: {event['type']}{line_end}".encode()
        out += b"data: " + json.dumps(event, ensure_ascii=ensure_ascii, separators=(",", ":")).encode()
        data_ends.append(len(out))
        out += (line_end * 2).encode()
        event_ends.append(len(out))
    return bytes(out), event_ends, data_ends, framing
