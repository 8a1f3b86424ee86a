"""OpenAI's Responses API (`POST …/v1/responses`), streaming and not.

A stream opens with `response.created` (the response object, `output` empty) and ends with
`response.completed`, `response.incomplete` or `response.failed` (the whole response, with
usage); an `error` event can come first. Between them, output items are announced
(`response.output_item.added`), filled by deltas addressed by `output_index` and
`content_index` (`response.output_text.delta`, `response.refusal.delta`,
`response.function_call_arguments.delta`, `response.custom_tool_call_input.delta`,
`response.reasoning_summary_text.delta`, `response.reasoning_text.delta`, annotations)
and closed (`….done`, `response.output_item.done`, which carry the whole value).

The deltas are folded into a snapshot of the response. The terminal event's response is
the provider's own final word and becomes `to_native()` when it has the output; where
its text differs from what the deltas added up to, a warning says so. Onto the chat
shape: message text is the content, reasoning summaries (or reasoning text) the
reasoning, function and custom tool calls the tool calls, other items (web search, file
search, code interpreter, MCP…) provider extras.

A stream of the common shape is decoded typed in one call (`_decode_typed`) and folded
with each run of deltas for one place taken at once (`_fold_typed`); the rules are the
dict fold's, applied by the same methods.

Reference: https://platform.openai.com/docs/api-reference/responses-streaming
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

from analyzer.model import Choice, Exchange, Part, Reconstruction, dumps_exact, numbered_chunks
from analyzer.protocols.events import (
    FIELD_ERRORS,
    Marks,
    add_chunk,
    as_list,
    as_text,
    content_text,
    ending,
    guarded,
    json_text,
    shown,
    stream_payloads,
    tool_call,
    typed_events,
)
from analyzer.usage import normalise as normalise_usage

PROTOCOL = "openai_responses"
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
# How far past the parts it has an event may address a part never announced (room is made
# for it); an index further out (a corrupt or hostile stream's 10**18) is not followed.
MAX_GAP = 1024
INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
# Delta events: where their text goes (a content part's field, a reasoning summary part's
# text, or an output item's own field) and whether it is answer text.
_DELTAS = {
    "response.output_text.delta": ("content", "text", True),
    "response.refusal.delta": ("content", "refusal", True),
    "response.reasoning_text.delta": ("content", "text", False),
    "response.reasoning_summary_text.delta": ("summary", "text", False),
    "response.function_call_arguments.delta": (None, "arguments", False),
    "response.custom_tool_call_input.delta": (None, "input", False),
    "response.mcp_call_arguments.delta": (None, "arguments", False),
    "response.code_interpreter_call_code.delta": (None, "code", False),
}
# Events that carry nothing the snapshot needs (statuses, or a value the deltas gave already).
_QUIET = frozenset(
    {
        "response.in_progress",
        "response.queued",
        "response.content_part.done",
        "response.reasoning_summary_part.done",
        "response.mcp_call_arguments.done",
        "response.code_interpreter_call_code.done",
    }
)


# The common events, decoded typed in one call per stream (the fast path). Every field is
# optional and of any type, so `msgspec.to_builtins` gives each event back as it came (the
# fold checks types, as it does on dicts); an event or field not listed fails the decode
# and the stream takes the general path, as dicts.
class _Event(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, gc=False):
    pass


UNSET: Any = msgspec.UNSET


def _event(tag: str, *fields: str) -> Any:
    """A typed event with these fields besides `type` and `sequence_number`."""
    name = "".join(word.title() for word in tag.replace("_", ".").split(".")[1:])
    return msgspec.defstruct(
        name, [(field, Any, UNSET) for field in ("sequence_number", *fields)], bases=(_Event,), tag=tag
    )


_OF_PART = ("item_id", "output_index", "content_index")
_OF_SUMMARY = ("item_id", "output_index", "summary_index")
# The deltas, most of a stream: the fast path folds a run of them at a time (`_RUNS`).
TextDelta = _event("response.output_text.delta", *_OF_PART, "delta", "logprobs", "obfuscation")
SummaryDelta = _event("response.reasoning_summary_text.delta", *_OF_SUMMARY, "delta", "obfuscation")
ArgumentsDelta = _event("response.function_call_arguments.delta", "item_id", "output_index", "delta", "obfuscation")
# The other common events, by type: read in place (`_STEPS`), skipped (`_SKIPPED`), or
# handed to the fold as the dicts they were.
_OTHERS = {
    tag: _event(tag, *fields)
    for tag, fields in {
        "response.created": ("response",),
        "response.in_progress": ("response",),
        "response.completed": ("response",),
        "response.incomplete": ("response",),
        "response.failed": ("response",),
        "response.output_item.added": ("output_index", "item"),
        "response.output_item.done": ("output_index", "item"),
        "response.content_part.added": (*_OF_PART, "part"),
        "response.content_part.done": (*_OF_PART, "part"),
        "response.output_text.done": (*_OF_PART, "text", "logprobs"),
        "response.reasoning_summary_part.added": (*_OF_SUMMARY, "part"),
        "response.reasoning_summary_part.done": (*_OF_SUMMARY, "part"),
        "response.reasoning_summary_text.done": (*_OF_SUMMARY, "text"),
        "response.function_call_arguments.done": ("item_id", "output_index", "name", "arguments"),
        "response.output_text.annotation.added": (*_OF_PART, "annotation_index", "annotation"),
        "response.refusal.delta": (*_OF_PART, "delta", "obfuscation"),
        "response.refusal.done": (*_OF_PART, "refusal"),
        "response.reasoning_text.delta": (*_OF_PART, "delta", "obfuscation"),
        "response.reasoning_text.done": (*_OF_PART, "text"),
        "response.custom_tool_call_input.delta": ("item_id", "output_index", "delta", "obfuscation"),
        "response.custom_tool_call_input.done": ("item_id", "output_index", "input"),
        "response.mcp_call_arguments.delta": ("item_id", "output_index", "delta", "obfuscation"),
        "response.mcp_call_arguments.done": ("item_id", "output_index", "arguments"),
        # A server tool's progress: nothing for the fold (`_Fold.add` passes over them).
        **{
            f"response.{tool}.{status}": ("item_id", "output_index")
            for tool, statuses in {
                "web_search_call": ("in_progress", "searching", "completed"),
                "file_search_call": ("in_progress", "searching", "completed"),
                "mcp_call": ("in_progress", "completed"),
                "mcp_list_tools": ("in_progress", "completed"),
            }.items()
            for status in statuses
        },
    }.items()
}
_decode_typed = msgspec.json.Decoder(Union[(TextDelta, SummaryDelta, ArgumentsDelta, *_OTHERS.values())]).decode_lines
# The delta events the fast path folds a run at a time, and the field naming their part.
_RUNS = {TextDelta: "content_index", SummaryDelta: "summary_index", ArgumentsDelta: None}
# Events the fold has nothing to do with (`_QUIET`): skipped without making them dicts.
_SKIPPED = frozenset(cls for tag, cls in _OTHERS.items() if tag in _QUIET)


def _v(value: Any) -> Any:
    """A typed event's field as the dict's `get` gives it: None where the event had none."""
    return None if value is UNSET else value


# The common other events, read in place rather than made dicts: what `_Fold.add` does with each.
_STEPS = {
    _OTHERS["response.created"]: lambda fold, e, seq: fold.created(_v(e.response)),
    **{
        _OTHERS[tag]: lambda fold, e, seq, tag=tag: fold.ended(tag, _v(e.response))  # type: ignore[misc]
        for tag in TERMINAL
    },
    _OTHERS["response.output_item.added"]: lambda fold, e, seq: fold.item_added(_v(e.output_index), _v(e.item), seq),
    _OTHERS["response.output_item.done"]: lambda fold, e, seq: fold.item_done(_v(e.output_index), _v(e.item)),
    _OTHERS["response.content_part.added"]: lambda fold, e, seq: fold.part_added(
        "response.content_part.added", "content", _v(e.output_index), _v(e.content_index), _v(e.part), seq
    ),
    _OTHERS["response.reasoning_summary_part.added"]: lambda fold, e, seq: fold.part_added(
        "response.reasoning_summary_part.added", "summary", _v(e.output_index), _v(e.summary_index), _v(e.part), seq
    ),
    _OTHERS["response.output_text.done"]: lambda fold, e, seq: fold.part_done(
        "response.output_text.done", "content", _v(e.output_index), _v(e.content_index), "text", _v(e.text), seq
    ),
    _OTHERS["response.reasoning_summary_text.done"]: lambda fold, e, seq: fold.part_done(
        "response.reasoning_summary_text.done",
        "summary",
        _v(e.output_index),
        _v(e.summary_index),
        "text",
        _v(e.text),
        seq,
    ),
}


class _Fold:
    def __init__(self, rec: Reconstruction) -> None:
        self.rec = rec
        self.response: dict[str, Any] | None = None
        self.items: dict[int, dict[str, Any]] = {}
        self.terminal: dict[str, Any] | None = None
        self.terminal_type: str | None = None
        # What the deltas alone added up to, by where they went: (output_index, field) or
        # (output_index, field, part index, part field). The `….done` events overwrite the
        # snapshot with the whole value, so it cannot tell whether the deltas agreed.
        self.streamed: dict[tuple[Any, ...], list[str]] = {}
        # The same deltas since the last settle, with the item or part they extend: where →
        # (target, field, its text before them, pieces).
        self.live: dict[tuple[Any, ...], tuple[dict[str, Any], str, str, list[str]]] = {}
        self.earlier: list[dict[str, Any]] = []
        self.unknown: dict[str, int] = {}
        self.marks = Marks()

    def item(self, kind: Any, index: Any, seq: int) -> dict[str, Any] | None:
        """Output item `index`, which event `seq` (of type `kind`) is about; None, with a
        warning, when it was never added."""
        item = self.items.get(index)
        if item is None:
            self.rec.warn("item_order", f"event {seq + 1}: {kind} for output {index!r}, never added")
        return item

    def part(self, kind: Any, output: Any, index: Any, seq: int, field: str = "content") -> dict[str, Any] | None:
        """Part `index` of output item `output`'s `field` (content, or a reasoning item's
        summary), made when a delta comes for a part never announced."""
        item = self.item(kind, output, seq)
        if item is None:
            return None
        parts = item.setdefault(field, [])
        if not isinstance(index, int) or not isinstance(parts, list) or not 0 <= index < len(parts) + MAX_GAP:
            return None
        while len(parts) <= index:  # a delta for a part never announced: make room
            parts.append({"type": "summary_text" if field == "summary" else None, "text": ""})
        if not isinstance(parts[index], dict):
            parts[index] = {"text": ""}
        return parts[index]

    def add(self, payload: dict[str, Any], seq: int) -> None:
        kind = payload.get("type")
        if kind in _DELTAS:  # most events: a piece of text
            delta = payload.get("delta")
            if type(delta) is str:
                self.deltas(kind, payload, [delta], seq)  # type: ignore[arg-type]
        elif kind == "response.output_item.added":
            self.item_added(payload.get("output_index"), payload.get("item"), seq)
        elif kind == "response.output_item.done":
            self.item_done(payload.get("output_index"), payload.get("item"))
        elif kind == "response.content_part.added":
            self.part_added(kind, "content", payload.get("output_index"), payload.get("content_index"), payload.get("part"), seq)  # fmt: skip
        elif kind == "response.reasoning_summary_part.added":
            self.part_added(kind, "summary", payload.get("output_index"), payload.get("summary_index"), payload.get("part"), seq)  # fmt: skip
        elif kind in ("response.output_text.done", "response.reasoning_text.done", "response.refusal.done"):
            field = "refusal" if kind == "response.refusal.done" else "text"
            self.part_done(kind, "content", payload.get("output_index"), payload.get("content_index"), field, payload.get(field), seq)  # fmt: skip
        elif kind == "response.reasoning_summary_text.done":
            self.part_done(kind, "summary", payload.get("output_index"), payload.get("summary_index"), "text", payload.get("text"), seq)  # fmt: skip
        elif kind in ("response.function_call_arguments.done", "response.custom_tool_call_input.done"):
            index = payload.get("output_index")
            self.settle(output_index=index)  # these replace what the deltas built
            item = self.item(kind, index, seq)
            field = "arguments" if kind == "response.function_call_arguments.done" else "input"
            if item is not None and isinstance(payload.get(field), str):
                item[field] = payload[field]
        elif kind == "response.output_text.annotation.added":
            part = self.part(kind, payload.get("output_index"), payload.get("content_index"), seq)
            if part is not None and payload.get("annotation") is not None:
                part["annotations"] = [*(part.get("annotations") or []), payload["annotation"]]
        elif kind == "response.created":
            self.created(payload.get("response"))
        elif kind in TERMINAL:
            self.ended(kind, payload.get("response"))
        elif kind == "error":
            # Documented with code and message on the event itself; some servers nest them in `error`.
            nested = payload.get("error")
            self.rec.error = (
                nested
                if isinstance(nested, dict)
                else {k: v for k, v in payload.items() if k not in ("type", "sequence_number")}
            )
        elif kind not in _QUIET and not str(kind).endswith((".in_progress", ".searching", ".completed", ".done")):
            self.unknown[str(kind)] = self.unknown.get(str(kind), 0) + 1

    def item_added(self, index: Any, item: Any, seq: int) -> None:
        """`response.output_item.added`: a new output item (message, reasoning, tool call…)."""
        if isinstance(item, dict) and isinstance(index, int):
            self.items[index] = _own(item)
            if item.get("type") in ("function_call", "custom_tool_call"):
                self.marks.token(seq, False)  # a tool call starts: generated, not answer text
            # (a server tool's call, like a web search, is the provider's doing, not generated text)

    def item_done(self, index: Any, item: Any) -> None:
        """`response.output_item.done`: the whole item, which replaces what the deltas built."""
        self.settle(output_index=index)
        if isinstance(item, dict) and isinstance(index, int):
            self.items[index] = _own(item)

    def part_added(self, kind: str, field: str, output: Any, index: Any, part: Any, seq: int) -> None:
        """A content part or a reasoning summary part (`field`) announced, with its first value."""
        self.settle(output_index=output)  # it replaces what the deltas built
        target = self.part(kind, output, index, seq, field)
        if target is not None and isinstance(part, dict):
            target.clear()
            target.update(part)

    def part_done(self, kind: str, field: str, output: Any, index: Any, name: str, value: Any, seq: int) -> None:
        """A part's whole text (`name`: text or refusal), which replaces what the deltas built."""
        self.settle(output_index=output)
        target = self.part(kind, output, index, seq, field)
        if target is not None and isinstance(value, str):
            target[name] = value

    def created(self, response: Any) -> None:
        """`response.created`: the response with its output still empty (a second one starts over)."""
        if self.response is not None:
            self.earlier.append(self.native())
            self.items, self.streamed, self.live, self.terminal, self.terminal_type = {}, {}, {}, None, None
        self.response = dict(response or {})

    def ended(self, kind: str, response: Any) -> None:
        """A terminal event (`kind`): the whole response as the provider has it."""
        self.terminal = response if isinstance(response, dict) else {}
        self.terminal_type = kind
        self.rec.done = True
        if kind == "response.failed" and self.terminal.get("error"):
            self.rec.error = self.terminal["error"]

    def deltas(self, kind: str, payload: dict[str, Any], pieces: list[str], seq: int) -> None:
        """Delta events of type `kind` for one place, one after another from event `seq`:
        `payload` is the first of them (the typed fast path hands over a run of deltas at once)."""
        place, field, answer = _DELTAS[kind]
        index = payload.get("output_index")
        if place is None:
            where: tuple[Any, ...] = (index, field)
        else:
            where = (index, place, payload.get("summary_index" if place == "summary" else "content_index"), field)
        target = self.extend(where, pieces, kind, seq)
        if target is not None and kind == "response.output_text.delta" and payload.get("logprobs"):
            target["logprobs"] = [*(target.get("logprobs") or []), *payload["logprobs"]]  # one piece: see _fold_typed
        # Timing marks, as if event by event: the first and the last delta that brought text.
        if pieces[0] and pieces[-1]:
            first, last = seq, seq + len(pieces) - 1
        else:
            found = [seq + offset for offset, piece in enumerate(pieces) if piece]
            if not found:
                return
            first, last = found[0], found[-1]
        marks = self.marks
        if place != "content" or marks.first_answer is None:
            marks.token(first, answer)
        marks.last_token = last

    def extend(self, where: tuple[Any, ...], pieces: list[str], kind: str, seq: int) -> dict[str, Any] | None:
        """Add deltas' text at `where`: kept as pieces, joined into the item or part only
        when the snapshot is read (`settle`), so a long answer costs linear time."""
        live = self.live.get(where)
        if live is None:
            target = self.target(where, kind, seq)
            if target is None:
                for later in range(seq + 1, seq + len(pieces)):  # each event is warned about, as one by one
                    self.target(where, kind, later)
                return None
            field = where[-1]
            live = self.live[where] = (target, field, target.get(field) or "", [])
        live[3].extend(pieces)
        streamed = self.streamed.get(where)
        if streamed is None:
            self.streamed[where] = list(pieces)
        else:
            streamed.extend(pieces)
        return live[0]

    def target(self, where: tuple[Any, ...], kind: str, seq: int) -> dict[str, Any] | None:
        """The item (`where`: output index, field) or part (output index, content or summary,
        part index, field) a delta extends; None, with a warning, when its item was never added."""
        if len(where) == 2:
            return self.item(kind, where[0], seq)
        return self.part(kind, where[0], where[2], seq, where[1])

    def settle(self, *, output_index: Any = None) -> None:
        """Bring the items and parts up to date with the pieces added since (all, or those of one output)."""
        if not self.live:
            return
        for where in [w for w in self.live if output_index is None or w[0] == output_index]:
            target, field, base, pieces = self.live.pop(where)
            target[field] = base + "".join(pieces)

    def snapshot(self) -> dict[str, Any]:
        self.settle()
        response = dict(self.response or {})
        response["output"] = [self.items[i] for i in sorted(self.items)]
        return response

    def native(self) -> dict[str, Any]:
        """The terminal event's response where it has the output, else the folded snapshot."""
        snapshot = self.snapshot()
        final, source = snapshot, "a `….done` event"
        if self.terminal is not None:
            final, source = dict(self.terminal), str(self.terminal_type)
            if not final.get("output") and snapshot["output"]:
                final["output"] = snapshot["output"]
        differs = (
            final is not snapshot
            and snapshot["output"]
            and not _same_output(final, snapshot)
            and _texts(final) != _texts(snapshot)
        )
        if differs or any(_at(final, where) != "".join(text) for where, text in self.streamed.items()):
            self.rec.warn("final_differs", f"{source} holds other text than the deltas added up to; it is kept")
        return final


def _same_output(final: dict[str, Any], snapshot: dict[str, Any]) -> bool:
    """Whether two responses have equal outputs, so equal texts: compared in C, with no text
    joined (the usual case, the terminal event repeating what was folded). False, so that
    the texts decide, when the values nest past the recursion limit (which the decoders
    stop short of, from where they run)."""
    try:
        return bool(final.get("output") == snapshot["output"])
    except RecursionError:
        return False


def _own(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of an item that the fold may extend without touching the event it came in
    (the events stay in `rec.chunks` as they arrived)."""
    copy = dict(item)
    for field in ("content", "summary"):
        if isinstance(copy.get(field), list):
            copy[field] = [dict(part) if isinstance(part, dict) else part for part in copy[field]]
    return copy


def _at(response: dict[str, Any], where: tuple[Any, ...]) -> str:
    """The text at `where` (see `_Fold.streamed`) in a response, or "" where it has none."""
    value: Any = response.get("output")
    for step in where:
        if isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
            value = value[step]
        elif isinstance(value, dict) and isinstance(step, str):
            value = value.get(step)
        else:
            return ""
    return value if isinstance(value, str) else ""


def _texts(response: dict[str, Any]) -> tuple[str, str]:
    """Answer text and tool arguments of a response, to compare two versions of it."""
    text, arguments = [], []
    for item in as_list(response.get("output")):
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            text += [
                str(p.get("text") or p.get("refusal") or "")
                for p in as_list(item.get("content"))
                if isinstance(p, dict)
            ]
        elif item.get("type") in ("function_call", "custom_tool_call"):
            arguments.append(str(item.get("arguments") or item.get("input") or ""))
    return "".join(text), "\x00".join(arguments)


def reconstruct_stream(exchange: Exchange, rec: Reconstruction) -> Reconstruction:
    fold = _Fold(rec)
    typed = _typed_events(exchange, rec)
    if typed is not None:
        _fold_typed(fold, *typed)
        return _finish(exchange, rec, fold)
    for t_ms, name, payload in stream_payloads(exchange, rec):
        if not isinstance(payload, dict):
            rec.warn("chunk_shape", f"event {len(rec.chunks) + 1}: a {type(payload).__name__}, not an object: ignored")
            continue
        if payload.get("type") is None and name:
            payload["type"] = name
        seq = add_chunk(rec, t_ms, payload)
        guarded(fold.rec, seq, fold.add, payload, seq)
    return _finish(exchange, rec, fold)


def _typed_events(exchange: Exchange, rec: Reconstruction) -> tuple[list[Any], list[Any]] | None:
    """The stream's events decoded typed, when every one is a common event (`typed_events`)."""
    return typed_events(exchange, rec, _decode_typed)


def _fold_typed(fold: _Fold, decoded: list[Any], times: list[Any]) -> None:
    """The typed events into the fold: each run of deltas for one place (the bulk of a
    stream) handed over at once, the common other events read in place (`_STEPS`), the
    rest as the dicts they were."""
    rec = fold.rec
    rec.chunks = numbered_chunks(times, decoded)
    to_builtins = msgspec.to_builtins
    run_kind: Any = None  # the run of deltas: their kind, first event, place and text pieces
    first: Any = None
    start = 0
    output_index: Any = None
    part_index: Any = None
    pieces: list[str] = []
    append = pieces.append
    for seq, event in enumerate(decoded):
        kind = event.__class__
        if kind is run_kind and event.output_index == output_index:
            delta = event.delta
            if type(delta) is str and (
                event.content_index == part_index and not event.logprobs
                if kind is TextDelta
                else kind is ArgumentsDelta or event.summary_index == part_index
            ):
                append(delta)
                continue
        if pieces:
            _run(fold, decoded, first, pieces, start)
            pieces = []
            run_kind = None
        if kind in _RUNS and type(event.delta) is str and not (kind is TextDelta and event.logprobs):
            run_kind, first, start, output_index = kind, event, seq, event.output_index
            part_index = None if kind is ArgumentsDelta else getattr(event, _RUNS[kind])  # type: ignore[arg-type]
            pieces = [event.delta]
            append = pieces.append
            continue
        step = _STEPS.get(kind)
        if step is not None:
            guarded(fold.rec, seq, step, fold, event, seq)
        elif kind not in _SKIPPED:
            guarded(fold.rec, seq, fold.add, to_builtins(event), seq)
    if pieces:
        _run(fold, decoded, first, pieces, start)


def _run(fold: _Fold, decoded: list[Any], first: Any, pieces: list[str], seq: int) -> None:
    """A run of deltas of one kind for one place, from event `seq` (`first`) on."""
    payload = msgspec.to_builtins(first)
    try:
        fold.deltas(payload["type"], payload, pieces, seq)
    except FIELD_ERRORS:
        # A field of an unexpected type (an unhashable index): event by event, each warned about.
        for offset in range(len(pieces)):
            guarded(fold.rec, seq + offset, fold.add, msgspec.to_builtins(decoded[seq + offset]), seq + offset)


def _finish(exchange: Exchange, rec: Reconstruction, fold: _Fold) -> Reconstruction:
    if fold.earlier:
        rec.warn(
            "several_responses",
            f"{len(fold.earlier) + 1} responses in one stream; the last is reconstructed, the others kept as extras",
        )
        rec.extras["earlier_responses"] = fold.earlier
    for name, count in fold.unknown.items():
        rec.warn("unknown_event", f"{count} event(s) of unknown type {name!r}: kept in the chunks, not interpreted")
    _apply(rec, fold.native(), fold.terminal_type)
    rec.marks = fold.marks.as_dict()
    ending(exchange, rec, fold.terminal_type is not None, "response.completed")
    return rec


def reconstruct_json(exchange: Exchange, rec: Reconstruction, obj: Any) -> Reconstruction:
    """A non-streaming response: the response object itself."""
    if not isinstance(obj, dict):
        rec.warn("response_shape", f"a {type(obj).__name__}, not a response object")
        return rec
    add_chunk(rec, None, obj)
    status = obj.get("status")
    _apply(rec, dict(obj), {"incomplete": "response.incomplete", "failed": "response.failed"}.get(status))
    rec.done = True
    if obj.get("error"):
        rec.error = obj["error"]
    choice = rec.choices[0] if rec.choices else None
    if choice and (choice.content or choice.reasoning or choice.tool_calls):
        rec.marks = {"first_token": 0, "first_answer": 0 if choice.content else None, "last_token": 0}
    return rec


def _apply(rec: Reconstruction, response: dict[str, Any], terminal: str | None) -> None:
    rec.native = response
    rec.object = response.get("object") if isinstance(response.get("object"), str) else "response"
    rec.id = response.get("id") if isinstance(response.get("id"), str) else None
    if isinstance(response.get("model"), str) and response["model"]:
        rec.served_model = response["model"]
    if isinstance(response.get("created_at"), (int, float)):
        rec.created = response["created_at"]
    if isinstance(response.get("service_tier"), str):
        rec.service_tier = response["service_tier"]
    texts: list[str] = []
    refusals: list[str] = []
    summaries: list[str] = []
    reasoning_texts: list[str] = []
    details: list[Any] = []
    annotations: list[Any] = []
    logprobs: list[Any] = []
    calls = []
    server: list[Any] = []
    role = "assistant"
    for item in as_list(response.get("output")):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            role = item.get("role") or role
            for part in as_list(item.get("content")):
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "refusal":
                    refusals.append(part.get("refusal") or "")
                else:
                    texts.append(as_text(part.get("text")))
                    annotations.extend(as_list(part.get("annotations")))
                    logprobs.extend(as_list(part.get("logprobs")))
        elif kind == "reasoning":
            summaries += [str(s.get("text") or "") for s in as_list(item.get("summary")) if isinstance(s, dict)]
            reasoning_texts += [str(c.get("text") or "") for c in as_list(item.get("content")) if isinstance(c, dict)]
            details.append(item)
        elif kind == "function_call":
            arguments = item.get("arguments")
            if arguments is not None and not isinstance(arguments, str):  # JSON's text, not a repr
                rec.warn("chunk_shape", f"tool call {shown(item.get('name'))}: arguments given as a "
                                        f"{type(arguments).__name__}, not text: written as JSON")  # fmt: skip
                arguments = json_text(arguments)
            calls.append(tool_call(len(calls), item.get("call_id"), item.get("name"), arguments or ""))
        elif kind == "custom_tool_call":
            calls.append(
                tool_call(len(calls), item.get("call_id"), item.get("name"), str(item.get("input") or ""), "custom")
            )
            calls[-1].parsed_arguments, calls[-1].parse_error = None, None  # free text, not JSON
        else:
            server.append(item)
    reasoning, source = None, None
    if summaries:
        reasoning, source = "\n\n".join(summaries), "reasoning.summary"
    elif reasoning_texts:
        reasoning, source = "".join(reasoning_texts), "reasoning.content"
    finish = None
    if terminal == "response.completed" or (terminal is None and response.get("status") == "completed"):
        finish = "tool_calls" if calls else "stop"
    elif terminal == "response.incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        finish = INCOMPLETE_REASONS.get(reason, reason or "incomplete")
    extras: dict[str, Any] = {}
    if server:
        extras["server_tools"] = server
    if response.get("status"):
        extras["status"] = response["status"]
    rec.choices = [
        Choice(
            index=0,
            role=role,
            content="".join(texts) if texts else None,
            refusal="".join(refusals) if refusals else None,
            reasoning=reasoning,
            reasoning_source=source,
            reasoning_details=details,
            tool_calls=calls,
            logprobs={"content": logprobs} if logprobs else None,
            finish_reason=finish,
            annotations=annotations,
            extras=extras,
        )
    ]
    if isinstance(response.get("usage"), dict):
        rec.usage = normalise_usage(response["usage"])
    if response.get("error") and rec.error is None:
        rec.error = response["error"]


def chunk_parts(payload: Any) -> list[Part]:
    """What one event carries (frames.chunks)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return []  # an event without a type names no part (the fold warned of it)
    kind = payload["type"]
    delta = payload.get("delta")
    if kind == "response.output_text.delta":
        return [Part(0, "content", delta)] if delta else []
    if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
        return [Part(0, "reasoning", delta)] if delta else []
    if kind == "response.refusal.delta":
        return [Part(0, "refusal", delta)] if delta else []
    if kind in _DELTAS and _DELTAS[kind][0] is None:  # an item's own field: tool call arguments, code
        return [Part(0, "tool_call", delta or "")]
    if kind == "response.output_item.added":
        item = payload.get("item") or {}
        if item.get("type") in ("function_call", "custom_tool_call"):
            return [Part(0, "tool_call", "")]
        if item.get("type") not in ("message", "reasoning"):
            return [Part(0, "extra", dumps_exact(item))]
        return []
    if kind == "response.output_text.annotation.added":
        return [Part(0, "extra", dumps_exact(payload.get("annotation")))]
    if kind in TERMINAL:
        response = payload.get("response") or {}
        return [Part(None, "usage", dumps_exact(response["usage"]))] if response.get("usage") else []
    if kind == "error":
        return [Part(None, "error", dumps_exact(payload.get("error", payload)))]
    return []


# -- the request ------------------------------------------------------------------------------


def request_messages(body: Any) -> list[dict[str, Any]]:
    """`instructions` and `input` as chat messages (OpenAI chat's shape)."""
    if not isinstance(body, dict):
        return []
    out: list[dict[str, Any]] = []
    if body.get("instructions"):
        out.append({"role": "system", "content": content_text(body["instructions"])})
    items = body.get("input")
    if isinstance(items, str):
        return [*out, {"role": "user", "content": items}]
    pending: dict[str, Any] | None = None  # an assistant turn being assembled from items
    for item in as_list(items):
        if not isinstance(item, dict):
            continue
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role == "developer":
                role = "system"
            text = content_text(item.get("content"))
            if role == "assistant":
                if pending is None:
                    pending = {"role": "assistant", "content": ""}
                    out.append(pending)
                pending["content"] = (pending["content"] or "") + text
            else:
                pending = None
                out.append({"role": role, "content": text})
        elif kind in ("function_call", "custom_tool_call", "reasoning"):
            if pending is None:
                pending = {"role": "assistant", "content": None}
                out.append(pending)
            if kind == "reasoning":
                summary = "\n\n".join(
                    shown(s.get("text") or "") for s in as_list(item.get("summary")) if isinstance(s, dict)
                )
                if summary:
                    pending["reasoning_content"] = summary
                continue
            arguments = item.get("arguments") if kind == "function_call" else item.get("input")
            pending.setdefault("tool_calls", []).append(
                {
                    "id": item.get("call_id"),
                    "type": "function" if kind == "function_call" else "custom",
                    "function": {
                        "name": item.get("name"),
                        "arguments": arguments if isinstance(arguments, str) else json_text(arguments),
                    },
                }
            )
        elif kind in ("function_call_output", "custom_tool_call_output"):
            pending = None
            output = item.get("output")
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": item.get("call_id"),
                    "content": output if isinstance(output, str) else content_text(output),
                }
            )
        elif kind == "item_reference":
            continue
        else:
            pending = None
            out.append({"role": "user", "content": f"[{shown(kind)}]"})
    return out


def request_tools(body: Any) -> list[dict[str, Any]]:
    """Function tools in chat/completions' shape; built-in tools keep their own."""
    tools = body.get("tools") if isinstance(body, dict) else None
    out = []
    for tool in as_list(tools):
        if isinstance(tool, dict) and tool.get("type") == "function":
            function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
            out.append({"type": "function", "function": function})
        elif isinstance(tool, dict):
            out.append(tool)
    return out
