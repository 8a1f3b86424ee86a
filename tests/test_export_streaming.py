"""The transcript exports (markdown, html, jsonl) take their input an exchange at a time and
keep of each only what the transcripts show (`export._read`): its bodies, raw record and
stream chunks go once it is reconstructed, and a message resent with every request is held
once. Held to the transcripts of the whole exchanges, and to memory in a child process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from bundled import ROOT, captures_as_cloned
from child_memory import conversation_lines, peak_rss
from terminal import in_a_terminal

import analyzer
from analyzer import export
from analyzer.conversations import conversations
from analyzer.export.redaction import redacted_all
from analyzer.export.transcript import transcripts

EXTERNAL = ROOT / "tests" / "data" / "external"  # other projects' recordings, as they are laid out


def _inputs() -> dict[str, Path]:
    return {"bundled captures": captures_as_cloned(), "external recordings": EXTERNAL}


# The bundled captures hold each network read's time, so their replies have arrival curves;
# the external recordings (cassettes, fixtures) hold none.
@pytest.mark.parametrize(("name", "timed"), [("bundled captures", True), ("external recordings", False)])
def test_transcripts_of_exchanges_read_one_at_a_time_equal_those_of_whole_exchanges(name: str, timed: bool) -> None:
    path = _inputs()[name]
    whole = conversations(redacted_all(analyzer.load(path, progress=False)))
    reads, chosen = export._read(analyzer.stream(path))
    light = conversations(reads)
    assert chosen is None
    # What the jsonl export writes of each conversation...
    assert [(c.id, c.tools, [(t.history, t.replies, t.sent_by) for t in c.turns]) for c in light] == [
        (c.id, c.tools, [(t.history, t.replies, t.sent_by) for t in c.turns]) for c in whole
    ]
    # ...and what markdown and html show, the arrival curves (worked out before the chunks go) included.
    made = list(export._transcripts(reads, None, True, None, None))
    expected = transcripts(whole)
    assert made == expected
    assert any(entry.curve for transcript in expected for entry in transcript.entries) == timed
    assert all(not read.exchange.response or not read.exchange.response.body for read in reads)


def test_a_filter_keeps_the_exchanges_select_keeps_and_none_kept_is_an_error() -> None:
    path = captures_as_cloned()
    exchanges = list(analyzer.load(path, progress=False))
    for select in ({"model": "claude*"}, {"host": "localhost"}, {"model": "gpt*", "host": "*.openai.com"}):
        _, chosen = export._read(analyzer.stream(path), select)
        assert chosen == {x.id for x in export.select(exchanges, **select)}, select
    with pytest.raises(ValueError, match="no exchange matches the filter"):
        export._read(analyzer.stream(path), {"model": "no-such-model"})


def test_exports_take_a_stream_that_can_be_read_only_once(tmp_path: Path) -> None:
    path = captures_as_cloned()
    from_list = export.markdown(analyzer.load(path, progress=False), tmp_path / "list")
    from_stream = export.markdown(analyzer.stream(path), tmp_path / "stream")
    assert [p.read_bytes() for p in from_stream] == [p.read_bytes() for p in from_list] and from_list
    pages = export.html(analyzer.stream(path), tmp_path / "html")
    assert pages[-1].name == "index.html" and len(pages) == len(from_list) + 1
    assert export.jsonl(analyzer.stream(path), tmp_path / "chats.jsonl").read_bytes().count(b"\n") > 0


@pytest.mark.parametrize("fmt", ["markdown", "html", "jsonl"])
def test_export_memory_grows_by_less_than_half_of_what_resent_histories_add_to_the_input(
    fmt: str, tmp_path: Path
) -> None:
    """Twice the conversations, each request resending a 128 kB system prompt: the file grows by
    28 MB, and what the export holds by the new prompts (3 MB) and the exchanges' facts. Holding
    every exchange, as the exports did, took three times what the file grew by."""
    more = conversation_lines(tmp_path / "more.jsonl", 50, 8, prompt_kb=128)
    fewer = conversation_lines(tmp_path / "fewer.jsonl", 25, 8, prompt_kb=128)
    added = more.stat().st_size - fewer.stat().st_size
    assert added > 25_000_000
    before = peak_rss("export", fewer, "--format", fmt, "--out", tmp_path / "fewer")
    after = peak_rss("export", more, "--format", fmt, "--out", tmp_path / "more")
    assert after - before < added / 2
    assert len(list((tmp_path / "more").iterdir())) == {"markdown": 50, "html": 51, "jsonl": 1}[fmt]


def test_an_export_in_a_terminal_shows_a_spinner_while_threading_and_a_bar_while_writing(tmp_path: Path) -> None:
    """After the bars of reading and reconstructing, threading and writing the transcripts (two
    thirds of an export's time) have a spinner and a bar over the conversations."""
    captures = conversation_lines(tmp_path / "chats.jsonl", 600, 1, prompt_kb=8)  # a second or two of writing
    status, drawn = in_a_terminal([sys.executable, "-m", "analyzer", "export", str(captures), "--out", "out"], tmp_path)
    assert status == 0 and "Traceback" not in drawn, drawn
    assert "threading 600 exchange(s) into conversations" in drawn
    assert "writing: " in drawn and "/600 [" in drawn
    assert drawn.rstrip().endswith("wrote 600 file(s) to out")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_of_a_stream_are_the_tables_of_the_loaded_exchanges(fmt: str, tmp_path: Path) -> None:
    path = captures_as_cloned()
    from_list = export.tables(analyzer.load(path, progress=False), tmp_path / "list", fmt)
    from_stream = export.tables(analyzer.stream(path), tmp_path / "stream", fmt)
    assert from_list and [p.relative_to(tmp_path / "stream") for p in from_stream] == [
        p.relative_to(tmp_path / "list") for p in from_list
    ]
    assert [p.read_bytes() for p in from_stream] == [p.read_bytes() for p in from_list]
