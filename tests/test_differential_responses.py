"""OpenAI Responses API reconstruction checked against the official SDK's own stream state.

The oracle is the SDK's whole streaming path: `openai.Stream` (its SSE decoder and its
lenient `construct_type` parse into `ResponseStreamEvent`) wrapped in
`openai.lib.streaming.responses.ResponseStream` exactly as `client.responses.stream()`
builds it (no `text_format`, no `input_tools`), which folds events in its
`ResponseStreamState`. For a finished stream chatcap's `to_native()` must be the SDK's
final response; for a stream cut short, chatcap's fold must agree with the SDK's current
snapshot on what the SDK folds (message `output_text` and function call arguments) and
with the generator (`responses_streamgen`) on everything else (refusals, reasoning
summaries, custom tool input, annotations, logprobs). chatcap is fed each body as network
reads cut at random byte offsets (inside UTF-8 characters, between CR and LF).

Where this file writes an expectation by hand (the chat/completions mapping in
`to_openai()`), it follows the chat completion object's reference:
https://platform.openai.com/docs/api-reference/chat/object
"""

from __future__ import annotations

import json
import random
import typing
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import responses_streamgen as gen
import streamgen
from openai import APIError, OpenAI, Stream, omit
from openai._models import construct_type
from openai.lib.streaming.responses import ResponseStream
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from typed_path import takes_typed_path

from analyzer.model import Exchange, Reconstruction, Request, Response
from analyzer.protocols.events import payload_of

URL = "https://api.openai.com/v1/responses"
COMPLETED_SEEDS = range(0, 250)
INCOMPLETE_SEEDS = range(250, 330)
FAILED_SEEDS = range(330, 410)
MAPPING_SEEDS = range(410, 660)
CUT_SEEDS = range(1000, 1250)
MID_EVENT_SEEDS = range(2000, 2200)
FOLD_SEEDS = range(3000, 3200)
SPLIT_SEEDS = range(4000, 4080)
JSON_SEEDS = range(5000, 5100)
_CLIENT = OpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1")  # never connects: it only decodes


def exchange(body: bytes, rng: random.Random | None = None, *, request: bool = True) -> Exchange:
    """`body` as a streamed /v1/responses exchange, arriving in reads cut at random offsets (with `rng`)."""
    reads = streamgen.network_reads(body, streamgen.split_points(body, rng), rng) if rng else None
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=body, chunks=reads)
    sent = Request(method="POST", url=URL, body=b'{"model":"gpt-5","input":"hi","stream":true}') if request else None
    return Exchange(id="r#1", source="<responses_streamgen>", format="sse-text", request=sent, response=response)


def reconstruct(body: bytes, rng: random.Random | None = None) -> Reconstruction:
    return exchange(body, rng).reconstruct()


@dataclass(slots=True)
class SdkRun:
    stream: ResponseStream[object]
    events: list[Any]  # what ResponseStream yielded
    error: APIError | None  # the Stream raised on an `error` event with an `error` object

    @property
    def snapshot(self) -> dict[str, Any] | None:
        """ResponseStreamState's accumulated response (it keeps it in a private attribute)."""
        snapshot = self.stream._state._ResponseStreamState__current_snapshot  # type: ignore[attr-defined]
        return None if snapshot is None else sdk_dict(snapshot)


def sdk_run(body: bytes) -> SdkRun:
    """Feed `body` through the SDK's Stream and ResponseStream, as `client.responses.stream()` does."""
    http = httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=body,
        request=httpx.Request("POST", "http://127.0.0.1:9/v1/responses"),
    )
    raw = Stream(cast_to=ResponseStreamEvent, response=http, client=_CLIENT)
    stream: ResponseStream[object] = ResponseStream(
        raw_stream=raw, text_format=omit, input_tools=omit, starting_after=None
    )
    events: list[Any] = []
    try:
        events.extend(stream)
    except APIError as exc:
        return SdkRun(stream, events, exc)
    return SdkRun(stream, events, None)


def sdk_dict(model: Any) -> dict[str, Any]:
    """An SDK object as the JSON it came from: without the fields ParsedResponse adds
    (`parsed` on text parts, `parsed_arguments` on function calls; None without a text format)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("parsed", "parsed_arguments")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(model.to_dict(warnings=False))


def sdk_folded(items: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """What ResponseStreamState folds from deltas: message output_text and function call arguments."""
    out: list[tuple[str, Any]] = []
    for item in items:
        if item["type"] == "message":
            out.append(("message", [p["text"] for p in item["content"] if p["type"] == "output_text"]))
        elif item["type"] == "function_call":
            out.append(("function_call", item["arguments"]))
        else:
            out.append((item["type"], None))
    return out


def views(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [gen.item_view(item) for item in response.get("output") or ()]


def codes(rec: Reconstruction) -> list[str]:
    return [notice.code for notice in rec.warnings]


# -- the generator against the SDK's types -------------------------------------------------


def _known_gap(event: dict[str, Any]) -> bool:
    """What OpenAI sends that the SDK's types, validated strictly, reject (all seen in recorded
    streams): a web_search_call announced without its `action`, an `error` event carrying an
    `error` object, `insufficient_quota` as a failed response's code, usage without
    `input_tokens_details.cache_write_tokens`."""
    response = event.get("response") or {}
    usage = response.get("usage")
    return (
        (event["type"] == "response.output_item.added" and event["item"]["type"] == "web_search_call")
        or (event["type"] == "error" and "error" in event)
        or (response.get("error") or {}).get("code") == "insufficient_quota"
        or (usage is not None and "cache_write_tokens" not in usage["input_tokens_details"])
    )


_EVENT_CLASSES = {
    typing.get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in typing.get_args(typing.get_args(ResponseStreamEvent)[0])
}


@pytest.mark.parametrize("seed", range(0, 400, 4))
def test_generated_events_are_valid_sdk_events(seed: int) -> None:
    stream = gen.generate(seed)
    assert [event["sequence_number"] for event in stream.events] == list(range(len(stream.events)))
    for event in stream.events:
        cls = _EVENT_CLASSES[event["type"]]
        assert type(construct_type(type_=ResponseStreamEvent, value=event)) is cls
        if not _known_gap(event):
            cls.model_validate(event)


# -- finished streams ------------------------------------------------------------------------


def test_every_completed_seed_stream_takes_the_typed_path() -> None:
    """The completed seeds hold the path users run to the SDK: every generated stream
    (refusals, custom tool input, web searches included) is decoded typed in one call."""
    bodies = {seed: gen.generate(seed, ending="completed").body for seed in COMPLETED_SEEDS}
    assert [seed for seed, body in bodies.items() if not takes_typed_path("openai_responses", body)] == []


@pytest.mark.parametrize("seed", COMPLETED_SEEDS)
def test_completed_stream_matches_sdk_final_response(seed: int) -> None:
    stream = gen.generate(seed, ending="completed")
    rec = reconstruct(stream.body, random.Random(seed))
    final = sdk_run(stream.body).stream.get_final_response()
    assert rec.to_native() == sdk_dict(final), stream.framing
    assert rec.warnings == []
    assert (rec.protocol, rec.done, rec.truncated, rec.error) == ("openai_responses", True, False, None)


@pytest.mark.parametrize("seed", INCOMPLETE_SEEDS)
def test_incomplete_stream_keeps_the_incomplete_response(seed: int) -> None:
    stream = gen.generate(seed, ending=random.Random(seed).choice(("max_output_tokens", "content_filter")))
    rec = reconstruct(stream.body, random.Random(seed))
    terminal = sdk_run(stream.body).events[-1]
    assert terminal.type == "response.incomplete"
    assert rec.to_native() == sdk_dict(terminal.response), stream.framing
    assert rec.warnings == []
    assert (rec.done, rec.truncated) == (True, False)


@pytest.mark.parametrize("seed", FAILED_SEEDS)
def test_error_event_then_failed_sets_error_and_is_not_truncated(seed: int) -> None:
    stream = gen.generate(seed, ending="failed")
    rec = reconstruct(stream.body, random.Random(seed))
    assert rec.error == stream.final["error"]
    assert (rec.done, rec.truncated, rec.choices[0].finish_reason) == (True, False, None)
    assert codes(rec) == ["stream_error"]
    # OpenAI sends a failed response without output: what the deltas brought is kept.
    assert views(rec.to_native()) == (views(stream.final) or gen.expected_output(stream, stream.terminal_index))
    sdk = sdk_run(stream.body)
    if sdk.error is not None:  # the SDK's Stream raises on an error event with an `error` object
        assert sdk.error.body == stream.error_event["error"]  # type: ignore[index]
    else:
        assert sdk.events[-1].type == "response.failed"
        assert {**rec.to_native(), "output": []} == {**sdk_dict(sdk.events[-1].response), "output": []}


def expected_chat(response: dict[str, Any], terminal: str | None) -> dict[str, Any]:
    """The chat.completion fields `to_openai()` maps a response onto: content is every
    output_text joined (the SDK's `Response.output_text`), null with none; refusal; reasoning
    summaries joined by a blank line; function and custom tool calls by call_id; the text's
    token logprobs; finish reason stop / tool_calls / length / content_filter (none for a
    failed or unfinished response); usage under chat's names."""
    items = response.get("output") or []
    parts = [part for item in items if item["type"] == "message" for part in item["content"]]
    text = construct_type(type_=SdkResponse, value=response).output_text
    refusals = [part["refusal"] for part in parts if part["type"] == "refusal"]
    logprobs = [token for part in parts if part["type"] == "output_text" for token in part["logprobs"]]
    summaries = [part["text"] for item in items if item["type"] == "reasoning" for part in item["summary"]]
    # Chat's shapes: a function call's arguments under `function`, a custom tool's free-text
    # input under `custom` (the chat completion object's `tool_calls`).
    calls = [
        {"id": item["call_id"], "type": "function", "function": {"name": item["name"], "arguments": item["arguments"]}}
        if item["type"] == "function_call"
        else {"id": item["call_id"], "type": "custom", "custom": {"name": item["name"], "input": item["input"]}}
        for item in items
        if item["type"] in ("function_call", "custom_tool_call")
    ]
    finish = None
    if terminal == "response.completed":
        finish = "tool_calls" if calls else "stop"
    elif terminal == "response.incomplete":
        finish = {"max_output_tokens": "length", "content_filter": "content_filter"}[
            response["incomplete_details"]["reason"]
        ]
    usage = response.get("usage")
    return {
        "id": response["id"],
        "model": response["model"],
        "created": response["created_at"],
        "content": text if any(part["type"] == "output_text" for part in parts) else None,
        "refusal": "".join(refusals) if refusals else None,
        "reasoning_content": "\n\n".join(summaries) if summaries else None,
        "tool_calls": calls,
        "logprobs": {"content": logprobs} if logprobs else None,
        "finish_reason": finish,
        "usage": None
        if usage is None
        else {
            "prompt_tokens": usage["input_tokens"],
            "completion_tokens": usage["output_tokens"],
            "total_tokens": usage["total_tokens"],
            "prompt_tokens_details": {"cached_tokens": usage["input_tokens_details"]["cached_tokens"]},
            "completion_tokens_details": {"reasoning_tokens": usage["output_tokens_details"]["reasoning_tokens"]},
        },
    }


def chat_view(completion: dict[str, Any]) -> dict[str, Any]:
    (choice,) = completion["choices"]
    message = choice["message"]
    return {
        "id": completion["id"],
        "model": completion["model"],
        "created": completion["created"],
        "content": message["content"],
        "refusal": message["refusal"],
        "reasoning_content": message.get("reasoning_content"),
        "tool_calls": message.get("tool_calls") or [],
        "logprobs": choice["logprobs"],
        "finish_reason": choice["finish_reason"],
        "usage": completion["usage"],
    }


@pytest.mark.parametrize("seed", MAPPING_SEEDS)
def test_to_openai_maps_text_reasoning_tool_calls_finish_and_usage(seed: int) -> None:
    stream = gen.generate(seed)
    rec = reconstruct(stream.body, random.Random(seed))
    response = stream.final
    if not response["output"]:
        response = {**response, "output": gen.expected_output(stream, stream.terminal_index)}
    assert chat_view(rec.to_openai()) == expected_chat(response, stream.terminal), stream.framing
    (choice,) = rec.choices
    for call in choice.tool_calls:
        if call.type == "custom":  # free text, not JSON
            assert (call.parsed_arguments, call.parse_error) == (None, None)
            continue
        try:
            parsed = json.loads(call.arguments)
        except ValueError:  # a failed response cut the arguments short
            assert stream.terminal == "response.failed" and call.parse_error
        else:
            assert (call.parsed_arguments, call.parse_error) == (parsed, None)
    # Annotations keep the Responses API's own shape (as the Anthropic mapping keeps citations).
    annotations = [
        annotation
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        for annotation in part.get("annotations") or ()
    ]
    assert rec.to_openai()["choices"][0]["message"].get("annotations", []) == annotations


# -- streams cut short: chatcap's own fold ---------------------------------------------------


@pytest.mark.parametrize("seed", CUT_SEEDS)
def test_stream_cut_after_any_event_matches_sdk_snapshot(seed: int) -> None:
    stream = gen.generate(seed)
    rng = random.Random(seed)
    body, received = gen.cut(stream, rng, inside=False)
    rec = reconstruct(body, rng)
    native = rec.to_native()
    assert sdk_folded(native["output"]) == sdk_folded(sdk_run(body).snapshot["output"]), stream.framing
    output = gen.expected_output(stream, received)
    assert views(native) == output
    assert chat_view(rec.to_openai()) == expected_chat({**stream.created, "output": output}, None)
    assert (rec.done, rec.truncated) == (False, True)
    errored = any(event["type"] == "error" for event in stream.events[:received])
    assert codes(rec) == (["stream_error"] if errored else ["truncated"])
    if errored:
        error = stream.error_event.get("error", stream.error_event)  # type: ignore[union-attr]
        assert rec.error["message"] == error["message"]  # type: ignore[index]


@pytest.mark.parametrize("seed", MID_EVENT_SEEDS)
def test_stream_cut_inside_an_event_keeps_every_whole_event(seed: int) -> None:
    stream = gen.generate(seed)
    rng = random.Random(seed)
    body, received = gen.cut(stream, rng, inside=True)
    rec = reconstruct(body, rng)
    assert len(rec.chunks) == received
    assert views(rec.to_native()) == gen.expected_output(stream, received), stream.framing
    assert (rec.done, rec.truncated) == (False, True)


def _deltas_only(seed: int) -> gen.GeneratedResponseStream:
    ending = random.Random(seed).choice(("completed", "completed", "max_output_tokens", "content_filter"))
    return gen.generate(seed, ending=ending, done_events=False)


@pytest.mark.parametrize("seed", FOLD_SEEDS)
def test_deltas_alone_fold_to_the_final_output_item_by_item(seed: int) -> None:
    """No `….done` event and no `output_item.done`: the deltas alone must add up to each
    item of the terminal response."""
    stream = _deltas_only(seed)
    rng = random.Random(seed)
    before_terminal = stream.body[: stream.event_ends[stream.terminal_index - 1]]
    folded = reconstruct(before_terminal, rng).to_native()
    assert views(folded) == views(stream.final), stream.framing
    assert sdk_folded(folded["output"]) == sdk_folded(sdk_run(before_terminal).snapshot["output"])
    whole = reconstruct(stream.body, rng)
    assert (whole.to_native(), whole.warnings) == (stream.final, [])


@pytest.mark.parametrize("seed", range(3200, 3240))
def test_arguments_split_mid_escape_fold_to_the_json_sent(seed: int) -> None:
    """Argument deltas cut right after a backslash or inside a \\uXXXX escape are only text
    until the last one: the folded arguments are the JSON the model sent, parsed."""
    while True:
        stream = gen.generate(seed, ending="completed", done_events=False)
        if any(e["type"].endswith("arguments.delta") and e["delta"].endswith("\\") for e in stream.events):
            break
        seed += 1000
    rec = reconstruct(stream.body[: stream.event_ends[stream.terminal_index - 1]], random.Random(seed))
    sent = [item for item in stream.final["output"] if item["type"] == "function_call"]
    calls = [call for call in rec.choices[0].tool_calls if call.type == "function"]
    assert [(call.id, call.name, call.arguments) for call in calls] == [
        (item["call_id"], item["name"], item["arguments"]) for item in sent
    ]
    assert [(call.parsed_arguments, call.parse_error) for call in calls] == [
        (json.loads(item["arguments"]), None) for item in sent
    ]


@pytest.mark.parametrize("seed", range(3000, 3100))
def test_terminal_response_without_output_takes_the_folded_output(seed: int) -> None:
    """Some Responses-compatible servers end with a response whose `output` is empty."""
    stream = _deltas_only(seed)
    events = [*stream.events[:-1], {**stream.events[-1], "response": {**stream.final, "output": []}}]
    body = gen.frame(events, random.Random(seed))[0]
    rec = reconstruct(body, random.Random(seed))
    assert views(rec.to_native()) == views(stream.final)
    assert chat_view(rec.to_openai()) == chat_view(reconstruct(stream.body).to_openai())
    assert rec.warnings == []


def _with_text(seed: int, **options: Any) -> gen.GeneratedResponseStream:
    """The first stream from `seed` on whose final output has message text or arguments."""
    while True:
        stream = gen.generate(seed, ending="completed", **options)
        if any(event["type"].endswith(("output_text.delta", "arguments.delta")) for event in stream.events):
            return stream
        seed += 1


@pytest.mark.parametrize("seed", range(6000, 6030))
def test_final_response_that_disagrees_with_the_deltas_warns_final_differs(seed: int) -> None:
    stream = _with_text(seed, done_events=False)
    final = json.loads(json.dumps(stream.final))
    for item in final["output"]:
        if item["type"] == "message" and item["content"][0]["type"] == "output_text":
            item["content"][0]["text"] += "!"
            break
        if item["type"] == "function_call":
            item["arguments"] += " "
            break
    events = [*stream.events[:-1], {**stream.events[-1], "response": final}]
    rec = reconstruct(gen.frame(events, random.Random(seed))[0])
    assert codes(rec) == ["final_differs"]
    assert rec.to_native() == final  # the provider's final word is kept


@pytest.mark.parametrize("seed", range(6100, 6130))
def test_deltas_that_disagree_with_done_events_warn_final_differs(seed: int) -> None:
    """`….done` and `output_item.done` repeat the whole value: where the deltas added up to
    something else, the stream is inconsistent whichever one the reconstruction keeps."""
    stream = _with_text(seed)
    events = json.loads(json.dumps(stream.events))
    delta = next(e for e in events if e["type"].endswith(("output_text.delta", "arguments.delta")))
    delta["delta"] += "\u2060"  # an invisible extra character
    rec = reconstruct(gen.frame(events, random.Random(seed))[0])
    assert codes(rec) == ["final_differs"]
    assert rec.to_native() == stream.final


# -- how the body arrives --------------------------------------------------------------------


@pytest.mark.parametrize("seed", SPLIT_SEEDS)
def test_byte_splits_do_not_change_the_reconstruction(seed: int) -> None:
    stream = gen.generate(seed)
    whole = reconstruct(stream.body)
    for attempt in range(3):
        rec = reconstruct(stream.body, random.Random(seed * 7 + attempt))
        assert rec.to_native() == whole.to_native()
        assert rec.to_openai() == whole.to_openai()
        payloads = [payload_of(chunk.payload) for chunk in rec.chunks]
        assert payloads == [payload_of(chunk.payload) for chunk in whole.chunks] == stream.events
        assert (rec.warnings, rec.marks) == (whole.warnings, whole.marks)
        times = [chunk.t_ms for chunk in rec.chunks]
        assert all(t is not None for t in times) and times == sorted(times)


@pytest.mark.parametrize("seed", range(4100, 4130))
def test_bare_stream_without_request_is_recognised_as_responses(seed: int) -> None:
    stream = gen.generate(seed)
    rec = exchange(stream.body, random.Random(seed), request=False).reconstruct()
    assert rec.protocol == "openai_responses"
    assert rec.to_openai() == reconstruct(stream.body).to_openai()


# -- not streamed ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", JSON_SEEDS)
def test_non_streaming_response_matches_the_streamed_one(seed: int) -> None:
    stream = gen.generate(seed, ending=random.Random(seed).choice(gen.ENDINGS[:-2]))  # not failed
    body = json.dumps(stream.final, ensure_ascii=False).encode()
    response = Response(status=200, headers=[("content-type", "application/json")], body=body)
    rec = Exchange(
        id="r#1", source="<json>", format="json", request=Request(method="POST", url=URL), response=response
    ).reconstruct()
    streamed = reconstruct(stream.body)
    assert (rec.protocol, rec.streamed, rec.done, rec.truncated) == ("openai_responses", False, True, False)
    assert rec.to_native() == stream.final
    assert rec.to_openai() == streamed.to_openai()
    assert rec.warnings == []


def test_non_streaming_error_body_sets_the_error() -> None:
    error = {
        "message": "Rate limit reached for gpt-5 on tokens per min (TPM): Limit 30000, Used 29000.",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    response = Response(
        status=429, headers=[("content-type", "application/json")], body=json.dumps({"error": error}).encode()
    )
    rec = Exchange(
        id="r#1", source="<json>", format="json", request=Request(method="POST", url=URL), response=response
    ).reconstruct()
    assert (rec.protocol, rec.error, rec.choices) == ("openai_responses", error, [])
    assert codes(rec) == ["error_response"]
