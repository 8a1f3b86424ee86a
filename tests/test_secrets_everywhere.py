"""Every output chatcap writes is free of credentials, whatever the input held: a capture
recorded with redaction off (or a browser's HAR) carrying every shape in every place goes
through each export, `convert`, `summary` and `show`, and no secret comes out, in a file's
bytes or in its name. And the real recordings, which hold none, come out of the exports'
redaction untouched."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd
import pytest
from bundled import BUNDLED_CAPTURES, CAPTURES
from bundled import REAL_CORPUS as CORPUS
from click.testing import CliRunner
from secrets_plant import (
    HEADERS,
    QUERY_SECRET,
    SECRETS,
    SENSITIVE,
    SHAPES,
    STREAMS,
    USERINFO_PASSWORD,
    model_output,
    request_body,
    split,
)

import analyzer
from analyzer.cli import main
from analyzer.export.redaction import redacted

ROOT = Path(__file__).resolve().parents[1]


def _entry(protocol: str) -> dict:
    path, build = STREAMS[protocol]
    body = build(split(model_output(), 9))
    ends, at = [], 0
    for piece in split(body.decode(), 13):
        at += len(piece.encode())
        ends.append([10.0 + len(ends), at])
    separator = "&" if "?" in path else "?"
    return {
        "startedDateTime": "2026-12-01T10:00:00.000Z",
        "time": 30,
        "request": {
            "method": "POST",
            "url": f"https://alice:{USERINFO_PASSWORD}@api.example.test{path}{separator}key={QUERY_SECRET}",
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": k, "value": v} for k, v in HEADERS.items()],
            "postData": {"mimeType": "application/json", "text": json.dumps(request_body(protocol))},
        },
        "response": {
            "status": 200,
            "statusText": "OK",
            "headers": [
                {"name": "content-type", "value": "text/event-stream"},
                {"name": "set-cookie", "value": "sid=hdr-cookie-6; Path=/"},
            ],
            "content": {"mimeType": "text/event-stream", "text": body.decode()},
            "_chunks": ends,
        },
        "timings": {"send": 1, "wait": 10, "receive": 19},
    }


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A capture of four exchanges, one per protocol, recorded with redaction off."""
    folder = tmp_path_factory.mktemp("planted")
    capture = folder / "capture.jsonl"
    capture.write_text("".join(json.dumps(_entry(protocol)) + "\n" for protocol in STREAMS))
    return capture


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_the_planted_capture_holds_every_secret_before_export(planted: Path) -> None:
    text = planted.read_text()
    assert _leaks(text.replace("\\n", "\n")) == SECRETS  # the test would catch each one
    assert len(analyzer.load(planted)) == 4


@pytest.mark.parametrize("fmt", ["markdown", "html", "jsonl", "csv", "parquet"])
def test_no_secret_survives_an_export(planted: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["export", str(planted), "--format", fmt, "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = [path for path in out.rglob("*") if path.is_file()]
    assert files
    for path in files:
        assert _leaks(path.name) == []
        if path.suffix == ".parquet":
            text = pd.read_parquet(path).to_csv()
        elif path.suffix == ".pickle":  # what a dataset keeps of each capture file for its next run
            text = path.read_bytes().decode("latin-1")
        else:
            text = path.read_text(encoding="utf-8")
        assert _leaks(text) == [], path.name
        assert _leaks(text.replace("\\n", "\n")) == [], path.name
        if path.suffix == ".jsonl":
            for line in text.splitlines():
                json.loads(line)


@pytest.mark.parametrize("to", ["har", "jsonl"])
def test_no_secret_survives_convert_and_the_result_is_valid_json(planted: Path, tmp_path: Path, to: str) -> None:
    target = tmp_path / f"converted.{to}"
    result = CliRunner().invoke(main, ["convert", str(planted), "--to", to, "--out", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    docs = [json.loads(line) for line in text.splitlines()] if to == "jsonl" else [json.loads(text)]
    entries = docs if to == "jsonl" else docs[0]["log"]["entries"]
    bodies = [e["response"]["content"]["text"] + e["request"]["postData"]["text"] for e in entries]
    for body in [text, *bodies]:
        assert _leaks(body) == []
    # What was converted still reads back as the same conversation, placeholders in place.
    again = analyzer.load(target)
    assert [x.reconstruct().protocol for x in again] == [x.reconstruct().protocol for x in analyzer.load(planted)]
    assert all("<redacted:" in x.reconstruct().choices[0].content for x in again)


def test_no_secret_reaches_the_terminal(planted: Path) -> None:
    runner = CliRunner()
    outputs = [runner.invoke(main, ["summary", str(planted)]).output]
    for exchange in analyzer.load(planted):
        outputs.append(runner.invoke(main, ["show", str(planted), "--id", exchange.id]).output)
    for output in outputs:
        assert _leaks(output) == []


def test_a_key_split_across_reads_is_not_in_any_chunk_of_the_tables(planted: Path, tmp_path: Path) -> None:
    analyzer.export.tables(analyzer.load(planted), tmp_path, "csv")
    chunks = pd.read_csv(tmp_path / "chunks.csv")
    assert len(chunks) > 20
    assert _leaks(chunks.to_csv()) == []


def test_a_body_that_is_not_utf8_is_redacted_in_every_export(tmp_path: Path) -> None:
    entry = _entry("openai-chat")
    raw = b'{"model": "m", "messages": [{"role": "user", "content": "\xff ' + SECRETS[0].encode() + b'"}]}'
    entry["request"]["postData"] = {"mimeType": "application/json", "text": base64.b64encode(raw).decode(),
                                    "encoding": "base64"}  # fmt: skip
    capture = tmp_path / "binary.jsonl"
    capture.write_text(json.dumps(entry) + "\n")
    [exchange] = analyzer.load(capture)
    clean = redacted(exchange)
    assert clean.request is not None and clean.request.body is not None
    assert SECRETS[0].encode() not in clean.request.body and b"\xff" in clean.request.body


def _real_exchanges() -> list[analyzer.Exchange]:
    files = [
        *(p for p in BUNDLED_CAPTURES if p.parent == CAPTURES and p.suffix == ".jsonl"),
        *sorted(CORPUS.glob("*.sse")),
    ]
    return list(analyzer.load(files, progress=False))


def test_real_recordings_come_out_of_export_redaction_untouched() -> None:
    exchanges = _real_exchanges()
    assert len(exchanges) > 100
    touched = [x.id for x in exchanges if redacted(x) is not x]
    assert touched == []


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_table_values_of_repeated_texts_equal_each_cell_made_alone(fmt: str) -> None:
    """`export.table_values` makes each distinct text's cell once and reuses it (ids and hosts
    repeat on every row): the cells equal `table_cell` of each value alone, secrets and all."""
    from analyzer.export import csv_cell, table_cell, table_values

    shapes = [SHAPES[name] for name in SENSITIVE]
    texts = [*shapes, "plain prose, no secret", "=SUM(A1)", "", "c1", "c1", *shapes]
    column = texts * 3 + [None]
    lists = [[value, {"key": value}] for value in texts] * 3 + [None]
    frame = pd.DataFrame({
        "text": pd.Series(column, dtype="string"),
        "category": pd.Series(column, dtype="category"),
        "lists": pd.Series(lists, dtype="object"),
    })  # fmt: skip

    def missing(value: object) -> bool:
        return value is None or value is pd.NA or (isinstance(value, float) and value != value)

    made = table_values(frame, fmt)
    for name in frame.columns:
        expected = [None if missing(value) else table_cell(value) for value in frame[name].astype("object")]
        if fmt == "csv":
            expected = [csv_cell(value) for value in expected]
        got = [None if missing(value) else value for value in made[name].astype("object")]
        assert got == expected, name
    assert not any(secret in str(made[name].tolist()) for name in frame.columns for secret in SENSITIVE.values())
