"""Gemini stream reconstruction (`analyzer/protocols/gemini.py`).

google-genai has no stream accumulator to compare against, so the proof is in three parts:

- the SDK's own response types (`google.genai.types.GenerateContentResponse`, camelCase
  aliases, unknown fields forbidden, signatures checked as base64) accept every generated
  event and chatcap's merged final object, and the SDK's readers of that object (`.text`,
  `.function_calls`, `.usage_metadata`) say what chatcap's choices say;
- each concatenation rule of gemini.py's module docstring, table-driven, in a test named
  after the rule;
- hundreds of generated streams (`gemini_streamgen`) reconstruct to what the generator
  knows they say, the same under random byte splits and in the SSE and JSON-array
  framings, with truncated and errored streams keeping everything before the cut.
"""

from __future__ import annotations

import bisect
import json
import random
from typing import Any

import gemini_streamgen as gen
import pytest
import streamgen
from google.genai.errors import APIError
from google.genai.types import GenerateContentResponse

from analyzer.model import Exchange, Reconstruction, Request, Response
from analyzer.protocols.events import payload_of

STREAM_URL = gen.GEMINI_URL + "?alt=sse"
GENERATE_URL = gen.GEMINI_URL.replace(":streamGenerateContent", ":generateContent")
# What OpenAI's chat finish_reason is for Gemini's (FinishReason in
# https://ai.google.dev/api/generate-content#FinishReason; OpenAI's values in
# https://platform.openai.com/docs/api-reference/chat/object): a natural stop that made
# calls is "tool_calls".
OPENAI_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter"}
SIGNATURE = "c2lnbmF0dXJlLTE="  # base64, as the SDK checks
OTHER_SIGNATURE = "c2lnbmF0dXJlLTI="


def exchange(
    body: bytes,
    *,
    url: str = STREAM_URL,
    content_type: str = "text/event-stream",
    status: int = 200,
    reads: list[tuple[float, int]] | None = None,
    request: dict[str, Any] | None = None,
) -> Exchange:
    return Exchange(
        id="gemini#1",
        source="<gemini_streamgen>",
        format="sse-text",
        request=Request(method="POST", url=url, body=json.dumps(request).encode() if request else None),
        response=Response(status=status, headers=[("content-type", content_type)], body=body, chunks=reads),
    )


def reconstruct(stream: gen.GeminiStream, rng: random.Random | None = None) -> Reconstruction:
    """`stream` as captured, in network reads cut at random offsets when `rng` is given."""
    reads = None
    if rng is not None:
        reads = streamgen.network_reads(stream.body, streamgen.split_points(stream.body, rng), rng)
    return exchange(
        stream.body, url=stream.url, content_type=stream.content_type, reads=reads, request=stream.request
    ).reconstruct()


def finish_for(candidate: gen.CandidateTruth) -> str | None:
    if candidate.finish_reason is None:
        return None
    finish = OPENAI_FINISH[candidate.finish_reason]
    return "tool_calls" if finish == "stop" and candidate.calls else finish


def expected_usage(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """usageMetadata in OpenAI's names: the completion is the answer plus the thoughts, which
    Gemini counts apart (UsageMetadata in the API reference) and OpenAI counts inside."""
    if raw is None:
        return None
    counted = [raw[key] for key in ("candidatesTokenCount", "thoughtsTokenCount") if key in raw]
    usage: dict[str, Any] = {
        "prompt_tokens": raw["promptTokenCount"],
        "completion_tokens": sum(counted) if counted else None,
        "total_tokens": raw["totalTokenCount"],
    }
    if "cachedContentTokenCount" in raw:
        usage["prompt_tokens_details"] = {"cached_tokens": raw["cachedContentTokenCount"]}
    if "thoughtsTokenCount" in raw:
        usage["completion_tokens_details"] = {"reasoning_tokens": raw["thoughtsTokenCount"]}
    return usage


def assert_reaches_truth(rec: Reconstruction, stream: gen.GeminiStream) -> None:
    truth = stream.truth
    where = stream.describe()
    assert (rec.protocol, rec.requested_model) == ("gemini", gen.REQUESTED_MODEL), where
    assert rec.to_native() == truth.native(), where
    candidates = [truth.candidates[index] for index in sorted(truth.candidates)]
    assert [choice.index for choice in rec.choices] == [candidate.index for candidate in candidates], where
    completion = rec.to_openai()
    for choice, message, candidate in zip(
        rec.choices, [c["message"] for c in completion["choices"]], candidates, strict=True
    ):
        assert (choice.content, choice.reasoning) == (candidate.content, candidate.reasoning), where
        assert (message["content"], message.get("reasoning_content")) == (candidate.content, candidate.reasoning)
        sent = [(call["name"], call.get("id"), call["args"]) for call in candidate.calls]
        assert [(call.name, call.id, call.parsed_arguments) for call in choice.tool_calls] == sent, where
        # Without an id Gemini answers a call by its name, and so does the chat shape's tool call id.
        assert [
            (call["function"]["name"], call["id"], json.loads(call["function"]["arguments"]))
            for call in message.get("tool_calls") or []
        ] == [(name, call_id or name, args) for name, call_id, args in sent], where
        assert choice.finish_reason == finish_for(candidate), where
    assert completion["usage"] == expected_usage(truth.usage), where
    assert rec.served_model == truth.envelope.get("modelVersion"), where
    assert rec.id == truth.envelope.get("responseId"), where


# -- (a) the SDK's types accept what is generated and what chatcap merges --------------------


@pytest.mark.parametrize("seed", range(300))
def test_every_generated_event_is_a_valid_generate_content_response(seed: int) -> None:
    stream = gen.generate(seed)
    for event in stream.events:
        if "error" in event:
            error = APIError(event["error"]["code"], [event])  # the SDK unwraps `[{"error": …}]`
            assert (error.status, error.message) == (event["error"]["status"], event["error"]["message"])
        else:
            GenerateContentResponse.model_validate(event)


def _sdk_text(parts: list[Any], thought: bool) -> str:
    return "".join(part.text for part in parts if part.text is not None and bool(part.thought) == thought)


@pytest.mark.parametrize("seed", range(300))
def test_merged_response_is_a_valid_generate_content_response(seed: int) -> None:
    """The SDK validates to_native() and reads from it what chatcap's choices say."""
    stream = gen.generate(seed)
    rec = reconstruct(stream)
    if stream.framing == "array" and not stream.body:
        return  # nothing arrived: there is no response object
    merged = GenerateContentResponse.model_validate(rec.to_native())
    assert [candidate.index for candidate in merged.candidates or []] == [choice.index for choice in rec.choices]
    for candidate, choice in zip(merged.candidates or [], rec.choices, strict=True):
        parts = candidate.content.parts or []
        assert _sdk_text(parts, thought=False) == (choice.content or "")
        assert _sdk_text(parts, thought=True) == (choice.reasoning or "")
        calls = [part.function_call for part in parts if part.function_call is not None]
        assert [(call.name, call.id, call.args) for call in calls] == [
            (call.name, call.id, call.parsed_arguments) for call in choice.tool_calls
        ]
    if rec.choices:
        assert merged.text == rec.choices[0].content
    usage = merged.usage_metadata
    if usage is None:
        assert rec.usage is None
    else:
        assert (usage.prompt_token_count, usage.total_token_count, usage.thoughts_token_count) == (
            rec.usage.prompt_tokens,
            rec.usage.total_tokens,
            rec.usage.reasoning_tokens,
        )


@pytest.mark.parametrize("seed", range(300, 500))
def test_text_read_by_the_sdk_from_each_event_concatenates_to_the_content(seed: int) -> None:
    """Each event as the SDK parses it: its answer and thought text, by candidate index,
    joined over the stream, is chatcap's content and reasoning."""
    stream = gen.generate(seed, variant="complete")
    said: dict[int, dict[bool, str]] = {}
    for event in stream.events:
        for candidate in GenerateContentResponse.model_validate(event).candidates or []:
            parts = candidate.content.parts if candidate.content else None
            texts = said.setdefault(candidate.index or 0, {False: "", True: ""})
            for thought in (False, True):
                texts[thought] += _sdk_text(parts or [], thought)
    rec = reconstruct(stream)
    assert {choice.index: {False: choice.content or "", True: choice.reasoning or ""} for choice in rec.choices} == said


# -- (b) the merge rules of gemini.py's docstring, one table each -----------------------------


def event(*parts: dict[str, Any], index: int | None = None, **candidate: Any) -> dict[str, Any]:
    """A response carrying `parts` of one candidate."""
    body: dict[str, Any] = {"content": {"parts": list(parts), "role": "model"}, **candidate}
    if index is not None:
        body["index"] = index
    return {"candidates": [body], "modelVersion": "gemini-2.5-flash", "responseId": "r-1"}


def merge(*events: dict[str, Any]) -> Reconstruction:
    """Reconstruct `events` framed as SSE and as a JSON array; both must agree, and the SDK
    must accept every event and the merged object."""
    for one in events:
        GenerateContentResponse.model_validate(one)
    recs = []
    for framing in gen.FRAMINGS:
        framed = gen.frame(events, framing, random.Random(len(events)))
        recs.append(exchange(framed.body, content_type=framed.content_type).reconstruct())
    first = recs[0]
    for other in recs[1:]:
        assert (other.to_native(), other.to_openai()) == (first.to_native(), first.to_openai())
    GenerateContentResponse.model_validate(first.to_native())
    return first


def parts_of(rec: Reconstruction, index: int = 0) -> list[dict[str, Any]]:
    (candidate,) = [c for c in rec.to_native()["candidates"] if c["index"] == index]
    return candidate["content"]["parts"]


def text(value: str, **fields: Any) -> dict[str, Any]:
    return {"text": value, **fields}


def thought(value: str, **fields: Any) -> dict[str, Any]:
    return {"text": value, "thought": True, **fields}


@pytest.mark.parametrize(
    ("events", "parts"),
    [
        ([event(text("Hel")), event(text("lo"))], [text("Hello")]),
        ([event(text("Hel"), text("lo, "), text("you"))], [text("Hello, you")]),
        ([event(thought("Think")), event(thought("ing"))], [thought("Thinking")]),
        ([event(text("a")), event(text("")), event(text("b"))], [text("ab")]),
        ([event(text("a")), event(text("b"), finishReason="STOP")], [text("ab")]),
    ],
    ids=["across events", "within one event", "thought text", "empty piece between", "with the finish"],
)
def test_text_joins_text_of_the_same_kind(events: list[dict[str, Any]], parts: list[dict[str, Any]]) -> None:
    assert parts_of(merge(*events)) == parts


@pytest.mark.parametrize(
    ("events", "parts", "content", "reasoning"),
    [
        ([event(thought("hmm")), event(text("Yes"))], [thought("hmm"), text("Yes")], "Yes", "hmm"),
        ([event(text("Yes"), thought("hmm"))], [text("Yes"), thought("hmm")], "Yes", "hmm"),
        (
            [event(thought("a")), event(text("b")), event(thought("c")), event(text("d"))],
            [thought("a"), text("b"), thought("c"), text("d")],
            "bd",
            "ac",
        ),
        ([event(thought("a")), event(text("")), event(thought("b"))], [thought("ab")], None, "ab"),
    ],
    ids=["thought then answer", "answer then thought", "interleaved", "empty answer piece starts nothing"],
)
def test_thought_and_answer_text_never_join(
    events: list[dict[str, Any]], parts: list[dict[str, Any]], content: str | None, reasoning: str | None
) -> None:
    rec = merge(*events)
    assert parts_of(rec) == parts
    assert (rec.choices[0].content, rec.choices[0].reasoning) == (content, reasoning)


@pytest.mark.parametrize(
    ("events", "parts"),
    [
        (
            [event(text("a", thoughtSignature=SIGNATURE)), event(text("b"))],
            [text("a", thoughtSignature=SIGNATURE), text("b")],
        ),
        (
            [event(text("a")), event(text("b", thoughtSignature=SIGNATURE)), event(text("c"))],
            [text("ab", thoughtSignature=SIGNATURE), text("c")],
        ),
        (
            [event(thought("a", thoughtSignature=SIGNATURE)), event(thought("b"))],
            [thought("a", thoughtSignature=SIGNATURE), thought("b")],
        ),
        (
            [
                event(text("a", thoughtSignature=SIGNATURE)),
                event(text("b", thoughtSignature=OTHER_SIGNATURE)),
                event(text("c")),
            ],
            [text("a", thoughtSignature=SIGNATURE), text("b", thoughtSignature=OTHER_SIGNATURE), text("c")],
        ),
    ],
    ids=["on the first piece", "on a later piece", "thought text", "each signed part its own"],
)
def test_signature_closes_a_part(events: list[dict[str, Any]], parts: list[dict[str, Any]]) -> None:
    rec = merge(*events)
    assert parts_of(rec) == parts
    assert rec.choices[0].content == ("".join(part["text"] for part in parts if not part.get("thought")) or None)


CALL = {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}


@pytest.mark.parametrize(
    ("events", "parts"),
    [
        # Google's servers end a signed answer so: an empty text part in the last chunk.
        (
            [event(text("Hi")), event(text("", thoughtSignature=SIGNATURE), finishReason="STOP")],
            [text("Hi", thoughtSignature=SIGNATURE)],
        ),
        (
            [event(text("a")), event(text("", thoughtSignature=SIGNATURE)), event(text("b"))],
            [text("a", thoughtSignature=SIGNATURE), text("b")],
        ),
        (
            [event(thought("a")), event(text("", thoughtSignature=SIGNATURE)), event(thought("b"))],
            [thought("a", thoughtSignature=SIGNATURE), thought("b")],
        ),
        (
            [event(thought("a"), thought("", thoughtSignature=SIGNATURE)), event(text("b"))],
            [thought("a", thoughtSignature=SIGNATURE), text("b")],
        ),
        ([event(CALL), event(text("", thoughtSignature=SIGNATURE))], [{**CALL, "thoughtSignature": SIGNATURE}]),
    ],
    ids=["at the end", "mid-answer", "after thought text", "thought-flagged, same event", "after a call"],
)
def test_signature_only_empty_text_part_attaches_to_the_part_before(
    events: list[dict[str, Any]], parts: list[dict[str, Any]]
) -> None:
    assert parts_of(merge(*events)) == parts


def call(name: str, args: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, **fields}
    if args is not None:
        body["args"] = args
    return {"functionCall": body}


@pytest.mark.parametrize(
    "events",
    [
        [event(call("f", {"a": 1})), event(call("f", {"a": 1}))],
        [event(call("f", {"a": 1}), call("g", {"b": "x"}))],
        [event(call("f", {}, id="c1")), event(call("f", {}, id="c2"))],
        [event(call("f")), event(call("g", {"q": [1, {"r": None}]}))],
        [event({**call("f", {"a": 1}), "thoughtSignature": SIGNATURE}, call("f", {"a": 2}))],
    ],
    ids=["same call twice", "parallel calls", "with ids", "without args", "signed first call"],
)
def test_function_call_parts_never_merge(events: list[dict[str, Any]]) -> None:
    rec = merge(*events)
    sent = [part for one in events for part in one["candidates"][0]["content"]["parts"]]
    assert parts_of(rec) == sent
    assert [(c.name, c.id, c.parsed_arguments) for c in rec.choices[0].tool_calls] == [
        (p["functionCall"]["name"], p["functionCall"].get("id"), p["functionCall"].get("args") or {}) for p in sent
    ]


def streamed(*batches: list[dict[str, Any]], name: str = "get_weather") -> list[dict[str, Any]]:
    """Vertex's streamed call: the name with willContinue, `partialArgs` batches, then `{}`."""
    opening = event({"functionCall": {"name": name, "willContinue": True}})
    pieces = [event({"functionCall": {"partialArgs": batch, "willContinue": True}}) for batch in batches]
    return [opening, *pieces, event({"functionCall": {}}, finishReason="STOP")]


def piece(path: str, **value: Any) -> dict[str, Any]:
    return {"jsonPath": path, **value}


# PartialArg (Vertex AI, FunctionCall.partialArgs): an RFC 9535 JSON path and one value;
# `willContinue` on a piece says more of the same path follows (strings concatenate).
PARTIAL_ARGS = [
    (
        [[piece("$.location", stringValue="Bos", willContinue=True)], [piece("$.location", stringValue="ton")]],
        {"location": "Boston"},
    ),
    (  # as Vertex sends it: the value, then an empty piece that ends it
        [[piece("$.location", stringValue="Boston", willContinue=True)], [piece("$.location", stringValue="")]],
        {"location": "Boston"},
    ),
    (
        [[piece("$.filters.unit", stringValue="cel"), piece("$.filters.unit", stringValue="sius")]],
        {"filters": {"unit": "celsius"}},
    ),
    (
        [[piece("$.items[0]", stringValue="a")], [piece("$.items[1]", stringValue="b")]],
        {"items": ["a", "b"]},
    ),
    (
        [[piece("$.rows[0].name", stringValue="x"), piece("$.rows[0].size", numberValue=2)], [piece("$.rows[1].name", stringValue="y")]],
        {"rows": [{"name": "x", "size": 2}, {"name": "y"}]},
    ),
    (
        [[piece("$.limit", numberValue=10), piece("$.ratio", numberValue=0.25), piece("$.big", numberValue=1e21)]],
        {"limit": 10, "ratio": 0.25, "big": 1e21},
    ),
    (
        [[piece("$.exact", boolValue=True), piece("$.fuzzy", boolValue=False), piece("$.none", nullValue="NULL_VALUE")]],
        {"exact": True, "fuzzy": False, "none": None},
    ),
    (
        [[piece("$['two words']", stringValue="a"), piece('$["a-b"]', stringValue="b"), piece("$.x['y z']", numberValue=1)]],
        {"two words": "a", "a-b": "b", "x": {"y z": 1}},
    ),
    (
        [[piece("$.note", stringValue="日本"), piece("$.note", stringValue="語 😀"), piece("$.note", stringValue='"\\')]],
        {"note": '日本語 😀"\\'},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("batches", "args"), PARTIAL_ARGS)
def test_partial_args_concatenate_by_json_path(batches: list[list[dict[str, Any]]], args: dict[str, Any]) -> None:
    rec = merge(*streamed(*batches))
    assert parts_of(rec) == [{"functionCall": {"name": "get_weather", "args": args}}]
    (tool_call,) = rec.choices[0].tool_calls
    assert json.loads(tool_call.arguments) == args
    assert rec.choices[0].finish_reason == "tool_calls"


def test_partial_args_call_closed_by_a_last_piece_without_will_continue() -> None:
    rec = merge(
        event({"functionCall": {"name": "f", "willContinue": True, "partialArgs": [piece("$.a", stringValue="x")]}}),
        event({"functionCall": {"partialArgs": [piece("$.b", numberValue=1)]}}),
        event({"functionCall": {"name": "g", "args": {}}}, finishReason="STOP"),
    )
    assert parts_of(rec) == [{"functionCall": {"name": "f", "args": {"a": "x", "b": 1}}}, call("g", {})]


def test_empty_function_call_closes_the_open_call_and_a_second_one_follows() -> None:
    """The real Vertex shape: two streamed calls, each closed by an empty `functionCall`, the
    first carrying the step's signature."""
    first = streamed([piece("$.location", stringValue="Boston")])
    first[0]["candidates"][0]["content"]["parts"][0]["thoughtSignature"] = SIGNATURE
    second = streamed([piece("$.location", stringValue="San "), piece("$.location", stringValue="Francisco")])
    rec = merge(*first[:-1], event({"functionCall": {}}), *second)
    assert parts_of(rec) == [
        {"functionCall": {"name": "get_weather", "args": {"location": "Boston"}}, "thoughtSignature": SIGNATURE},
        {"functionCall": {"name": "get_weather", "args": {"location": "San Francisco"}}},
    ]


def test_empty_function_call_with_none_open_is_nothing() -> None:
    rec = merge(event(text("Hi")), event({"functionCall": {}}, finishReason="STOP"))
    assert parts_of(rec) == [text("Hi")]
    assert (rec.choices[0].tool_calls, rec.choices[0].finish_reason) == ([], "stop")


def test_json_path_that_does_not_fit_the_arguments_is_ignored_without_raising() -> None:
    """`$[0]` names an array element, but a call's arguments are an object: the piece is
    dropped rather than written under an integer key (which no JSON encoder accepts)."""
    rec = merge(
        *streamed([piece("$[0]", stringValue="x"), piece("$.ok", stringValue="y")], [piece("$.ok[2]", stringValue="z")])
    )
    assert parts_of(rec) == [{"functionCall": {"name": "get_weather", "args": {"ok": "y"}}}]


def test_other_parts_are_kept_as_they_come() -> None:
    code = {"executableCode": {"language": "PYTHON", "code": "print(6 * 7)", "id": "k1"}, "thoughtSignature": SIGNATURE}
    result = {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "42\n", "id": "k1"}}
    rec = merge(
        event(text("Let me run it.")), event(code), event(result), event(text("It is 42."), finishReason="STOP")
    )
    assert parts_of(rec) == [text("Let me run it."), code, result, text("It is 42.")]
    assert rec.choices[0].content == "Let me run it.It is 42."
    assert rec.choices[0].extras["server_tools"] == [code, result]


def usage(prompt: int, answer: int | None, thoughts: int | None = None) -> dict[str, Any]:
    counts = {"promptTokenCount": prompt, "candidatesTokenCount": answer, "thoughtsTokenCount": thoughts}
    present = {key: value for key, value in counts.items() if value is not None}
    return {**present, "totalTokenCount": sum(present.values())}


@pytest.mark.parametrize(
    ("reported", "openai"),
    [
        ([usage(9, 5, 185), usage(9, 23, 185)], {"prompt_tokens": 9, "completion_tokens": 208, "total_tokens": 217}),
        ([usage(34, None, 68), usage(34, None, 298), usage(34, 40, 298)], {"prompt_tokens": 34, "completion_tokens": 338, "total_tokens": 372}),
        ([usage(7, 1), usage(7, 2), usage(7, 3)], {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}),
    ],
    ids=["answer grows", "thoughts first", "no thoughts"],
)  # fmt: skip
def test_usage_metadata_last_wins_never_a_sum(reported: list[dict[str, Any]], openai: dict[str, Any]) -> None:
    events = [{**event(text(str(n))), "usageMetadata": one} for n, one in enumerate(reported)]
    rec = merge(*events)
    assert rec.to_native()["usageMetadata"] == reported[-1]
    assert {key: rec.to_openai()["usage"][key] for key in openai} == openai


def test_finish_reason_and_safety_ratings_take_the_latest_value() -> None:
    low = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "LOW"}]
    high = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}]
    rec = merge(
        event(text("a"), safetyRatings=low),
        event(text("b"), finishReason="STOP"),
        event(finishReason="SAFETY", safetyRatings=high),
    )
    (candidate,) = rec.to_native()["candidates"]
    assert (candidate["finishReason"], candidate["safetyRatings"]) == ("SAFETY", high)
    assert rec.choices[0].finish_reason == "content_filter"


@pytest.mark.parametrize(
    ("native", "calls", "openai"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("MAX_TOKENS", True, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
    ],
)
def test_finish_reason_maps_onto_openai(native: str, calls: bool, openai: str) -> None:
    said = call("f", {}) if calls else text("a")
    rec = merge(event(said), event(text(""), finishReason=native))
    assert rec.choices[0].finish_reason == openai
    assert rec.to_openai()["choices"][0]["finish_reason"] == openai
    assert rec.to_native()["candidates"][0]["finishReason"] == native


def two_candidates(*candidates: dict[str, Any]) -> dict[str, Any]:
    return {"candidates": list(candidates), "modelVersion": "gemini-2.5-flash"}


def said(value: str, index: int | None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"content": {"parts": [text(value)], "role": "model"}, **fields}
    if index is not None:
        body["index"] = index
    return body


@pytest.mark.parametrize(
    ("events", "contents"),
    [
        ([two_candidates(said("a", 0), said("x", 1)), two_candidates(said("b", 0), said("y", 1))], ["ab", "xy"]),
        ([two_candidates(said("x", 1), said("a", 0)), two_candidates(said("y", 1)), two_candidates(said("b", 0))], ["ab", "xy"]),
        ([two_candidates(said("a", None)), two_candidates(said("b", 0))], ["ab"]),
        ([two_candidates(said("x", 1)), two_candidates(said("a", 0), said("y", 1))], ["a", "xy"]),
    ],
    ids=["side by side", "out of order", "absent index is 0", "second seen first"],
)  # fmt: skip
def test_candidates_are_told_apart_by_index(events: list[dict[str, Any]], contents: list[str]) -> None:
    rec = merge(*events)
    assert [choice.content for choice in rec.choices] == contents
    assert [choice.index for choice in rec.choices] == list(range(len(contents)))
    assert [candidate["index"] for candidate in rec.to_native()["candidates"]] == list(range(len(contents)))


# -- (c) generated streams ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(400))
def test_stream_reconstructs_to_what_it_says(seed: int) -> None:
    stream = gen.generate(seed)
    rec = reconstruct(stream, random.Random(seed))
    if stream.framing == "array" and not stream.body:
        assert (rec.choices, rec.truncated) == ([], True)  # cut before the first byte
        return
    assert_reaches_truth(rec, stream)
    assert rec.error == stream.error
    assert (rec.done, rec.truncated) == (stream.variant == "complete", stream.variant != "complete")
    if stream.variant == "complete":
        assert rec.warnings == [], stream.describe()
        assert len(rec.chunks) == len(stream.events)
        assert [payload_of(chunk.payload) for chunk in rec.chunks] == stream.events


@pytest.mark.parametrize("seed", range(1000, 1300))
def test_random_byte_splits_do_not_change_the_reconstruction(seed: int) -> None:
    stream = gen.generate(seed)
    whole = reconstruct(stream)
    split = reconstruct(stream, random.Random(seed))
    assert (split.to_native(), split.to_openai(), split.marks) == (whole.to_native(), whole.to_openai(), whole.marks)
    assert [w.code for w in split.warnings] == [w.code for w in whole.warnings], stream.describe()
    assert (split.truncated, split.done, split.error) == (whole.truncated, whole.done, whole.error)


@pytest.mark.parametrize("seed", range(2000, 2040))
def test_one_byte_reads_do_not_change_the_reconstruction(seed: int) -> None:
    stream = gen.generate(seed, variant="complete")
    reads = [(float(end), end) for end in range(1, len(stream.body) + 1)]
    split = exchange(stream.body, url=stream.url, content_type=stream.content_type, reads=reads).reconstruct()
    assert_reaches_truth(split, stream)
    assert split.warnings == []


@pytest.mark.parametrize("seed", range(2100, 2300))
def test_each_event_is_timed_by_the_read_that_completed_it(seed: int) -> None:
    stream = gen.generate(seed, variant="complete")
    rng = random.Random(seed)
    reads = streamgen.network_reads(stream.body, streamgen.split_points(stream.body, rng), rng)
    rec = exchange(stream.body, url=stream.url, content_type=stream.content_type, reads=reads).reconstruct()
    ends = [end for _, end in reads]
    expected = [reads[bisect.bisect_left(ends, event_end)][0] for event_end in stream.event_ends]
    assert [chunk.t_ms for chunk in rec.chunks] == expected, stream.describe()


@pytest.mark.parametrize("seed", range(3000, 3200))
def test_sse_and_json_array_framings_reconstruct_alike(seed: int) -> None:
    stream = gen.generate(seed, variant="complete")
    rng = random.Random(seed)
    results = []
    for framing in gen.FRAMINGS:
        framed = gen.frame(stream.events, framing, rng)
        reads = streamgen.network_reads(framed.body, streamgen.split_points(framed.body, rng), rng)
        rec = exchange(framed.body, url=stream.url, content_type=framed.content_type, reads=reads).reconstruct()
        assert rec.streamed and rec.warnings == [], framing
        results.append((rec.to_native(), rec.to_openai(), rec.marks, rec.done, rec.truncated))
    assert results[0] == results[1] == results[2]
    assert results[0][0] == stream.truth.native()


@pytest.mark.parametrize("seed", range(4000, 4200))
def test_truncated_stream_keeps_everything_before_the_cut(seed: int) -> None:
    stream = gen.generate(seed, variant="truncated")
    rec = reconstruct(stream, random.Random(seed))
    assert (rec.truncated, rec.done) == (True, False)
    if stream.framing == "array" and not stream.body:
        assert rec.choices == []
        return
    assert_reaches_truth(rec, stream)
    if stream.framing == "array" and stream.body:
        assert rec.has("unterminated_array")


@pytest.mark.parametrize("seed", range(5000, 5150))
def test_error_event_mid_stream_keeps_what_came_before(seed: int) -> None:
    stream = gen.generate(seed, variant="error")
    rec = reconstruct(stream, random.Random(seed))
    assert_reaches_truth(rec, stream)
    assert rec.error == stream.error
    assert (rec.truncated, rec.done) == (True, False)
    assert rec.has("stream_error")


@pytest.mark.parametrize("seed", range(6000, 6150))
def test_non_streaming_generate_content_body_reconstructs_to_itself(seed: int) -> None:
    """`:generateContent` answers with the whole response at once: the merged object of the
    same stream, which chatcap reads back unchanged and maps as it maps the stream."""
    stream = gen.generate(seed, variant="complete")
    body = stream.truth.native()
    rec = exchange(
        json.dumps(body, ensure_ascii=False).encode(), url=GENERATE_URL, content_type="application/json"
    ).reconstruct()
    assert (rec.protocol, rec.requested_model, rec.streamed) == ("gemini", gen.REQUESTED_MODEL, False)
    assert rec.to_native() == body
    assert rec.to_openai() == reconstruct(stream).to_openai()
    assert (rec.done, rec.truncated, rec.warnings) == (True, False, [])


@pytest.mark.parametrize("seed", range(7000, 7200))
def test_first_token_and_first_answer_marks(seed: int) -> None:
    """TTFT counts the first event carrying generated output of any kind (thought text,
    answer text, a call, code); time to answer, the first with answer text."""
    stream = gen.generate(seed, variant="complete")
    rec = reconstruct(stream, random.Random(seed))

    def parts(one: dict[str, Any]) -> list[dict[str, Any]]:
        return [p for c in one["candidates"] for p in (c.get("content") or {}).get("parts") or []]

    def generated(part: dict[str, Any]) -> bool:
        if "text" in part:
            return bool(part["text"])
        if "functionCall" in part:
            return bool(part["functionCall"].get("name") or part["functionCall"].get("partialArgs"))
        return True

    with_output = [n for n, one in enumerate(stream.events) if any(generated(p) for p in parts(one))]
    with_answer = [
        n for n, one in enumerate(stream.events) if any(p.get("text") and not p.get("thought") for p in parts(one))
    ]
    assert rec.marks["first_token"] == with_output[0]
    assert rec.marks["first_answer"] == (with_answer[0] if with_answer else None)


def test_error_body_with_status_400() -> None:
    error = {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}
    rec = exchange(
        json.dumps({"error": error}).encode(), url=GENERATE_URL, content_type="application/json", status=400
    ).reconstruct()
    assert (rec.protocol, rec.error, rec.choices) == ("gemini", error, [])
    assert rec.has("error_response") and not rec.truncated


def test_error_array_with_status_400_is_an_error_response() -> None:
    """Without `alt=sse` the error of a refused request comes inside the array too
    (google-genai's `APIError` unwraps a one-element list): an error response, not a
    stream cut short."""
    error = {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}
    body = json.dumps([{"error": error}], indent=2).encode()
    rec = exchange(body, url=gen.GEMINI_URL, content_type="application/json", status=400).reconstruct()
    assert (rec.protocol, rec.error, rec.choices) == ("gemini", error, [])
    assert rec.has("error_response") and not rec.has("stream_error")
    assert not rec.truncated


def test_requested_model_comes_from_the_path() -> None:
    for url in (STREAM_URL, gen.GEMINI_URL, GENERATE_URL, gen.VERTEX_URL + "?alt=sse"):
        rec = exchange(
            gen.frame([event(text("Hi"), finishReason="STOP")], "sse-crlf", random.Random(0)).body, url=url
        ).reconstruct()
        assert (rec.protocol, rec.requested_model) == ("gemini", "gemini-2.5-flash"), url


def test_blocked_prompt_has_no_candidates_and_is_not_a_cut_stream() -> None:
    """A prompt the safety filters refuse: `promptFeedback.blockReason` and no candidates
    (PromptFeedback in the API reference)."""
    blocked = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r-2",
    }
    rec = merge(blocked)
    assert (rec.choices, rec.done, rec.truncated) == ([], True, False)
    assert rec.has("prompt_blocked")
    assert rec.extras["promptFeedback"] == {"blockReason": "SAFETY"}
