"""OpenAI-style `chat/completions`, streaming and not, as every compatible provider sends it.

Chunks are decoded with msgspec into typed structs that forbid unknown fields, in three
tiers: the lean shape nearly every chunk has (text deltas; rare fields at most `null`)
decodes at C speed and takes the shortest path through the accumulator; a chunk with a
tool call, logprobs or the like decodes into the full structs; and a chunk with anything
unexpected (a provider extension, a wrong type) takes the lenient path, which keeps the
unknown fields as provider extras instead of dropping them.

Reference: https://platform.openai.com/docs/api-reference/chat-streaming
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import msgspec
import orjson

from analyzer.model import (
    Choice,
    Exchange,
    Part,
    Reconstruction,
    StreamChunk,
    ToolCall,
    Usage,
    created_unit_ms,
    dumps_exact,
    numbered_chunks,
)
from analyzer.protocols.events import (
    UNREADABLE,
    Index,
    decode_whole,
    error_text,
    not_utf8_warning,
    other_fields,
    preview,
    read_as_utf8,
    shown,
    unterminated_warning,
)
from analyzer.sse import Cut, Event, cut, lenient_events, read
from analyzer.usage import normalise as normalise_usage

PROTOCOL = "openai_chat"


# Provider extensions: fields some providers add to the OpenAI chunk. Declared on the full
# structs so such streams decode in one call, then kept as provider extras (values that say
# something; the last one wins). Fields not listed still work, through the lenient path.
ENVELOPE_EXTENSIONS = {
    "x_groq": "Groq: the request id, and the usage again in the last chunk",
    "provider": "OpenRouter: the upstream that served the request",
    "citations": "Perplexity: the sources behind the answer",
    "prompt_filter_results": "Azure: content filtering of the prompt (first chunk)",
    "moderation": "OpenAI: moderation details when a reply is stopped",
    "sla_metrics": "Novita behind the Hugging Face router",
    "prompt_text": "Crusoe (vLLM): the prompt as the model saw it",
    "prompt_token_ids": "Crusoe (vLLM): the prompt's token ids",
    "p": "Mistral: random padding",
}
CHOICE_EXTENSIONS = {
    "native_finish_reason": "OpenRouter: the upstream's own finish reason",
    "content_filter_results": "Azure: content filtering of the completion",
    "matched_stop": "SGLang (DeepSeek on Azure): the stop token that matched",
    "stop_reason": "vLLM and Crusoe: the stop token or string that matched",
    "token_ids": "Crusoe (vLLM): the generated token ids",
    "seed": "Together",
    "trace_details": "Writer",
}
DELTA_EXTENSIONS = {
    "channel": "gpt-oss on Groq: the harmony channel of the text",
    "executed_tools": "Groq compound: the tools the model ran",
    "graph_data": "Writer",
    "llm_data": "Writer",
    "image_data": "Writer",
    "translation_data": "Writer",
    "web_search_data": "Writer",
    "token_id": "Together: the token's id",
    "index": "a Mistral-compatible GLM server: a stray index in the delta",
}


def _extensions_struct(name: str, table: dict[str, str], base: type = msgspec.Struct) -> Any:
    fields = [(field, Any, None) for field in table]
    return msgspec.defstruct(name, fields, bases=(base,), forbid_unknown_fields=True, gc=False, kw_only=True)


_ChoiceExtensions = _extensions_struct("_ChoiceExtensions", CHOICE_EXTENSIONS)
_DeltaExtensions = _extensions_struct("_DeltaExtensions", DELTA_EXTENSIONS)


def informative(value: Any) -> bool:
    """Whether a provider field says anything: null, "", {} and [] do not (Azure ends with
    an empty content_filter_results that must not erase the real ones before it)."""
    return value is not None and value != "" and value != {} and value != []


# The full structs decoded without extension fields (`PlainChunk` and its parts, below).
_PLAIN: set[type] = set()


class Extensions:
    """Reads one level's provider extension fields off a decoded struct: all of them in one
    C call, so a chunk that has none costs one tuple comparison (and one decoded without
    them, `Plain…`, none at all)."""

    __slots__ = ("fields", "get", "none")

    def __init__(self, table: dict[str, str]) -> None:
        self.fields = tuple(table)
        self.get = attrgetter(*self.fields)
        self.none = (None,) * len(self.fields)

    def __call__(self, obj: Any) -> dict[str, Any] | None:
        """The extension fields `obj` carries that say something, or None."""
        if obj.__class__ in _PLAIN:
            return None
        values = self.get(obj)
        if values == self.none:
            return None
        found = {field: value for field, value in zip(self.fields, values, strict=True) if informative(value)}
        return found or None


envelope_extensions = Extensions(ENVELOPE_EXTENSIONS)
choice_extensions = Extensions(CHOICE_EXTENSIONS)
delta_extensions = Extensions(DELTA_EXTENSIONS)


class FunctionDelta(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    index: Index | None = None
    id: str | None = None
    type: str | None = None
    function: FunctionDelta | None = None


class Delta(_DeltaExtensions, forbid_unknown_fields=True, gc=False, kw_only=True):
    role: str | None = None
    # A string; Mistral sends a list of typed parts ({"type": "text" | "thinking", ...}).
    content: str | list[Any] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    reasoning_details: list[Any] | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    function_call: FunctionDelta | None = None
    annotations: list[Any] | None = None
    audio: Any = None


class ChoiceDelta(_ChoiceExtensions, forbid_unknown_fields=True, gc=False, kw_only=True):
    index: Index | None = None
    delta: Delta | None = None
    # Non-streaming responses carry `message`; Writer sends it beside `delta` in every chunk.
    message: Delta | None = None
    text: str | None = None  # legacy /completions
    logprobs: Any = None
    finish_reason: str | None = None


class Envelope(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The fields every chunk repeats, shared by the full and the lean chunk."""

    id: str | None = None
    object: str | None = None
    created: int | float | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    usage: dict[str, Any] | None = None
    # OpenAI pads chunks with random text against length side channels: no information.
    obfuscation: Any = None


_FullEnvelope = _extensions_struct("_FullEnvelope", ENVELOPE_EXTENSIONS, Envelope)


class Chunk(_FullEnvelope, forbid_unknown_fields=True, gc=False, kw_only=True):
    choices: list[ChoiceDelta] | None = None
    error: Any = None


class LeanDelta(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    # Often present as null; a value sends the chunk to the full structs.
    refusal: None = None
    tool_calls: None = None
    function_call: None = None
    audio: None = None
    annotations: None = None
    reasoning_details: None = None


class LeanChoice(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    delta: LeanDelta
    index: Index = 0
    logprobs: None = None
    finish_reason: str | None = None


class LeanChunk(Envelope, forbid_unknown_fields=True, gc=False):
    choices: tuple[LeanChoice, ...] = ()  # a tuple of untracked structs: the GC stops looking at it
    error: None = None


def _without_extensions(cls: type, table: dict[str, str], types: dict[str, Any]) -> Any:
    """`cls` without the provider extension fields of `table` (`types`: fields whose type
    becomes another such struct)."""
    fields = [
        (f.name, types.get(f.name, f.type), f.default) for f in msgspec.structs.fields(cls) if f.name not in table
    ]
    return msgspec.defstruct(f"Plain{cls.__name__}", fields, forbid_unknown_fields=True, gc=False, kw_only=True)


# The full structs without the provider extension fields: a stream that has none of them
# (nearly every one) decodes into these first, and then no chunk is searched for them.
PlainDelta = _without_extensions(Delta, DELTA_EXTENSIONS, {})
PlainChoiceDelta = _without_extensions(
    ChoiceDelta, CHOICE_EXTENSIONS, {"delta": PlainDelta | None, "message": PlainDelta | None}
)
PlainChunk = _without_extensions(Chunk, ENVELOPE_EXTENSIONS, {"choices": list[PlainChoiceDelta] | None})
_PLAIN.update((PlainDelta, PlainChoiceDelta, PlainChunk))

_decode_lean = msgspec.json.Decoder(LeanChunk).decode
_decode_lean_lines = msgspec.json.Decoder(LeanChunk).decode_lines
_decode_plain_lines = msgspec.json.Decoder(PlainChunk).decode_lines
_decode_full_lines = msgspec.json.Decoder(Chunk).decode_lines
_decode_full = msgspec.json.Decoder(Chunk).decode
_FIELDS = {
    cls: {f.name: f.type for f in msgspec.structs.fields(cls)}
    for cls in (Chunk, ChoiceDelta, Delta, ToolCallDelta, FunctionDelta)
}
_NESTED: dict[tuple[type, str], tuple[bool, type]] = {
    (Chunk, "choices"): (True, ChoiceDelta),
    (ChoiceDelta, "delta"): (False, Delta),
    (ChoiceDelta, "message"): (False, Delta),
    (Delta, "tool_calls"): (True, ToolCallDelta),
    (Delta, "function_call"): (False, FunctionDelta),
    (ToolCallDelta, "function"): (False, FunctionDelta),
}


def _coerce(obj: Any, cls: type, extras: dict[str, Any], problems: list[str], path: str) -> Any:
    """Build `cls` from a decoded dict field by field: unknown keys go to `extras`, values
    of an unexpected type are dropped and named in `problems`."""
    if not isinstance(obj, dict):
        problems.append(f"{path} is {type(obj).__name__}, not an object")
        return None
    fields = _FIELDS[cls]
    values: dict[str, Any] = {}
    for key, value in obj.items():
        if key not in fields:
            if informative(value):
                extras[key] = value
            continue
        nested = _NESTED.get((cls, key))
        if nested is not None and value is not None:
            many, sub = nested
            if many and isinstance(value, list):
                # Extras of list items (choices) are collected per item by the caller.
                items = []
                for n, item in enumerate(value):
                    item_extras: dict[str, Any] = {}
                    built = _coerce(item, sub, item_extras, problems, f"{path}.{key}[{n}]")
                    if built is not None:
                        items.append((built, item_extras) if cls is Chunk else built)
                        if cls is not Chunk:
                            extras.update(item_extras)
                values[key] = items
            elif not many:
                values[key] = _coerce(value, sub, extras, problems, f"{path}.{key}")
            else:
                problems.append(f"{path}.{key} is {type(value).__name__}, not a list")
            continue
        try:
            values[key] = msgspec.convert(value, fields[key], strict=False)
        except msgspec.ValidationError as exc:  # a value of another type, or out of range (an index)
            problems.append(f"{path}.{key}: {exc}")
    return cls(**values)


def _lenient_chunk(obj: Any) -> tuple[Chunk | None, dict[str, Any], list[dict[str, Any]], list[str]]:
    """A chunk from an already-decoded JSON value; returns the chunk, its top-level
    extras, each choice's extras (by position) and what had to be dropped."""
    top: dict[str, Any] = {}
    problems: list[str] = []
    chunk = _coerce(obj, Chunk, top, problems, "chunk")
    if chunk is None:
        return None, top, [], problems
    choice_extras: list[dict[str, Any]] = []
    if chunk.choices:
        choice_extras = [extras for _, extras in chunk.choices]
        chunk.choices = [choice for choice, _ in chunk.choices]
    return chunk, top, choice_extras, problems


class _ChoiceState:
    __slots__ = (
        "annotations",
        "content",
        "details",
        "extras",
        "finish_reason",
        "function_call",
        "index",
        "logprobs",
        "reasoning_content",
        "reasoning_field",
        "refusal",
        "role",
        "thinking_parts",
        "tools",
    )  # fmt: skip

    def __init__(self, index: int) -> None:
        self.index = index
        self.role: str | None = None
        self.content: list[str] | None = None
        # Reasoning by the field it came in (kept apart: some providers send it under two names).
        self.reasoning_content: list[str] = []
        self.reasoning_field: list[str] = []
        self.thinking_parts: list[str] = []
        self.refusal: list[str] | None = None
        self.details: list[Any] = []
        self.tools: list[ToolCall] = []
        self.function_call: ToolCall | None = None
        self.logprobs: dict[str, list[Any]] | None = None
        self.finish_reason: str | None = None
        self.annotations: list[Any] = []
        self.extras: dict[str, Any] = {}


class Accumulator:
    """Folds chunks into a Reconstruction. Feed `add()` per chunk, then `finish()`."""

    def __init__(self, rec: Reconstruction) -> None:
        self.rec = rec
        self.states: dict[int, _ChoiceState] = {}
        self.blank_model = False
        self.last_id: str | None = None
        self.last_model: str | None = None
        self.ids: set[str] = set()
        self.created_first: int | float | None = None
        self.created_last: int | float | None = None
        self.created_max: int | float | None = None
        self.created_backwards: list[tuple[int, float]] = []  # (seq, seconds earlier than the max so far)
        self.role_changes = 0
        self.tool_anomalies: list[str] = []
        self.first_token: int | None = None
        self.first_answer: int | None = None
        self.last_token: int | None = None

    def add(self, chunk: Chunk | LeanChunk, seq: int, choice_extras: list[dict[str, Any]] | None = None) -> None:
        """Fold one chunk in. The hot path: called once per chunk of every stream."""
        rec = self.rec
        chunk_id = chunk.id
        if chunk_id and chunk_id != self.last_id:
            self.last_id = chunk_id
            if rec.id is None:
                rec.id = chunk_id
            self.ids.add(chunk_id)
        model = chunk.model
        if model is not None and model != self.last_model:
            self.last_model = model
            if not model.strip():
                self.blank_model = True
            elif rec.served_model is None:
                rec.served_model = model
        created = chunk.created
        if created and created != self.created_last:  # Azure's first chunk says 0
            if self.created_first is None:
                self.created_first = self.created_max = rec.created = created
            elif created < self.created_max:
                self.created_backwards.append((seq, self.created_max - created))
            else:
                self.created_max = created
            self.created_last = created
        if rec.object is None and chunk.object:
            rec.object = chunk.object
        if chunk.system_fingerprint:
            rec.system_fingerprint = chunk.system_fingerprint
        if chunk.service_tier:
            rec.service_tier = chunk.service_tier
        if chunk.usage is not None:
            rec.usage = Usage(raw=chunk.usage)  # cumulative where repeated: the last one wins
        lean = chunk.__class__ is LeanChunk
        if not lean and chunk.error is not None:
            rec.error = chunk.error if isinstance(chunk.error, dict) else {"message": shown(chunk.error)}
        choices = chunk.choices
        if not choices:
            return
        states = self.states
        for choice in choices:
            index = choice.index
            if index is None:
                index = 0
            state = states.get(index)
            if state is None:
                state = states[index] = _ChoiceState(index)
            delta = choice.delta
            if delta is None and not lean:
                delta = choice.message
            text = False
            if delta is not None:
                content = delta.content
                if content is not None:
                    if lean or content.__class__ is str:
                        if content:
                            text = True
                            if self.first_answer is None:
                                self.first_answer = seq
                        if state.content is None:
                            state.content = [content]
                        else:
                            state.content.append(content)
                    else:
                        text = self._typed_parts(state, content, seq)
                reasoning = delta.reasoning_content
                if reasoning is not None:
                    state.reasoning_content.append(reasoning)
                    text = text or bool(reasoning)
                reasoning = delta.reasoning
                if reasoning is not None:
                    state.reasoning_field.append(reasoning)
                    text = text or bool(reasoning)
                role = delta.role
                if role is not None:
                    if state.role is None:
                        state.role = role
                    elif role != state.role:
                        self.role_changes += 1
                if not lean:
                    text = self._rare_delta(state, delta) or text
            if not lean:
                text = self._rare_choice(state, choice, delta, seq) or text
            if choice.finish_reason is not None:
                state.finish_reason = choice.finish_reason
            if text:
                if self.first_token is None:
                    self.first_token = seq
                self.last_token = seq
        if choice_extras:
            for choice, extras in zip(choices, choice_extras, strict=False):
                if extras:
                    states[choice.index if choice.index is not None else 0].extras.update(extras)

    def _rare_delta(self, state: _ChoiceState, delta: Delta) -> bool:
        """Delta fields the lean structs do not carry; True when one was generated text."""
        found = delta_extensions(delta)
        if found:
            state.extras.update(found)
        text = False
        if delta.tool_calls:
            self._tool_calls(state, delta.tool_calls)
            text = True
        if delta.refusal is not None:
            if state.refusal is None:
                state.refusal = [delta.refusal]
            else:
                state.refusal.append(delta.refusal)
            text = text or bool(delta.refusal)
        if delta.function_call is not None:
            self._function_call(state, delta.function_call)
            text = True
        if delta.reasoning_details:
            state.details.extend(delta.reasoning_details)
            text = True
        if delta.annotations:
            state.annotations.extend(delta.annotations)
        return text

    def _rare_choice(self, state: _ChoiceState, choice: ChoiceDelta, delta: Delta | None, seq: int) -> bool:
        found = choice_extensions(choice)
        if found:
            state.extras.update(found)
        text = False
        if choice.text is not None and delta is None:  # legacy /completions; Together sends it beside the delta too
            if state.content is None:
                state.content = [choice.text]
            else:
                state.content.append(choice.text)
            if choice.text:
                text = True
                if self.first_answer is None:
                    self.first_answer = seq
        if choice.logprobs is not None:
            self._logprobs(state, choice.logprobs)
        return text

    def _typed_parts(self, state: _ChoiceState, parts: list[Any], seq: int) -> bool:
        """Mistral: content as a list of typed parts; `thinking` parts are reasoning."""
        text = False
        for part in parts:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                if state.content is None:
                    state.content = []
                state.content.append(part["text"])
                if part["text"]:
                    text = True
                    if self.first_answer is None:
                        self.first_answer = seq
            elif kind == "thinking":
                thinking = _thinking_text(part.get("thinking"))
                state.thinking_parts.append(thinking)
                text = text or bool(thinking)
            else:
                state.extras.setdefault("content_parts", []).append(part)
        return text

    def _tool_calls(self, state: _ChoiceState, deltas: list[ToolCallDelta]) -> None:
        """Fragments join by `index`; id and type are set once and a repeated name is
        ignored, so providers that repeat them in every fragment (Qwen, OpenRouter→Novita)
        do not get them doubled; a name sent in pieces before the arguments is joined.
        Without an `index` (Mistral) a call is matched by id, else it is a new call."""
        tools = state.tools
        for delta in deltas:
            call = None
            if delta.index is not None:
                for existing in tools:
                    if existing.index == delta.index:
                        call = existing
                        break
            elif delta.id:
                for existing in tools:
                    if existing.id == delta.id:
                        call = existing
                        break
            elif tools:
                call = tools[-1]
            if call is None:
                call = ToolCall(index=delta.index if delta.index is not None else len(tools))
                tools.append(call)
            if delta.id:
                if call.id is None:
                    call.id = delta.id
                elif delta.id != call.id:
                    self.tool_anomalies.append(f"tool call {call.index}: id changed from {call.id!r} to {delta.id!r}")
            if delta.type and call.type is None:
                call.type = delta.type
            function = delta.function
            if function is not None:
                name = function.name
                if name and name != call.name:
                    if call.name is None:
                        call.name = name
                    elif not call.arguments:  # a name streamed in pieces, before any arguments
                        call.name += name
                    else:
                        self.tool_anomalies.append(f"tool call {call.index}: name {name!r} after {call.name!r}")
                if function.arguments:
                    call.arguments += function.arguments

    def _function_call(self, state: _ChoiceState, delta: FunctionDelta) -> None:
        call = state.function_call
        if call is None:
            call = state.function_call = ToolCall(index=0, type="function")
        if delta.name and call.name is None:
            call.name = delta.name
        if delta.arguments:
            call.arguments += delta.arguments

    def _logprobs(self, state: _ChoiceState, logprobs: Any) -> None:
        if not isinstance(logprobs, dict):
            return
        if state.logprobs is None:
            state.logprobs = {}
        for key, value in logprobs.items():
            if isinstance(value, list):
                if isinstance(state.logprobs.get(key), list):
                    state.logprobs[key].extend(value)
                else:
                    state.logprobs[key] = list(value)
            elif key not in state.logprobs or value is not None:
                state.logprobs[key] = value

    def finish(self) -> None:
        rec = self.rec
        rec.choices = [_choice(state) for _, state in sorted(self.states.items())]
        if self.created_first is not None:
            rec.created_range = (self.created_first, self.created_last, self.created_max)
        if self.blank_model and rec.served_model is None:
            if rec.requested_model:
                rec.served_model = rec.requested_model
                rec.warn(
                    "blank_model",
                    f"blank served model: the response names none; using the requested {rec.requested_model!r}",
                )
            else:
                rec.warn("blank_model", "blank served model: the response names none and there is no request")
        if len(self.ids) > 1:
            rec.warn("chunk_ids_differ", f"{len(self.ids)} different chunk ids in one stream; the first is used")
        unit_s = created_unit_ms(self.created_first) / 1000 if self.created_first is not None else 1.0
        if unit_s < 1:
            rec.warn("created_in_ms", f"created is in milliseconds ({self.created_first}), not seconds as the API says")
        for seq, earlier in self.created_backwards[:3]:
            which = "last chunk" if seq == len(rec.chunks) - 1 else f"chunk {seq}"
            rec.warn(
                "created_not_monotonic",
                f"created timestamps not monotonic ({which} is {_span(earlier * unit_s)} earlier than one before it)",
            )
        if self.role_changes:
            rec.warn("role_changed", f"role changed mid-stream {self.role_changes} time(s); the first role is kept")
        for anomaly in self.tool_anomalies[:5]:
            rec.warn("tool_call_conflict", anomaly)
        if rec.usage is not None:
            rec.usage = normalise_usage(rec.usage.raw)
        else:
            groq = rec.extras.get("x_groq")
            if isinstance(groq, dict) and isinstance(groq.get("usage"), dict):
                # Older Groq streams report usage only here, in the last chunk's x_groq.
                rec.usage = normalise_usage(groq["usage"])

    # For timing: indices into rec.chunks.
    def marks(self) -> dict[str, int | None]:
        return {"first_token": self.first_token, "first_answer": self.first_answer, "last_token": self.last_token}


def _span(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:g} s"


def _choice(state: _ChoiceState) -> Choice:
    # The first field that carried text wins; a provider sending the same text under two
    # names (vLLM: reasoning_content and reasoning) gets it once.
    reasoning, source = None, None
    for field, parts in (
        ("reasoning_content", state.reasoning_content),
        ("reasoning", state.reasoning_field),
        ("content[].thinking", state.thinking_parts),
    ):
        if parts:
            text = "".join(parts)
            if text or reasoning is None:
                if reasoning:
                    continue
                reasoning, source = text, field
    if not reasoning and state.details:
        from_details = "".join(_detail_text(d) for d in state.details)
        if from_details:
            reasoning, source = from_details, "reasoning_details"
    for call in state.tools:
        call.parse()
    if state.function_call is not None:
        state.function_call.parse()
    content = None if state.content is None else "".join(state.content)
    think, answer = split_think(content)
    refusal = None if state.refusal is None else "".join(state.refusal)
    calls = sorted(state.tools, key=_BY_INDEX) if len(state.tools) > 1 else list(state.tools)
    return Choice(
        index=state.index,
        role=state.role or "assistant",
        content=content,
        reasoning=reasoning,
        reasoning_source=source,
        reasoning_details=state.details,
        refusal=refusal,
        tool_calls=calls,
        function_call=state.function_call,
        logprobs=state.logprobs,
        finish_reason=state.finish_reason,
        annotations=state.annotations,
        extras=state.extras,
        think=think,
        answer=answer,
    )


_BY_INDEX = attrgetter("index")


_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


def split_think(content: str | None) -> tuple[str | None, str | None]:
    """(think, answer) for content that opens with a `<think>` block, else (None, content).
    A block never closed (the stream ended while thinking) is all think and no answer."""
    if not content or not content.lstrip().startswith(_THINK_OPEN):
        return None, content
    inner = content.lstrip()[len(_THINK_OPEN) :]
    think, closed, rest = inner.partition(_THINK_CLOSE)
    return think.strip("\n"), rest.lstrip("\n") if closed else ""


def _payload_is_done(data: bytes) -> bool:
    return data == b"[DONE]" or (len(data) < 16 and data.strip() == b"[DONE]")


def _fold(rec: Reconstruction, events: list[Event]) -> tuple[Accumulator, int]:
    """Fold decoded events into `rec`; returns the accumulator and how many payloads were not JSON."""
    acc = Accumulator(rec)
    add = acc.add
    chunks = rec.chunks
    append = chunks.append
    decode_lean = _decode_lean
    bad = 0
    for event in events:
        data = event.data
        try:
            chunk = decode_lean(data)
        except (ValueError, RecursionError):  # msgspec's errors, invalid UTF-8, nesting past its limit
            pass
        else:
            if not rec.done and event.event != "error":  # the hot path
                seq = len(chunks)
                append(StreamChunk(seq=seq, t_ms=event.t_ms, payload=chunk, created=chunk.created))
                add(chunk, seq)
                continue
        if not data:
            continue
        if _payload_is_done(data):
            rec.done = True
            continue
        top = extras = None
        try:
            if rec.done:
                raise msgspec.DecodeError  # after [DONE]: kept as a plain payload
            chunk = _decode_full(data)
        except (ValueError, RecursionError):
            # A plain parse only when the typed ones did not do: after [DONE], odd shapes, not JSON.
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                obj = read_as_utf8(data, orjson.loads)
                if obj is UNREADABLE:
                    bad += 1
                    rec.warn("bad_chunk", f"event {len(chunks) + bad}: payload is not JSON ({exc}): {preview(data)}")
                    continue
                not_utf8_warning(rec, len(chunks) + bad + 1)
            if rec.done:
                rec.after_done.append(obj)
                continue
            chunk, top, extras, problems = _lenient_chunk(obj)
            for problem in problems:
                rec.warn("chunk_shape", f"event {len(chunks) + bad}: {problem}: ignored")
            if chunk is None:
                continue
        known = envelope_extensions(chunk)
        if known:
            top = {**known, **top} if top else known
        if top:
            rec.extras.update(top)
        if event.event == "error" and chunk.error is None:
            chunk.error = orjson.loads(data)
        seq = len(chunks)
        append(StreamChunk(seq=seq, t_ms=event.t_ms, payload=chunk, created=chunk.created, extras=top or None))
        add(chunk, seq, extras)
    return acc, bad


def chunk_parts(chunk: StreamChunk) -> list[Part]:
    """What one chunk carries, piece by piece; a chunk with none (only a finish_reason or
    an empty delta) is not an event of its own."""
    payload: Chunk = chunk.payload
    parts: list[Part] = []
    for choice in payload.choices or ():
        index = choice.index if choice.index is not None else 0
        delta = choice.delta if choice.delta is not None else choice.message
        if delta is not None:
            if delta.role:
                parts.append(Part(index, "role", delta.role))
            for field in (delta.reasoning_content, delta.reasoning):
                if field:
                    parts.append(Part(index, "reasoning", field))
            if isinstance(delta.content, str):
                if delta.content:
                    parts.append(Part(index, "content", delta.content))
            elif delta.content:
                for part in delta.content:
                    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                        if part["text"]:  # as the fold reads it
                            parts.append(Part(index, "content", part["text"]))
                    elif isinstance(part, dict) and part.get("type") == "thinking":
                        parts.append(Part(index, "reasoning", _thinking_text(part.get("thinking"))))
            if delta.reasoning_details:
                parts.append(Part(index, "reasoning", "".join(_detail_text(d) for d in delta.reasoning_details)))
            for call in delta.tool_calls or ():
                parts.append(Part(index, "tool_call", (call.function.arguments or "") if call.function else ""))
            if delta.function_call is not None:
                parts.append(Part(index, "tool_call", delta.function_call.arguments or ""))
            if delta.refusal:
                parts.append(Part(index, "refusal", delta.refusal))
            if delta.annotations:
                parts.append(Part(index, "extra", dumps_exact(delta.annotations)))
        elif choice.text:
            parts.append(Part(index, "content", choice.text))
    if payload.usage is not None:
        parts.append(Part(None, "usage", dumps_exact(payload.usage)))
    if chunk.extras:
        parts.append(Part(None, "extra", dumps_exact(chunk.extras)))
    if payload.error is not None:
        parts.append(Part(None, "error", dumps_exact(payload.error)))
    return parts


def _thinking_text(inner: Any) -> str:
    if isinstance(inner, str):
        return inner
    if isinstance(inner, list):
        return "".join(p.get("text", "") for p in inner if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _detail_text(detail: Any) -> str:
    if isinstance(detail, dict):
        return shown(detail.get("text") or detail.get("summary") or "")
    return ""


# Tests switch this off to hold the whole-stream path to the general decoder's results.
WHOLE_STREAM = True


def _whole_stream(
    body: bytes, reads: list[tuple[float, int]] | None
) -> tuple[list[LeanChunk] | list[Chunk], Cut] | None:
    """Decode every event in one typed call, or None: the body cut into one JSON value per
    event by `analyzer.sse.cut` (which proves it, however the stream is framed; `[DONE]`
    allowed last), then read by the lean structs or else (tool calls, logprobs, refusals)
    the full ones, without and then with the provider extension fields. Anything else (an
    event that is no JSON object, an `error` event, two values in one event, bad JSON, an
    unknown field) leaves the general decoder to it."""
    whole = cut(body, reads, done=True)
    if whole is None or (whole.names is not None and "error" in whole.names):
        return None  # an `error` event: its payload is the error (`_fold`)
    decoded = decode_whole(whole, (_decode_lean_lines, _decode_plain_lines, _decode_full_lines))
    return None if decoded is None else (decoded, whole)


def reconstruct_stream(exchange: Exchange, rec: Reconstruction) -> Reconstruction:
    response = exchange.response
    body = response.body if response else b""
    reads = response.chunks if response else None
    fast = _whole_stream(body, reads) if WHOLE_STREAM else None
    if fast is not None:
        decoded, whole = fast
        rec.done = whole.done
        acc = Accumulator(rec)
        add = acc.add
        created = [chunk.created for chunk in decoded]
        if decoded and decoded[0].__class__ is Chunk:  # the full structs: provider extensions too
            found = list(map(envelope_extensions, decoded))
            for one in found:
                if one:
                    rec.extras.update(one)
            rec.chunks = numbered_chunks(whole.times, decoded, created, found)
        else:
            rec.chunks = numbered_chunks(whole.times, decoded, created)
        for seq, chunk in enumerate(decoded):
            add(chunk, seq)
        _framing(rec, whole.comments, whole.fields, whole.ids, whole.unterminated)
        acc.finish()
        rec.marks = acc.marks()
        _ending(exchange, rec)
        return rec
    stream = read(body, reads)
    events = stream.events
    acc, bad = _fold(rec, events)
    if bad:
        lenient = Reconstruction(protocol=PROTOCOL, streamed=True, requested_model=rec.requested_model)
        lenient_acc, lenient_bad = _fold(lenient, lenient_events(body))
        if lenient_bad < bad and len(lenient.chunks) >= len(rec.chunks):
            lenient.warn(
                "lenient_sse",
                f"lenient SSE parse (payloads wrapped across lines): the strict parse left {bad} payload(s) unreadable",
            )
            lenient.warnings.extend(w for w in rec.warnings if w.code not in ("bad_chunk", "chunk_shape"))
            rec, acc = lenient, lenient_acc
    ids = [event.id for event in events]
    _framing(rec, stream.comments, stream.fields, ids, bool(events) and events[-1].unterminated)
    acc.finish()
    rec.marks = acc.marks()
    _ending(exchange, rec)
    return rec


def _framing(
    rec: Reconstruction,
    comments: list[str],
    fields: list[tuple[str, str]],
    ids: list[str | None] | None,
    unterminated: bool,
) -> None:
    """What the stream said besides its events, after the fold, on either path."""
    rec.comments = comments
    other_fields(rec, fields)
    replayed = _replayed_events(ids or [])
    if replayed:
        rec.warn("duplicate_events", f"{replayed} event(s) repeat an earlier event id (a replay after a reconnect?)")
    if unterminated and not rec.done:
        unterminated_warning(rec)


def _replayed_events(ids: list[str | None]) -> int:
    """Events whose `id:` returns to one seen before another: a server replaying events.
    (An event without an `id:` field keeps the last one, so a run of equal ids is normal.)"""
    seen: set[str] = set()
    previous = None
    replayed = 0
    for event_id in ids:
        if event_id is not None and event_id != previous:
            if event_id in seen:
                replayed += 1
            seen.add(event_id)
            previous = event_id
    return replayed


def _ending(exchange: Exchange, rec: Reconstruction) -> None:
    finished = bool(rec.choices) and all(choice.finish_reason for choice in rec.choices)
    if rec.error is not None:
        rec.truncated = not rec.done and not finished
        rec.warn("stream_error", f"error mid-stream: {error_text(rec.error)}")
    elif rec.done:
        rec.truncated = False
    elif finished:
        rec.truncated = False
        rec.warn("no_done", "no [DONE] after the finish_reason (the provider omits it; not a truncation)")
    else:
        rec.truncated = True
        rec.warn("truncated", "stream ended before finish_reason and [DONE]: reconstructed as far as it got")
    if exchange.error:
        rec.warn("capture_error", f"the exchange ended early: {exchange.error}")
        rec.truncated = rec.truncated or not rec.done
    if rec.after_done:
        rec.warn("data_after_done", f"{len(rec.after_done)} payload(s) after [DONE], kept as provider extras")


def reconstruct_json(exchange: Exchange, rec: Reconstruction, obj: Any) -> Reconstruction:
    """A non-streaming response body (`chat.completion`)."""
    chunk, top, extras, problems = _lenient_chunk(obj)
    rec.extras.update(top)
    for problem in problems:
        rec.warn("response_shape", f"{problem}: ignored")
    acc = Accumulator(rec)
    if chunk is not None:
        rec.chunks.append(StreamChunk(seq=0, t_ms=None, payload=chunk, created=chunk.created))
        acc.add(chunk, 0, extras)
    acc.finish()
    rec.marks = acc.marks()
    return rec


def request_messages(exchange: Exchange) -> list[dict[str, Any]]:
    """The message history the request sent, as given."""
    body = exchange.request.json() if exchange.request else None
    messages = body.get("messages") if isinstance(body, dict) else None
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _tool_call(call: ToolCall, protocol: str) -> dict[str, Any]:
    # Gemini's calls often carry no id: its API answers them by name, and so does the mapping.
    call_id = call.id if call.id is not None or protocol != "gemini" else call.name
    if call.type == "custom":  # a free-text tool (the Responses API's custom tools)
        return {"id": call_id, "type": "custom", "custom": {"name": call.name, "input": call.arguments}}
    return {
        "id": call_id,
        "type": call.type or "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def to_openai(rec: Reconstruction) -> dict[str, Any]:
    """What an OpenAI-compatible client would have received without streaming."""
    choices = []
    for choice in rec.choices:
        message: dict[str, Any] = {"role": choice.role, "content": choice.content, "refusal": choice.refusal}
        if choice.reasoning is not None:
            message["reasoning_content"] = choice.reasoning
        if choice.tool_calls:
            message["tool_calls"] = [_tool_call(call, rec.protocol) for call in choice.tool_calls]
        if choice.function_call is not None:
            message["function_call"] = {"name": choice.function_call.name, "arguments": choice.function_call.arguments}
        if choice.annotations:
            message["annotations"] = choice.annotations
        choices.append(
            {
                "index": choice.index,
                "message": message,
                "logprobs": choice.logprobs,
                "finish_reason": choice.finish_reason,
            }
        )
    from analyzer.protocols.events import openai_usage

    result: dict[str, Any] = {
        "id": rec.id,
        "object": "chat.completion",
        "created": rec.created,
        "model": rec.served_model,
        "choices": choices,
        "usage": (rec.usage.raw if rec.protocol == PROTOCOL else openai_usage(rec)) if rec.usage else None,
    }
    if rec.system_fingerprint is not None:
        result["system_fingerprint"] = rec.system_fingerprint
    if rec.service_tier is not None:
        result["service_tier"] = rec.service_tier
    if rec.error is not None:
        result["error"] = rec.error
    return result
