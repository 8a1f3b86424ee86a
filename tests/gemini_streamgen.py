"""Seeded generator of valid Gemini `streamGenerateContent` streams.

Written from the Gemini API reference (https://ai.google.dev/api/generate-content:
`GenerateContentResponse`, `Candidate`, `Part`, `FunctionCall`, `UsageMetadata`,
`FinishReason`, and "streamGenerateContent": `?alt=sse` gives server-sent events, without
it one JSON array whose elements arrive one by one), the thought-signature guide
(https://ai.google.dev/gemini-api/docs/thought-signatures: a signature rides on the first
function call of a step, or on the last part of a text answer, possibly an empty text part
of its own in the last chunk) and Vertex AI's streamed function-call arguments
(`google.cloud.aiplatform.v1.FunctionCall.partialArgs` / `willContinue`; `PartialArg`: an
RFC 9535 JSON path and one of `stringValue`, `numberValue`, `boolValue`, `nullValue`).

`generate(seed)` returns the body, the response objects in the order they were sent, and
the truth a correct reconstruction must reach: after every event, what each candidate has
said so far and the parts it has once merged (the module docstring of
`analyzer/protocols/gemini.py` states the merge rules; the generator only builds streams
whose merged parts it knows by construction). The same seed always gives the same stream.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamgen import TEXT_ATOMS

GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent"
VERTEX_URL = (
    "https://aiplatform.googleapis.com/v1/projects/demo-project/locations/global/publishers/google/"
    "models/gemini-2.5-flash:streamGenerateContent"
)
REQUESTED_MODEL = "gemini-2.5-flash"
MODEL_VERSIONS = ("gemini-2.5-flash", "gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash-001")
FRAMINGS = ("sse-crlf", "sse-lf", "array")
TOOL_NAMES = ("get_weather", "search_web", "lookup_order", "run_sql", "read_file", "send_email", "calc")
# Keys a JSON path writes as `.key`, and two it must bracket (RFC 9535 name selectors).
ARGUMENT_KEYS = ("location", "query", "unit", "limit", "filters", "note", "path", "x", "two words", "a-b")
HARM_CATEGORIES = (
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
)
ERRORS = (
    (500, "INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    (429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details."),
)  # fmt: skip
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(slots=True)
class CandidateTruth:
    """What one candidate has said after some events, as a correct reconstruction has it."""

    index: int
    # The merged parts (`candidates[].content.parts` of the final object).
    parts: list[dict[str, Any]] = field(default_factory=list)
    # All answer text and all thought text in order, None while there is none.
    content: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = None  # Gemini's own name (STOP, MAX_TOKENS, SAFETY)
    safety_ratings: list[dict[str, Any]] | None = None

    @property
    def calls(self) -> list[dict[str, Any]]:
        """The function calls so far, as sent (name, args, maybe id)."""
        return [part["functionCall"] for part in self.parts if "functionCall" in part]


@dataclass(slots=True)
class Truth:
    candidates: dict[int, CandidateTruth] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    envelope: dict[str, Any] = field(default_factory=dict)  # modelVersion, createTime, responseId

    def native(self) -> dict[str, Any]:
        """The merged `GenerateContentResponse`, as a non-streaming call would have returned it."""
        candidates = []
        for index in sorted(self.candidates):
            truth = self.candidates[index]
            candidate: dict[str, Any] = {"content": {"parts": truth.parts, "role": "model"}}
            if truth.finish_reason is not None:
                candidate["finishReason"] = truth.finish_reason
            if truth.safety_ratings is not None:
                candidate["safetyRatings"] = truth.safety_ratings
            candidate["index"] = index
            candidates.append(candidate)
        response: dict[str, Any] = {"candidates": candidates}
        if self.usage is not None:
            response["usageMetadata"] = self.usage
        response.update(self.envelope)
        return response


@dataclass(slots=True)
class Framed:
    body: bytes
    content_type: str
    # For every event, the byte offset just past its JSON: a body cut there holds it whole.
    json_ends: list[int]
    # For every event, the byte offset whose arrival completes it: its JSON's end in an
    # array, just past the first character of the blank line's line end in SSE.
    event_ends: list[int]


@dataclass(slots=True)
class GeminiStream:
    seed: int
    variant: str  # "complete" | "truncated" | "error"
    framing: str  # one of FRAMINGS
    vertex: bool
    url: str
    request: dict[str, Any]
    # Every response object of the planned stream, in order (the error object last for "error").
    events: list[dict[str, Any]]
    body: bytes
    content_type: str
    json_ends: list[int]
    event_ends: list[int]
    # How many of `events` the body holds whole; `truth` is the reconstruction of those.
    received: int
    truth: Truth
    # `truths[k]`: the truth after the first k + 1 events (of the full stream).
    truths: list[Truth]
    error: dict[str, Any] | None = None

    def describe(self) -> str:
        return f"seed={self.seed} variant={self.variant} framing={self.framing} vertex={self.vertex}"


@dataclass(slots=True)
class _Piece:
    """One wire part of a candidate and what it does to the truth."""

    part: dict[str, Any]
    apply: Callable[[CandidateTruth], None]


def generate(seed: int, *, variant: str | None = None, framing: str | None = None) -> GeminiStream:
    rng = random.Random(seed)
    variant = variant or rng.choice(("complete",) * 6 + ("truncated", "truncated", "error", "error"))
    framing = framing or rng.choice(FRAMINGS)
    vertex = rng.random() < 0.35
    count = rng.choice((1, 1, 1, 2))
    atoms = TEXT_ATOMS

    plans = [_candidate_plan(rng, index, atoms, vertex) for index in range(count)]
    events, truths = _assemble(rng, plans, vertex, count)

    error = None
    received = len(events)
    sent = events
    if variant == "error":
        received = rng.randrange(len(events))  # the events before the error, never the last one
        code, status, message = rng.choice(ERRORS)
        error = {"code": code, "message": message, "status": status}
        sent = [*events[:received], {"error": error}]
    framed = frame(sent, framing, rng)
    body = framed.body
    if variant == "truncated":
        received = rng.randrange(len(events))  # the event the cut lands in
        start = framed.json_ends[received - 1] if received else 0
        body = body[: rng.randrange(start, framed.json_ends[received])]
    truth = truths[received - 1] if received else Truth()
    request: dict[str, Any] = {
        "contents": [{"role": "user", "parts": [{"text": "What's the weather in Paris?"}]}],
        "generationConfig": {"candidateCount": count, "thinkingConfig": {"includeThoughts": True}},
    }
    url = VERTEX_URL if vertex else GEMINI_URL
    if framing != "array":
        url += "?alt=sse"
    return GeminiStream(
        seed=seed,
        variant=variant,
        framing=framing,
        vertex=vertex,
        url=url,
        request=request,
        events=sent,
        body=body,
        content_type=framed.content_type,
        json_ends=framed.json_ends,
        event_ends=framed.event_ends,
        received=received,
        truth=truth,
        truths=truths,
        error=error,
    )


def frame(events: Sequence[dict[str, Any]], framing: str, rng: random.Random) -> Framed:
    """`events` as a response body: `data: <json>` events (CRLF CRLF as Google's servers end
    them, or LF LF), or one JSON array (Google pretty-prints it and puts `,\\r\\n` between
    elements)."""
    ensure_ascii = rng.random() < 0.3
    out = bytearray()
    json_ends: list[int] = []
    if framing.startswith("sse"):
        end = b"\r\n\r\n" if framing == "sse-crlf" else b"\n\n"
        separators = rng.choice(((",", ":"), (", ", ": ")))
        for event in events:
            out += b"data: " + json.dumps(event, ensure_ascii=ensure_ascii, separators=separators).encode()
            json_ends.append(len(out))
            out += end
        event_ends = [json_end + len(end) // 2 + 1 for json_end in json_ends]
        return Framed(bytes(out), "text/event-stream", json_ends, event_ends)
    indent = rng.choice((2, 2, None))
    between = rng.choice(("\n,\r\n", ",\r\n", ",", ", "))
    out += b"["
    for number, event in enumerate(events):
        if number:
            out += between.encode()
        out += json.dumps(event, ensure_ascii=ensure_ascii, indent=indent).encode()
        json_ends.append(len(out))
    out += b"]" if indent is None else b"\n]"
    return Framed(bytes(out), "application/json; charset=UTF-8", json_ends, json_ends)


# -- one candidate ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    index: int
    pieces: list[_Piece]
    finish_reason: str
    final: str  # how the last event carries the finish: "with_last_piece" | "empty_text" | "no_content"


def _candidate_plan(rng: random.Random, index: int, atoms: Sequence[str], vertex: bool) -> _Plan:
    items: list[tuple[str, Any]] = []  # ("thought" | "answer", text) / ("call", None) / ("code", None)
    if rng.random() < 0.5:
        items.append(("thought", _text(rng, atoms)))
        if rng.random() < 0.3:
            items.append(("thought", _text(rng, atoms)))
    shape = rng.choice(
        ("text", "tools", "tools", "code", "mixed") if vertex else ("text", "text", "tools", "code", "mixed")
    )
    if shape == "text":
        items += [("answer", _text(rng, atoms)) for _ in range(rng.choice((1, 1, 2)))]
    elif shape == "tools":
        if rng.random() < 0.3:
            items.append(("answer", _text(rng, atoms, 1, 8)))
        items += [("call", None)] * rng.choice((1, 1, 2, 3))
    elif shape == "code":
        if rng.random() < 0.5:
            items.append(("answer", _text(rng, atoms, 1, 8)))
        items += [("code", None), ("answer", _text(rng, atoms))]
    else:
        for _ in range(rng.randint(2, 5)):
            kind = rng.choice(("thought", "answer", "answer", "call", "code"))
            items.append((kind, _text(rng, atoms) if kind in ("thought", "answer") else None))

    pieces: list[_Piece] = []
    calls = 0
    previous = None
    for number, (kind, text) in enumerate(items):
        if kind in ("thought", "answer"):
            # Text of the same kind right after this part would join it unless a signature
            # closes it: sign it then, so every planned part is one merged part.
            same_next = number + 1 < len(items) and items[number + 1][0] == kind
            signed = same_next or rng.random() < 0.4
            pieces += _text_pieces(rng, text, thought=kind == "thought", signed=signed)
        elif kind == "call":
            # A signature rides on the first call of a step (Gemini 3).
            signed = previous != "call" and rng.random() < 0.5
            if vertex and rng.random() < 0.7:
                pieces += _streamed_call_pieces(rng, atoms, signed)
            else:
                pieces.append(_whole_call_piece(rng, atoms, signed, with_id=not vertex and rng.random() < 0.5))
            calls += 1
        else:
            pieces += _code_pieces(rng, atoms)
        previous = kind
    if calls:
        finish_reason = rng.choice(("STOP", "STOP", "STOP", "MAX_TOKENS"))
    else:
        finish_reason = rng.choice(("STOP", "STOP", "STOP", "MAX_TOKENS", "SAFETY"))
    final = rng.choice(("with_last_piece", "with_last_piece", "empty_text", "no_content"))
    return _Plan(index, pieces, finish_reason, final)


def _text_pieces(rng: random.Random, text: str, *, thought: bool, signed: bool) -> list[_Piece]:
    """A text part cut into pieces (the first never empty); its signature on the last piece or
    in an empty text part of its own after it."""
    cuts = _cut(rng, text)
    pieces: list[_Piece] = []
    kind = {"thought": True} if thought else {}

    def said(truth: CandidateTruth, piece: str) -> None:
        if thought:
            truth.reasoning = (truth.reasoning or "") + piece
        else:
            truth.content = (truth.content or "") + piece

    def start(piece: str) -> Callable[[CandidateTruth], None]:
        def apply(truth: CandidateTruth) -> None:
            truth.parts.append({"text": piece, **kind})
            said(truth, piece)

        return apply

    def extend(piece: str) -> Callable[[CandidateTruth], None]:
        def apply(truth: CandidateTruth) -> None:
            truth.parts[-1]["text"] += piece
            said(truth, piece)

        return apply

    for number, piece in enumerate(cuts):
        pieces.append(_Piece({"text": piece, **kind}, start(piece) if number == 0 else extend(piece)))
    if signed:
        signature = _signature(rng)
        sign = _sign(signature)
        if rng.random() < 0.5:
            last = pieces[-1]
            pieces[-1] = _Piece({**last.part, "thoughtSignature": signature}, _then(last.apply, sign))
        else:
            alone = {"text": "", "thoughtSignature": signature}
            if thought and rng.random() < 0.3:
                alone["thought"] = True
            pieces.append(_Piece(alone, sign))
    return pieces


def _whole_call_piece(rng: random.Random, atoms: Sequence[str], signed: bool, with_id: bool) -> _Piece:
    call: dict[str, Any] = {"name": rng.choice(TOOL_NAMES), "args": _arguments(rng, atoms, streamable=False)}
    if with_id:
        call["id"] = _token(rng, 8, string.ascii_lowercase + string.digits)
    part: dict[str, Any] = {"functionCall": call}
    if signed:
        part["thoughtSignature"] = _signature(rng)
    return _Piece(part, _kept(part))


def _streamed_call_pieces(rng: random.Random, atoms: Sequence[str], signed: bool) -> list[_Piece]:
    """Vertex's streamed arguments: the name with `willContinue`, then `partialArgs` (a JSON
    path and a piece of a value each) and an empty `functionCall` to close the call, or a
    last `partialArgs` piece without `willContinue`."""
    name = rng.choice(TOOL_NAMES)
    arguments = _arguments(rng, atoms, streamable=True)
    partials: list[tuple[dict[str, Any], list[str | int]]] = []  # (PartialArg, its path as steps)
    for steps, value in _leaves(arguments):
        path = _json_path(steps, rng)
        if isinstance(value, str):
            cut = _cut(rng, value) if value else [""]
            trailing_empty = rng.random() < 0.4  # as Vertex does: the last piece an empty string
            for number, piece in enumerate(cut):
                last = number == len(cut) - 1 and not trailing_empty
                partials.append(
                    ({"jsonPath": path, "stringValue": piece, **({} if last else {"willContinue": True})}, steps)
                )
            if trailing_empty:
                partials.append(({"jsonPath": path, "stringValue": ""}, steps))
        elif isinstance(value, bool):
            partials.append(({"jsonPath": path, "boolValue": value}, steps))
        elif value is None:
            partials.append(({"jsonPath": path, "nullValue": "NULL_VALUE"}, steps))
        else:
            partials.append(({"jsonPath": path, "numberValue": value}, steps))

    def applying(batch: list[tuple[dict[str, Any], list[str | int]]]) -> Callable[[CandidateTruth], None]:
        def apply(truth: CandidateTruth) -> None:
            args = truth.parts[-1]["functionCall"]["args"]
            for partial, steps in batch:
                value = next(
                    partial[key] for key in ("stringValue", "boolValue", "numberValue", "nullValue") if key in partial
                )
                _put(args, steps, None if value == "NULL_VALUE" else value)

        return apply

    def opening(batch: list[tuple[dict[str, Any], list[str | int]]], signature: str | None) -> _Piece:
        call: dict[str, Any] = {"name": name, "willContinue": True}
        if batch:
            call["partialArgs"] = [partial for partial, _ in batch]
        part: dict[str, Any] = {"functionCall": call}
        if signature is not None:
            part["thoughtSignature"] = signature

        def apply(truth: CandidateTruth) -> None:
            merged: dict[str, Any] = {"functionCall": {"name": name, "willContinue": True, "args": {}}}
            if signature is not None:
                merged["thoughtSignature"] = signature
            truth.parts.append(merged)
            applying(batch)(truth)

        return _Piece(part, apply)

    def closed(truth: CandidateTruth) -> None:
        truth.parts[-1]["functionCall"].pop("willContinue", None)

    batches: list[list[tuple[dict[str, Any], list[str | int]]]] = []
    position = 0
    while position < len(partials):
        size = rng.choice((1, 1, 1, 2, 3))
        batches.append(partials[position : position + size])
        position += size
    first = batches.pop(0) if batches and rng.random() < 0.3 else []
    pieces = [opening(first, _signature(rng) if signed else None)]
    close_alone = not batches or rng.random() < 0.7
    for number, batch in enumerate(batches):
        last = number == len(batches) - 1 and not close_alone
        call: dict[str, Any] = {"partialArgs": [partial for partial, _ in batch]}
        if not last:
            call["willContinue"] = True
        pieces.append(_Piece({"functionCall": call}, _then(applying(batch), closed) if last else applying(batch)))
    if close_alone:
        pieces.append(_Piece({"functionCall": {}}, closed))
    return pieces


def _code_pieces(rng: random.Random, atoms: Sequence[str]) -> list[_Piece]:
    """Code execution: the code the model ran, then its result."""
    code_id = _token(rng, 8, string.ascii_lowercase + string.digits) if rng.random() < 0.5 else None
    code: dict[str, Any] = {
        "executableCode": {"language": "PYTHON", "code": f"print({rng.randint(1, 999)} * {rng.randint(1, 999)})"}
    }
    result: dict[str, Any] = {
        "codeExecutionResult": {
            "outcome": rng.choice(("OUTCOME_OK", "OUTCOME_OK", "OUTCOME_FAILED")),
            "output": _text(rng, atoms, 0, 5),
        }
    }
    if code_id is not None:
        code["executableCode"]["id"] = code_id
        result["codeExecutionResult"]["id"] = code_id
    if rng.random() < 0.3:
        code["thoughtSignature"] = _signature(rng)
    return [_Piece(part, _kept(part)) for part in (code, result)]


# -- the events ------------------------------------------------------------------------------


def _assemble(
    rng: random.Random, plans: list[_Plan], vertex: bool, count: int
) -> tuple[list[dict[str, Any]], list[Truth]]:
    """Deal the candidates' pieces into events (1..3 pieces of a candidate per event; with two
    candidates each event carries one or both), the finish reasons in the last event, with
    cumulative usage, and the truth after every event."""
    queues = [list(plan.pieces) for plan in plans]
    held = [queue.pop() if plan.final == "with_last_piece" else None for plan, queue in zip(plans, queues, strict=True)]
    rounds: list[list[tuple[int, list[_Piece]]]] = []
    while any(queues):
        live = [number for number, queue in enumerate(queues) if queue]
        chosen = [number for number in live if rng.random() < 0.7] or [rng.choice(live)]
        this_round = []
        for number in chosen:
            take = rng.choice((1, 1, 1, 2, 3))
            this_round.append((number, queues[number][:take]))
            del queues[number][:take]
        rounds.append(this_round)
    rounds.append([(number, [held[number]] if held[number] else []) for number in range(len(plans))])

    model_version = rng.choice(MODEL_VERSIONS)
    response_id = _token(rng, 22, string.ascii_letters + string.digits + "-_")
    envelope: dict[str, Any] = {"modelVersion": model_version}
    if vertex:
        envelope["createTime"] = (
            f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:11:12.{rng.randint(0, 999999):06d}Z"
        )
    envelope["responseId"] = response_id
    usage_every_event = rng.random() < 0.7
    final_usage = _final_usage(rng, plans, vertex)
    shuffle_candidates = count > 1 and rng.random() < 0.3
    index_when_one = not vertex and rng.random() < 0.8  # Vertex leaves `index` out

    truth = Truth(envelope=dict(envelope))
    events: list[dict[str, Any]] = []
    truths: list[Truth] = []
    for number, this_round in enumerate(rounds):
        last_event = number == len(rounds) - 1
        candidates = []
        for plan_number, pieces in this_round:
            plan = plans[plan_number]
            state = truth.candidates.setdefault(plan.index, CandidateTruth(plan.index))
            candidate: dict[str, Any] = {}
            parts = [piece.part for piece in pieces]
            if last_event and plan.final == "empty_text":
                parts.append({"text": ""})  # nothing to join, no signature: changes nothing
            if parts or not last_event or plan.final != "no_content":
                candidate["content"] = {"parts": parts, "role": "model"}
            for piece in pieces:
                piece.apply(state)
            if last_event:
                candidate["finishReason"] = plan.finish_reason
                state.finish_reason = plan.finish_reason
            if last_event or rng.random() < 0.15:
                ratings = _safety_ratings(rng, blocked=last_event and plan.finish_reason == "SAFETY")
                candidate["safetyRatings"] = ratings
                state.safety_ratings = ratings
            if count > 1 or index_when_one:
                candidate["index"] = plan.index
            candidates.append(candidate)
        if shuffle_candidates:
            rng.shuffle(candidates)
        event: dict[str, Any] = {"candidates": candidates}
        if usage_every_event or last_event:
            event["usageMetadata"] = _usage_so_far(final_usage, (number + 1) / len(rounds))
            truth.usage = event["usageMetadata"]
        event.update(envelope)
        events.append(event)
        truths.append(copy.deepcopy(truth))
    return events, truths


def _final_usage(rng: random.Random, plans: list[_Plan], vertex: bool) -> dict[str, Any]:
    prompt = rng.randint(5, 5000)
    usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": rng.randint(1, 4000)}
    if rng.random() < 0.3:
        usage["cachedContentTokenCount"] = rng.randint(0, prompt)
    thoughts = any(piece.part.get("thought") for plan in plans for piece in plan.pieces)
    if thoughts:
        usage["thoughtsTokenCount"] = rng.randint(1, 3000)
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if vertex:
        usage["trafficType"] = "ON_DEMAND"
    return usage


def _usage_so_far(final: dict[str, Any], progress: float) -> dict[str, Any]:
    """Usage as Gemini reports it mid-stream: cumulative, the answer's count absent until there is one."""
    usage = dict(final)
    candidates = int(final["candidatesTokenCount"] * progress)
    if candidates:
        usage["candidatesTokenCount"] = candidates
    else:
        del usage["candidatesTokenCount"]
    total = usage["promptTokenCount"] + candidates + usage.get("thoughtsTokenCount", 0)
    return {**usage, "totalTokenCount": total}


def _safety_ratings(rng: random.Random, blocked: bool) -> list[dict[str, Any]]:
    ratings = []
    for category in HARM_CATEGORIES:
        rating: dict[str, Any] = {"category": category, "probability": rng.choice(("NEGLIGIBLE", "NEGLIGIBLE", "LOW"))}
        ratings.append(rating)
    if blocked:
        ratings[0] = {"category": ratings[0]["category"], "probability": "HIGH", "blocked": True}
    return ratings


# -- values ----------------------------------------------------------------------------------


def _token(rng: random.Random, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _signature(rng: random.Random) -> str:
    """A thought signature: opaque bytes, base64 on the wire."""
    return base64.b64encode(rng.randbytes(rng.randint(8, 96))).decode()


def _sign(signature: str) -> Callable[[CandidateTruth], None]:
    def apply(truth: CandidateTruth) -> None:
        truth.parts[-1]["thoughtSignature"] = signature

    return apply


def _kept(part: dict[str, Any]) -> Callable[[CandidateTruth], None]:
    """A part that is never merged: it stands in the final object as sent."""
    merged = copy.deepcopy(part)

    def apply(truth: CandidateTruth) -> None:
        truth.parts.append(copy.deepcopy(merged))

    return apply


def _then(*steps: Callable[[CandidateTruth], None]) -> Callable[[CandidateTruth], None]:
    def apply(truth: CandidateTruth) -> None:
        for step in steps:
            step(truth)

    return apply


def _text(rng: random.Random, atoms: Sequence[str], low: int = 1, high: int = 30) -> str:
    return "".join(rng.choice(atoms) for _ in range(rng.randint(low, high)))


def _cut(rng: random.Random, text: str, max_piece: int = 8) -> list[str]:
    """`text` cut at code points into pieces, the first never empty, a few empty ones later."""
    pieces: list[str] = []
    position = 0
    while position < len(text):
        if pieces and rng.random() < 0.05:
            pieces.append("")
        size = rng.randint(1, max_piece)
        pieces.append(text[position : position + size])
        position += size
    return pieces


def _arguments(rng: random.Random, atoms: Sequence[str], *, streamable: bool) -> dict[str, Any]:
    """A call's arguments (a JSON object). Streamed ones have no empty list or object: a
    `PartialArg` carries a leaf value, so an empty container cannot be sent."""

    def value(depth: int) -> Any:
        kind = rng.randrange(8 if depth < 2 else 6)
        if kind <= 1:
            return _text(rng, atoms, 0, 8)
        if kind == 2:
            return rng.randint(-(10**9), 10**9)
        if kind == 3:
            return rng.choice((0.5, -1.25, 3.0e-7, 98.6))
        if kind == 4:
            return rng.choice((True, False, None))
        if kind == 5:
            return [_text(rng, atoms, 0, 3) for _ in range(rng.randint(1 if streamable else 0, 3))]
        return {rng.choice(ARGUMENT_KEYS): value(depth + 1) for _ in range(rng.randint(1 if streamable else 0, 3))}

    return {rng.choice(ARGUMENT_KEYS): value(0) for _ in range(rng.randint(0, 4))}


def _leaves(value: Any, steps: tuple[str | int, ...] = ()) -> list[tuple[list[str | int], Any]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*steps, key))]
    if isinstance(value, list):
        return [leaf for number, item in enumerate(value) for leaf in _leaves(item, (*steps, number))]
    return [(list(steps), value)]


def _json_path(steps: list[str | int], rng: random.Random) -> str:
    """RFC 9535: `$.name` where the name allows it, else `$['name']` (or `$["name"]`)."""
    path = "$"
    for step in steps:
        if isinstance(step, int):
            path += f"[{step}]"
        elif _IDENTIFIER.fullmatch(step) and rng.random() < 0.9:
            path += f".{step}"
        else:
            path += f"['{step}']" if rng.random() < 0.7 else f'["{step}"]'
    return path


def _put(args: dict[str, Any], steps: list[str | int], value: Any) -> None:
    """Set the leaf at `steps`; a string continues the string already there."""
    target: Any = args
    for step, following in itertools.pairwise(steps):
        if isinstance(step, int):
            while len(target) <= step:
                target.append(None)
            if target[step] is None:
                target[step] = [] if isinstance(following, int) else {}
            target = target[step]
        else:
            target = target.setdefault(step, [] if isinstance(following, int) else {})
    last = steps[-1]
    if isinstance(last, int):
        while len(target) <= last:
            target.append(None)
        current = target[last]
    else:
        current = target.get(last)
    if isinstance(value, str) and isinstance(current, str):
        value = current + value
    target[last] = value
