"""The bundled recordings in captures/replayed/ (made by tests/data/record_captures.py):
what went through the real proxy is what the scenarios meant to send."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from bundled import BUNDLED_CAPTURES

import analyzer
from analyzer.protocols.openai_chat import request_messages

ROOT = Path(__file__).resolve().parent.parent
REPLAYED = ROOT / "captures" / "replayed"
sys.path.insert(0, str(ROOT / "tests" / "data"))
import record_captures as scenarios  # noqa: E402


def load(name: str) -> analyzer.Exchanges:
    exchanges = analyzer.load(REPLAYED / f"{name}.jsonl")
    assert not exchanges.problems
    return exchanges


def answer_of(source: analyzer.Exchange) -> str:
    return source.reconstruct().choices[0].content or ""


def test_conversation_resends_history_regenerates_and_edits() -> None:
    sources, requests = scenarios.conversation()
    exchanges = load("conversation")
    assert [request_messages(x) for x in exchanges] == requests
    assert [x.reconstruct().choices[0].content for x in exchanges] == [answer_of(s) for s in sources]
    # The third question was asked twice (a regenerated reply) and got two different answers.
    assert request_messages(exchanges[2]) == request_messages(exchanges[3])
    assert exchanges[2].reconstruct().choices[0].content != exchanges[3].reconstruct().choices[0].content
    # The fourth question exists in two versions after the same history (an edit).
    assert request_messages(exchanges[4])[:-1] == request_messages(exchanges[5])[:-1]
    assert request_messages(exchanges[4])[-1] != request_messages(exchanges[5])[-1]
    assert len(request_messages(exchanges[-1])) == 10


def test_every_recording_has_per_read_timing_and_redacted_credentials() -> None:
    recordings = [path for path in BUNDLED_CAPTURES if path.parent == REPLAYED]  # not what else lands there
    assert recordings
    for file in recordings:
        text = file.read_text(encoding="utf-8")
        assert scenarios.KEY not in text, file.name
        for exchange in analyzer.load(file):
            assert exchange.format == "chatcap-jsonl" and exchange.response.chunks
            assert "Authorization" in exchange.redacted or "authorization" in exchange.redacted
            assert exchange.reconstruct().timing.source == "chunks"


def test_reasoning_model_calls_a_tool_and_gets_its_result_next_turn() -> None:
    first, second = load("reasoning_tool_call")
    call = first.reconstruct().choices[0]
    assert call.reasoning.startswith("The user wants tomorrow's weather")
    assert call.finish_reason == "tool_calls"
    (tool,) = call.tool_calls
    assert (tool.id, tool.name, tool.parsed_arguments) == (
        "call_replay_w1",
        "get_forecast",
        {"place": "Lakeside Loop trailhead", "when": "tomorrow 08:00"},
    )
    history = request_messages(second)
    assert history[-1] == {
        "role": "tool",
        "tool_call_id": "call_replay_w1",
        "content": '{"temp_c": 4, "rain_mm": 0.2, "wind_kmh": 12}',
    }
    assert second.reconstruct().choices[0].content.startswith("Tomorrow at 08:00")
    assert first.request.json()["tools"][0]["function"]["name"] == "get_forecast"


def test_gzip_stream_recorded_decoded() -> None:
    (exchange,) = load("gzip_stream")
    assert exchange.response.header("content-encoding") == "gzip"
    assert exchange.reconstruct().choices[0].content.startswith("Winter hikes run every second Saturday")


def test_rate_limited_429_keeps_retry_after() -> None:
    (exchange,) = load("rate_limited")
    rec = exchange.reconstruct()
    assert exchange.response.status == 429 and exchange.response.header("retry-after") == "20"
    assert rec.error["code"] == "rate_limit_exceeded" and rec.choices == []


def test_client_abort_is_truncated_with_the_reason() -> None:
    (exchange,) = load("client_abort")
    rec = exchange.reconstruct()
    assert exchange.complete is False and exchange.error
    assert rec.truncated and rec.has("capture_error")
    assert rec.choices[0].content.startswith("In 1950 the club added a new route")


def test_two_choices_interleaved() -> None:
    (exchange,) = load("two_choices")
    choices = exchange.reconstruct().choices
    assert [c.content for c in choices] == [
        "Call it the Birch trail, after the trees along it.",
        "Call it the Birch path, after the trees along it.",
    ]


def test_error_mid_stream_keeps_what_came_before() -> None:
    (exchange,) = load("error_mid_stream")
    rec = exchange.reconstruct()
    assert rec.error["type"] == "server_error"
    assert rec.has("stream_error") and rec.truncated
    # The error replaced the ninth event: the role chunk and eight words arrived before it.
    assert rec.choices[0].content == "Rule one: leave no trace. Rule two: stay "


@pytest.mark.parametrize("name", ["conversation", "reasoning_tool_call", "two_choices"])
def test_recorded_chunk_times_follow_the_replayed_schedule(name: str) -> None:
    # The replay server sent each read at its scheduled time; the addon recorded arrivals.
    for exchange in load(name):
        rec = exchange.reconstruct()
        assert rec.timing.ttft_ms is not None and 250 < rec.timing.ttft_ms < 1000
        assert rec.timing.stalls == 1  # each scenario has one ~1.5 s pause
