"""The synthetic sample captures in captures/*.jsonl, reconstructed exactly.

Every expected value is what tests/data/make_captures.py meant to write: the answers as
the script spells them, its usage and error objects, and timing figures worked out by
hand from its read schedule (the arithmetic is in the comments).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bundled import BUNDLED, CAPTURES, ROOT, captures_as_cloned, copy_bundled

import analyzer
from analyzer.protocols.openai_chat import request_messages

SCRIPT = ROOT / "tests" / "data" / "make_captures.py"
_spec = importlib.util.spec_from_file_location("make_captures", SCRIPT)
assert _spec is not None and _spec.loader is not None
made = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(made)

EXCHANGES = {"multi_choice_n2.jsonl": 1, "tool_calls.jsonl": 2, "errors.jsonl": 3, "truncated.jsonl": 2}
REDACTED = re.compile(r"<redacted:[0-9a-f]{8}>")


def load(name: str) -> analyzer.Exchanges:
    exchanges = analyzer.load(CAPTURES / name)
    assert not exchanges.problems
    assert len(exchanges) == EXCHANGES[name]
    return exchanges


def lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (CAPTURES / name).read_text(encoding="utf-8").splitlines()]


# -- the files themselves ---------------------------------------------------------------------------


def test_bundled_captures_are_what_make_captures_writes(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], check=True, timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(EXCHANGES)
    for name in EXCHANGES:
        assert (tmp_path / name).read_bytes() == (CAPTURES / name).read_bytes(), f"{name}: run make_captures.py"


def test_captures_readme_lists_every_file() -> None:
    readme = (CAPTURES / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([^`]+)` \|", readme, re.M))
    assert listed == set(BUNDLED)


def test_the_bundled_captures_are_the_files_git_tracks_in_captures() -> None:
    """Tests name the bundled captures one by one (tests/bundled.py): a capture added to the
    repository is added to that list, and nothing else in captures/ is read."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files to compare with")
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "captures"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    assert sorted(name.removeprefix("captures/") for name in tracked.split("\0") if name) == sorted(
        [*BUNDLED, "README.md"]
    )


def test_what_a_user_adds_to_captures_is_never_read(tmp_path: Path) -> None:
    """`chatcap capture` records into captures/live/ (README) and anything may land beside the
    bundled captures; what tests load as "the bundled captures" holds those alone."""
    captures = copy_bundled(CAPTURES, tmp_path / "checkout")
    (captures / "live").mkdir()
    for stray in (captures / "live" / "x.jsonl", captures / "stray.jsonl"):
        stray.write_bytes((CAPTURES / "tool_calls.jsonl").read_bytes())
    assert len(analyzer.load(captures)) == len(analyzer.load(captures_as_cloned())) + 4  # read when loaded whole
    copied = copy_bundled(captures, tmp_path / "clone")
    assert sorted(p.relative_to(copied).as_posix() for p in copied.rglob("*") if p.is_file()) == sorted(BUNDLED)
    assert [x.id for x in analyzer.load(copied)] == [x.id for x in analyzer.load(captures_as_cloned())]
    clone = captures_as_cloned()
    assert sorted(p.relative_to(clone).as_posix() for p in clone.rglob("*") if p.is_file()) == sorted(BUNDLED)


@pytest.mark.parametrize("name", EXCHANGES)
def test_capture_lines_are_chatcap_1_har_entries(name: str) -> None:
    for line in lines(name):
        assert {"startedDateTime", "time", "request", "response", "cache", "timings"} <= line.keys()
        assert line["comment"].startswith("synthetic exchange")
        meta = line["_chatcap"]
        assert (meta["schema"], meta["version"]) == ("chatcap/1", "0.1.0")
        assert meta["complete"] is ("_error" not in line)
        body = line["response"]["content"]["text"].encode("utf-8")
        assert line["response"]["content"]["size"] == len(body)
        reads = line["response"]["_chunks"]
        assert [end for _, end in reads] == sorted({end for _, end in reads}) and reads[-1][1] == len(body)
        assert [t for t, _ in reads] == sorted({t for t, _ in reads})
        timings = line["timings"]
        assert timings["send"] + timings["wait"] <= reads[0][0]
        assert timings["send"] + timings["wait"] + timings["receive"] == reads[-1][0] == line["time"]


@pytest.mark.parametrize("name", EXCHANGES)
def test_credentials_are_stored_redacted_and_named(name: str) -> None:
    text = (CAPTURES / name).read_text(encoding="utf-8")
    for secret in (made.OPENAI_KEY, made.VLLM_KEY, made.OPENROUTER_KEY, made.DEEPSEEK_KEY, "__cf_bm="):
        assert secret not in text
    for line in lines(name):
        named = {
            h["name"]
            for part in ("request", "response")
            for h in line[part]["headers"]
            if REDACTED.fullmatch(h["value"])
        }
        assert sorted(named) == line["_chatcap"]["redacted"]
        assert "authorization" in named
    for exchange in load(name):
        assert REDACTED.fullmatch(exchange.request.header("authorization"))
        assert "authorization" in exchange.redacted


def test_reads_split_events_and_utf8_characters() -> None:
    inside_event = inside_character = 0
    for name in EXCHANGES:
        for line in lines(name):
            body = line["response"]["content"]["text"].encode("utf-8")
            for _, end in line["response"]["_chunks"][:-1]:
                inside_event += not body[:end].endswith(b"\n")
                inside_character += body[end] & 0xC0 == 0x80  # the next byte continues a character
    assert inside_event >= 5
    assert inside_character >= 4  # "—", "ü", "°" in a stream, "°" in a JSON body


# -- multi_choice_n2.jsonl ----------------------------------------------------------------------------


def test_n2_interleaved_choices_reassemble_by_index() -> None:
    rec = load("multi_choice_n2.jsonl")[0].reconstruct()
    assert [(c.index, c.role, c.content, c.finish_reason) for c in rec.choices] == [
        (0, "assistant", "Synthetic answer A: “Drizzle” — short, friendly and easy to spell.", "stop"),
        (1, "assistant", "Synthetic answer B: “Isobar”, because it sounds precise 🌦.", "stop"),
    ]
    assert all(c.reasoning is None and c.refusal is None and c.tool_calls == [] for c in rec.choices)
    assert (rec.id, rec.requested_model, rec.served_model) == (made.N2_ID, "gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert (rec.done, rec.truncated, rec.error, rec.warnings) == (True, False, None, [])


def test_n2_usage_chunk_after_the_finishes_counts_both_choices() -> None:
    rec = load("multi_choice_n2.jsonl")[0].reconstruct()
    assert rec.usage.raw == made.N2_USAGE
    usage = rec.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (38, 30, 68)
    assert (usage.cached_prompt_tokens, usage.reasoning_tokens) == (0, 0)


def test_n2_to_openai_is_the_non_streaming_completion() -> None:
    rec = load("multi_choice_n2.jsonl")[0].reconstruct()
    answers = ["".join(tokens) for tokens in made.N2_ANSWERS]
    assert rec.to_openai() == {
        "id": made.N2_ID,
        "object": "chat.completion",
        "created": 1758014813,  # 2025-09-16T09:26:53Z
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": n,
                "message": {"role": "assistant", "content": answer, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
            for n, answer in enumerate(answers)
        ],
        "usage": made.N2_USAGE,
        "system_fingerprint": "fp_51db84afab",
        "service_tier": "default",
    }


def test_n2_timing_from_read_arrivals() -> None:
    timing = load("multi_choice_n2.jsonl")[0].reconstruct().timing
    assert timing.source == "chunks"
    assert timing.ttfb_ms == 398.125  # timings.wait
    # Both role chunks (content "") arrive at 412.375; the first token's event starts in the
    # read at 430.125 and is completed by the read at 436.5.
    assert timing.ttft_ms == 436.5
    assert timing.time_to_answer_ms == 436.5
    assert timing.duration_ms == 910.75  # the last byte: [DONE], in a read of its own
    assert timing.gap_max_ms == 71.25  # 626.125 → 697.375
    assert timing.stalls == 0
    # 30 completion tokens from the first token (436.5) to the last (choice 0's "." at 861.875).
    assert timing.decode_tokens_per_s == pytest.approx(30 / 0.425375)


# -- tool_calls.jsonl -----------------------------------------------------------------------------------

REASONING = (
    "The user asks which city is warmer right now. I need the current weather in Zürich and Kraków; "
    "the lookups are independent, so I call get_weather for both at once."
)


def test_reasoning_content_deltas_become_reasoning() -> None:
    rec = load("tool_calls.jsonl")[0].reconstruct()
    (choice,) = rec.choices
    assert (choice.reasoning, choice.reasoning_source) == (REASONING, "reasoning_content")
    assert choice.content == ""  # as streamed: the role chunk and the finish chunk carry ""
    assert rec.to_openai()["choices"][0]["message"]["reasoning_content"] == REASONING


def test_parallel_tool_call_fragments_assemble_by_index() -> None:
    rec = load("tool_calls.jsonl")[0].reconstruct()
    (choice,) = rec.choices
    assert [(c.index, c.id, c.type, c.name, c.arguments, c.parsed_arguments, c.parse_error) for c in choice.tool_calls] == [
        (0, made.TOOL_CALL_IDS[0], "function", "get_weather", '{"city": "Zürich", "unit": "celsius"}',
         {"city": "Zürich", "unit": "celsius"}, None),
        (1, made.TOOL_CALL_IDS[1], "function", "get_weather", '{"city": "Kraków", "unit": "celsius"}',
         {"city": "Kraków", "unit": "celsius"}, None),
    ]  # fmt: skip
    assert choice.finish_reason == "tool_calls"
    assert rec.to_openai()["choices"][0]["message"]["tool_calls"] == [
        {"id": made.TOOL_CALL_IDS[0], "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Zürich", "unit": "celsius"}'}},
        {"id": made.TOOL_CALL_IDS[1], "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Kraków", "unit": "celsius"}'}},
    ]  # fmt: skip
    assert (rec.id, rec.requested_model, rec.served_model) == (made.TOOLS_IDS[0], "Qwen/Qwen3-32B", "Qwen/Qwen3-32B")
    assert (rec.done, rec.truncated, rec.error, rec.warnings) == (True, False, None, [])
    assert rec.usage.raw == made.TOOLS_USAGE[0]
    assert (rec.usage.prompt_tokens, rec.usage.completion_tokens, rec.usage.total_tokens) == (296, 104, 400)


def test_vllm_null_stop_reason_is_not_an_extra() -> None:
    # vLLM sends `stop_reason: null` (stopped by EOS); only non-null provider fields become
    # extras, so a null on every chunk can never hide a real value sent earlier.
    for exchange in load("tool_calls.jsonl"):
        assert exchange.reconstruct().choices[0].extras == {}


def test_tool_call_timing_first_token_is_reasoning_and_no_answer() -> None:
    timing = load("tool_calls.jsonl")[0].reconstruct().timing
    assert timing.source == "chunks"
    assert timing.ttfb_ms == 96.75
    assert timing.ttft_ms == 263.5  # the first reasoning_content delta; the role chunk came at 101.125
    assert timing.time_to_answer_ms is None  # tool calls, no content
    assert timing.duration_ms == 1873.5  # usage chunk and [DONE] in the last read
    # 38 reasoning tokens from 263.5, 37 gaps cycling through LOCAL_GAPS (114 ms per 6):
    # 263.5 + 6 * 114 + 18.625 = 966.125; the first tool call's name arrives at 1158.25.
    assert timing.gap_max_ms == 192.125
    assert timing.stalls == 0


def test_tool_results_follow_up_sends_the_call_ids_back() -> None:
    first, follow_up = load("tool_calls.jsonl")
    calls = first.reconstruct().choices[0].tool_calls
    messages = request_messages(follow_up)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool"]
    assert [m["tool_call_id"] for m in messages[3:]] == [call.id for call in calls]
    assert [json.loads(m["content"])["city"] for m in messages[3:]] == [call.parsed_arguments["city"] for call in calls]
    assert messages[2]["tool_calls"] == first.reconstruct().to_openai()["choices"][0]["message"]["tool_calls"]


def test_tool_results_follow_up_streams_reasoning_then_answer() -> None:
    rec = load("tool_calls.jsonl")[1].reconstruct()
    (choice,) = rec.choices
    assert choice.reasoning == "Zürich: 9 °C, overcast. Kraków: 14 °C, sunny. Kraków is 5 degrees warmer."
    assert choice.content == (
        "Synthetic answer: Kraków is warmer right now — 14 °C and sunny, against 9 °C and overcast in Zürich."
    )
    assert (choice.tool_calls, choice.finish_reason) == ([], "stop")
    assert rec.id == made.TOOLS_IDS[1]
    assert (rec.done, rec.truncated, rec.error, rec.warnings) == (True, False, None, [])
    assert rec.usage.raw == made.TOOLS_USAGE[1]
    timing = rec.timing
    assert (timing.source, timing.ttfb_ms) == ("chunks", 88.25)
    assert timing.ttft_ms == 241.0  # first reasoning token
    # 25 reasoning tokens: 241.0 + 4 * 114 = 697.0; the first content token follows at 741.375.
    assert timing.time_to_answer_ms == 741.375
    assert timing.duration_ms == 1236.5
    assert timing.gap_max_ms == 148.5  # role chunk at 92.5 → first reasoning at 241.0
    assert timing.stalls == 0


# -- errors.jsonl ----------------------------------------------------------------------------------------


def test_http_429_error_body_and_retry_after() -> None:
    exchange = load("errors.jsonl")[0]
    assert exchange.response.status == 429
    assert exchange.response.header("Retry-After") == "3"
    rec = exchange.reconstruct()
    assert rec.error == made.RATE_LIMIT_ERROR
    assert rec.error["code"] == "rate_limit_exceeded"
    assert (rec.streamed, rec.choices, rec.usage, rec.done, rec.truncated) == (False, [], None, False, False)
    assert (rec.requested_model, rec.served_model) == ("gpt-4o", None)
    assert [w.code for w in rec.warnings] == ["error_response"]
    assert "429" in rec.warnings[0].message
    assert (rec.timing.ttfb_ms, rec.timing.ttft_ms) == (143.625, None)


def test_in_band_error_after_content_keeps_the_partial_answer() -> None:
    exchange = load("errors.jsonl")[1]
    assert (exchange.response.status, exchange.error, exchange.complete) == (200, None, True)
    rec = exchange.reconstruct()
    (choice,) = rec.choices
    assert choice.content == "Synthetic answer: the three primary colours of light are red, green and"
    assert choice.finish_reason is None
    assert rec.error == made.IN_BAND_ERROR
    assert (rec.done, rec.truncated) == (False, True)  # no finish_reason, no [DONE]
    assert rec.has("stream_error")
    assert (rec.id, rec.served_model) == (made.IN_BAND_ID, "gpt-4o-2024-08-06")
    assert rec.to_openai()["error"] == made.IN_BAND_ERROR
    timing = rec.timing
    assert (timing.source, timing.ttfb_ms, timing.ttft_ms, timing.time_to_answer_ms) == ("chunks", 301.5, 342.0, 342.0)
    # 14 tokens from 342.0, 13 gaps (128 ms per 5): 342.0 + 2 * 128 + 72.5 = 670.5; the error at 1284.125.
    assert timing.gap_max_ms == 613.625
    assert (timing.duration_ms, timing.stalls) == (1284.125, 0)


def test_openrouter_error_chunk_finishes_the_choice_with_error() -> None:
    rec = load("errors.jsonl")[2].reconstruct()
    (choice,) = rec.choices
    assert choice.content == "Synthetic answer: a haiku about rain —\nsoft rain on tin roofs\nthe"
    assert choice.finish_reason == "error"
    assert rec.error == made.OPENROUTER_ERROR
    assert rec.has("stream_error")
    assert (rec.done, rec.truncated) == (False, False)  # the error chunk gave a finish_reason
    assert rec.comments == ["OPENROUTER PROCESSING", "OPENROUTER PROCESSING"]
    assert rec.extras == {"provider": "DeepInfra"}
    assert choice.extras == {}  # its native_finish_reason is null on every chunk: not an extra
    assert (rec.id, rec.served_model) == (made.OPENROUTER_ID, "meta-llama/llama-3.3-70b-instruct")
    timing = rec.timing
    # Processing comments at 221.375 and 721.5 are not generated text.
    assert (timing.source, timing.ttfb_ms, timing.ttft_ms, timing.time_to_answer_ms) == (
        "chunks",
        219.5,
        958.75,
        958.75,
    )
    # 16 tokens from 958.75 (122 ms per 4 gaps): 958.75 + 3 * 122 + 93.5 = 1418.25; the error chunk at 1662.0.
    assert timing.gap_max_ms == 243.75
    assert (timing.duration_ms, timing.stalls) == (1662.0, 0)


# -- truncated.jsonl -------------------------------------------------------------------------------------

CUT_OFF = (
    "Synthetic answer: to brew pour-over coffee, heat water to about 94 °C, rinse the paper filter, "
    "add 15 g of medium-fine coffee, bloom it with 30 g of"
)


def test_client_disconnect_mid_answer_is_truncated() -> None:
    exchange = load("truncated.jsonl")[0]
    assert (exchange.error, exchange.complete) == ("client disconnected", False)
    rec = exchange.reconstruct()
    (choice,) = rec.choices
    assert choice.content == CUT_OFF
    assert made.BREW_FULL.startswith(CUT_OFF)
    assert choice.finish_reason is None
    assert (rec.done, rec.truncated, rec.error, rec.usage) == (False, True, None, None)
    assert rec.has("truncated") and rec.has("capture_error")
    assert any("client disconnected" in w.message for w in rec.warnings if w.code == "capture_error")
    assert rec.comments == ["keep-alive"]
    assert (rec.id, rec.served_model) == (made.TRUNCATED_IDS[0], "deepseek-chat")


def test_stall_before_the_disconnect_is_counted() -> None:
    timing = load("truncated.jsonl")[0].reconstruct().timing
    assert (timing.source, timing.ttfb_ms) == ("chunks", 205.0)  # a keep-alive comment came at 207.125
    assert timing.ttft_ms == timing.time_to_answer_ms == 702.25
    # 30 tokens from 702.25 (120 ms per 4 gaps): 702.25 + 7 * 120 + 28.75 = 1571.0, then nothing
    # until 3083.375; 6 more tokens: 3083.375 + 120 + 28.75 = 3232.125, the last read.
    assert timing.gap_max_ms == 1512.375
    assert timing.stalls == 1
    assert timing.duration_ms == 3232.125


def test_non_streaming_completion_for_contrast() -> None:
    exchange = load("truncated.jsonl")[1]
    assert exchange.response.body.startswith(b"\n{")  # DeepSeek's blank keep-alive line
    rec = exchange.reconstruct()
    assert rec.streamed is False
    (choice,) = rec.choices
    assert (choice.role, choice.content, choice.finish_reason) == ("assistant", made.BREW_FULL, "stop")
    assert (rec.truncated, rec.error, rec.warnings) == (False, None, [])
    usage = rec.usage
    assert usage.raw == made.BREW_USAGE
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens, usage.cached_prompt_tokens) == (
        88,
        61,
        149,
        64,
    )
    assert rec.to_openai() == {
        "id": made.TRUNCATED_IDS[1],
        "object": "chat.completion",
        "created": 1758027931,  # 2025-09-16T13:05:31Z
        "model": "deepseek-chat",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": made.BREW_FULL, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": made.BREW_USAGE,
        "system_fingerprint": "fp_synthetic_prod0820_fp8_kvcache",
    }


def test_non_streaming_answer_arrives_whole_with_the_last_read() -> None:
    timing = load("truncated.jsonl")[1].reconstruct().timing
    assert (timing.source, timing.ttfb_ms) == ("chunks", 198.25)
    # The JSON body is complete only when its second read arrives (= HAR time: 0.5 + 198.25 + 4189.5).
    assert timing.ttft_ms == timing.time_to_answer_ms == timing.duration_ms == 4388.25
