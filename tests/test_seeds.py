"""The seeds the project started from: every field of expected.json, exactly."""

from __future__ import annotations

import email.utils
import json
from pathlib import Path

import pytest

import analyzer
from analyzer.protocols.openai_chat import chunk_parts, request_messages

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "tests" / "data" / "seeds"
EXPECTED = json.loads((SEEDS / "expected.json").read_text(encoding="utf-8"))
DUMPS = [name for name, spec in EXPECTED.items() if spec["exchanges"]]

# Each phrase expected.json says must be warned about, and the warning code that says it
# with the words a reader looks for.
WARNING_FOR = {
    "mojibake repaired": ("mojibake_repaired", ["mojibake repaired", "Mac Roman"]),
    "lenient SSE parse (payloads wrapped across lines)": (
        "lenient_sse",
        ["lenient SSE parse", "payloads wrapped across lines"],
    ),
    "blank served model": ("blank_model", ["blank served model"]),
    "created timestamps not monotonic (last chunk is 14 h earlier)": (
        "created_not_monotonic",
        ["created timestamps not monotonic", "last chunk", "14 h earlier"],
    ),
}


def seed_path(name: str) -> Path:
    return ROOT / "captures" / name


def load_one(name: str) -> analyzer.Exchange:
    exchanges = analyzer.load(seed_path(name))
    assert len(exchanges) == EXPECTED[name]["exchanges"]
    assert not exchanges.problems
    return exchanges[0]


def test_seed_003_documentation_gives_no_exchanges_found() -> None:
    with pytest.raises(analyzer.NoExchangesFound, match="no exchanges found") as caught:
        analyzer.load(SEEDS / "003_70fdfcbe6a599fa7.txt")
    assert "003_70fdfcbe6a599fa7.txt" in str(caught.value)


@pytest.mark.parametrize("name", DUMPS)
def test_seed_request(name: str) -> None:
    expected = EXPECTED[name]["request"]
    exchange = load_one(name)
    if expected is None:
        assert exchange.request is None
        return
    request = exchange.request
    body = request.json()
    assert request.method == expected["method"]
    assert request.url == expected["url"]
    assert body["model"] == expected["model"]
    assert body["stream"] is expected["stream"]
    if "messages" in expected:
        assert request_messages(exchange) == expected["messages"]
    if "message_roles" in expected:
        assert [m["role"] for m in request_messages(exchange)] == expected["message_roles"]
    if "tools" in expected:
        assert [tool["function"]["name"] for tool in body["tools"]] == expected["tools"]
    if "body_bytes" in expected:
        assert len(request.body) == expected["body_bytes"] == int(request.header("content-length"))


@pytest.mark.parametrize("name", [n for n in DUMPS if "response" in EXPECTED[n]])
def test_seed_response(name: str) -> None:
    expected = EXPECTED[name]["response"]
    response = load_one(name).response
    assert response.status == expected["status"]
    assert response.header("content-type") == expected["content_type"]
    assert response.header("date") == expected["date_header"]
    assert email.utils.parsedate_to_datetime(response.header("date")) is not None


@pytest.mark.parametrize("name", DUMPS)
def test_seed_reconstruction(name: str) -> None:
    expected = EXPECTED[name]["reconstruction"]
    rec = load_one(name).reconstruct()
    assert rec.id == expected["id"]
    assert rec.served_model == expected["served_model"]
    if "requested_model" in expected:
        assert rec.requested_model == expected["requested_model"]
    if "system_fingerprint" in expected:
        assert rec.system_fingerprint == expected["system_fingerprint"]
    got = [
        {
            "index": c.index,
            "role": c.role,
            "content": c.content or "",
            "reasoning": c.reasoning or "",
            "tool_calls": [{"id": t.id, "name": t.name, "arguments": t.arguments} for t in c.tool_calls],
            "finish_reason": c.finish_reason,
        }
        for c in rec.choices
    ]
    assert got == expected["choices"]
    assert (rec.usage.raw if rec.usage else None) == expected["usage"]
    assert sum(1 for chunk in rec.chunks if chunk_parts(chunk)) == expected["chunk_events"]
    assert rec.done is expected["done"]
    assert rec.truncated is expected["truncated"]
    for field in ("created_first", "created_last", "created_max"):
        if field in expected:
            assert getattr(rec.timing, field) == expected[field]
    assert rec.after_done == expected.get("provider_extras_after_done", [])


@pytest.mark.parametrize("name", DUMPS)
def test_seed_warnings(name: str) -> None:
    rec = load_one(name).reconstruct()
    for phrase in EXPECTED[name].get("must_warn", []):
        code, words = WARNING_FOR[phrase]
        messages = [w.message for w in rec.warnings if w.code == code]
        assert messages, f"{name}: no {code} warning ({phrase!r}); got {[str(w) for w in rec.warnings]}"
        assert all(word in messages[0] for word in words), messages[0]


def test_seed_000_mojibake_repaired_to_match_content_length() -> None:
    exchange = load_one("000_d638e083d5fc0320.txt")
    assert exchange.request.body.decode("utf-8") == (
        '{"model":"ds-v3","messages":[{"role":"user","content":"你好"}],"stream":true,'
        '"features":{"image_generation":false,"code_interpreter":false,"web_search":false}}'
    )
    # The raw bytes are kept as they were, mojibake and all.
    assert exchange.raw == seed_path("000_d638e083d5fc0320.txt").read_bytes()
    assert "‰Ω†Â•Ω".encode() in exchange.raw


def test_seed_000_role_repeated_in_every_delta_is_not_concatenated() -> None:
    rec = load_one("000_d638e083d5fc0320.txt").reconstruct()
    assert rec.choices[0].role == "assistant"
    assert rec.to_openai()["choices"][0]["message"]["role"] == "assistant"


def test_seed_001_cost_after_done_is_the_reported_cost() -> None:
    rec = load_one("001_abeb99c31e8268f6.txt").reconstruct()
    assert analyzer.metrics.reported_cost(rec) == 0.0
    assert rec.has("data_after_done")


def test_seed_002_timing_spans_30_s_from_created_at_1_s_resolution() -> None:
    timing = load_one("002_22fabd0d0adae130.txt").reconstruct().timing
    assert timing.source == "created"
    assert timing.resolution_ms == 1000.0
    assert timing.duration_ms == 30_000.0
    assert timing.ttft_ms is None


def test_seed_000_is_dated_by_its_date_header_and_created_at_1_s_resolution() -> None:
    # Date: 18:10:25 (the response head); the first chunk is created at :26, the last at :27.
    timing = load_one("000_d638e083d5fc0320.txt").reconstruct().timing
    assert (timing.source, timing.resolution_ms) == ("created", 1000.0)
    assert (timing.ttft_ms, timing.duration_ms) == (1000.0, 2000.0)
    assert "Date header" in timing.notes[0]


def test_seed_001_one_created_for_every_chunk_gives_no_duration() -> None:
    # 91 chunks, all created at 08:23:25: the field dates the request, not the stream.
    timing = load_one("001_abeb99c31e8268f6.txt").reconstruct().timing
    assert timing.source == "created" and timing.duration_ms is None and timing.ttft_ms is None
    assert "same created" in timing.notes[0]


def test_seed_002_role_defaults_to_assistant() -> None:
    rec = load_one("002_22fabd0d0adae130.txt").reconstruct()
    assert rec.choices[0].role == "assistant"


@pytest.mark.parametrize("name", DUMPS)
def test_seed_to_openai_is_the_non_streaming_completion(name: str) -> None:
    expected = EXPECTED[name]["reconstruction"]
    completion = load_one(name).reconstruct().to_openai()
    assert completion["object"] == "chat.completion"
    assert completion["id"] == expected["id"]
    assert completion["model"] == expected["served_model"]
    message = completion["choices"][0]["message"]
    assert message["content"] == expected["choices"][0]["content"]
    assert (message.get("reasoning_content") or "") == expected["choices"][0]["reasoning"]
    assert completion["usage"] == expected["usage"]


@pytest.mark.parametrize("name", [n for n in DUMPS if EXPECTED[n].get("secrets")])
def test_seed_secrets_redacted_in_every_export(name: str, tmp_path: Path) -> None:
    exchange = load_one(name)
    secret = exchange.request.header("authorization").split(" ", 1)[1]
    analyzer.export.markdown([exchange], tmp_path / "md")
    analyzer.export.jsonl([exchange], tmp_path / "out.jsonl")
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert secret not in file.read_text(encoding="utf-8")
            assert secret[:20] not in file.read_text(encoding="utf-8")
