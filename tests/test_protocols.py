"""All four wire protocols in one capture (captures/four_protocols.jsonl): each recognised,
reconstructed into the same Reconstruction, and read alike by the summary, the frames, the
threads and the exports.

Every expected value is what tests/data/make_mixed_capture.py meant to write.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import analyzer
from analyzer import frames
from analyzer.model import Exchange, Request, Response
from analyzer.protocols import detect, request_messages, request_tools

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "captures" / "four_protocols.jsonl"
_spec = importlib.util.spec_from_file_location("make_mixed_capture", ROOT / "tests" / "data" / "make_mixed_capture.py")
script = importlib.util.module_from_spec(_spec)
sys.path.insert(0, str(ROOT / "tests" / "data"))
_spec.loader.exec_module(script)


@pytest.fixture(scope="module")
def xs() -> list[Exchange]:
    return list(analyzer.load(CAPTURE))


def test_the_capture_is_what_the_script_writes(tmp_path: Path) -> None:
    script.main(tmp_path)
    assert (tmp_path / script.NAME).read_bytes() == CAPTURE.read_bytes(), "run tests/data/make_mixed_capture.py"


def test_each_protocol_is_recognised(xs: list[Exchange]) -> None:
    protocols = [x.reconstruct().protocol for x in xs]
    assert protocols == [
        "anthropic_messages", "anthropic_messages", "openai_responses", "gemini", "gemini", "openai_chat",
        "anthropic_messages", "openai_responses",
    ]  # fmt: skip


def test_anthropic_thinking_text_and_tool_input_split_mid_string(xs: list[Exchange]) -> None:
    rec = xs[0].reconstruct()
    choice = rec.choices[0]
    assert choice.reasoning == "".join(script.THINKING) and choice.content == "".join(script.LEAD_IN)
    (call,) = choice.tool_calls
    assert (call.id, call.name, call.parsed_arguments) == (
        script.TOOL_ID,
        "get_forecast",
        {"city": "Lisbon", "days": 2},
    )
    assert choice.finish_reason == "tool_calls" and rec.extras["pings"] == 1
    native = rec.to_native()
    assert [block["type"] for block in native["content"]] == ["thinking", "text", "tool_use"]
    assert native["content"][0]["signature"] == script.SIGNATURE
    # Anthropic's input_tokens leave out the cache: the prompt is all three.
    assert (rec.usage.prompt_tokens, rec.usage.cached_prompt_tokens, rec.usage.completion_tokens) == (1748, 1536, 87)
    assert rec.to_openai()["usage"]["prompt_tokens_details"] == {"cached_tokens": 1536}


def test_responses_reasoning_summary_and_answer(xs: list[Exchange]) -> None:
    rec = xs[2].reconstruct()
    assert rec.choices[0].content == "".join(script.RESPONSES_ANSWER)
    assert rec.choices[0].reasoning == "".join(script.SUMMARY)
    assert (rec.usage.completion_tokens, rec.usage.reasoning_tokens) == (142, 96)
    assert rec.id == script.RESPONSE_ID and not rec.has("final_differs")


def test_gemini_sse_and_json_array_forms(xs: list[Exchange]) -> None:
    sse, array = xs[3].reconstruct(), xs[4].reconstruct()
    assert sse.choices[0].reasoning == "".join(script.GEMINI_THOUGHT)
    assert sse.choices[0].content == "".join(script.GEMINI_ANSWER)
    assert sse.requested_model == "gemini-2.5-flash" and sse.timing.source == "chunks"
    assert array.streamed and array.choices[0].content == "Let me find a few places."
    assert [(c.name, c.parsed_arguments) for c in array.choices[0].tool_calls] == [
        ("find_restaurants", {"city": "Lisbon", "cuisine": "seafood", "max_results": 3})
    ]
    # Each array element is timed by the read that completed it.
    assert [chunk.t_ms for chunk in array.chunks] == [842.625, 900.125, 1012.375]


def test_error_and_non_streamed_bodies(xs: list[Exchange]) -> None:
    overloaded = xs[6].reconstruct()
    assert overloaded.error["type"] == "overloaded_error" and overloaded.has("error_response")
    whole = xs[7].reconstruct()
    assert not whole.streamed and whole.choices[0].content == "Pack a light jacket for the evenings."
    assert whole.to_native()["object"] == "response"


def test_request_side_in_every_protocol(xs: list[Exchange]) -> None:
    for x in (xs[0], xs[2], xs[3], xs[5]):
        assert request_messages(x)[0] == {"role": "system", "content": script.SYSTEM}, x.id
    anthropic_followup = request_messages(xs[1])
    assert [m["role"] for m in anthropic_followup] == ["system", "user", "assistant", "tool"]
    assert anthropic_followup[2]["tool_calls"][0]["id"] == script.TOOL_ID
    assert anthropic_followup[2]["reasoning_content"] == "".join(script.THINKING)
    assert anthropic_followup[3]["tool_call_id"] == script.TOOL_ID
    assert request_messages(xs[7]) == [
        {"role": "system", "content": script.SYSTEM},
        {"role": "user", "content": "Anything to pack?"},
    ]
    assert [t["function"]["name"] for t in request_tools(xs[0])] == ["get_forecast"]
    assert [t["function"]["name"] for t in request_tools(xs[4])] == ["find_restaurants"]


def test_the_anthropic_tool_round_trip_is_one_conversation(xs: list[Exchange]) -> None:
    df = frames.exchanges(xs)
    assert df.loc[1, "parent"] == xs[0].id and df.loc[1, "conversation"] == df.loc[0, "conversation"]
    calls = frames.tool_calls(xs)
    answered = calls[calls["id"] == script.TOOL_ID].iloc[0]
    assert answered["result_exchange"] == xs[1].id and "high_c" in answered["result"]


def test_frames_have_the_same_columns_for_every_protocol(xs: list[Exchange]) -> None:
    df = frames.exchanges(xs)
    streamed = df[df["status"] == 200]
    for column in ("served_model", "finish_reason", "prompt_tokens", "completion_tokens", "ttft_ms", "duration_ms"):
        assert streamed[column].notna().all(), column
    chunks = frames.chunks(xs)
    kinds = chunks.groupby("exchange")["kind"].agg(set)
    assert {"content", "reasoning", "tool_call"} <= kinds[xs[0].id]
    assert {"content", "reasoning"} <= kinds[xs[2].id] and {"content", "reasoning"} <= kinds[xs[3].id]
    messages = frames.messages(xs)
    assert set(messages["exchange"]) == {x.id for x in xs}


def test_summary_names_the_protocol_and_exports_take_every_exchange(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "analyzer"]
    wide = {**os.environ, "COLUMNS": "250"}  # a row on one line, whatever width the test runner's terminal has
    summary = subprocess.run([*run, "summary", str(CAPTURE)], capture_output=True, text=True, cwd=ROOT, timeout=120,
                             env=wide)  # fmt: skip
    assert summary.returncode == 0, summary.stderr
    rows = [line for line in summary.stdout.splitlines() if "four_protocols.jsonl#" in line]
    assert [next(p for p in ("messages", "responses", "gemini", "chat") if p in row) for row in rows] == [
        "messages", "messages", "responses", "gemini", "gemini", "chat", "messages", "responses",
    ]  # fmt: skip
    out = tmp_path / "jsonl"
    export = [*run, "export", str(CAPTURE), "--format", "jsonl", "--out", str(out)]
    assert subprocess.run(export, capture_output=True, cwd=ROOT, timeout=120).returncode == 0
    lines = [orjson.loads(line) for path in out.glob("*.jsonl") for line in path.read_bytes().splitlines()]
    assert len(lines) == 6  # one per conversation with a reply: the 529 got none
    anthropic = lines[0]["messages"]
    assert [m["role"] for m in anthropic] == ["system", "user", "assistant", "tool", "assistant"]
    assert anthropic[2]["tool_calls"][0]["function"]["name"] == "get_forecast"
    assert anthropic[-1]["content"] == "".join(script.ANSWER)
    assert [t["function"]["name"] for t in lines[0]["tools"]] == ["get_forecast"]
    assert b"sk-ant-api03" not in b"".join(path.read_bytes() for path in out.glob("*"))


# -- recognition without the path -------------------------------------------------------------------


@pytest.mark.parametrize("line", range(8))
def test_protocol_is_recognised_from_the_body_behind_a_gateway(xs: list[Exchange], line: int) -> None:
    """A gateway serving every protocol under its own path: the body's shape decides."""
    original = xs[line]
    moved = Exchange(
        id="moved",
        source="<test>",
        format="test",
        request=Request(method="POST", url="https://gateway.internal/llm/proxy", body=original.request.body),
        response=original.response,
    )
    assert detect(moved) == original.reconstruct().protocol or line == 6  # an error body has no shape
    assert moved.reconstruct().choices == original.reconstruct().choices


def test_an_exchange_no_protocol_claims_is_kept_raw() -> None:
    body = b'{"result": "ok", "items": [1, 2, 3]}'
    exchange = Exchange(
        id="other",
        source="<test>",
        format="test",
        request=Request(method="POST", url="https://example.internal/v1/things", body=b'{"q": 1}'),
        response=Response(status=200, headers=[("content-type", "application/json")], body=body),
    )
    rec = exchange.reconstruct()
    assert rec.protocol == "unknown" and rec.has("unknown_protocol")
    assert exchange.response.body == body


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/v1/chat/completions", {"temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 500, "reasoning_effort": "low"},
         {"temperature": 0.2, "top_p": 0.9, "max_tokens": 500, "reasoning": "low"}),
        ("/v1/messages", {"max_tokens": 2048, "temperature": 1, "thinking": {"type": "enabled", "budget_tokens": 1024}},
         {"temperature": 1, "max_tokens": 2048, "reasoning": "thinking, budget 1024"}),
        ("/v1/responses", {"max_output_tokens": 300, "top_p": 1.0, "reasoning": {"effort": "high"}},
         {"top_p": 1.0, "max_tokens": 300, "reasoning": "high"}),
        ("/v1beta/models/gemini-2.5-pro:generateContent",
         {"generationConfig": {"temperature": 0.4, "topP": 0.95, "maxOutputTokens": 64, "thinkingConfig": {"thinkingBudget": 128}}},
         {"temperature": 0.4, "top_p": 0.95, "max_tokens": 64, "reasoning": "budget 128"}),
    ],
    ids=["chat", "anthropic", "responses", "gemini"],
)  # fmt: skip
def test_sampling_parameters_under_one_set_of_names(path: str, body: dict, expected: dict) -> None:
    from analyzer.protocols import request_params

    exchange = Exchange(
        id="params", source="<test>", format="test", response=None,
        request=Request(method="POST", url=f"https://host{path}", body=orjson.dumps(body)),
    )  # fmt: skip
    assert request_params(exchange) == expected


@pytest.mark.parametrize(
    "body",
    [
        b'{"id":"msg_1","content":[{"type":"text","text":"hi"}],"model":"m","role":"assistant",'
        b'"stop_reason":"end_turn","stop_sequence":null,"type":"message","usage":{"input_tokens":1,"output_tokens":2}}',
        b'{"candidates":[{"content":{"parts":[{"text":"hi"}],"role":"model"},"finishReason":"STOP"}],'
        b'"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2,"totalTokenCount":3}}',
        b'{"id":"resp_1","object":"response","status":"completed","model":"m","output":[{"type":"message",'
        b'"role":"assistant","content":[{"type":"output_text","text":"hi"}]}]}',
    ],
    ids=["anthropic-message-sdk-key-order", "gemini", "responses"],
)
def test_a_bare_response_body_of_any_protocol_parses(body: bytes) -> None:
    (exchange,) = analyzer.parse(body)
    assert exchange.reconstruct().choices[0].content == "hi"


def _streamed(url: str, body: bytes) -> Exchange:
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=body)
    return Exchange(id="x", source="<test>", format="sse-text", request=Request("POST", url), response=response)


@pytest.mark.parametrize("index", [10**18, 2**64 + 1, -1])
def test_a_responses_delta_for_a_part_far_out_is_not_followed(index: int) -> None:
    """A delta may address a part never announced (room is made for it), but an index a
    corrupt or hostile stream puts at 10**18 must not make room for 10**18 parts."""
    events = [
        {"type": "response.created", "response": {"id": "r", "output": []}},
        {"type": "response.output_item.added", "output_index": 0, "item": {"type": "message", "content": []}},
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "Hi"},
    ]
    body = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)
    body += b'data: {"type":"response.output_text.delta","output_index":0,"content_index":%d,"delta":"!"}\n\n' % index
    rec = _streamed("https://api.openai.com/v1/responses", body).reconstruct()
    assert rec.choices[0].content == "Hi"
    assert len(rec.to_native()["output"][0]["content"]) == 1


def test_a_gemini_argument_path_far_past_the_end_is_not_followed() -> None:
    """Vertex streams arguments by JSON path; `$.a[100000000000]` must not fill 10**11 nulls."""
    first = {
        "candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "willContinue": True}}]}}]
    }
    piece = {"jsonPath": "$.a[100000000000]", "stringValue": "x"}
    second = {"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"partialArgs": [piece]}}]}}]}
    body = b"".join(b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in (first, second))
    url = "https://aiplatform.googleapis.com/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    rec = _streamed(url, body).reconstruct()
    assert not rec.has("reconstruction_failed")
    assert rec.choices[0].tool_calls[0].name == "f"


@pytest.mark.parametrize(
    ("first_event", "protocol"),
    [
        (b'data: {"id":"c","object":"chat.completion.chunk","choices":[]}\n\n', "openai_chat"),
        (b'event: message_start\ndata: {"type":"message_start","message":{"id":"m"}}\n\n', "anthropic_messages"),
    ],
)
def test_protocol_is_recognised_past_8_kb_of_keep_alive_comments(first_event: bytes, protocol: str) -> None:
    """OpenRouter sends `: OPENROUTER PROCESSING` while a slow model thinks: the shape is
    looked for where the first event begins, not only in the body's first 8 kB."""
    body = b": OPENROUTER PROCESSING\n\n" * 400 + first_event
    exchange = Exchange(
        id="comments",
        source="<test>",
        format="test",
        request=Request(method="POST", url="https://gateway.internal/llm/proxy"),
        response=Response(status=200, headers=[("content-type", "text/event-stream")], body=body),
    )
    assert len(body) > 8192 and detect(exchange) == protocol
