"""`analyzer.sql` and `chatcap sql`: DuckDB over the four tables, checked against pandas on the
same captures, over both table layouts (a file per table, a Hive-partitioned directory per
table), and as a user runs the command (a real process, its csv/json/parquet read back)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from bundled import captures_as_cloned

import analyzer
from analyzer import export, frames
from analyzer.query import TABLES, tables_in

ISSUE_EXAMPLE = "SELECT served_model, median(ttft_ms) FROM exchanges GROUP BY 1"


@pytest.fixture(scope="module")
def bundled_frames() -> dict[str, pd.DataFrame]:
    """The four frames of the bundled captures, from `analyzer.load` and `frames` alone."""
    return frames.all_frames(analyzer.load(captures_as_cloned()))


@pytest.fixture(scope="module")
def tables_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled captures' tables as `chatcap export --format parquet` writes them: a
    dataset, each table a directory partitioned by `date=`."""
    out = tmp_path_factory.mktemp("tables")
    export.tables(analyzer.load(captures_as_cloned()), out, "parquet")
    return out


@pytest.fixture(scope="module")
def single_dir(tables_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tables as one file each, `<table>.parquet` (the layout exports wrote before
    schema version 1, which `chatcap sql` still reads), without the `date` column."""
    out = tmp_path_factory.mktemp("single")
    for name in TABLES:
        table = pq.read_table(tables_dir / name, partitioning=None)
        pq.write_table(table, out / f"{name}.parquet")
    return out


def sql_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`chatcap sql ARGS` as a user runs it, its output piped; by default where `captures/`
    holds the bundled captures alone."""
    return subprocess.run(
        [sys.executable, "-m", "analyzer", "sql", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd or captures_as_cloned().parent,
        env={**os.environ, "COLUMNS": "200"},
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0 and result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def medians_by_model(frame: pd.DataFrame) -> dict[str | None, float | None]:
    """`served_model → median TTFT` with NULL model and NULL medians as None."""
    return {
        None if pd.isna(model) else model: None if pd.isna(median) else float(median)
        for model, median in zip(frame.iloc[:, 0], frame.iloc[:, 1], strict=True)
    }


def pandas_medians(exchanges: pd.DataFrame) -> dict[str | None, float | None]:
    """The issue's example in pandas: median TTFT per served model, a missing model a group too."""
    model = exchanges["served_model"].astype(object)
    return medians_by_model(exchanges.groupby(model, dropna=False)["ttft_ms"].median().reset_index())


def test_row_counts_in_sql_equal_the_frames_row_counts(tables_dir: Path, bundled_frames: dict) -> None:
    counts = analyzer.sql(
        "SELECT (SELECT count(*) FROM exchanges) AS exchanges, (SELECT count(*) FROM chunks) AS chunks, "
        "(SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM tool_calls) AS tool_calls",
        tables_dir,
    )
    assert counts.iloc[0].to_dict() == {name: len(frame) for name, frame in bundled_frames.items()}
    assert all(counts.iloc[0] > 0)


def test_grouped_counts_in_sql_equal_pandas_value_counts(tables_dir: Path, bundled_frames: dict) -> None:
    by_role = analyzer.sql("SELECT role, count(*) AS n FROM messages GROUP BY role", tables_dir)
    expected = bundled_frames["messages"]["role"].astype(str).value_counts()
    assert dict(zip(by_role["role"], by_role["n"], strict=True)) == expected.to_dict()


def test_issue_example_median_ttft_by_served_model_matches_pandas_groupby(bundled_frames: dict) -> None:
    answer = analyzer.sql(ISSUE_EXAMPLE, captures_as_cloned())  # tables built from the captures first
    got, want = medians_by_model(answer), pandas_medians(bundled_frames["exchanges"])
    assert got.keys() == want.keys() and len(got) > 3
    for model, median in want.items():
        assert got[model] == median or math.isclose(got[model], median, rel_tol=1e-12), model


def test_partitioned_tables_answer_as_the_single_files_do(tables_dir: Path, single_dir: Path) -> None:
    assert tables_in(single_dir).keys() == tables_in(tables_dir).keys() == set(TABLES)
    for query in (
        "SELECT id, served_model, ttft_ms, cost_usd, started_at FROM exchanges ORDER BY id",
        "SELECT exchange, count(*) AS n, sum(length(text)) AS chars FROM chunks GROUP BY 1 ORDER BY 1",
        "SELECT COLUMNS(lambda c: c <> 'date') FROM messages ORDER BY ALL",  # every column but the partition's
        "SELECT COLUMNS(lambda c: c <> 'date') FROM tool_calls ORDER BY ALL",
    ):
        single, partitioned = analyzer.sql(query, single_dir), analyzer.sql(query, tables_dir)
        pd.testing.assert_frame_equal(single, partitioned, check_dtype=False)


def test_hive_partition_keys_are_columns_holding_each_exchanges_utc_start_date(
    tables_dir: Path, bundled_frames: dict
) -> None:
    days = analyzer.sql("SELECT id, CAST(date AS VARCHAR) AS date FROM exchanges ORDER BY id", tables_dir)
    started = bundled_frames["exchanges"].set_index("id")["started_at"]
    assert sorted(days["id"]) == sorted(started.index)
    for exchange, day in zip(days["id"], days["date"], strict=True):
        when = started[exchange]
        assert (str(day) if not pd.isna(day) else None) == (when.strftime("%Y-%m-%d") if not pd.isna(when) else None)


def test_a_table_both_as_file_and_as_directory_is_an_error_naming_both(
    tables_dir: Path, single_dir: Path, tmp_path: Path
) -> None:
    shutil.copytree(tables_dir, tmp_path / "tables")
    shutil.copy(single_dir / "chunks.parquet", tmp_path / "tables" / "chunks.parquet")
    with pytest.raises(analyzer.LoadError, match=r"both chunks\.parquet and chunks/ hold the chunks table"):
        analyzer.sql("SELECT 1", tmp_path / "tables")


def test_cli_csv_over_default_captures_parses_back_to_the_pandas_answer(bundled_frames: dict) -> None:
    result = sql_cli(ISSUE_EXAMPLE + " ORDER BY 1", "--format", "csv")  # PATH defaults to captures/
    assert result.returncode == 0, result.stderr
    assert "built the tables from 43 exchange(s) in captures/" in result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["served_model", "median(ttft_ms)"]
    got = {model or None: float(median) if median else None for model, median in rows[1:]}
    assert got == pandas_medians(bundled_frames["exchanges"])


def test_cli_json_is_an_array_of_row_objects_equal_to_analyzer_sql(tables_dir: Path) -> None:
    query = "SELECT id, served_model, prompt_tokens, cost_usd, started_at FROM exchanges ORDER BY id"
    result = sql_cli(query, tables_dir, "--format", "json")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    rows = json.loads(result.stdout)
    expected = analyzer.sql(query, tables_dir)
    assert [row["id"] for row in rows] == list(expected["id"])
    assert [row["prompt_tokens"] for row in rows] == [None if pd.isna(v) else v for v in expected["prompt_tokens"]]
    assert [row["cost_usd"] for row in rows] == [None if pd.isna(v) else v for v in expected["cost_usd"]]
    dated = [row["started_at"] for row in rows if row["started_at"] is not None]
    assert dated and all(pd.Timestamp(text) == pd.Timestamp(value) for text, value in
                         zip(dated, expected["started_at"].dropna(), strict=True))  # fmt: skip


def test_cli_parquet_out_writes_every_row_0600(tables_dir: Path, tmp_path: Path, bundled_frames: dict) -> None:
    out = tmp_path / "results" / "chunks.parquet"
    result = sql_cli("SELECT * FROM chunks", tables_dir, "--format", "parquet", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {len(bundled_frames['chunks']):,} row(s) to {out}"
    assert len(pd.read_parquet(out)) == len(bundled_frames["chunks"])
    assert out.stat().st_mode & 0o777 == 0o600


def test_cli_table_piped_shows_limit_rows_and_counts_the_rest(tables_dir: Path, bundled_frames: dict) -> None:
    result = sql_cli("SELECT exchange, kind FROM chunks", tables_dir, "--limit", "5")
    assert result.returncode == 0, result.stderr
    total = len(bundled_frames["chunks"])
    assert f"the first 5 of {total:,} rows" in result.stdout
    assert not any(line != line.rstrip() for line in result.stdout.splitlines())  # piped: unpadded
    body = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(body) == 5


def test_cli_table_shows_null_as_null(tables_dir: Path) -> None:
    result = sql_cli("SELECT NULL AS nothing, 0.000015 :: DOUBLE AS cost, 404.2834 :: DOUBLE AS ttft", tables_dir)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("│"))
    assert [cell.strip() for cell in row.strip("│").split("│")] == ["NULL", "0.000015", "404.283"]


def test_cli_bad_sql_is_one_line_with_duckdbs_message(tables_dir: Path) -> None:
    line = one_error_line(sql_cli("SELEC served_model FROM exchanges", tables_dir))
    assert line == 'Error: Parser Error: syntax error at or near "SELEC"'


def test_cli_unknown_table_is_one_line_naming_the_tables_there(tables_dir: Path) -> None:
    line = one_error_line(sql_cli("SELECT * FROM requests", tables_dir))
    assert "Table with name requests does not exist" in line
    assert line.endswith("Tables here: exchanges, chunks, messages, tool_calls.")


def test_cli_missing_path_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(sql_cli("SELECT 1", tmp_path / "nowhere"))
    assert "nowhere" in line


def test_cli_directory_without_tables_or_captures_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(sql_cli("SELECT 1", tmp_path))
    assert "no exchanges found, and no tables" in line


def test_cli_never_writes_into_the_captures_it_reads(tmp_path: Path) -> None:
    captures = shutil.copytree(captures_as_cloned(), tmp_path / "captures")
    before = sorted(p.relative_to(captures) for p in captures.rglob("*"))
    assert sql_cli("SELECT count(*) FROM exchanges", ".", cwd=captures).returncode == 0  # its own cwd too
    kept = sql_cli("SELECT count(*) FROM messages", captures, "--tables", tmp_path / "kept")
    assert kept.returncode == 0, kept.stderr
    assert f"into {tmp_path / 'kept'}" in kept.stderr
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == sorted([*TABLES, "_chatcap"])
    inside = one_error_line(sql_cli("SELECT 1", captures, "--tables", captures / "tables"))
    assert "is inside" in inside
    assert sorted(p.relative_to(captures) for p in captures.rglob("*")) == before
