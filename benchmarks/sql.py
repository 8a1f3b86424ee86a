"""`analyzer.sql` (DuckDB over the Parquet tables) beside pandas over the same Parquet file.

    python benchmarks/sql.py                  # the bundled tables, and their exchanges grown to 1,000,000 rows
    python benchmarks/sql.py --rows 100000    # a smaller grown table
    make bench

The tables are the bundled captures' (`chatcap export --format parquet`), and a copy whose exchanges
table is those rows repeated to `--rows` (ids made unique, TTFT and cost jittered so no two copies
agree), written once by DuckDB into a temporary directory. The question is the issue's example,
median TTFT per served model, plus a count and total cost per model. Peers, each the best of
`--repeat` runs in this process:

- analyzer.sql          the whole call: views made over the directory, the query run, a DataFrame back
- duckdb, connected     `connection.execute(query).df()` on a connection analyzer.query.connect made
- pandas, its columns   `pd.read_parquet(file, columns=[...])`, then the groupby
- pandas, whole table   `pd.read_parquet(file)`, then the groupby (a frame loaded for other work too)

Every peer's answer must equal DuckDB's (medians to 1e-9) before its time counts. This is a small
benchmark; #22's benchmarks/scale.py measures the 2 GB dataset.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from bundled import captures_as_cloned  # noqa: E402

import analyzer  # noqa: E402
from analyzer import export, query  # noqa: E402

QUERY = """SELECT served_model, count(*) AS exchanges, median(ttft_ms) AS ttft_median_ms, sum(cost_usd) AS cost_usd
FROM exchanges GROUP BY served_model ORDER BY served_model NULLS LAST"""


def by_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    """QUERY in pandas."""
    model = frame["served_model"].astype(object)
    grouped = frame.groupby(model, dropna=False)
    answer = pd.DataFrame({
        "exchanges": grouped.size(),
        "ttft_median_ms": grouped["ttft_ms"].median(),
        "cost_usd": grouped["cost_usd"].sum(min_count=1),
    })  # fmt: skip
    return answer.rename_axis("served_model").reset_index().sort_values("served_model", na_position="last")


def same(answer: pd.DataFrame, expected: pd.DataFrame) -> bool:
    """Whether two answers agree row for row (numbers to 1e-9 relative, NULL with NULL)."""
    if len(answer) != len(expected):
        return False
    for left, right in zip(answer.itertuples(index=False), expected.itertuples(index=False), strict=True):
        for a, b in zip(left, right, strict=True):
            if pd.isna(a) and pd.isna(b):
                continue
            if isinstance(a, str) or isinstance(b, str):
                if a != b:
                    return False
            elif not math.isclose(float(a), float(b), rel_tol=1e-9):
                return False
    return True


def best(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def grow(tables: Path, out: Path, rows: int) -> None:
    """`tables` with the exchanges repeated to `rows` rows, the other tables as they are."""
    import duckdb

    out.mkdir()
    source = query.tables_in(tables)["exchanges"]
    connection = duckdb.connect()
    count = connection.execute(f"SELECT count(*) FROM {source}").fetchone()[0]  # type: ignore[index]
    copies = -(-rows // count)
    connection.execute(f"""COPY (
        SELECT * REPLACE (id || '/' || copy AS id,
                          ttft_ms * (0.5 + (hash(id, copy) % 1000) / 1000.0) AS ttft_ms,
                          cost_usd * (0.5 + (hash(copy, id) % 1000) / 1000.0) AS cost_usd)
        FROM {source}, range({copies}) AS copies(copy) LIMIT {rows}
    ) TO '{out / "exchanges.parquet"}' (FORMAT parquet)""")
    connection.close()


def measure(label: str, tables: Path, repeat: int) -> None:
    file = tables / "exchanges.parquet"
    # a dataset as `chatcap export` writes it, or one file: pandas reads either
    reading: dict[str, Any] = {}
    if not file.exists():
        import pyarrow.dataset

        file, reading = tables / "exchanges", {"partitioning": pyarrow.dataset.partitioning(flavor="hive")}
    connection = query.connect(tables, progress=False)
    peers: dict[str, Callable[[], pd.DataFrame]] = {
        "analyzer.sql": lambda: analyzer.sql(QUERY, tables, progress=False),
        "duckdb, connected": lambda: connection.execute(QUERY).df(),
        "pandas, its columns": lambda: by_pandas(
            pd.read_parquet(file, columns=["served_model", "ttft_ms", "cost_usd"], **reading)
        ),
        "pandas, whole table": lambda: by_pandas(pd.read_parquet(file, **reading)),
    }
    rows = connection.execute("SELECT count(*) FROM exchanges").fetchone()[0]  # type: ignore[index]
    size = sum(p.stat().st_size for p in ([file] if file.is_file() else file.rglob("*.parquet")))
    print(f"\n{label}: {rows:,} exchanges, {size / 2**20:.1f} MiB of Parquet")
    expected = connection.execute(QUERY).df()
    results = {}
    for name, run in peers.items():
        seconds, answer = best(run, repeat)
        if not same(answer, expected):
            raise SystemExit(f"{name}: its answer differs from DuckDB's")
        results[name] = seconds
    fastest = results["duckdb, connected"]
    for name, seconds in results.items():
        print(f"  {name:<22} {seconds * 1000:9.1f} ms   {seconds / fastest:6.1f}× duckdb, connected")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="exchanges in the grown table")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each peer; the best counts")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatcap-bench-sql-") as temporary:
        bundled = Path(temporary) / "bundled"
        export.tables(analyzer.load(captures_as_cloned(), progress=False), bundled, "parquet")
        measure("bundled tables", bundled, options.repeat)
        grown = Path(temporary) / "grown"
        grow(bundled, grown, options.rows)
        measure("grown exchanges table", grown, options.repeat)


if __name__ == "__main__":
    main()
