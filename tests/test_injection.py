"""Captured text is untrusted wherever chatcap shows it (issue 19, item 12).

- CSV tables: a cell that a spreadsheet would read as a formula (it starts with = + - @,
  tab or CR) is written with a leading single quote, as OWASP recommends; numbers stay
  numbers; Parquet keeps the text exact.
- Terminal: `summary` and `show` print no control character from a capture (ESC, BEL, C1
  codes come out as visible escapes) and no Rich markup from a capture takes effect.
- Markdown: the exported transcript, rendered by a stock CommonMark renderer with raw HTML
  on, holds no HTML of the capture's, no image, no link but http(s), mailto or relative
  ones, and exactly one heading per transcript entry; user, system and tool text and tool
  arguments come back exactly, fenced. tests/e2e/test_markdown_browser.py opens the same
  files in Chromium.

`hostile_exchanges(text)` puts one text in every position a capture can carry it.
"""

from __future__ import annotations

import csv
import re
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import export
from analyzer.model import Exchange, Request, Response

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = orjson.loads((ROOT / "tests" / "data" / "injection" / "payloads.json").read_bytes())


def _stream(events: list[dict[str, Any]]) -> Response:
    body, reads = b"", []
    for n, event in enumerate([*events, None]):
        body += b"data: " + (orjson.dumps(event) if event is not None else b"[DONE]") + b"\n\n"
        reads.append((200.0 + 20 * n, len(body)))
    return Response(status=200, headers=[("content-type", "text/event-stream")], body=body, chunks=reads)


def hostile_exchanges(text: str, source: str = "<hostile>") -> list[Exchange]:
    """Two chat/completions exchanges of one conversation carrying `text` in every position:
    model names, system prompt, user message, an assistant message sent back (content,
    reasoning, tool call id, name and arguments), the tool result, and a streamed reply
    (reasoning, content, a tool call, the finish reason); then the same request answered
    with an API error whose message and type are `text`. The request sets temperature -0.5."""
    call = {"id": text, "type": "function", "function": {"name": text, "arguments": orjson.dumps({"q": text}).decode()}}
    messages = [
        {"role": "system", "content": text},
        {"role": "user", "content": text},
        {"role": "assistant", "content": text, "reasoning_content": text, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": text, "content": text},
    ]
    body = orjson.dumps({"model": text, "stream": True, "temperature": -0.5, "messages": messages})
    request = Request(method="POST", url="https://api.example.com/v1/chat/completions", body=body,
                      headers=[("content-type", "application/json")])  # fmt: skip
    envelope = {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1_760_000_000, "model": text}
    deltas: list[dict[str, Any]] = [
        {"role": "assistant", "reasoning_content": text},
        {"content": text},
        {"tool_calls": [{"index": 0, "id": text, "type": "function", "function": {"name": text, "arguments": text}}]},
    ]
    events = [{**envelope, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    events.append({**envelope, "choices": [{"index": 0, "delta": {}, "finish_reason": text}]})
    error = orjson.dumps({"error": {"message": text, "type": text, "code": None}})
    failed = Response(status=400, headers=[("content-type", "application/json")], body=error)
    return [
        Exchange(id=f"{source}#1", source=source, format="test", request=request, response=_stream(events)),
        Exchange(id=f"{source}#2", source=source, format="test", request=request, response=failed),
    ]


# -- CSV: formula injection ------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# Text with no credential shape in it, so redaction leaves it as it is.
CELL_TEXT = st.tuples(
    st.sampled_from([*FORMULA_STARTS, "'", ""]),
    st.text(alphabet="=+-@\t\r\n ,;\"'|!()xyz019.", max_size=30),
).map("".join)


def csv_cells(directory: Path) -> dict[str, list[dict[str, str]]]:
    tables = {}
    for path in sorted(directory.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            tables[path.stem] = list(csv.DictReader(handle))
    return tables


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=CELL_TEXT)
def test_csv_cells_never_start_a_formula_and_quoted_text_reads_back(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory)
        export.tables(hostile_exchanges(text), out / "csv", "csv")
        export.tables(hostile_exchanges(text), out / "parquet", "parquet")
        tables = csv_cells(out / "csv")
        assert sorted(tables) == ["chunks", "exchanges", "messages", "tool_calls"]
        for name, rows in tables.items():
            for row in rows:
                for column, cell in row.items():
                    assert not cell.startswith(FORMULA_STARTS) or NUMBER.fullmatch(cell), (name, column, cell)
        quoted = "'" + text if text.startswith(FORMULA_STARTS) and not NUMBER.fullmatch(text) else text
        (user,) = [row for row in tables["messages"] if row["role"] == "user"]
        assert user["content"] == quoted
        if text.strip():  # a blank model name is no model name
            assert {row["requested_model"] for row in tables["exchanges"]} == {quoted}
        parquet = pd.read_parquet(out / "parquet" / "messages.parquet")
        assert list(parquet.loc[parquet["role"] == "user", "content"]) == [text]  # Parquet stays exact
        numbers = pd.read_csv(out / "csv" / "exchanges.csv")
        assert pd.api.types.is_float_dtype(numbers["temperature"]) and list(numbers["temperature"]) == [-0.5, -0.5]
