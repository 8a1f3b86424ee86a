"""`chatcap summary` past a screenful: totals per group first, then the last exchanges; `--all`
a line per exchange as it is read; memory that does not grow with the capture. Every expected
figure is worked out here from each exchange's own reconstruction, not from the summary's totals."""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from bundled import captures_as_cloned, chatcap
from child_memory import capture_lines, distinct_histories, peak_rss
from terminal import in_a_terminal

import analyzer
from analyzer.metrics import format_ms
from analyzer.protocols import request_messages
from analyzer.threads import threads
from analyzer.tokens import usage_or_estimate


def bundled() -> list[analyzer.Exchange]:
    return list(analyzer.load(captures_as_cloned(), progress=False))


def expected_rows() -> list[dict[str, Any]]:
    """Each bundled exchange's facts, from its reconstruction."""
    rows = []
    for exchange in bundled():
        rec = exchange.reconstruct()
        usage = usage_or_estimate(rec, request_messages(exchange), None)
        status = exchange.response.status if exchange.response else None
        rows.append({
            "id": exchange.id,
            "model": rec.served_model or rec.requested_model or "—",
            "host": (exchange.request.url.split("/")[2].split(":")[0] if exchange.request and exchange.request.url else "—"),
            "day": exchange.started_at.astimezone(UTC).date().isoformat() if exchange.started_at else "—",
            "error": rec.error is not None or (status or 0) >= 400,
            "prompt": (usage.prompt_tokens or 0) if usage else 0,
            "completion": (usage.completion_tokens or 0) if usage else 0,
            "ttft": (rec.timing.ttft_ms, rec.timing.resolution_ms) if rec.timing and rec.timing.ttft_ms is not None else None,
        })  # fmt: skip
    return rows


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


def totals_rows(output: str) -> dict[tuple[str, ...], dict[str, str]]:
    """The totals table's rows by their key, the "all" row included: each a dict of its figures by
    column name (headers on two lines joined: "TTFT p50")."""
    table = output.split("\nthe last ")[0]
    header = [cells(line.replace("┃", "│")) for line in table.splitlines() if line.startswith("┃")]
    names = [" ".join(part for part in parts if part) for parts in zip(*header, strict=True)]
    keys = len(table.splitlines()[0].split(" by ")[1].split(" and "))
    rows = [cells(line) for line in table.splitlines() if line.startswith("│")]
    return {tuple(row[:keys]): dict(zip(names[keys:], row[keys:], strict=True)) for row in rows}


def number(cell: str) -> int:
    return int(cell.lstrip("~").replace(",", ""))


def test_summary_past_last_totals_each_model_and_host_with_their_exchanges_errors_and_tokens() -> None:
    result = chatcap("summary", "captures/", "--last", "5")
    assert result.returncode == 0, result.stderr
    rows = expected_rows()
    assert result.stdout.startswith(f"{len(rows)} exchanges by model and host\n")
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["model"], row["host"]].append(row)
    shown = totals_rows(result.stdout)
    assert set(shown) == {*groups, ("all", "")}
    for key, members in [*groups.items(), (("all", ""), rows)]:
        exchanges, errors, tokens_in, tokens_out = (
            shown[key][name] for name in ("exchanges", "errors", "tokens in", "tokens out")
        )
        assert number(exchanges) == len(members), key
        assert number(errors) == sum(row["error"] for row in members), key
        if tokens_in != "—":
            assert number(tokens_in) == sum(row["prompt"] for row in members), key
            assert number(tokens_out) == sum(row["completion"] for row in members), key
        else:
            assert not any(row["prompt"] or row["completion"] for row in members), key


def test_summary_totals_give_nearest_rank_ttft_p50_and_p95() -> None:
    result = chatcap("summary", "captures/", "--last", "0")
    assert result.returncode == 0, result.stderr
    ttfts = sorted((row["ttft"] for row in expected_rows() if row["ttft"]), key=lambda found: found[0])
    p50, p95 = ttfts[(len(ttfts) + 1) // 2 - 1], ttfts[-(-95 * len(ttfts) // 100) - 1]
    figures = totals_rows(result.stdout)["all", ""]
    assert [figures["TTFT p50"], figures["TTFT p95"]] == [format_ms(*p50), format_ms(*p95)]
    assert "\nthe last" not in result.stdout  # --last 0: the totals alone


def test_summary_past_last_lists_the_last_n_exchanges_in_input_order() -> None:
    result = chatcap("summary", "captures/", "--last", "5")
    ids = [row["id"] for row in expected_rows()]
    table = result.stdout.split(f"\nthe last 5 of {len(ids)} exchanges\n")[1]
    shown = [cells(line)[0] for line in table.splitlines() if line.startswith("│") and cells(line)[0]]
    assert shown == ids[-5:]
    assert "~ tokens estimated from the text" in table  # the table's legend, as below --last


def test_summary_within_last_prints_the_table_alone() -> None:
    result = chatcap("summary", "captures/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{len(expected_rows())} exchange(s)\n") and "exchanges by" not in result.stdout


def test_summary_all_prints_a_header_then_one_line_per_exchange_in_input_order() -> None:
    result = chatcap("summary", "captures/", "--all")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    ids = [row["id"] for row in expected_rows()]
    assert lines[0].split() == ["exchange", "protocol", "model", "status", "TTFB", "TTFT", "duration", "tokens",
                                "in→out", "tok/s", "timed", "by", "cost", "warnings", "ends"]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == ids
    assert not any(box in result.stdout for box in "│┃━")
    row = lines[1 + ids.index("errors.jsonl#2")]
    assert row.split("  ")[-1].startswith("error: The server had an error")  # ends: last, as long as it is


def test_summary_group_by_day_keys_each_utc_date_in_order() -> None:
    result = chatcap("summary", "captures/", "--last", "3", "--group-by", "day")
    assert result.returncode == 0, result.stderr
    days = Counter(row["day"] for row in expected_rows())
    shown = totals_rows(result.stdout)
    assert {key[0]: number(figures["exchanges"]) for key, figures in shown.items() if key != ("all",)} == days
    dated = [key[0] for key in shown if key[0] not in ("all", "—")]
    assert dated == sorted(dated)


def test_summary_group_by_conversation_counts_each_conversations_exchanges() -> None:
    result = chatcap("summary", "captures/", "--last", "3", "--group-by", "conversation")
    assert result.returncode == 0, result.stderr
    found = threads(bundled())
    shown = totals_rows(result.stdout)
    assert {key[0]: number(figures["exchanges"]) for key, figures in shown.items() if key != ("all",)} == Counter(
        thread.conversation for thread in found.values()
    )


def test_summary_group_by_takes_several_keys_and_refuses_an_unknown_one() -> None:
    result = chatcap("summary", "captures/", "--last", "3", "--group-by", "host,day")
    assert result.returncode == 0 and result.stdout.startswith(f"{len(expected_rows())} exchanges by host and day")
    wrong = chatcap("summary", "captures/", "--group-by", "modle")
    assert wrong.returncode == 2 and "'modle' is not one of model, host, day, conversation" in wrong.stderr


def test_summary_all_takes_no_last_or_group_by() -> None:
    result = chatcap("summary", "captures/", "--all", "--last", "5")
    assert result.returncode == 2 and "--all prints every exchange and no totals" in result.stderr


@pytest.mark.slow
def test_summary_memory_does_not_grow_with_a_50_mb_capture(tmp_path: Path) -> None:
    """1,600 exchanges of 32 kB: what `summary` (and `--all`) hold beyond what one exchange takes
    is far below the file (holding the exchanges took three times the file)."""
    big = capture_lines(tmp_path / "big.jsonl", 1600)
    size = big.stat().st_size
    assert size > 50_000_000
    alone = peak_rss("summary", capture_lines(tmp_path / "one.jsonl", 1))
    for args in (["summary", big], ["summary", "--all", big]):
        assert peak_rss(*args) - alone < size / 5, args


@pytest.mark.slow
def test_summary_by_conversation_holds_what_threading_needs_not_the_exchanges(tmp_path: Path) -> None:
    """`--group-by conversation` threads every exchange before it prints, so it holds each one's
    start, session, replies and history (a message resent by every request held once), not the
    exchange: for 1,600 exchanges of 32 kB, far below the file (holding them took 2.6 times it)."""
    big = capture_lines(tmp_path / "big.jsonl", 1600)
    size = big.stat().st_size
    alone = peak_rss("summary", "--group-by", "conversation", capture_lines(tmp_path / "one.jsonl", 1))
    assert peak_rss("summary", "--group-by", "conversation", big) - alone < size / 5


@pytest.mark.slow
def test_summary_by_conversation_holds_no_history_text_when_histories_never_repeat(tmp_path: Path) -> None:
    """Histories that never repeat (many short conversations): the walk keeps a digest and a
    role per message, and the assistant messages it may read again go to a temporary file, so
    the text of 2,000 histories of 24 kB is not held: 0.13 times the file (holding it took 1.8 times)."""
    big = distinct_histories(tmp_path / "big.jsonl", 2000)
    size = big.stat().st_size
    assert size > 50_000_000
    alone = peak_rss("summary", "--group-by", "conversation", distinct_histories(tmp_path / "one.jsonl", 1))
    assert peak_rss("summary", "--group-by", "conversation", big) - alone < size / 5


def test_summary_by_conversation_in_a_terminal_says_it_is_threading(tmp_path: Path) -> None:
    """Past the bar over the input, threading every exchange is a while of its own on big inputs."""
    status, drawn = in_a_terminal(
        [sys.executable, "-m", "analyzer", "summary", str(captures_as_cloned()), "--group-by", "conversation"], tmp_path
    )
    assert status == 0 and "Traceback" not in drawn, drawn
    assert "threading 43 exchange(s) into conversations" in drawn
