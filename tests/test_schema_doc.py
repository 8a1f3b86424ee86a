"""docs/schema.md against the code: its column lists are the columns the frames are built with
(analyzer.frames' dtypes) and the columns of the Parquet tables the export writes from the
bundled captures, in order, with the pandas dtypes and Arrow types it gives. A column added,
removed, moved or retyped on one side and not the other fails here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bundled import ROOT, captures_as_cloned

import analyzer
from analyzer import export, frames
from analyzer.model import Exchange

DOC = ROOT / "docs" / "schema.md"
TABLES = ("exchanges", "chunks", "messages", "tool_calls")
HEADER = ["column", "Arrow type", "pandas dtype", "unit", "null when", "meaning"]
# What each frame is built with, as analyzer.frames declares it.
DTYPES = {
    "exchanges": frames._EXCHANGE_DTYPES,
    "chunks": frames._CHUNK_DTYPES,
    "messages": frames._MESSAGE_DTYPES,
    "tool_calls": frames._TOOL_DTYPES,
}
# The Hive partition column (docs/schema.md, "Files and partitions"): a reader adds it from the
# directory names; a file may hold it too. The only column a file may have beyond the documented ones.
PARTITION = "date"
VERSION_KEY = b"chatcap.schema_version"


@dataclass(frozen=True)
class Column:
    name: str
    arrow: str
    pandas: str


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row (a `\\|` inside a cell is not a separator)."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _code(cell: str) -> str:
    """The first `code` span of a cell: `large_string` (JSON text) is large_string."""
    found = re.search(r"`([^`]+)`", cell)
    assert found, f"no `code` in cell {cell!r}"
    return found.group(1)


def _sections(text: str) -> dict[str, list[str]]:
    """The lines under each `## ` heading, by the heading's first `code` span (or its text)."""
    sections: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:]
            found = re.search(r"`([^`]+)`", heading)
            lines = sections.setdefault(found.group(1) if found else heading.strip(), [])
        else:
            lines.append(line)
    return sections


def documented() -> dict[str, list[Column]]:
    """Each table's columns as docs/schema.md lists them, by table in the page's order: the rows
    of the Markdown table whose header is HEADER, under the heading naming the table."""
    found: dict[str, list[Column]] = {}
    for table, lines in _sections(DOC.read_text(encoding="utf-8")).items():
        rows = [_cells(line) for line in lines if line.startswith("|")]
        if not rows or rows[0] != HEADER:
            continue
        columns = []
        for cells in rows[2:]:  # after the header and the |---| line
            assert len(cells) == len(HEADER), f"{table}: a row without {len(HEADER)} cells: {cells}"
            columns.append(Column(_code(cells[0]), _code(cells[1]), _code(cells[2])))
        found[table] = columns
    return found


@pytest.fixture(scope="module")
def bundled_exchanges() -> list[Exchange]:
    return list(analyzer.load(captures_as_cloned()))


@pytest.fixture(scope="module")
def parquet_files(bundled_exchanges: list[Exchange], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """The Parquet files of each table as `analyzer.export.tables` writes them from the bundled
    captures: `<table>.parquet`, or the files of a dataset directory `<table>/` (partitioned or not)."""
    out = tmp_path_factory.mktemp("tables")
    export.tables(bundled_exchanges, out, "parquet")
    files = {}
    for table in TABLES:
        single = out / f"{table}.parquet"
        files[table] = [single] if single.is_file() else sorted((out / table).rglob("*.parquet"))
        assert files[table], f"no Parquet file written for {table}"
    return files


def test_schema_doc_has_a_column_table_for_each_of_the_four_tables_and_no_other() -> None:
    tables = documented()
    assert list(tables) == list(TABLES)
    assert all(tables.values())


@pytest.mark.parametrize("table", TABLES)
def test_documented_columns_and_pandas_dtypes_are_the_frames_dtypes_in_order(table: str) -> None:
    """The names in order, and each dtype as analyzer.frames declares it ("datetime", which the
    frames build in UTC, is documented as datetime64[<unit>, UTC])."""
    columns = documented()[table]
    assert [c.name for c in columns] == list(DTYPES[table])
    for column in columns:
        declared = DTYPES[table][column.name]
        if declared == "datetime":
            assert re.fullmatch(r"datetime64\[\w+, UTC\]", column.pandas), column
        else:
            assert column.pandas == declared, column


@pytest.mark.parametrize("table", TABLES)
def test_documented_pandas_dtypes_are_those_of_the_frames_built_from_the_bundled_captures(
    table: str, bundled_exchanges: list[Exchange]
) -> None:
    frame = frames.all_frames(bundled_exchanges)[table]
    assert [(c.name, c.pandas) for c in documented()[table]] == [
        (name, str(dtype)) for name, dtype in frame.dtypes.items()
    ]


@pytest.mark.parametrize("table", TABLES)
def test_parquet_files_written_from_the_bundled_captures_have_the_documented_columns_and_arrow_types(
    table: str, parquet_files: dict[str, list[Path]]
) -> None:
    """Every file of the table: the documented columns in order (a `date` partition column aside)
    with the documented Arrow types. pyarrow types a text column that is null in every row of a
    file as `null` (docs/schema.md says so); that is taken for the documented type only there."""
    columns = documented()[table]
    for path in parquet_files[table]:
        schema = pq.read_schema(path)
        fields = [field for field in schema if field.name != PARTITION]
        assert [field.name for field in fields] == [c.name for c in columns], path
        values = pq.read_table(path, columns=[field.name for field in fields if pa.types.is_null(field.type)])
        for field, column in zip(fields, columns, strict=True):
            if pa.types.is_null(field.type):
                assert values[field.name].null_count == len(values), (path, field.name)
            else:
                assert str(field.type) == column.arrow, (path, field.name)


def test_json_text_columns_listed_in_the_schema_doc_are_the_object_columns_of_the_frames() -> None:
    """The bullets `- `table.column`` of "JSON text columns": the columns the frames hold as Python
    objects (lists, parsed JSON), which the tables write as JSON text."""
    section = _sections(DOC.read_text(encoding="utf-8"))["JSON text columns"]
    listed = {match.group(1) for line in section if (match := re.match(r"- `(\w+\.\w+)`", line))}
    objects = {
        f"{table}.{name}" for table, dtypes in DTYPES.items() for name, dtype in dtypes.items() if dtype == "object"
    }
    assert listed == objects


def test_object_columns_of_the_frames_are_json_text_in_the_parquet_tables_of_the_bundled_captures(
    parquet_files: dict[str, list[Path]],
) -> None:
    """Each one holds values in the bundled captures' tables, every one a string that parses as JSON."""
    for table, dtypes in DTYPES.items():
        for name in [name for name, dtype in dtypes.items() if dtype == "object"]:
            values = pd.concat([pd.read_parquet(path, columns=[name])[name] for path in parquet_files[table]]).dropna()
            assert len(values), f"{table}.{name} holds no value in the bundled captures"
            for value in values:
                assert isinstance(value, str), (table, name, value)
                orjson.loads(value)


def documented_version() -> str:
    found = re.search(r"^Schema version: \*\*(\d+)\*\*", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    assert found, "docs/schema.md states no `Schema version: **N**`"
    return found.group(1)


def test_parquet_files_carry_the_documented_schema_version(parquet_files: dict[str, list[Path]]) -> None:
    for table in TABLES:
        for path in parquet_files[table]:
            metadata = pq.read_schema(path).metadata or {}
            assert metadata.get(VERSION_KEY) == documented_version().encode(), path
