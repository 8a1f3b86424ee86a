"""SQL over chatcap's four tables with DuckDB, embedded: `analyzer.sql(query, path)`.

    import analyzer
    analyzer.sql("SELECT served_model, median(ttft_ms) FROM exchanges GROUP BY 1", "out/tables")
    analyzer.sql("SELECT role, count(*) FROM messages GROUP BY 1", "captures/")  # tables built first

`path` is a directory of tables, as `chatcap export --format parquet` writes them, or captures,
from which the tables are built first with that same export (redacted) into a temporary
directory, or into `tables` to keep them. A table is `DIR/<name>.parquet` or a directory
`DIR/<name>/` of Parquet files, partitioned the Hive way or not (`date=2025-10-01/…`; the
partition keys become columns). The tables are views over the files: DuckDB reads them in
place, in parallel, out of core. The connection is in memory; nothing is written into `path`.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from analyzer.errors import LoadError, NoExchangesFound
from analyzer.ingest import Problem

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

__all__ = [
    "TABLES",
    "Dataset",
    "build_tables",
    "cell_text",
    "connect",
    "dataset",
    "is_numeric",
    "one_line",
    "sql",
    "tables_in",
    "write_csv",
    "write_json",
    "write_parquet",
]

# The views a query sees, named as `analyzer.frames` names the frames.
TABLES = ("exchanges", "chunks", "messages", "tool_calls")
DEFAULT_PATH = "captures"


def sql(
    query: str,
    path: str | os.PathLike[str] = DEFAULT_PATH,
    *,
    tables: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """The result of `query` (DuckDB SQL over the views exchanges, chunks, messages and
    tool_calls) on the tables at `path`, or on tables built from the captures at `path`
    (kept in `tables` when given), as a DataFrame. DuckDB's errors are raised as they are."""
    import pandas as pd

    with dataset(path, tables=tables, progress=progress, workers=workers) as found:
        connection = connect(found.directory, progress=progress)
        try:
            result = connection.execute(query)
            return result.df() if result.description else pd.DataFrame()
        finally:
            connection.close()


@dataclass
class Dataset:
    """The tables a query reads: where they are and, when chatcap built them, from what."""

    directory: Path
    built_from: int | None = None  # exchanges the tables were built from; None: they were there
    kept: bool = True  # False: a temporary directory, removed when the `dataset` block ends
    problems: list[Problem] = field(default_factory=list)  # what could not be loaded, when built


@contextlib.contextmanager
def dataset(
    path: str | os.PathLike[str] = DEFAULT_PATH,
    *,
    tables: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    workers: int | None = None,
) -> Iterator[Dataset]:
    """The tables at `path`; if it holds captures instead, the tables built from them into
    `tables`, or into a temporary directory removed when the block ends."""
    path = Path(path)
    if path.is_dir() and tables_in(path):
        if tables is not None:
            raise ValueError(
                f"{path} holds tables already: --tables (tables=) is for captures, to keep the tables built from them"
            )
        yield Dataset(directory=path)
        return
    if tables is not None:
        _outside(Path(tables), path)
        built, problems = build_tables(path, tables, progress=progress, workers=workers)
        yield Dataset(directory=Path(tables), built_from=built, kept=True, problems=problems)
        return
    with tempfile.TemporaryDirectory(prefix="chatcap-tables-") as temporary:
        built, problems = build_tables(path, temporary, progress=progress, workers=workers)
        yield Dataset(directory=Path(temporary), built_from=built, kept=False, problems=problems)


def _outside(tables: Path, path: Path) -> None:
    """Refuse to build tables inside the captures they come from: chatcap never writes there."""
    if path.is_dir() and tables.resolve().is_relative_to(path.resolve()):
        raise ValueError(f"{tables} is inside {path}, the captures being read: put the tables elsewhere")


def build_tables(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    progress: bool | None = None,
    workers: int | None = None,
) -> tuple[int, list[Problem]]:
    """The four tables of the captures at `path` written into `out_dir` as `chatcap export
    --format parquet` writes them (`analyzer.dataset.build`: a dataset, read again only for
    files it has not seen, by `workers` processes); returns how many exchanges they hold and
    what could not be loaded. A table file chatcap refuses to write (a symlink in its place)
    is an error."""
    from analyzer import dataset

    built = dataset.build(path, out_dir, workers=workers, progress=progress)
    if not built.exchanges:
        raise NoExchangesFound(str(path), "no exchanges found, and " + _no_tables())
    return built.exchanges, built.problems


def _no_tables() -> str:
    return f"no tables ({TABLES[0]}.parquet or a directory {TABLES[0]}/ of Parquet files, and so on)"


def tables_in(directory: str | os.PathLike[str]) -> dict[str, str]:
    """The tables `directory` holds, by name, each as the DuckDB expression reading it:
    `read_parquet` of `<name>.parquet`, or of every Parquet file under `<name>/` with Hive
    partitioning (key=value directories become columns) and columns matched by name."""
    directory = Path(directory)
    found = {}
    for name in TABLES:
        single = directory / f"{name}.parquet"
        partitioned = directory / name
        is_partitioned = partitioned.is_dir() and any(partitioned.rglob("*.parquet"))
        if is_partitioned and single.is_file():
            raise LoadError(str(directory), f"both {single.name} and {name}/ hold the {name} table: remove one")
        if is_partitioned:
            files = _literal(str(partitioned.resolve() / "**" / "*.parquet"))
            found[name] = f"read_parquet({files}, hive_partitioning = true, union_by_name = true)"
        elif single.is_file():
            found[name] = f"read_parquet({_literal(str(single.resolve()))})"
    return found


def _literal(text: str) -> str:
    """A SQL string literal (a view cannot take a parameter)."""
    return "'" + text.replace("'", "''") + "'"


def connect(directory: str | os.PathLike[str], *, progress: bool | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per table in `directory` (see `tables_in`).

    `progress`: DuckDB's bar for a query past two seconds, which it draws on stdout; by
    default only when stdout is a terminal or in a Jupyter kernel."""
    import duckdb

    views = tables_in(directory)
    if not views:
        raise NoExchangesFound(str(directory), _no_tables())
    connection = duckdb.connect(":memory:")
    if progress is None:
        progress = sys.stdout.isatty() or "ipykernel" in sys.modules
    connection.execute(f"SET enable_progress_bar = {str(progress).lower()}")
    # An in-memory database spills to `.tmp` in the working directory, which may be the data's.
    connection.execute(f"SET temp_directory = {_literal(_spill_directory())}")
    with contextlib.suppress(duckdb.Error):  # needs DuckDB's ICU extension, not in every build
        connection.execute("SET TimeZone = 'UTC'")  # the frames' times are UTC
    for name, source in views.items():
        connection.execute(f"CREATE VIEW {name} AS SELECT * FROM {source}")
    return connection


_spilled: list[str] = []


def _spill_directory() -> str:
    """A private directory for DuckDB's spill files, one per process, removed at exit."""
    if not _spilled:
        _spilled.append(tempfile.mkdtemp(prefix="chatcap-duckdb-"))
        atexit.register(shutil.rmtree, _spilled[0], ignore_errors=True)
    return _spilled[0]


def one_line(error: Exception, directory: str | os.PathLike[str] | None = None) -> str:
    """DuckDB's message for `error` as one line: its first paragraph (the caret drawing under
    the query left out); for a table that does not exist, the tables that do."""
    paragraph = str(error).strip().split("\n\n")[0]
    lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
    if lines and lines[0].startswith("Catalog Error: Table with name") and directory is not None:
        here = list(tables_in(directory))
        lines = [line for line in lines if not line.startswith("Did you mean") or any(n in line for n in here)]
        lines.append("Tables here: " + ", ".join(here) + ".")
    return " ".join(lines)


def write_parquet(connection: duckdb.DuckDBPyConnection, query: str, out: str | os.PathLike[str]) -> int:
    """The result of `query` written by DuckDB as one Parquet file at `out` (0600, put in
    place whole: a failed query leaves what was there); returns its number of rows."""
    from analyzer.files import private_dir, symlink_refused

    out = Path(out)
    if out.is_symlink():
        raise symlink_refused(out)
    relation = connection.sql(query)
    if relation is None:
        raise ValueError("the query returns no rows to write")
    with tempfile.TemporaryDirectory(prefix=".chatcap-sql-", dir=private_dir(out.parent)) as temporary:
        part = Path(temporary) / "result.parquet"
        relation.write_parquet(str(part))
        os.chmod(part, 0o600)
        rows: Any = connection.execute(f"SELECT count(*) FROM read_parquet({_literal(str(part))})").fetchone()
        os.replace(part, out)
    return int(rows[0])


# Rows fetched from DuckDB at a time when a result is written out whole.
BATCH_ROWS = 10_000


def _batches(result: duckdb.DuckDBPyConnection) -> Iterator[list[tuple[Any, ...]]]:
    while batch := result.fetchmany(BATCH_ROWS):
        yield batch


def write_csv(result: duckdb.DuckDBPyConnection, stream: TextIO) -> int:
    """A query's result (an executed connection) as CSV with a header, as `chatcap export`
    writes CSV: RFC 4180 line ends, NULL as an empty cell, lists and structs as JSON, and a
    text a spreadsheet would run as a formula with a leading `'`; returns the rows written."""
    import csv

    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow([column[0] for column in result.description or ()])
    count = 0
    for batch in _batches(result):
        writer.writerows([_csv_value(value) for value in row] for row in batch)
        count += len(batch)
    return count


def _csv_value(value: Any) -> Any:
    from analyzer.export import csv_cell

    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, str):
        return csv_cell(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return csv_cell(_json_text(value))


def write_json(result: duckdb.DuckDBPyConnection, stream: TextIO) -> int:
    """A query's result (an executed connection) as a JSON array of objects, one row a line;
    NULL as null, times in ISO 8601, decimals as numbers; returns the rows written."""
    import orjson

    names = [column[0] for column in result.description or ()]
    count = 0
    stream.write("[")
    for batch in _batches(result):
        for row in batch:
            line = orjson.dumps(dict(zip(names, row, strict=True)), default=_json_default,
                                option=orjson.OPT_NON_STR_KEYS)  # fmt: skip
            stream.write(("\n" if count == 0 else ",\n") + line.decode())
            count += 1
    stream.write("\n]\n" if count else "]\n")
    return count


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)  # an interval, …


def _json_text(value: Any) -> str:
    import orjson

    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


# A text cell in the terminal table shows at most this many characters (CSV and JSON have all).
CELL_CHARS = 200


def cell_text(value: Any) -> str:
    """A value as the terminal table shows it: NULL as `NULL`, floats to six significant
    digits without an exponent where one is not needed, lists and structs as JSON, long
    text cut to `CELL_CHARS` characters with `…`."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    text = value if isinstance(value, str) else str(value) if isinstance(value, int | Decimal) else _json_text(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _float_text(value: float) -> str:
    if not math.isfinite(value) or value == 0 or not 1e-6 <= abs(value) < 1e15:
        return f"{value:.6g}"
    decimals = max(0, 5 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


_NUMERIC = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
            "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "NUMBER"}  # fmt: skip


def is_numeric(kind: Any) -> bool:
    """Whether a result column's DuckDB type (as `description` gives it) is a number."""
    return str(kind).split("(")[0].strip().upper() in _NUMERIC
