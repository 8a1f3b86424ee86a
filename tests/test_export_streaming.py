"""The transcript exports (markdown, html, jsonl) take their input an exchange at a time.
Given exchanges they can read twice (a list, or the CLI's files), they thread them in a first
pass and write each conversation as soon as its last exchange comes in a second
(`export._chats`), holding only the conversations still open; given a stream read once, they
keep of each exchange only what the transcripts show. Both held to the transcripts of the
whole exchanges, and to memory in a child process."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from bundled import CAPTURES, ROOT, captures_as_cloned
from child_memory import conversation_lines, distinct_histories, peak_rss
from terminal import in_a_terminal

import analyzer
from analyzer import export
from analyzer.conversations import Conversation, conversations
from analyzer.export.redaction import redacted_all
from analyzer.export.transcript import transcripts
from analyzer.model import Exchange

EXTERNAL = ROOT / "tests" / "data" / "external"  # other projects' recordings, as they are laid out


def _inputs() -> dict[str, Path]:
    return {"bundled captures": captures_as_cloned(), "external recordings": EXTERNAL}


class _Twice:
    """The exchanges of `path`, read from the files again each time they are iterated, as the CLI reads them."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[Exchange]:
        return iter(analyzer.stream(self.path, progress=False))


def _in_order(chats: Iterable[tuple[int, Conversation]]) -> list[Conversation]:
    return [chat for _, chat in sorted(chats, key=lambda found: found[0])]


# The bundled captures hold each network read's time, so their replies have arrival curves;
# the external recordings (cassettes, fixtures) hold none.
@pytest.mark.parametrize("passes", ["one (a stream read once)", "two (the files read again)"])
@pytest.mark.parametrize(("name", "timed"), [("bundled captures", True), ("external recordings", False)])
def test_conversations_of_exchanges_taken_one_at_a_time_equal_those_of_whole_exchanges(
    name: str, timed: bool, passes: str
) -> None:
    path = _inputs()[name]
    whole = conversations(redacted_all(analyzer.load(path, progress=False)))
    source = analyzer.stream(path) if passes.startswith("one") else _Twice(path)
    light = _in_order(export._chats(source, None, None))
    # What the jsonl export writes of each conversation...
    assert [(c.id, c.tools, [(t.history, t.replies, t.sent_by) for t in c.turns]) for c in light] == [
        (c.id, c.tools, [(t.history, t.replies, t.sent_by) for t in c.turns]) for c in whole
    ]
    # ...and what markdown and html show, the arrival curves (worked out before the chunks go) included.
    made = transcripts(light)
    expected = transcripts(whole)
    assert made == expected
    assert any(entry.curve for transcript in expected for entry in transcript.entries) == timed
    assert all(not turn.exchange.response or not turn.exchange.response.body for chat in light for turn in chat.turns)


@pytest.mark.parametrize("passes", ["one (a stream read once)", "two (the files read again)"])
def test_a_filter_gives_the_conversations_of_the_exchanges_select_keeps_and_none_kept_is_an_error(passes: str) -> None:
    path = captures_as_cloned()
    exchanges = list(analyzer.load(path, progress=False))
    threaded = conversations(redacted_all(exchanges))

    def source() -> Iterable[Exchange]:
        return analyzer.stream(path) if passes.startswith("one") else _Twice(path)

    for select in ({"model": "claude*"}, {"host": "localhost"}, {"model": "gpt*", "host": "*.openai.com"}):
        kept = {x.id for x in export.select(exchanges, **select)}
        expected = [c.id for c in threaded if any(t.exchange.id in kept for t in c.turns)]
        assert [c.id for c in _in_order(export._chats(source(), select, None))] == expected, select
        assert expected
    with pytest.raises(ValueError, match="no exchange matches the filter"):
        list(export._chats(source(), {"model": "no-such-model"}, None))


def test_an_exchange_that_changed_between_the_two_passes_is_an_error_not_a_wrong_transcript() -> None:
    path = captures_as_cloned()

    class Changed:
        """The second reading finds the exchanges started an hour later (a file rewritten meanwhile)."""

        def __init__(self) -> None:
            self.readings = 0

        def __iter__(self) -> Iterator[Exchange]:
            self.readings += 1
            for exchange in analyzer.stream(path, progress=False):
                if self.readings > 1 and exchange.started_at:
                    exchange.started_at += timedelta(hours=1)
                yield exchange

    with pytest.raises(ValueError, match="is not the exchange read before"):
        list(export._chats(Changed(), None, None))


def test_exchanges_missing_from_the_second_reading_are_an_error_not_a_shorter_export() -> None:
    """A file of the first reading is gone (rotated away) in the second: whole conversations
    are missing from it, and the export says so rather than leave them out."""
    path = captures_as_cloned()

    class Shrunk:
        def __init__(self) -> None:
            self.readings = 0

        def __iter__(self) -> Iterator[Exchange]:
            return self._read()

        def _read(self) -> Iterator[Exchange]:
            self.readings += 1
            for exchange in analyzer.stream(path, progress=False):
                if self.readings == 1 or "four_protocols" not in exchange.id:
                    yield exchange

    with pytest.raises(ValueError, match=r"exchange\(s\) read before were not found again"):
        list(export._chats(Shrunk(), None, None))


def test_exports_of_a_stream_read_once_and_of_a_list_read_twice_are_byte_for_byte_the_same(tmp_path: Path) -> None:
    path = captures_as_cloned()
    loaded = analyzer.load(path, progress=False)
    for write in (export.markdown, export.html):
        from_list = write(loaded, tmp_path / f"{write.__name__}-list")
        from_stream = write(analyzer.stream(path), tmp_path / f"{write.__name__}-stream")
        assert [p.name for p in from_stream] == [p.name for p in from_list] and len(from_list) > 20
        assert [p.read_bytes() for p in from_stream] == [p.read_bytes() for p in from_list]
    lines = export.jsonl(loaded, tmp_path / "list.jsonl").read_bytes()
    assert export.jsonl(analyzer.stream(path), tmp_path / "stream.jsonl").read_bytes() == lines
    assert lines.count(b"\n") > 20


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


def test_a_capture_rewritten_with_a_key_between_the_two_passes_is_redacted_in_the_second(tmp_path: Path) -> None:
    """The second reading skips redacting an exchange the first found clean only while its raw
    bytes are the same: here the file is rewritten between the readings, the last request
    now sent with a key (the same exchanges, times and ids), and the key must not reach what
    the transcripts are made of, nor the files written."""
    capture = tmp_path / "chat.jsonl"
    capture.write_bytes((CAPTURES / "replayed" / "conversation.jsonl").read_bytes())
    key = "sk-proj-" + "Pasted0Key1Between2Readings3xyz" * 2

    class Rewritten:
        def __init__(self) -> None:
            self.readings = 0

        def __iter__(self) -> Iterator[Exchange]:
            return self._read()

        def _read(self) -> Iterator[Exchange]:  # counted when read, not when asked for an iterator
            self.readings += 1
            if self.readings % 2 == 0:
                lines = capture.read_bytes().splitlines()
                line = orjson.loads(lines[-1])
                line["request"]["headers"] = [
                    {"name": name, "value": f"Bearer {key}" if name == "Authorization" else value}
                    for name, value in ((h["name"], h["value"]) for h in line["request"]["headers"])
                ]
                request = orjson.loads(line["request"]["postData"]["text"])
                request["messages"][-1]["content"] += f" my key is {key}"
                line["request"]["postData"]["text"] = orjson.dumps(request).decode()
                capture.write_bytes(b"\n".join([*lines[:-1], orjson.dumps(line)]) + b"\n")
            else:
                capture.write_bytes((CAPTURES / "replayed" / "conversation.jsonl").read_bytes())
            yield from analyzer.stream(capture, progress=False)

    source = Rewritten()
    chats = list(export._chats(source, None, None))
    assert source.readings == 2
    (last,) = [turn.exchange for _, chat in chats for turn in chat.turns if turn.exchange.id.endswith("#7")]
    assert last.request is not None
    (authorization,) = [value for name, value in last.request.headers if name == "Authorization"]
    assert "<redacted:" in authorization and key[8:40] not in authorization
    assert key[8:40] not in repr(chats) and "my key is <redacted:" in repr(chats)
    for write in (export.markdown, export.html, export.jsonl):
        written = write(source, tmp_path / write.__name__)
        files = [written] if isinstance(written, Path) else written
        assert key[8:40] not in "".join(p.read_text(encoding="utf-8") for p in files)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["markdown", "html", "jsonl"])
def test_an_export_of_histories_that_never_repeat_holds_the_conversations_still_open_not_the_input(
    fmt: str, tmp_path: Path
) -> None:
    """2,000 exchanges of 24 kB histories that never repeat, each a conversation of its own (a
    capture of many short chats): read twice, each transcript written as soon as its
    conversation is complete, memory grows by a fraction of the file (0.06-0.13 times it).
    Keeping what the transcripts show of every exchange took 1.8 times it (2.1 for jsonl)."""
    big = distinct_histories(tmp_path / "big.jsonl", 2000)
    size = big.stat().st_size
    assert size > 50_000_000
    alone = peak_rss(
        "export", distinct_histories(tmp_path / "one.jsonl", 1), "--format", fmt, "--out", tmp_path / "one"
    )
    assert peak_rss("export", big, "--format", fmt, "--out", tmp_path / "big") - alone < size / 4
    assert len(list((tmp_path / "big").iterdir())) == {"markdown": 2000, "html": 2001, "jsonl": 1}[fmt]


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
