"""analyzer.frames: the seeds' rows against expected.json, the bundled captures against what
their lines say, dtypes as declared, and (hypothesis) no exchange or streamed text lost."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import orjson
import pandas as pd
import pytest
from bundled import captures_as_cloned
from hypothesis import given, settings
from hypothesis import strategies as st

import analyzer
from analyzer import frames
from analyzer.model import Exchange, Request, Response

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = json.loads((ROOT / "tests" / "data" / "seeds" / "expected.json").read_text())
sys.path.insert(0, str(ROOT / "tests"))
import streamgen  # noqa: E402


@functools.cache
def bundled() -> analyzer.Exchanges:
    return analyzer.load(captures_as_cloned())


@functools.cache
def frame() -> pd.DataFrame:
    return frames.exchanges(bundled())


def row(exchange_id: str) -> pd.Series:
    (match,) = frame().index[frame()["id"] == exchange_id]
    return frame().loc[match]


def _value(cell: object) -> object:
    return None if pd.isna(cell) else cell


@pytest.mark.parametrize("name", ["000_d638e083d5fc0320.txt", "001_abeb99c31e8268f6.txt", "002_22fabd0d0adae130.txt"])
def test_seed_rows_say_what_expected_json_says(name: str) -> None:
    expected = EXPECTED[name]
    got = row(f"{name}#1")
    rec = expected["reconstruction"]
    assert _value(got["served_model"]) == rec["served_model"]
    assert _value(got["requested_model"]) == rec.get("requested_model")
    assert got["finish_reason"] == rec["choices"][0]["finish_reason"]
    assert bool(got["truncated"]) == rec["truncated"]
    usage = rec["usage"]
    if usage:
        assert (got["prompt_tokens"], got["completion_tokens"], got["total_tokens"]) == (
            usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]
        )  # fmt: skip
        assert got["tokens_source"] == "reported"
    else:  # seed 002 reports none: an estimate, labelled
        assert got["tokens_source"] == "estimated" and got["completion_tokens"] > 0
        assert pd.isna(got["prompt_tokens"])  # a bare stream has no request to count
    assert got["timing_source"] == "created" and got["timing_resolution_ms"] == 1000.0


def test_seed_001_cost_is_the_providers_own_and_its_cache_counts() -> None:
    got = row("001_abeb99c31e8268f6.txt#1")
    assert (got["cost_usd"], got["cost_source"]) == (0.0, "reported")
    usage = EXPECTED["001_abeb99c31e8268f6.txt"]["reconstruction"]["usage"]
    assert got["cached_tokens"] == usage["prompt_tokens_details"]["cached_tokens"] == 384
    assert got["reasoning_tokens"] == usage["completion_tokens_details"]["reasoning_tokens"] == 86
    assert got["n_tools"] == 1 and got["n_messages"] == 3  # expected.json: tools [read_file], 3 roles


def test_seed_anomalies_become_warning_codes() -> None:
    assert "mojibake_repaired" in row("000_d638e083d5fc0320.txt#1")["warnings"]
    assert "model_alias" in row("000_d638e083d5fc0320.txt#1")["warnings"]  # ds-v3 served as deepseek-v3
    seed_002 = row("002_22fabd0d0adae130.txt#1")["warnings"]
    assert {"created_not_monotonic", "blank_model"} <= set(seed_002)
    assert "data_after_done" in row("001_abeb99c31e8268f6.txt#1")["warnings"]


def test_rate_limited_exchange_names_its_retry_after() -> None:
    rate_limited = [x for x in bundled() if x.response and x.response.status == 429]
    assert rate_limited
    got = frames.exchanges(rate_limited)
    assert all("rate_limited" in codes for codes in got["warnings"])
    assert set(got["status"]) == {429}


def test_replayed_rows_match_their_capture_lines() -> None:
    path = ROOT / "captures" / "replayed" / "conversation.jsonl"
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    got = frames.exchanges(analyzer.load(path))
    for (_, mine), line in zip(got.iterrows(), lines, strict=True):
        request = orjson.loads(line["request"]["postData"]["text"])
        assert mine["requested_model"] == request["model"]
        assert mine["n_messages"] == len(request["messages"])
        assert mine["host"] == line["request"]["url"].split("/")[2].split(":")[0]
        assert mine["timing_source"] == "chunks"
        assert mine["ttfb_ms"] == line["timings"]["wait"]
        assert mine["duration_ms"] == line["response"]["_chunks"][-1][0]
        assert mine["started_at"] == pd.Timestamp(line["startedDateTime"])


def test_reasoning_model_gets_thinking_time() -> None:
    got = frames.exchanges(analyzer.load(ROOT / "captures" / "replayed" / "reasoning_tool_call.jsonl"))
    answered = got[got["time_to_answer_ms"].notna()].iloc[0]
    assert answered["time_to_reasoning_ms"] == answered["ttft_ms"]
    assert answered["thinking_ms"] == answered["time_to_answer_ms"] - answered["ttft_ms"] > 0


def test_dtypes_are_the_declared_ones() -> None:
    got = frame()
    assert str(got["started_at"].dtype) == "datetime64[ns, UTC]" or str(got["started_at"].dtype).endswith(", UTC]")
    for name in ("served_model", "provider", "protocol", "host", "timing_source", "cost_source"):
        assert isinstance(got[name].dtype, pd.CategoricalDtype), name
    for name in ("prompt_tokens", "completion_tokens", "status", "stalls"):
        assert str(got[name].dtype) in ("Int64", "Int32", "Int16"), name
    for name in ("ttft_ms", "duration_ms", "cost_usd"):
        assert str(got[name].dtype) == "Float64", name
    assert str(got["streamed"].dtype) == "boolean"
    assert len(got) == len(bundled()) and list(got["id"]) == [x.id for x in bundled()]


def test_provider_comes_from_the_host() -> None:
    assert frames.provider_of("api.openai.com") == "openai"
    assert frames.provider_of("my-resource.openai.azure.com") == "azure"
    assert frames.provider_of("chat.zju.edu.cn") == "chat.zju.edu.cn"  # a self-hosted gateway: its host
    assert frames.provider_of(None) is None


def _exchange(seed: int) -> Exchange:
    stream = streamgen.generate(seed)
    request = Request(method="POST", url="https://api.openai.com/v1/chat/completions",
                      body=orjson.dumps({"model": stream.model, "messages": [{"role": "user", "content": "q"}]}))  # fmt: skip
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=stream.body)
    return Exchange(id=f"gen#{seed}", source="<gen>", format="sse-text", request=request, response=response)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=8, unique=True))
def test_frames_never_lose_an_exchange_and_chunk_text_adds_up(seeds: list[int]) -> None:
    xs = [_exchange(seed) for seed in seeds]
    got = frames.exchanges(xs)
    assert list(got["id"]) == [x.id for x in xs]
    pieces = frames.chunks(xs)
    for exchange in xs:
        rec = exchange.reconstruct()
        mine = pieces[pieces["exchange"] == exchange.id]
        for choice in rec.choices:
            of_choice = mine[mine["choice"] == choice.index]
            assert "".join(of_choice[of_choice["kind"] == "content"]["text"]) == (choice.content or "")
            assert "".join(of_choice[of_choice["kind"] == "reasoning"]["text"]) == (choice.reasoning or "")


def test_messages_show_each_message_once_then_the_reply() -> None:
    xs = analyzer.load(ROOT / "captures" / "replayed" / "conversation.jsonl")
    got = frames.messages(xs)
    full = frames.messages(xs, new_only=False)
    requests = [orjson.loads(x.request.body) for x in xs]
    assert len(full) == sum(len(r["messages"]) for r in requests) + len(xs)
    assert len(got) < len(full)
    replies = got[got["origin"] == "reply"]
    assert list(replies["content"]) == [x.reconstruct().choices[0].content for x in xs]
    assert (
        got.loc[got["origin"] == "request", "first_sent_by"] == got.loc[got["origin"] == "request", "exchange"]
    ).all()


def test_tool_calls_are_matched_to_the_result_sent_back() -> None:
    xs = analyzer.load(ROOT / "captures" / "replayed" / "reasoning_tool_call.jsonl")
    got = frames.tool_calls(xs)
    assert len(got) >= 1
    first = got.iloc[0]
    later = [m for x in xs for m in (orjson.loads(x.request.body)["messages"]) if m.get("tool_call_id") == first["id"]]
    assert later and first["result"] == later[0]["content"]
    assert first["parsed_arguments"] == json.loads(first["arguments"]) and pd.isna(first["parse_error"])


def test_to_parquet_writes_four_frames_pyarrow_reads_back(tmp_path: Path) -> None:
    pyarrow_parquet = pytest.importorskip("pyarrow.parquet")
    written = frames.to_parquet(bundled(), tmp_path)
    assert [p.name for p in written] == [
        "exchanges.parquet",
        "chunks.parquet",
        "messages.parquet",
        "tool_calls.parquet",
    ]
    table = pyarrow_parquet.read_table(tmp_path / "exchanges.parquet")
    assert table.num_rows == len(bundled())
    back = pd.read_parquet(tmp_path / "exchanges.parquet")
    assert list(back["id"]) == [x.id for x in bundled()]
    assert json.loads(back["warnings"].iloc[0]) == list(frame()["warnings"].iloc[0])


def test_a_value_too_large_for_its_column_is_left_empty_with_an_unrepresentable_warning() -> None:
    """The model lets a status be any int and a request say anything: a status past Int16, a
    max_tokens past Int64 and a temperature that is a word must not overflow or break the frame."""
    (exchange,) = analyzer.load(ROOT / "captures" / "replayed" / "rate_limited.jsonl")
    exchange.response.status = 99_999
    exchange.request.body = orjson.dumps({"model": "m", "messages": [], "temperature": "hot", "max_tokens": 2**63 + 5})
    row = frames.exchanges([exchange]).iloc[0]
    assert pd.isna(row["status"]) and pd.isna(row["temperature"]) and pd.isna(row["max_tokens"])
    assert row["warnings"].count("unrepresentable") == 3


def test_text_columns_hold_a_wire_value_of_another_type_as_json_text() -> None:
    (exchange,) = analyzer.load(ROOT / "captures" / "replayed" / "rate_limited.jsonl")
    exchange.request.body = orjson.dumps({"model": "m", "messages": [{"role": ["user"], "content": "hi"}]})
    got = frames.messages([exchange])
    assert list(got["role"]) == ['["user"]']


def test_gemini_calls_without_ids_are_paired_with_their_results_by_name_and_order() -> None:
    """tests/data/gemini_tool_results: two parallel calls answered in the next request, a third
    in a later turn; Gemini 2.x gives no ids, so name and order are what pairs them."""
    xs = analyzer.load(ROOT / "tests" / "data" / "gemini_tool_results" / "conversation.jsonl")
    calls = frames.tool_calls(xs)
    pairs = list(zip(calls["arguments"], calls["result"], calls["result_exchange"], strict=True))
    assert pairs == [
        ('{"city":"Paris"}', '{"city":"Paris","c":21}', "conversation.jsonl#2"),
        ('{"city":"Oslo"}', '{"city":"Oslo","c":9}', "conversation.jsonl#2"),
        ('{"city":"Rome"}', '{"city":"Rome","c":25}', "conversation.jsonl#4"),
    ]


def test_a_frame_keeps_integers_exact_past_2_53_and_beside_missing_values_in_any_column() -> None:
    """pandas would make a column of integers and None floats: 0 as 0.0 in an object column,
    2**60 + 1 as 2**60 in an Int64 one (or refuse to convert it)."""
    calls = {column: [None, None] for column in frames.dtypes_of("tool_calls")}
    calls["parsed_arguments"] = [None, 0]  # a tool called with the JSON argument `0`
    parsed = frames.frame_of("tool_calls", calls)["parsed_arguments"].tolist()
    assert parsed == [None, 0] and type(parsed[1]) is int
    rows = {column: [None, None] for column in frames.dtypes_of("exchanges")}
    rows["max_tokens"] = [None, 2**60 + 1]
    assert frames.frame_of("exchanges", rows)["max_tokens"].tolist() == [pd.NA, 2**60 + 1]
