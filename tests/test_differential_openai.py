"""chat/completions reconstruction checked against the official SDK's own stream accumulator.

`openai.lib.streaming.chat.ChatCompletionStreamState` folds chunks by generic delta
concatenation (`openai/lib/streaming/_deltas.py`): strings are appended, dicts merged,
list entries matched by their `index`, `index`/`type` replaced. For every stream the
generator makes, that is the right answer, so chatcap must agree with it field by field,
and with what the generator knows the stream says. chatcap is fed the body cut at random
byte boundaries (inside UTF-8 characters, between CR and LF) as network reads.

Where the SDK's concatenation is wrong (a provider repeating `role` or a tool call's
`id`/`name` in every delta), chatcap is checked against the generator's truth only.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import streamgen
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from typed_path import takes_typed_path

import analyzer
from analyzer.model import Exchange, Reconstruction, Response

SDK_SEEDS = range(1000)
PARSE_SEEDS = range(1000, 1150)
QUIRK_SEEDS = range(2000, 2150)
# U+0085 is turned into "…" by parse()'s mojibake repair (see test_nel_in_a_bare_stream_is_kept);
# the parse() comparison leaves it out so that one bug does not hide others.
ATOMS_WITHOUT_NEL = tuple(atom for atom in streamgen.TEXT_ATOMS if "\x85" not in atom)


def reconstruct_from_reads(body: bytes, rng: random.Random) -> Reconstruction:
    """Reconstruct `body` as if it arrived in network reads cut at random byte offsets."""
    reads = streamgen.network_reads(body, streamgen.split_points(body, rng), rng)
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=body, chunks=reads)
    exchange = Exchange(id="t#1", source="<streamgen>", format="sse-text", request=None, response=response)
    return exchange.reconstruct()


def sdk_snapshot(chunks: list[dict[str, Any]]) -> Any:
    """The SDK's accumulated completion after feeding it every chunk."""
    state: ChatCompletionStreamState[object] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    # Not get_final_completion(): it raises for finish_reason "length" / "content_filter".
    return state.current_completion_snapshot


def _logprobs(content: list[Any] | None, refusal: list[Any] | None) -> dict[str, list[Any]]:
    return {"content": list(content or []), "refusal": list(refusal or [])}


def chatcap_view(completion: dict[str, Any]) -> dict[str, Any]:
    """The compared fields of chatcap's `to_openai()`."""
    choices = []
    for choice in completion["choices"]:
        message = choice["message"]
        logprobs = choice["logprobs"]
        function_call = message.get("function_call")
        choices.append(
            {
                "index": choice["index"],
                "role": message["role"],
                "content": message["content"],
                "reasoning_content": message.get("reasoning_content"),
                "refusal": message["refusal"],
                "tool_calls": [
                    {
                        "id": call["id"],
                        "type": call["type"],
                        "name": call["function"]["name"],
                        "arguments": call["function"]["arguments"],
                    }
                    for call in message.get("tool_calls") or []
                ],
                "function_call": None
                if function_call is None
                else {"name": function_call["name"], "arguments": function_call["arguments"]},
                "finish_reason": choice["finish_reason"],
                "logprobs": None if logprobs is None else _logprobs(logprobs.get("content"), logprobs.get("refusal")),
            }
        )
    return {
        "id": completion["id"],
        "model": completion["model"],
        "created": completion["created"],
        "system_fingerprint": completion.get("system_fingerprint"),
        "service_tier": completion.get("service_tier"),
        "usage": completion["usage"],
        "choices": choices,
    }


def _reasoning(extras: dict[str, Any]) -> str | None:
    value = extras.get("reasoning_content")
    return extras.get("reasoning") if value is None else value


def sdk_view(snapshot: Any) -> dict[str, Any]:
    """The same fields of the SDK's accumulated snapshot."""
    choices = []
    for choice in snapshot.choices:
        message = choice.message
        logprobs = choice.logprobs
        choices.append(
            {
                "index": choice.index,
                "role": message.role,
                "content": message.content,
                # not SDK fields: kept as extras on the message
                "reasoning_content": _reasoning(message.model_extra or {}),
                "refusal": message.refusal,
                "tool_calls": [
                    {"id": call.id, "type": call.type, "name": call.function.name, "arguments": call.function.arguments}
                    for call in message.tool_calls or []
                ],
                "function_call": None
                if message.function_call is None
                else {"name": message.function_call.name, "arguments": message.function_call.arguments},
                "finish_reason": choice.finish_reason,
                "logprobs": None
                if logprobs is None
                else _logprobs(
                    [token.to_dict() for token in logprobs.content or []],
                    [token.to_dict() for token in logprobs.refusal or []],
                ),
            }
        )
    return {
        "id": snapshot.id,
        "model": snapshot.model,
        "created": snapshot.created,
        "system_fingerprint": snapshot.system_fingerprint,
        "service_tier": snapshot.service_tier,
        "usage": None if snapshot.usage is None else snapshot.usage.to_dict(),
        "choices": choices,
    }


def truth_view(stream: streamgen.GeneratedStream) -> dict[str, Any]:
    """The same fields as the generator knows them."""
    choices = []
    for choice in stream.choices:
        choices.append(
            {
                "index": choice.index,
                "role": "assistant",
                "content": choice.content,
                "reasoning_content": choice.reasoning,
                "refusal": choice.refusal,
                "tool_calls": [
                    {"id": call.id, "type": "function", "name": call.name, "arguments": call.arguments}
                    for call in choice.tool_calls
                ],
                "function_call": None
                if choice.function_call is None
                else {"name": choice.function_call[0], "arguments": choice.function_call[1]},
                "finish_reason": choice.finish_reason,
                "logprobs": _logprobs(choice.content_logprobs, choice.refusal_logprobs),
            }
        )
    return {
        "id": stream.id,
        "model": stream.model,
        "created": stream.created,
        "system_fingerprint": stream.system_fingerprint,
        "service_tier": stream.service_tier,
        "usage": stream.usage,
        "choices": choices,
    }


def _logprobs_as_sent(view: dict[str, Any]) -> dict[str, Any]:
    """`view` with a choice's absent logprobs read as empty lists (the truth does not track null vs [])."""
    for choice in view["choices"]:
        if choice["logprobs"] is None:
            choice["logprobs"] = _logprobs(None, None)
    return view


def test_every_sdk_seed_stream_takes_the_typed_whole_stream_path() -> None:
    """The SDK seeds hold the path users run to the SDK: every generated stream, whatever its
    framing (`data:` with extra spaces, CR line ends, comments…), is cut and decoded whole."""
    assert [seed for seed in SDK_SEEDS if not takes_typed_path("openai_chat", streamgen.generate(seed).body)] == []


@pytest.mark.parametrize("seed", SDK_SEEDS)
def test_reconstruction_matches_sdk_accumulator(seed: int) -> None:
    stream = streamgen.generate(seed)
    rec = reconstruct_from_reads(stream.body, random.Random(seed))
    assert chatcap_view(rec.to_openai()) == sdk_view(sdk_snapshot(stream.chunks)), stream.framing
    assert _logprobs_as_sent(chatcap_view(rec.to_openai())) == truth_view(stream), stream.framing


@pytest.mark.parametrize("seed", SDK_SEEDS)
def test_valid_stream_reconstructs_without_warnings(seed: int) -> None:
    stream = streamgen.generate(seed)
    rec = reconstruct_from_reads(stream.body, random.Random(~seed))
    assert rec.warnings == []
    assert (rec.done, rec.truncated) == (True, False)
    assert rec.comments == stream.comments
    assert [choice.finish_reason for choice in rec.choices] == [choice.finish_reason for choice in stream.choices]


@pytest.mark.parametrize("seed", PARSE_SEEDS)
def test_parsed_bare_stream_matches_sdk_accumulator(seed: int) -> None:
    stream = streamgen.generate(seed, texts=ATOMS_WITHOUT_NEL)
    (exchange,) = analyzer.parse(stream.body)
    rec = exchange.reconstruct()
    assert chatcap_view(rec.to_openai()) == sdk_view(sdk_snapshot(stream.chunks)), stream.framing
    assert rec.warnings == []


@pytest.mark.parametrize("seed", range(0, 1000, 5))
def test_to_openai_is_a_valid_chat_completion(seed: int) -> None:
    stream = streamgen.generate(seed)
    completion = reconstruct_from_reads(stream.body, random.Random(seed)).to_openai()
    validated = ChatCompletion.model_validate(completion)
    assert validated.object == "chat.completion"
    assert [choice.message.role for choice in validated.choices] == ["assistant"] * len(stream.choices)


@pytest.mark.parametrize("seed", range(1, 1000, 5))
def test_to_openai_round_trips_as_a_non_streaming_response(seed: int) -> None:
    """to_openai() is a chat.completion: parsed back as a response body it reconstructs to itself."""
    stream = streamgen.generate(seed, texts=ATOMS_WITHOUT_NEL)
    completion = reconstruct_from_reads(stream.body, random.Random(seed)).to_openai()
    (exchange,) = analyzer.parse(json.dumps(completion, ensure_ascii=False))
    rec = exchange.reconstruct()
    assert (rec.streamed, rec.to_openai(), rec.warnings) == (False, completion, [])


def test_long_keep_alive_prelude_is_still_chat_completions() -> None:
    """OpenRouter sends `: OPENROUTER PROCESSING` comments while a slow model thinks; a bare
    stream (no request to name the path) that opens with more than 8 KB of them is still one."""
    stream = streamgen.generate(5)
    body = b": OPENROUTER PROCESSING\n\n" * 400 + stream.body
    (exchange,) = analyzer.parse(body)
    rec = exchange.reconstruct()
    assert rec.protocol == "openai_chat"
    assert chatcap_view(rec.to_openai()) == sdk_view(sdk_snapshot(stream.chunks))


@pytest.mark.parametrize("seed", QUIRK_SEEDS)
def test_provider_quirk_streams_reconstruct_to_the_truth(seed: int) -> None:
    """Role repeated in every delta, tool call id/type/name repeated in every fragment or
    `"type": null` after the first, function_call name repeated, choices first seen out of
    index order, Azure's blank prompt-filter chunk first: the SDK gets these wrong."""
    stream = streamgen.generate(seed, provider_quirks=True)
    rec = reconstruct_from_reads(stream.body, random.Random(seed))
    assert _logprobs_as_sent(chatcap_view(rec.to_openai())) == truth_view(stream), stream.framing
    for choice, expected in zip(rec.choices, stream.choices, strict=True):
        for call, truth in zip(choice.tool_calls, expected.tool_calls, strict=True):
            assert (call.index, call.parse_error) == (truth.index, None)


def _stream_body(deltas: list[dict[str, Any]]) -> bytes:
    """A framed stream with one chunk per `choices[]` item."""
    chunks = [
        {
            "id": "chatcmpl-q",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "qwen-plus",
            "choices": [choice],
        }
        for choice in deltas
    ]
    return streamgen.frame(chunks, random.Random(0)).body


def test_role_repeated_in_every_delta_stays_assistant() -> None:
    body = _stream_body(
        [
            {"index": 0, "delta": {"role": "assistant", "content": "Hel"}},
            {"index": 0, "delta": {"role": "assistant", "content": "lo"}},
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"},
        ]
    )
    rec = analyzer.parse(body)[0].reconstruct()
    message = rec.to_openai()["choices"][0]["message"]
    assert (message["role"], message["content"]) == ("assistant", "Hello")
    assert not rec.has("role_changed")


def test_tool_call_id_and_name_repeated_in_every_fragment_are_not_doubled() -> None:
    fragment = {"index": 0, "id": "call_abc", "type": "function"}
    body = _stream_body(
        [
            {
                "index": 0,
                "delta": {
                    "role": "assistant",
                    "tool_calls": [{**fragment, "function": {"name": "get_weather", "arguments": '{"ci'}}],
                },
            },
            {
                "index": 0,
                "delta": {
                    "tool_calls": [{**fragment, "function": {"name": "get_weather", "arguments": 'ty": "Paris"}'}}]
                },
            },
            {"index": 0, "delta": {}, "finish_reason": "tool_calls"},
        ]
    )
    rec = analyzer.parse(body)[0].reconstruct()
    (call,) = rec.to_openai()["choices"][0]["message"]["tool_calls"]
    assert call == {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    assert rec.choices[0].tool_calls[0].parsed_arguments == {"city": "Paris"}
    assert not rec.has("tool_call_conflict")


def test_legacy_function_call_name_repeated_is_not_doubled() -> None:
    body = _stream_body(
        [
            {"index": 0, "delta": {"role": "assistant", "function_call": {"name": "lookup", "arguments": "{"}}},
            {"index": 0, "delta": {"function_call": {"name": "lookup", "arguments": "}"}}},
            {"index": 0, "delta": {}, "finish_reason": "function_call"},
        ]
    )
    message = analyzer.parse(body)[0].reconstruct().to_openai()["choices"][0]["message"]
    assert message["function_call"] == {"name": "lookup", "arguments": "{}"}


def test_choices_first_seen_out_of_order_keep_their_index() -> None:
    body = _stream_body(
        [
            {"index": 1, "delta": {"role": "assistant", "content": "second"}, "finish_reason": "stop"},
            {"index": 0, "delta": {"role": "assistant", "content": "first"}, "finish_reason": "stop"},
        ]
    )
    choices = analyzer.parse(body)[0].reconstruct().to_openai()["choices"]
    assert [(c["index"], c["message"]["content"]) for c in choices] == [(0, "first"), (1, "second")]


def test_nel_in_a_bare_stream_is_kept() -> None:
    """U+0085 (NEL) is a valid character in valid UTF-8: a bare stream holding it is not mojibake."""
    body = _stream_body(
        [
            {"index": 0, "delta": {"role": "assistant", "content": "a\x85b"}},
            {"index": 0, "delta": {}, "finish_reason": "stop"},
        ]
    )
    rec = analyzer.parse(body)[0].reconstruct()
    assert rec.choices[0].content == "a\x85b"
    assert not rec.has("mojibake_repaired")


@pytest.mark.parametrize("seed", range(3000, 3150))
def test_stream_cut_after_any_event_matches_sdk_on_the_chunks_so_far(seed: int) -> None:
    stream = streamgen.generate(seed)
    rng = random.Random(seed)
    last = rng.randrange(len(stream.chunks))  # the last event received in full
    body = stream.body[: stream.event_ends[last]]
    rec = reconstruct_from_reads(body, rng)
    assert chatcap_view(rec.to_openai()) == sdk_view(sdk_snapshot(stream.chunks[: last + 1])), stream.framing
    assert not rec.done
    assert rec.truncated == (not all(choice.finish_reason for choice in rec.choices))


def _has_text(choice: dict[str, Any]) -> bool:
    delta = choice.get("delta") or {}
    texts = (delta.get("content"), delta.get("reasoning_content"), delta.get("reasoning"), delta.get("refusal"))
    return (
        any(isinstance(text, str) and text for text in texts)
        or bool(delta.get("tool_calls"))
        or delta.get("function_call") is not None
    )


@pytest.mark.parametrize("seed", range(4000, 4200))
def test_first_token_and_first_answer_marks(seed: int) -> None:
    """TTFT counts the first chunk carrying text of any kind; time to answer, the first content."""
    stream = streamgen.generate(seed)
    rec = reconstruct_from_reads(stream.body, random.Random(seed))
    with_text = [n for n, chunk in enumerate(stream.chunks) if any(_has_text(choice) for choice in chunk["choices"])]
    with_content = [
        n
        for n, chunk in enumerate(stream.chunks)
        if any((choice["delta"].get("content") or "") for choice in chunk["choices"])
    ]
    assert rec.marks == {
        "first_token": with_text[0] if with_text else None,
        "first_answer": with_content[0] if with_content else None,
        "last_token": with_text[-1] if with_text else None,
    }
