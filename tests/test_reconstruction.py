"""chat/completions accumulation rules that no SDK oracle settles."""

from __future__ import annotations

import orjson

import analyzer


def stream(*chunks: dict) -> analyzer.Reconstruction:
    body = b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks) + b"data: [DONE]\n\n"
    return analyzer.parse(body)[0].reconstruct()


def tool_delta(**fields: object) -> dict:
    return {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, **fields}]}}]}


def test_tool_call_name_streamed_in_pieces_is_joined() -> None:
    rec = stream(
        tool_delta(id="call_1", type="function", function={"name": "get_"}),
        tool_delta(function={"name": "weather"}),
        tool_delta(function={"arguments": '{"city":'}),
        tool_delta(function={"arguments": '"Oslo"}'}),
    )
    (call,) = rec.choices[0].tool_calls
    assert (call.id, call.name, call.parsed_arguments) == ("call_1", "get_weather", {"city": "Oslo"})
    assert not rec.has("tool_call_conflict")


def test_tool_call_id_and_name_repeated_in_every_fragment_are_not_doubled() -> None:
    rec = stream(
        tool_delta(id="0", type="function", function={"name": "lookup", "arguments": ""}),
        tool_delta(id="0", type="function", function={"name": "lookup", "arguments": "{}"}),
    )
    (call,) = rec.choices[0].tool_calls
    assert (call.id, call.name, call.arguments) == ("0", "lookup", "{}")


def test_tool_call_renamed_after_its_arguments_is_flagged() -> None:
    rec = stream(
        tool_delta(id="c", function={"name": "a", "arguments": "{}"}),
        tool_delta(function={"name": "b"}),
    )
    assert rec.choices[0].tool_calls[0].name == "a"
    assert rec.has("tool_call_conflict")


def test_tool_call_arguments_that_are_not_json_keep_the_text_and_the_error() -> None:
    rec = stream(tool_delta(id="c", function={"name": "f", "arguments": '{"a": '}))
    call = rec.choices[0].tool_calls[0]
    assert call.arguments == '{"a": ' and call.parsed_arguments is None and call.parse_error


def test_logprobs_accumulate_and_keep_a_null_refusal() -> None:
    token = {"token": "a", "logprob": -0.1, "bytes": [97], "top_logprobs": []}
    rec = stream(
        {"choices": [{"index": 0, "delta": {"content": "a"}, "logprobs": {"content": [token], "refusal": None}}]},
        {"choices": [{"index": 0, "delta": {"content": "a"}, "logprobs": {"content": [token], "refusal": None}}]},
    )
    assert rec.choices[0].logprobs == {"content": [token, token], "refusal": None}


def test_interleaved_choices_are_kept_apart_by_index() -> None:
    rec = stream(
        {"choices": [{"index": 1, "delta": {"content": "B"}}]},
        {"choices": [{"index": 0, "delta": {"content": "A"}}]},
        {"choices": [{"index": 1, "delta": {"content": "b"}, "finish_reason": "stop"}]},
        {"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": "length"}]},
    )
    assert [(c.index, c.content, c.finish_reason) for c in rec.choices] == [(0, "Aa", "length"), (1, "Bb", "stop")]


def test_reasoning_sent_under_two_names_is_kept_once() -> None:
    rec = stream({"choices": [{"index": 0, "delta": {"reasoning_content": "think", "reasoning": "think"}}]})
    assert (rec.choices[0].reasoning, rec.choices[0].reasoning_source) == ("think", "reasoning_content")


def test_provider_fields_are_kept_as_extras() -> None:
    rec = stream(
        {"choices": [{"index": 0, "delta": {"content": "x"}, "native_finish_reason": None}], "provider": "Novita"},
        {"choices": [{"index": 0, "delta": {}, "native_finish_reason": "stop", "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "cost": 0.25}},
    )
    assert rec.extras == {"provider": "Novita"}
    assert rec.choices[0].extras == {"native_finish_reason": "stop"}  # null values are not extras
    assert analyzer.metrics.reported_cost(rec) == 0.25


def test_unknown_provider_fields_are_kept_too() -> None:
    rec = stream(
        {
            "choices": [{"index": 0, "delta": {"content": "x", "vendor_hint": 1}, "vendor_score": 0.5}],
            "vendor_trace": "t1",
        },
    )
    assert rec.extras == {"vendor_trace": "t1"}
    assert rec.choices[0].extras == {"vendor_score": 0.5, "vendor_hint": 1}
    assert rec.choices[0].content == "x"


def test_think_split_rules() -> None:
    from analyzer.protocols.openai_chat import split_think

    assert split_think("<think>\nplan\n</think>\n\nanswer") == ("plan", "answer")
    assert split_think("  <think>still thinking") == ("still thinking", "")  # cut off while thinking
    assert split_think("no block <think>x</think>") == (None, "no block <think>x</think>")
    assert split_think(None) == (None, None)


def test_events_replayed_by_id_are_flagged_and_a_run_of_one_id_is_not() -> None:
    def event(event_id: str | None, text: str) -> bytes:
        chunk = {"choices": [{"index": 0, "delta": {"content": text}}]}
        return (f"id: {event_id}\n".encode() if event_id else b"") + b"data: " + orjson.dumps(chunk) + b"\n\n"

    replayed = analyzer.parse(event("1", "a") + event("2", "b") + event("1", "a") + event("3", "c"))[0].reconstruct()
    assert replayed.has("duplicate_events") and "1 event(s)" in str(replayed.warnings[0])
    carried = analyzer.parse(event("1", "a") + event(None, "b") + event(None, "c") + event("2", "d"))[0].reconstruct()
    assert not carried.has("duplicate_events") and carried.choices[0].content == "abcd"
