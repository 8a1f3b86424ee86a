"""Anthropic Messages reconstruction checked against the official SDK's own accumulator.

`anthropic.lib.streaming._messages.accumulate_event` folds stream events into the
message snapshot `client.messages.stream(...).get_final_message()` returns. For every
stream `anthropic_streamgen` makes, chatcap's `to_native()` must equal that snapshot
and the message the generator knows the stream says; a handful of streams are also read
from the same bytes by the SDK's whole client (its own SSE decoder) over a mock transport.
`to_openai()` is checked against the message it maps (text, thinking, tool calls, finish
reason, usage). chatcap is fed each body cut at random byte offsets as network reads.

Where the SDK cannot answer (a stream cut before `message_start`, a tool input cut
mid-JSON, which it parses partially), or answers other than the stream says (blocks
started out of index order, which it appends in arrival order), chatcap is checked
against the stream itself; each such place says so. Beta features (server-side
compaction, model fallback) are checked against the SDK's beta accumulator.
"""

from __future__ import annotations

import json
import random
from typing import Any

import anthropic
import anthropic_streamgen
import httpx
import pytest
from anthropic.lib.streaming._beta_messages import accumulate_event as beta_accumulate_event
from anthropic.lib.streaming._messages import accumulate_event
from openai.types.chat import ChatCompletion
from typed_path import takes_typed_path

from analyzer.model import Exchange, Reconstruction, Request, Response
from analyzer.protocols.events import payload_of

URL = "https://api.anthropic.com/v1/messages"
# What the SDK's client is called with (a mock transport answers it); the captured request
# body adds `"stream": true`.
ARGUMENTS: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "Hi"}],
}
SDK_SEEDS = range(600)
CLIENT_SEEDS = range(600, 700)
CUT_SEEDS = range(1000, 1300)
ERROR_SEEDS = range(2000, 2200)
TOOL_BLOCKS = ("tool_use", "server_tool_use")
# OpenAI's finish reasons for Anthropic's stop reasons (Messages API reference `stop_reason`;
# OpenAI chat completion object `finish_reason`: stop, length, tool_calls, content_filter).
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def exchange(
    body: bytes,
    reads: list[tuple[float, int]] | None = None,
    *,
    status: int = 200,
    content_type: str = "text/event-stream",
) -> Exchange:
    return Exchange(
        id="t#1",
        source="<anthropic_streamgen>",
        format="sse-text",
        request=Request(method="POST", url=URL, body=json.dumps({**ARGUMENTS, "stream": True}).encode()),
        response=Response(status=status, headers=[("content-type", content_type)], body=body, chunks=reads),
    )


def reconstruct(body: bytes, rng: random.Random | None = None) -> Reconstruction:
    """Reconstruct `body` whole, or as network reads cut at random offsets."""
    reads = anthropic_streamgen.reads(body, rng) if rng is not None else None
    return exchange(body, reads).reconstruct()


def sdk_message(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The SDK's snapshot after `events` (None before message_start, where it has none)."""
    snapshot = None
    for event in events:
        snapshot = accumulate_event(event=event, current_snapshot=snapshot)
    return None if snapshot is None else snapshot.to_dict()


def received(stream: anthropic_streamgen.GeneratedStream, cut: int) -> int:
    """How many events a body cut at `cut` holds whole (a last one may lack its blank line:
    chatcap keeps a payload whose JSON is complete, as the SSE decoder's flush() says)."""
    return sum(1 for end in stream.data_ends if end <= cut)


def input_so_far(events: list[dict[str, Any]], index: int) -> Any:
    """A tool block's input as far as its pieces came: nothing yet leaves the start's `{}`;
    whole JSON is parsed; a part of JSON stays text (chatcap keeps it, with a warning)."""
    text = "".join(
        event["delta"]["partial_json"]
        for event in events
        if event["type"] == "content_block_delta"
        and event["index"] == index
        and event["delta"]["type"] == "input_json_delta"
    )
    if not text:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def cut_off_inputs(message: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """`message` (the SDK's) with each unfinished tool block's input as the pieces so far
    say: the SDK parses a partial JSON text partially (jiter's partial mode), chatcap keeps
    the text. Whole inputs are left as the SDK has them."""
    stopped = {event["index"] for event in events if event["type"] == "content_block_stop"}
    content = []
    for index, block in enumerate(message["content"]):
        if block["type"] in TOOL_BLOCKS and index not in stopped:
            block = {**block, "input": input_so_far(events, index)}
        content.append(block)
    return {**message, "content": content}


def check_openai(rec: Reconstruction, message: dict[str, Any]) -> None:
    """`to_openai()` maps `message` (Anthropic's shape) onto a chat.completion: text blocks
    are the content, thinking the reasoning, tool_use blocks the tool calls."""
    completion = rec.to_openai()
    (choice,) = completion["choices"]
    reply = choice["message"]
    blocks = message.get("content") or []
    texts = [block["text"] for block in blocks if block["type"] == "text"]
    thoughts = [block["thinking"] for block in blocks if block["type"] == "thinking"]
    calls = [block for block in blocks if block["type"] == "tool_use"]
    assert (completion["id"], completion["model"]) == (message.get("id"), message.get("model"))
    assert reply["role"] == "assistant"
    assert reply["content"] == ("".join(texts) if texts else None)
    # Several thinking blocks (interleaved thinking) are joined by a blank line: chatcap's
    # convention, the wire has no joined form.
    assert reply.get("reasoning_content") == ("\n\n".join(thoughts) if thoughts else None)
    openai_calls = reply.get("tool_calls") or []
    assert [(call["id"], call["type"], call["function"]["name"]) for call in openai_calls] == [
        (block["id"], "function", block["name"]) for block in calls
    ]
    for call, block in zip(openai_calls, calls, strict=True):
        if isinstance(block["input"], str):  # cut off mid-JSON: the text as it came
            assert call["function"]["arguments"] == block["input"]
        else:
            assert json.loads(call["function"]["arguments"]) == block["input"]
    citations = [citation for block in blocks if block["type"] == "text" for citation in block.get("citations") or ()]
    assert reply.get("annotations", []) == citations
    stop = message.get("stop_reason")
    assert choice["finish_reason"] == (FINISH_REASONS[stop] if stop else None)
    usage = message.get("usage")
    if usage is None:
        assert completion["usage"] is None
        return
    read = usage.get("cache_read_input_tokens")
    written = usage.get("cache_creation_input_tokens")
    # Messages API reference, `usage`: "Total input tokens in a request is the summation of
    # input_tokens, cache_creation_input_tokens, and cache_read_input_tokens."
    prompt = usage["input_tokens"] + (read or 0) + (written or 0)
    expected = {
        "prompt_tokens": prompt,
        "completion_tokens": usage["output_tokens"],
        "total_tokens": prompt + usage["output_tokens"],
    }
    if read is not None:
        expected["prompt_tokens_details"] = {"cached_tokens": read}
    assert completion["usage"] == expected


# -- whole streams -----------------------------------------------------------------------------


def test_every_sdk_seed_stream_takes_the_typed_path() -> None:
    """The SDK seeds hold the path users run to the SDK: every generated stream (citations
    and signatures included) is decoded typed in one call."""
    bodies = {seed: anthropic_streamgen.generate(seed).body for seed in SDK_SEEDS}
    assert [seed for seed, body in bodies.items() if not takes_typed_path("anthropic_messages", body)] == []


@pytest.mark.parametrize("seed", SDK_SEEDS)
def test_stream_reconstructs_as_the_sdk_accumulates_it(seed: int) -> None:
    stream = anthropic_streamgen.generate(seed)
    rec = reconstruct(stream.body, random.Random(seed))
    assert rec.protocol == "anthropic_messages"
    assert rec.to_native() == sdk_message(stream.sdk_events()), stream.framing
    assert rec.to_native() == stream.message, stream.framing
    assert (rec.done, rec.truncated, rec.error, rec.warnings) == (True, False, None, [])


@pytest.mark.parametrize("seed", SDK_SEEDS)
def test_to_openai_maps_text_thinking_tool_calls_finish_and_usage(seed: int) -> None:
    stream = anthropic_streamgen.generate(seed)
    rec = reconstruct(stream.body, random.Random(~seed))
    assert stream.message is not None
    check_openai(rec, stream.message)


@pytest.mark.parametrize("seed", range(0, 600, 3))
def test_to_openai_is_a_chat_completion_but_for_created_and_annotations(seed: int) -> None:
    """Reported, not asserted here: `created` is null (a Message has no timestamp) and
    `annotations` holds Anthropic's citation objects, not OpenAI's `url_citation`s."""
    stream = anthropic_streamgen.generate(seed)
    completion = reconstruct(stream.body).to_openai()
    completion["created"] = 0
    completion["choices"][0]["message"].pop("annotations", None)
    validated = ChatCompletion.model_validate(completion)
    assert validated.choices[0].message.role == "assistant"


def sdk_client(body: bytes, status: int = 200, content_type: str = "text/event-stream") -> anthropic.Anthropic:
    """The SDK's client answered with `body` by a mock transport: no network."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"content-type": content_type}, content=body)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    return anthropic.Anthropic(api_key="test-key", max_retries=0, http_client=http)


@pytest.mark.parametrize("seed", CLIENT_SEEDS)
def test_stream_reconstructs_as_the_sdk_client_reads_the_same_bytes(seed: int) -> None:
    """The SDK's own SSE decoding of the body (every line-end style, padding, pretty-printed
    payloads) gives the message chatcap gives."""
    stream = anthropic_streamgen.generate(seed)
    with sdk_client(stream.body) as client, client.messages.stream(**ARGUMENTS) as events:
        final = events.get_final_message()
    assert reconstruct(stream.body, random.Random(seed)).to_native() == final.to_dict(), stream.framing


@pytest.mark.parametrize("seed", range(3000, 3200))
def test_byte_split_reads_reconstruct_identically(seed: int) -> None:
    stream = anthropic_streamgen.generate(seed, error=seed % 4 == 0)
    rng = random.Random(seed)
    body = stream.body[: rng.randint(0, len(stream.body))] if seed % 3 == 0 else stream.body

    def facts(rec: Reconstruction) -> tuple[Any, ...]:
        return (
            rec.to_native(),
            rec.to_openai(),
            rec.warnings,
            rec.done,
            rec.truncated,
            rec.error,
            rec.marks,
            [payload_of(chunk.payload) for chunk in rec.chunks],
        )

    whole = facts(reconstruct(body))
    for _ in range(3):
        assert facts(reconstruct(body, rng)) == whole, stream.framing


@pytest.mark.parametrize("seed", range(3200, 3300))
def test_events_carry_the_arrival_time_of_the_read_that_completed_them(seed: int) -> None:
    stream = anthropic_streamgen.generate(seed)
    reads = anthropic_streamgen.reads(stream.body, random.Random(seed))
    rec = exchange(stream.body, reads).reconstruct()
    expected = [
        next(t_ms for t_ms, end in reads if end >= stream.completed_at[n])
        for n, event in enumerate(stream.events)
        if event["type"] != "ping"
    ]
    assert [chunk.t_ms for chunk in rec.chunks] == expected


@pytest.mark.parametrize("seed", range(4000, 4200))
def test_chunks_are_the_events_and_marks_point_at_generated_text(seed: int) -> None:
    """One chunk per event, pings left out (counted in extras); TTFT marks the first event
    carrying generated text of any kind (DESIGN.md's timing vocabulary): a text, thinking
    or tool-input piece, or the start of a tool call or redacted thinking; time to answer
    the first text."""
    stream = anthropic_streamgen.generate(seed)
    rec = reconstruct(stream.body, random.Random(seed))
    events = [event for event in stream.events if event["type"] != "ping"]
    assert [payload_of(chunk.payload) for chunk in rec.chunks] == events
    pings = len(stream.events) - len(events)
    assert rec.extras.get("pings", 0) == pings

    def generated(event: dict[str, Any]) -> str | None:
        if event["type"] == "content_block_start":
            block = event["content_block"]
            if block.get("text"):
                return "text"
            if block.get("thinking") or block["type"] in (*TOOL_BLOCKS, "redacted_thinking"):
                return "other"
        if event["type"] == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta" and delta["text"]:
                return "text"
            if delta.get("thinking") or delta.get("partial_json"):
                return "other"
        return None

    kinds = [generated(event) for event in events]
    tokens = [n for n, kind in enumerate(kinds) if kind]
    answers = [n for n, kind in enumerate(kinds) if kind == "text"]
    assert rec.marks == {
        "first_token": tokens[0] if tokens else None,
        "first_answer": answers[0] if answers else None,
        "last_token": tokens[-1] if tokens else None,
    }


# -- streams cut short -------------------------------------------------------------------------


def check_cut_short(rec: Reconstruction, stream: anthropic_streamgen.GeneratedStream, count: int) -> None:
    """chatcap keeps everything the first `count` events say, as the SDK fed them has it."""
    events = stream.events[:count]
    expected = sdk_message(stream.sdk_events(count))
    native = rec.to_native()
    if expected is None:  # cut before message_start was whole: the SDK has no message at all
        assert native == {"content": []}
        assert rec.to_openai()["choices"][0]["message"]["content"] is None
        return
    expected = cut_off_inputs(expected, events)
    assert native == expected, stream.framing
    check_openai(rec, expected)
    unparsed = [
        block for block in native["content"] if block["type"] in TOOL_BLOCKS and isinstance(block["input"], str)
    ]
    assert rec.has("tool_input_unparsed") == bool(unparsed)


@pytest.mark.parametrize("seed", CUT_SEEDS)
def test_stream_cut_after_any_event_keeps_everything_before_the_cut(seed: int) -> None:
    stream = anthropic_streamgen.generate(seed)
    rng = random.Random(seed)
    count = rng.randrange(len(stream.events) - 1)  # message_stop never arrives
    cut = stream.event_ends[count - 1] if count else 0
    rec = reconstruct(stream.body[:cut], rng)
    check_cut_short(rec, stream, count)
    assert (rec.done, rec.truncated, rec.error) == (False, True, None)
    assert rec.has("truncated")


@pytest.mark.parametrize("seed", CUT_SEEDS)
def test_stream_cut_mid_event_keeps_everything_before_the_cut(seed: int) -> None:
    """A cut inside an event's lines: the event is lost unless its JSON is whole (then it
    counts, as a last event without its blank line)."""
    stream = anthropic_streamgen.generate(seed)
    rng = random.Random(seed)
    last = rng.randrange(len(stream.events))  # the event the cut lands in
    cut = rng.randint(stream.event_starts[last], stream.event_ends[last] - 1)
    rec = reconstruct(stream.body[:cut], rng)
    count = received(stream, cut)
    check_cut_short(rec, stream, count)
    whole = count == len(stream.events)  # message_stop's JSON arrived: the stream ended as it should
    assert (rec.done, rec.truncated, rec.has("truncated")) == (whole, not whole, not whole)
    # Part of a payload (its JSON started, not finished) is not JSON: a warning, not a guess.
    part = stream.body[stream.event_starts[last] : cut]
    assert rec.has("bad_chunk") == (b"{" in part and cut < stream.data_ends[last])


@pytest.mark.parametrize("seed", ERROR_SEEDS)
def test_error_event_mid_stream_keeps_the_text_before_it(seed: int) -> None:
    stream = anthropic_streamgen.generate(seed, error=True)
    rec = reconstruct(stream.body, random.Random(seed))
    check_cut_short(rec, stream, len(stream.events))
    assert rec.error == stream.error == {"type": "overloaded_error", "message": "Overloaded"}
    assert (rec.done, rec.truncated) == (False, True)
    assert rec.has("stream_error")


@pytest.mark.parametrize("seed", range(2200, 2220))
def test_error_event_is_what_the_sdk_client_raises(seed: int) -> None:
    stream = anthropic_streamgen.generate(seed, error=True)
    with (
        sdk_client(stream.body) as client,
        pytest.raises(anthropic.APIStatusError) as raised,
        client.messages.stream(**ARGUMENTS) as events,
    ):
        events.get_final_message()
    assert isinstance(raised.value.body, dict)
    assert reconstruct(stream.body).error == raised.value.body["error"]


# -- non-streaming responses -------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5000, 5100))
def test_non_streaming_message_reconstructs_as_the_sdk_reads_it(seed: int) -> None:
    """The Message object a non-streaming request returns (here: the one the stream
    builds): `to_native()` is it as the SDK parses it, `to_openai()` the stream's."""
    stream = anthropic_streamgen.generate(seed)
    body = json.dumps(stream.message, ensure_ascii=seed % 2 == 0).encode()
    with sdk_client(body, content_type="application/json") as client:
        parsed = client.messages.create(**ARGUMENTS)
    rec = exchange(body, content_type="application/json").reconstruct()
    assert (rec.streamed, rec.protocol, rec.done, rec.warnings) == (False, "anthropic_messages", True, [])
    assert rec.to_native() == parsed.to_dict()
    assert rec.to_openai() == reconstruct(stream.body).to_openai()


def test_overloaded_error_body_is_the_error_the_sdk_raises() -> None:
    """HTTP 529 with `{"type": "error", "error": {...}}` (API reference, "Errors")."""
    body = json.dumps(
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
        }
    ).encode()
    with (
        sdk_client(body, status=529, content_type="application/json") as client,
        pytest.raises(anthropic.OverloadedError) as raised,
    ):
        client.messages.create(**ARGUMENTS)
    rec = exchange(body, status=529, content_type="application/json").reconstruct()
    assert isinstance(raised.value.body, dict)
    assert rec.error == raised.value.body["error"]
    assert rec.has("error_response")
    assert rec.choices == []


# -- single quirks, each against the SDK or the stream ----------------------------------------


def stream_body(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events)


MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 1},
    },
}
TOOL_START = {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}


def tool_stream(pieces: list[str]) -> list[dict[str, Any]]:
    return [
        MESSAGE_START,
        {"type": "content_block_start", "index": 0, "content_block": TOOL_START},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}
            for piece in pieces
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]


def test_tool_input_split_mid_escape_assembles() -> None:
    # `{"city": "Montréal \"QC\"", "note": "a\\b"}` cut after backslashes and inside \u00e9.
    events = tool_stream(['{"city": "Montr\\', "u00", "e9al \\", '"QC\\"", "no', 'te": "a\\', '\\b"}'])
    rec = exchange(stream_body(events)).reconstruct()
    assert rec.to_native() == sdk_message(events)
    assert rec.to_native()["content"][0]["input"] == {"city": 'Montréal "QC"', "note": "a\\b"}
    (call,) = rec.choices[0].tool_calls
    assert (call.parsed_arguments, call.parse_error) == ({"city": 'Montréal "QC"', "note": "a\\b"}, None)


def test_tool_input_of_empty_pieces_stays_an_empty_object() -> None:
    events = tool_stream(["", ""])
    rec = exchange(stream_body(events)).reconstruct()
    assert rec.to_native() == sdk_message(events)
    assert rec.to_openai()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert rec.warnings == []


def test_tool_input_cut_mid_json_is_kept_as_text_with_a_warning() -> None:
    events = tool_stream(['{"city": "Par'])[:3]
    rec = exchange(stream_body(events)).reconstruct()
    assert rec.to_native()["content"][0]["input"] == '{"city": "Par'
    assert rec.choices[0].tool_calls[0].arguments == '{"city": "Par'
    assert rec.has("tool_input_unparsed") and rec.has("truncated")


def test_tool_input_integer_beyond_64_bits_keeps_its_digits() -> None:
    events = tool_stream(['{"order_id": 123456789012345678901234567890}'])
    rec = exchange(stream_body(events)).reconstruct()
    assert rec.to_native() == sdk_message(events)


def test_blocks_started_out_of_index_order_are_placed_by_index() -> None:
    """The SDK appends each content_block_start in arrival order (its accumulator has a
    `# TODO: check index`), so here it is not the oracle: each delta names its block's
    index, and the message's `content` is in index order."""
    text = {"type": "text", "text": ""}
    events = [
        MESSAGE_START,
        {"type": "content_block_start", "index": 1, "content_block": text},
        {"type": "content_block_start", "index": 0, "content_block": text},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "second"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "first "}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 3},
        },
        {"type": "message_stop"},
    ]
    rec = exchange(stream_body(events)).reconstruct()
    assert rec.to_native()["content"] == [{"type": "text", "text": "first "}, {"type": "text", "text": "second"}]
    assert rec.choices[0].content == "first second"


def test_usage_left_out_of_message_delta_keeps_message_start_figures() -> None:
    """message_delta's usage is cumulative; a figure it leaves out (or sends as null) keeps
    message_start's (streaming guide; the SDK's accumulator does the same)."""
    start = json.loads(json.dumps(MESSAGE_START))
    start["message"]["usage"] = {"input_tokens": 40, "cache_read_input_tokens": 1000, "output_tokens": 1}
    events = [
        start,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 12, "cache_read_input_tokens": None},
        },
        {"type": "message_stop"},
    ]
    rec = exchange(stream_body(events)).reconstruct()
    assert rec.to_native() == sdk_message(events)
    assert rec.to_native()["usage"] == {"input_tokens": 40, "cache_read_input_tokens": 1000, "output_tokens": 12}
    assert rec.to_openai()["usage"]["prompt_tokens"] == 1040


# -- beta features, against the SDK's beta accumulator ----------------------------------------


def beta_message(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The snapshot `client.beta.messages.stream(...)` builds from `events`."""
    snapshot = None
    for event in events:
        snapshot = beta_accumulate_event(event=event, current_snapshot=snapshot, request_headers=httpx.Headers())
    assert snapshot is not None
    return snapshot.to_dict()


def text_blocks(index: int, text: str) -> list[dict[str, Any]]:
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}},
        {"type": "content_block_stop", "index": index},
    ]


def test_compaction_block_takes_its_compaction_delta() -> None:
    """Server-side compaction (beta): the block's summary and its encrypted form come whole
    in one compaction_delta, which replaces them; the message_delta carries the
    context_management the request asked for."""
    events = [
        MESSAGE_START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "compaction", "content": None}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {
                "type": "compaction_delta",
                "content": "Earlier: the user asked for…",
                "encrypted_content": "Eq0C",
            },
        },
        {"type": "content_block_stop", "index": 0},
        *text_blocks(1, "Continuing."),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 40},
            "context_management": {"applied_edits": []},
        },
        {"type": "message_stop"},
    ]
    rec = exchange(stream_body(events)).reconstruct()
    assert rec.to_native() == beta_message(events)
    assert rec.to_native()["content"][0]["encrypted_content"] == "Eq0C"
    assert rec.choices[0].content == "Continuing."
    assert rec.warnings == []


def test_fallback_block_names_the_model_that_served_the_answer() -> None:
    """Model fallback (beta): message_start names the requested model; a `fallback` block
    (no deltas) says another model answered, and the message is that model's."""
    fallback = {
        "type": "fallback",
        "from": {"model": "claude-sonnet-4-5-20250929"},
        "to": {"model": "claude-opus-4-1-20250805"},
        "trigger": {"type": "refusal", "category": "cyber"},
    }
    events = [
        MESSAGE_START,
        {"type": "content_block_start", "index": 0, "content_block": fallback},
        {"type": "content_block_stop", "index": 0},
        *text_blocks(1, "Here you go."),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
        {"type": "message_stop"},
    ]
    rec = exchange(stream_body(events)).reconstruct()
    assert rec.to_native() == beta_message(events)
    assert rec.served_model == rec.to_openai()["model"] == "claude-opus-4-1-20250805"


def test_null_context_management_keeps_what_came_before() -> None:
    """A null message_delta field leaves the message's as it was (the SDK's beta accumulator)."""
    events = [
        MESSAGE_START,
        *text_blocks(0, "Hi"),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None, "container": None},
            "usage": {"output_tokens": 2},
            "context_management": None,
        },
        {"type": "message_stop"},
    ]
    rec = exchange(stream_body(events)).reconstruct()
    assert rec.to_native() == beta_message(events)
    assert "context_management" not in rec.to_native()
