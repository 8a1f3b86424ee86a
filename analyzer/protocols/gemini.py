"""Google's Gemini API (`…:generateContent`, `…:streamGenerateContent`), on the Gemini
Developer API and on Vertex AI.

Streamed, each event is a whole `GenerateContentResponse` holding the next pieces of each
candidate: with `?alt=sse` as server-sent events, without it as one JSON array whose
elements arrive one by one. Gemini's SDK has no accumulator; the rules here follow the
API reference and what the servers send:

- Candidates are told apart by `index` (absent means 0).
- A `text` part extends the candidate's previous part when that is a text part of the
  same kind (`thought: true` or not) not yet closed by a `thoughtSignature`; otherwise it
  starts a new part. A part's `thoughtSignature` lands on the part it extends or starts;
  an empty text part that only brings a signature closes the previous part with it.
- `functionCall` parts are never merged: each is one call. Vertex's streamed arguments
  (`willContinue`, `partialArgs` with a JSON path and a piece of value) continue the open
  call; a `functionCall` with neither name nor arguments closes it.
- Other parts (`executableCode`, `codeExecutionResult`, `inlineData`, …) are kept as
  they come.
- `finishReason`, `safetyRatings`, `citationMetadata`, `groundingMetadata`: the latest
  value. `usageMetadata` is cumulative: the last one wins, never a sum.

Onto the chat shape: text is the content, thought text the reasoning, function calls the
tool calls (arguments as a JSON string), code execution parts provider extras.

A stream of the common shape is decoded typed in one call and folded by attribute (the
fast path); the rules are the same, applied by the same code wherever a part is not a
plain piece of text.

Reference: https://ai.google.dev/api/generate-content
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import itertools
import re
from datetime import datetime
from typing import Any, Literal

import msgspec
import orjson
from msgspec import UNSET, UnsetType

from analyzer.model import Choice, Exchange, Part, Reconstruction, dumps_exact, numbered_chunks
from analyzer.protocols.events import (
    Index,
    Marks,
    add_chunk,
    as_list,
    as_text,
    content_text,
    ending,
    error_text,
    guarded,
    history_call,
    history_turn,
    index_of,
    json_text,
    shown,
    stream_payloads,
    tool_call,
    typed_events,
)
from analyzer.usage import normalise as normalise_usage

PROTOCOL = "gemini"
# How far past an argument list's end a `partialArgs` path may reach (the gap is filled with
# nulls); an index further out is not followed.
MAX_GAP = 1024
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
}


# The fast path decodes a whole stream typed, in one call: the wire's own names, every field
# optional and UNSET when absent, so that `msgspec.to_builtins` gives back each payload as
# sent (`rec.chunks` holds the typed responses). The common fields first; a stream with
# any other field Google documents takes a second decode into the `Full…` types; anything
# else (an unknown field, a value of another type, null) fails both, and the stream takes
# the general path, as dicts. Reference: https://ai.google.dev/api/generate-content and, for
# Vertex AI's streamed arguments, `google.cloud.aiplatform.v1.FunctionCall`.
class _Wire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    pass


class PartialArg(_Wire):
    jsonPath: str | UnsetType = UNSET
    stringValue: str | UnsetType = UNSET
    numberValue: int | float | UnsetType = UNSET
    boolValue: bool | UnsetType = UNSET
    nullValue: str | UnsetType = UNSET
    willContinue: bool | UnsetType = UNSET


class FunctionCall(_Wire):
    id: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    args: dict[str, Any] | UnsetType = UNSET
    partialArgs: list[PartialArg] | UnsetType = UNSET
    willContinue: bool | UnsetType = UNSET


class ContentPart(_Wire):
    text: str | UnsetType = UNSET
    thought: bool | UnsetType = UNSET
    thoughtSignature: str | UnsetType = UNSET
    functionCall: FunctionCall | UnsetType = UNSET


class Content(_Wire):
    parts: list[ContentPart] | UnsetType = UNSET
    # The two roles there are: decoded as the one string object each, not a new one per response.
    role: Literal["model", "user"] | UnsetType = UNSET


class Candidate(_Wire):
    content: Content | UnsetType = UNSET
    finishReason: str | UnsetType = UNSET
    index: Index | UnsetType = UNSET


class GenerateContentResponse(_Wire):
    candidates: list[Candidate] | UnsetType = UNSET
    # Kept as sent (msgspec.Raw: found, not built; every event repeats it, the fold reads the
    # last one): any figure Google adds stays on this path. `events.payload_of` inlines it.
    usageMetadata: msgspec.Raw | UnsetType = UNSET
    modelVersion: str | UnsetType = UNSET
    createTime: str | UnsetType = UNSET
    responseId: str | UnsetType = UNSET


class FullContentPart(ContentPart):
    """A part of any kind: the fold takes each as a dict."""

    inlineData: dict[str, Any] | UnsetType = UNSET
    fileData: dict[str, Any] | UnsetType = UNSET
    functionResponse: dict[str, Any] | UnsetType = UNSET
    executableCode: dict[str, Any] | UnsetType = UNSET
    codeExecutionResult: dict[str, Any] | UnsetType = UNSET
    toolCall: dict[str, Any] | UnsetType = UNSET
    toolResponse: dict[str, Any] | UnsetType = UNSET
    videoMetadata: dict[str, Any] | UnsetType = UNSET
    mediaResolution: dict[str, Any] | UnsetType = UNSET
    partMetadata: dict[str, Any] | UnsetType = UNSET


class FullContent(Content):
    parts: list[FullContentPart] | UnsetType = UNSET
    role: str | UnsetType = UNSET


class FullCandidate(Candidate):
    content: FullContent | UnsetType = UNSET
    finishMessage: str | UnsetType = UNSET
    safetyRatings: list[dict[str, Any]] | UnsetType = UNSET
    citationMetadata: dict[str, Any] | UnsetType = UNSET
    tokenCount: int | UnsetType = UNSET
    groundingAttributions: list[dict[str, Any]] | UnsetType = UNSET
    groundingMetadata: dict[str, Any] | UnsetType = UNSET
    avgLogprobs: int | float | UnsetType = UNSET
    logprobsResult: dict[str, Any] | UnsetType = UNSET
    urlContextMetadata: dict[str, Any] | UnsetType = UNSET


class FullGenerateContentResponse(GenerateContentResponse):
    candidates: list[FullCandidate] | UnsetType = UNSET
    # Any usage figures: the fold keeps the latest object whole.
    usageMetadata: dict[str, Any] | UnsetType = UNSET
    promptFeedback: dict[str, Any] | UnsetType = UNSET
    modelStatus: dict[str, Any] | UnsetType = UNSET


_decode_common = msgspec.json.Decoder(GenerateContentResponse).decode_lines
_decode_full = msgspec.json.Decoder(FullGenerateContentResponse).decode_lines


class _Candidate:
    __slots__ = ("fields", "index", "open_call", "parts", "pieces", "role")

    def __init__(self, index: int) -> None:
        self.index = index
        self.role: str | None = None
        self.parts: list[dict[str, Any]] = []
        # A text part's pieces as they came (joined once at the end), None for other parts.
        self.pieces: list[list[str] | None] = []
        self.fields: dict[str, Any] = {}
        self.open_call: dict[str, Any] | None = None  # a Vertex functionCall whose arguments still stream

    def joinable(self, thought: bool) -> list[str] | None:
        """The pieces of the last part when a piece of text of this kind (thought or not) extends
        it: a text part of the same kind not yet closed by a signature."""
        pieces = self.pieces[-1] if self.pieces else None
        if pieces is None:
            return None
        last = self.parts[-1]
        return pieces if bool(last.get("thought")) == thought and "thoughtSignature" not in last else None

    def add_part(self, part: dict[str, Any]) -> tuple[bool, bool]:
        """Fold one part in; returns (generated something, was it answer text)."""
        signature = part.get("thoughtSignature")
        if "text" in part and len(part) - ("thought" in part) - (signature is not None) == 1:
            text = as_text(part["text"])
            thought = bool(part.get("thought"))
            if not text and signature is not None and self.parts and "thoughtSignature" not in self.parts[-1]:
                self.parts[-1]["thoughtSignature"] = signature  # a signature alone closes the part before it
                return False, False
            pieces = self.joinable(thought)
            if pieces is not None:
                pieces.append(text)
                if signature is not None:
                    self.parts[-1]["thoughtSignature"] = signature
            elif text or signature is not None:
                self.parts.append(dict(part, text=""))
                self.pieces.append([text])
            return bool(text), bool(text) and not thought
        call = part.get("functionCall")
        if isinstance(call, dict):
            return self._function_call(part, call), False
        self.parts.append(dict(part))
        self.pieces.append(None)
        return True, False

    def _function_call(self, part: dict[str, Any], call: dict[str, Any]) -> bool:
        streamed = "partialArgs" in call or call.get("willContinue")
        if self.open_call is not None and not call.get("name"):
            for piece in call.get("partialArgs") or ():
                if isinstance(piece, dict):
                    _set_path(self.open_call.setdefault("args", {}), piece)
            if not call.get("willContinue"):
                self.open_call.pop("willContinue", None)
                self.open_call = None
            return bool(call.get("partialArgs"))
        if not call:  # an empty call with none open: nothing
            return False
        own = dict(call)
        own.pop("partialArgs", None)
        if streamed:
            # Its own copy of any arguments sent whole: the pieces to come must not change the payload.
            own["args"] = copy.deepcopy(own["args"]) if "args" in own else {}
            for piece in call.get("partialArgs") or ():
                if isinstance(piece, dict):
                    _set_path(own["args"], piece)
            self.open_call = own if call.get("willContinue") else None
        self.parts.append(dict(part, functionCall=own))
        self.pieces.append(None)
        return True


# RFC 9535 selectors: `.name`, `[0]`, `['name']` and `["name"]`.
_PATH_STEP = re.compile(r"""\.([A-Za-z_][\w-]*)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\]""")


def _set_path(args: dict[str, Any], piece: dict[str, Any]) -> None:
    """Apply one of Vertex's `partialArgs` entries: a JSON path (`$.a.b[0]`) and a value,
    strings concatenating onto what is there."""
    path = str(piece.get("jsonPath") or "$")
    steps: list[str | int] = []
    for name, number, single, double in _PATH_STEP.findall(path[1:] if path.startswith("$") else path):
        steps.append(int(number) if number else (name or single or double))
    if not steps:
        return
    target: Any = args
    for step, following in itertools.pairwise(steps):
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(step, int) and isinstance(target, list) and step < len(target) + MAX_GAP:
            while len(target) <= step:
                target.append(None)
            if target[step] is None:
                target[step] = empty
            target = target[step]
        elif isinstance(step, str) and isinstance(target, dict):
            target = target.setdefault(step, empty)
        else:  # a path that does not fit what is there (e.g. `$[0]` into the arguments object)
            return
    last = steps[-1]
    if "stringValue" in piece:
        value: Any = piece["stringValue"]
    elif "numberValue" in piece:
        value = piece["numberValue"]
    elif "boolValue" in piece:
        value = piece["boolValue"]
    elif "nullValue" in piece:
        value = None
    else:
        return
    if isinstance(last, int) and isinstance(target, list):
        if last >= len(target) + MAX_GAP:
            return  # an index far past the end (a corrupt or hostile path): not followed
        while len(target) <= last:
            target.append(None)
        target[last] = target[last] + value if isinstance(value, str) and isinstance(target[last], str) else value
    elif isinstance(last, str) and isinstance(target, dict):
        current = target.get(last)
        target[last] = current + value if isinstance(value, str) and isinstance(current, str) else value


class _Fold:
    def __init__(self, rec: Reconstruction) -> None:
        self.rec = rec
        self.candidates: dict[int, _Candidate] = {}
        self.fields: dict[str, Any] = {}
        self.usage: dict[str, Any] | None = None
        self.marks = Marks()

    def add(self, payload: Any, seq: int) -> None:
        if isinstance(payload, list):  # a JSON array's worth in one event
            for element in payload:
                self.add(element, seq)
            return
        if not isinstance(payload, dict):
            self.rec.warn("chunk_shape", f"event {seq + 1}: a {type(payload).__name__}, not an object: ignored")
            return
        if "error" in payload and "candidates" not in payload:
            error = payload["error"]
            self.rec.error = error if isinstance(error, dict) else {"message": shown(error)}
            return
        fields = self.fields
        for key, value in payload.items():
            if key == "candidates":
                for candidate in value or ():
                    if isinstance(candidate, dict):
                        self._candidate(candidate, seq)
            elif key == "usageMetadata":
                if isinstance(value, dict):
                    self.usage = value
            elif value is not None:  # modelVersion, responseId, createTime, promptFeedback…: the latest
                fields[key] = value

    def _candidate(self, candidate: dict[str, Any], seq: int) -> None:
        index = index_of(candidate.get("index"))
        if index is None:
            if candidate.get("index") is not None:
                self.rec.warn(
                    "chunk_shape", f"event {seq + 1}: candidate index {shown(candidate['index'])[:40]}: taken as 0"
                )
            index = 0
        state = self.candidates.get(index)
        if state is None:
            state = self.candidates[index] = _Candidate(index)
        fields = state.fields
        for key, value in candidate.items():
            if key == "content":
                if isinstance(value, dict):
                    state.role = value.get("role") or state.role
                    for part in value.get("parts") or ():
                        if isinstance(part, dict):
                            generated, answer = state.add_part(part)
                            if generated:
                                self.marks.token(seq, answer)
            elif key != "index" and value is not None:  # finishReason, safetyRatings…: the latest
                fields[key] = value

    def native(self) -> dict[str, Any]:
        candidates = []
        for index in sorted(self.candidates):
            state = self.candidates[index]
            for part, pieces in zip(state.parts, state.pieces, strict=True):
                if pieces is not None:
                    part["text"] = "".join(pieces)
            candidate: dict[str, Any] = {"content": {"parts": state.parts, "role": state.role or "model"}}
            candidate.update(state.fields)
            candidate["index"] = index
            candidates.append(candidate)
        response: dict[str, Any] = {"candidates": candidates}
        if self.usage is not None:
            response["usageMetadata"] = self.usage
        response.update(self.fields)
        return response

    def add_typed(self, responses: list[GenerateContentResponse]) -> None:
        """The fast path's driver: a whole stream's typed responses (one at least), read by
        attribute. A piece of text that extends the open text part goes straight onto its
        pieces; every other part goes through `_Candidate.add_part`, and a candidate with more
        than content (its finish reason, any field of the `Full…` types) through `_candidate`,
        as the dicts they were, so the fold's rules live in one place."""
        marks, candidates = self.marks, self.candidates
        to_builtins, unset = msgspec.to_builtins, UNSET
        # The candidate the last response spoke of, by its `index` as sent; the pieces of its
        # open text part and their kind (None: ask `joinable`).
        state: Any = None
        state_index: Any = None
        open_pieces: list[str] | None = None
        open_thought = False
        last_piece = None  # the last response whose text extended an open part
        full = responses[0].__class__ is FullGenerateContentResponse
        for seq, response in enumerate(responses):
            for candidate in response.candidates or ():
                if full or candidate.finishReason is not unset:
                    self._candidate(to_builtins(candidate), seq)
                    state_index, open_pieces = None, None  # no index is None: the next one looks its state up
                    continue
                index = candidate.index
                if index is not state_index:
                    state_index, open_pieces = index, None
                    index = 0 if index is unset else index
                    state = candidates.get(index)
                    if state is None:
                        state = candidates[index] = _Candidate(index)
                content = candidate.content
                if content is unset:
                    continue
                role = content.role
                if role:
                    state.role = role
                for part in content.parts or ():
                    text = part.text
                    if text is not unset and part.thoughtSignature is unset and part.functionCall is unset:
                        thought = part.thought is True
                        if open_pieces is None or thought is not open_thought:
                            open_pieces, open_thought = state.joinable(thought), thought
                        if open_pieces is not None:
                            # The part was started by text of this kind: the marks have it.
                            open_pieces.append(text)
                            if text:
                                last_piece = seq
                            continue
                    generated, answer = state.add_part(to_builtins(part))
                    open_pieces = None
                    if generated:
                        marks.token(seq, answer)
        if last_piece is not None and (marks.last_token is None or last_piece > marks.last_token):
            marks.last_token = last_piece
        self.usage = _latest_usage(responses, self.rec)
        for name in responses[0].__struct_fields__:
            if name != "candidates" and name != "usageMetadata" and (value := _latest(responses, name)) is not unset:
                self.fields[name] = value

    @property
    def finished(self) -> bool:
        return bool(self.candidates) and all("finishReason" in c.fields for c in self.candidates.values())


def _latest(responses: list[GenerateContentResponse], name: str) -> Any:
    """The last value the responses gave field `name` (UNSET if none did): the general fold's
    "the latest value wins", found from the end, where the envelope's fields usually are."""
    for response in reversed(responses):
        value = getattr(response, name)
        if value is not UNSET:
            return value
    return UNSET


def _latest_usage(responses: list[GenerateContentResponse], rec: Reconstruction) -> dict[str, Any] | None:
    """The last usage object the responses gave (as the general fold keeps it: a value that
    is not an object is passed over), whether kept raw (`GenerateContentResponse`) or whole."""
    for response in reversed(responses):
        value = response.usageMetadata
        if value.__class__ is msgspec.Raw:
            value = msgspec.json.decode(value)  # UTF-8: `_typed_events` made sure
        if isinstance(value, dict):
            return value
    return None


def reconstruct_stream(exchange: Exchange, rec: Reconstruction) -> Reconstruction:
    """`alt=sse`: one response per event."""
    typed = _typed_events(exchange, rec)
    if typed is not None:
        responses, times = typed
        rec.chunks = numbered_chunks(times, responses)
        fold = _Fold(rec)
        fold.add_typed(responses)
        return _finish(exchange, rec, fold)
    fold = _Fold(rec)
    for t_ms, _, payload in stream_payloads(exchange, rec):
        seq = add_chunk(rec, t_ms, payload)
        guarded(rec, seq, fold.add, payload, seq)
    return _finish(exchange, rec, fold)


def _typed_events(exchange: Exchange, rec: Reconstruction) -> tuple[list[GenerateContentResponse], list[Any]] | None:
    """The stream's responses decoded typed, when they hold only fields the common types or
    else the `Full…` ones know (`typed_events`). msgspec checks no byte of a field it keeps
    raw: a usage object that is not UTF-8 leaves the stream to the general decoder, which
    reads such bytes as U+FFFD in any field and says in which event."""
    ascii_body = exchange.response is None or exchange.response.body.isascii()
    return typed_events(exchange, rec, _decode_common, _decode_full, accept=None if ascii_body else _usage_is_utf8)


def _usage_is_utf8(responses: list[GenerateContentResponse]) -> bool:
    for response in responses:
        usage = response.usageMetadata
        if usage.__class__ is msgspec.Raw:
            try:
                memoryview(usage).tobytes().decode("utf-8")
            except UnicodeDecodeError:
                return False
    return True


def reconstruct_array(exchange: Exchange, rec: Reconstruction) -> Reconstruction:
    """Without `alt=sse`: one JSON array, its elements arriving one by one (and possibly cut
    off: the elements before the cut are kept)."""
    response = exchange.response
    body = response.body if response else b""
    fold = _Fold(rec)
    elements, complete = array_elements(body)
    reads = response.chunks if response else None
    ends = [read_end for _, read_end in reads] if reads else []
    for start, end in elements:
        try:
            payload = orjson.loads(body[start:end])
        except orjson.JSONDecodeError as exc:
            rec.warn("bad_chunk", f"array element at byte {start}: not JSON ({exc})")
            continue
        t_ms = None
        if reads:  # the read that brought the element's last byte
            at = bisect.bisect_left(ends, end)
            t_ms = reads[at][0] if at < len(reads) else None
        fold.add(payload, add_chunk(rec, t_ms, payload))
    if not complete:
        rec.warn("unterminated_array", "the JSON array of responses was cut off: the whole elements before it are kept")
    return _finish(exchange, rec, fold)


def _finish(exchange: Exchange, rec: Reconstruction, fold: _Fold) -> Reconstruction:
    _apply(rec, fold.native(), fold.usage)
    status = exchange.response.status if exchange.response else None
    if rec.error is not None and not fold.candidates and status is not None and status >= 400:
        # A request refused up front: without `alt=sse` Google wraps even the error body in the
        # array (`[{"error": …}]`, which google-genai's APIError unwraps). An error, not a cut stream.
        rec.warn("error_response", f"error response: HTTP {status}: {error_text(rec.error)}")
        return rec
    rec.marks = fold.marks.as_dict()
    rec.done = fold.finished
    if not fold.candidates and rec.error is None:
        feedback = fold.fields.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            rec.warn("prompt_blocked", f"the prompt was blocked: {feedback['blockReason']}")
            rec.done = True
    ending(exchange, rec, rec.done, "every candidate had a finishReason")
    return rec


def reconstruct_json(exchange: Exchange, rec: Reconstruction, obj: Any) -> Reconstruction:
    """A non-streaming response (one object), or a whole array of streamed ones."""
    fold = _Fold(rec)
    for element in obj if isinstance(obj, list) else [obj]:
        fold.add(element, add_chunk(rec, None, element))
    if not isinstance(obj, list):
        rec.marks = {}
    _apply(rec, fold.native(), fold.usage)
    if not isinstance(obj, list):
        choice = rec.choices[0] if rec.choices else None
        if choice and (choice.content or choice.reasoning or choice.tool_calls):
            rec.marks = {"first_token": 0, "first_answer": 0 if choice.content else None, "last_token": 0}
    else:
        rec.marks = fold.marks.as_dict()
    rec.done = True
    if rec.error is not None:
        rec.warn("stream_error" if isinstance(obj, list) else "error_response", f"error: {rec.error.get('message')}")
    return rec


def _apply(rec: Reconstruction, response: dict[str, Any], usage: dict[str, Any] | None) -> None:
    rec.native = response
    rec.object = "generateContentResponse"
    rec.id = response.get("responseId") if isinstance(response.get("responseId"), str) else None
    if isinstance(response.get("modelVersion"), str) and response["modelVersion"]:
        rec.served_model = response["modelVersion"]
    created = response.get("createTime")
    if isinstance(created, str):
        with contextlib.suppress(ValueError):
            rec.created = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    rec.choices = [_choice(candidate, rec) for candidate in response.get("candidates") or ()]
    if usage is not None:
        rec.usage = normalise_usage(usage)
    for key in ("promptFeedback", "modelStatus"):
        if response.get(key) is not None:
            rec.extras[key] = response[key]


def _choice(candidate: dict[str, Any], rec: Reconstruction) -> Choice:
    texts: list[str] = []
    thoughts: list[str] = []
    calls = []
    server: list[Any] = []
    signatures = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if part.get("thoughtSignature"):
            signatures.append(part["thoughtSignature"])
        if "text" in part and not isinstance(part.get("functionCall"), dict):
            (thoughts if part.get("thought") else texts).append(as_text(part.get("text")))
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            name = call.get("name")
            if name is not None and not isinstance(name, str):  # kept as its text, not lost
                rec.warn(
                    "chunk_shape", f"functionCall name {shown(name)} is a {type(name).__name__}, not text: kept as text"
                )
                name = shown(name)
            calls.append(tool_call(len(calls), call.get("id"), name, json_text(call.get("args") or {})))
        else:
            server.append(part)
    native_finish = candidate.get("finishReason")
    finish = None
    if isinstance(native_finish, str):
        finish = FINISH_REASONS.get(native_finish, native_finish.lower())
        if finish == "stop" and calls:
            finish = "tool_calls"
    extras = {k: v for k, v in candidate.items() if k not in ("content", "index", "finishReason", "citationMetadata")}
    if native_finish is not None:
        extras["finishReason"] = native_finish
    if server:
        extras["server_tools"] = server
    citations = (candidate.get("citationMetadata") or {}).get("citationSources") or []
    return Choice(
        index=candidate.get("index", 0),
        role="assistant",
        content="".join(texts) if texts else None,
        reasoning="".join(thoughts) if thoughts else None,
        reasoning_source="thought" if thoughts else None,
        reasoning_details=[{"type": "thought_signature", "signature": s} for s in signatures],
        tool_calls=calls,
        finish_reason=finish,
        annotations=list(citations),
        extras=extras,
    )


_SCAN = re.compile(rb'[\[\]{}"\\,]')


def array_elements(body: bytes) -> tuple[list[tuple[int, int]], bool]:
    """Byte spans of the top-level elements of a JSON array, as far as they are whole, and
    whether the array was closed. A scan of brackets and strings, no parse."""
    spans: list[tuple[int, int]] = []
    depth = 0
    in_string = False
    escaped_at = -1
    start = None
    for match in _SCAN.finditer(body):
        char = match.group()
        position = match.start()
        if in_string:
            if char == b"\\" and escaped_at != position:
                escaped_at = position + 1
            elif char == b'"' and escaped_at != position:
                in_string = False
            continue
        if char == b'"':
            in_string = True
        elif char in b"[{":
            if depth == 1 and start is None:
                start = position
            depth += 1
        elif char in b"]}":
            depth -= 1
            if depth == 1 and start is not None:
                spans.append((start, position + 1))
                start = None
            elif depth == 0:
                return spans, True
    return spans, False


def chunk_parts(payload: Any) -> list[Part]:
    """What one response carries (frames.chunks)."""
    if not isinstance(payload, dict):
        return []
    parts: list[Part] = []
    for candidate in as_list(payload.get("candidates")):  # of the wrong type: the fold warned of it
        if not isinstance(candidate, dict):
            continue
        index = index_of(candidate.get("index")) or 0  # as the fold takes it
        content = candidate.get("content")
        for part in as_list(content.get("parts")) if isinstance(content, dict) else ():
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("functionCall"), dict):
                parts.append(Part(index, "tool_call", json_text(part["functionCall"].get("args") or {})))
            elif "text" in part:
                if as_text(part["text"]):  # text of another type is none, as in the fold
                    parts.append(Part(index, "reasoning" if part.get("thought") else "content", part["text"]))
            else:
                parts.append(Part(index, "extra", dumps_exact(part)))
    if payload.get("usageMetadata"):
        parts.append(Part(None, "usage", dumps_exact(payload["usageMetadata"])))
    if payload.get("error"):
        parts.append(Part(None, "error", dumps_exact(payload["error"])))
    return parts


# -- the request ------------------------------------------------------------------------------


def request_messages(body: Any) -> list[dict[str, Any]]:
    """`systemInstruction` and `contents` as chat messages (OpenAI chat's shape)."""
    if not isinstance(body, dict):
        return []
    out: list[dict[str, Any]] = []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if system:
        out.append(
            {"role": "system", "content": content_text(system.get("parts") if isinstance(system, dict) else system)}
        )
    for content in as_list(body.get("contents")):
        if not isinstance(content, dict):
            continue
        role = "assistant" if content.get("role") == "model" else "user"
        texts: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for part in as_list(content.get("parts")):
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("functionCall"), dict):
                call = part["functionCall"]
                # Answered by name when there is no id.
                calls.append(history_call(call.get("id") or call.get("name"), call.get("name"), call.get("args") or {}))
            elif isinstance(part.get("functionResponse"), dict):
                answer = part["functionResponse"]
                results.append(
                    {
                        "role": "tool",
                        "tool_call_id": answer.get("id") or answer.get("name"),
                        "content": json_text(answer.get("response")),
                    }
                )
            elif "text" in part:
                (thoughts if part.get("thought") else texts).append(as_text(part.get("text")))
            else:
                texts.append(f"[{next(iter(part), 'part')}]")
        history_turn(out, role, "".join(texts), "".join(thoughts), calls, results)
    return out


def request_tools(body: Any) -> list[dict[str, Any]]:
    """Function declarations as chat/completions function tools; other tools as they are."""
    out = []
    for tool in as_list(body.get("tools") if isinstance(body, dict) else None):
        if not isinstance(tool, dict):
            continue
        declarations = tool.get("functionDeclarations") or tool.get("function_declarations")
        if declarations and isinstance(declarations, list):  # else the tool as it is, odd field and all
            for declaration in declarations:
                if isinstance(declaration, dict):
                    function = {"name": declaration.get("name")}
                    if declaration.get("description"):
                        function["description"] = declaration["description"]
                    schema = declaration.get("parameters") or declaration.get("parametersJsonSchema")
                    if schema is not None:
                        function["parameters"] = schema
                    out.append({"type": "function", "function": function})
        else:
            out.append(tool)
    return out
