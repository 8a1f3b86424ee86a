"""analyzer.charts: each chart's Vega-Lite spec encodes the fields it promises, and renders."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from bundled import captures_as_cloned

import analyzer
from analyzer import charts, frames

ROOT = Path(__file__).resolve().parent.parent
REASONING = "replayed/reasoning_tool_call.jsonl#2"
STALLED = "replayed/conversation.jsonl#2"


@functools.cache
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    xs = analyzer.load(captures_as_cloned())
    return frames.exchanges(xs), frames.chunks(xs)


def encodings(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every `encoding` object anywhere in a spec (layers, concatenations)."""
    found = []
    if isinstance(spec, dict):
        if isinstance(spec.get("encoding"), dict):
            found.append(spec["encoding"])
        for value in spec.values():
            found += encodings(value)
    elif isinstance(spec, list):
        for value in spec:
            found += encodings(value)
    return found


def fields(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(channel, e[channel]["field"]) for e in encodings(spec) for channel in e if "field" in e[channel]}


def datasets(spec: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return list(spec.get("datasets", {}).values())


def test_timeline_draws_each_phase_with_ttft_answer_and_stalls() -> None:
    exchanges, chunks = data()
    spec = charts.timeline(chunks, exchanges, ids=[REASONING, STALLED]).to_dict()
    assert {("x", "t_s"), ("y", "cumulative"), ("color", "kind"), ("x2", "end")} <= fields(spec)
    titles = [panel["title"] for panel in spec["vconcat"]]
    assert titles == [REASONING, STALLED]  # the order asked for
    rows = [row for rows in datasets(spec) for row in rows]
    marks = {(r["exchange"], r["mark"]) for r in rows if "mark" in r}
    assert marks == {(REASONING, "TTFT"), (REASONING, "answer"), (STALLED, "TTFT")}
    stall_rows = [r for r in rows if "gap_s" in r]
    assert stall_rows and all(r["gap_s"] >= 1.0 for r in stall_rows)
    phases = {r["kind"] for r in rows if r.get("exchange") == REASONING and "kind" in r}
    assert phases == {"reasoning", "content"}
    reasoning = exchanges.set_index("id").loc[REASONING]
    ttft = next(r["t_ms"] for r in rows if r.get("mark") == "TTFT" and r["exchange"] == REASONING)
    assert ttft == reasoning["ttft_ms"]


def test_timeline_refuses_exchanges_without_arrival_times() -> None:
    exchanges, chunks = data()
    with pytest.raises(ValueError, match="per-read arrival times"):
        charts.timeline(chunks, exchanges, ids=["002_22fabd0d0adae130.txt#1"])  # a bare dump: no times


def test_latency_shows_where_each_figure_came_from() -> None:
    exchanges, _ = data()
    spec = charts.latency(exchanges).to_dict()
    assert {("x", "ttft_ms"), ("x", "decode_tokens_per_s"), ("shape", "timing_source")} <= fields(spec)
    rows = [row for rows in datasets(spec) for row in rows]
    seed = next(r for r in rows if r["id"] == "000_d638e083d5fc0320.txt#1")
    assert seed["timing_source"] == "created" and seed["timing_resolution_ms"] == 1000.0


def test_tokens_and_cost_splits_cached_prompt_and_marks_estimates() -> None:
    exchanges, _ = data()
    spec = charts.tokens_and_cost(exchanges).to_dict()
    rows = [row for rows in datasets(spec) for row in rows]
    seed = {r["part"]: r["tokens"] for r in rows if r.get("id") == "001_abeb99c31e8268f6.txt#1" and "part" in r}
    assert seed == {"prompt (cached)": 384, "prompt (not cached)": 281, "reasoning": 86, "answer": 4}
    labels = {r["label"] for r in rows if "label" in r}
    assert "002_22fabd0d0adae130.txt#1 (estimated)" in labels
    cost_rows = [r for r in rows if "cumulative" in r]
    assert cost_rows and cost_rows[-1]["cumulative"] == pytest.approx(exchanges["cost_usd"].sum())


def test_gaps_are_an_ecdf_per_model_on_a_log_scale() -> None:
    exchanges, chunks = data()
    spec = charts.gaps(chunks, exchanges).to_dict()
    layer = spec["layer"][0]
    assert layer["encoding"]["x"]["scale"]["type"] == "log"
    rows = [r for rows in datasets(spec) for r in rows if "share" in r]
    for group in {r["group"] for r in rows}:
        shares = [r["share"] for r in rows if r["group"] == group]
        assert shares == sorted(shares) and shares[-1] == 1.0


def test_conversation_shows_prompt_growth_and_branches() -> None:
    exchanges, _ = data()
    conversation = exchanges.loc[exchanges["id"] == "replayed/conversation.jsonl#1", "conversation"].iloc[0]
    spec = charts.conversation(exchanges, conversation).to_dict()
    rows = [r for rows in datasets(spec) for r in rows]
    prompts = [r["tokens"] for r in rows if r.get("part") == "prompt (not cached)"]
    assert prompts == [37, 68, 100, 100, 132, 133, 166]  # the recording's reported prompt_tokens
    assert sorted(r["branch"] for r in rows if "top" in r) == ["edit", "regeneration"]
    with pytest.raises(ValueError, match="no conversation"):
        charts.conversation(exchanges, "c999")


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_save_renders_through_vl_convert(tmp_path: Path, suffix: str) -> None:
    exchanges, _ = data()
    path = charts.save(charts.latency(exchanges), tmp_path / f"latency{suffix}")
    head = path.read_bytes()[:8]
    assert head == b"\x89PNG\r\n\x1a\n" if suffix == ".png" else head.startswith(b"<svg")
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        charts.save(charts.latency(exchanges), tmp_path / "x.jpg")


def test_readme_pictures_are_what_docs_charts_draws(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "docs" / "charts.py"), str(tmp_path)], check=True, timeout=120)
    drawn = sorted(p.name for p in tmp_path.glob("*.png"))
    # The transcript picture is a screenshot of an HTML export in Chromium, not a chart.
    screenshots = {"transcript.png"}
    shown = sorted(set(re.findall(r"docs/img/([\w-]+\.png)", (ROOT / "README.md").read_text())) - screenshots)
    assert all((ROOT / "docs" / "img" / name).exists() for name in screenshots)
    assert drawn == shown and len(drawn) >= 4
    for name in drawn:
        assert (ROOT / "docs" / "img" / name).exists(), f"run `make charts` to draw {name}"


def test_explorer_links_a_click_on_an_exchange_to_its_timeline() -> None:
    exchanges, chunks = data()
    spec = charts.explorer(chunks, exchanges).to_dict()
    overview, stream = spec["hconcat"]
    (param,) = spec["params"]  # altair lifts the selection to the top, bound to the overview's view
    assert param["select"]["fields"] == ["exchange"] and param["views"] == [overview["name"]]
    assert {"filter": {"param": param["name"], "empty": False}} in stream["transform"]
    points = spec["datasets"][overview["data"]["name"]]
    streamed = set(chunks.loc[chunks["t_ms"].notna() & chunks["kind"].isin(charts.PHASES), "exchange"])
    assert {p["exchange"] for p in points} <= streamed  # only exchanges a timeline can be drawn for
    slowest = max(points, key=lambda p: p["ttft_ms"])["exchange"]
    assert param["value"] == [{"exchange": slowest}]
