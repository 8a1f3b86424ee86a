"""Bad input gets a clear error naming the file and position, loses nothing, never hangs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import analyzer

DATA = Path(__file__).resolve().parent / "data" / "ingest"


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(analyzer.NoExchangesFound, match=r"empty\.txt: empty input"):
        analyzer.load(empty)


def test_whitespace_only_file_is_empty(tmp_path: Path) -> None:
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\n\n  \r\n")
    with pytest.raises(analyzer.NoExchangesFound, match="empty input"):
        analyzer.load(blank)


def test_binary_garbage_is_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(os.urandom(1 << 16) + b"\0")
    with pytest.raises(analyzer.NoExchangesFound, match=r"garbage\.bin: (binary data|no exchanges found)"):
        analyzer.load(garbage)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(analyzer.LoadError, match="no such file"):
        analyzer.load(tmp_path / "nope.jsonl")


def test_invalid_json_file_names_the_position(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"request": {"method": "POST",, }')
    with pytest.raises(analyzer.LoadError, match=r"broken\.json: invalid JSON: .*line 1 column"):
        analyzer.load(broken)


def test_invalid_json_in_one_chunk_is_a_warning_and_the_rest_reconstructs() -> None:
    rec = analyzer.load(DATA / "stream_one_bad_chunk.txt")[0].reconstruct()
    bad = [w for w in rec.warnings if w.code == "bad_chunk"]
    assert len(bad) == 1 and "event 3" in bad[0].message and "not JSON" in bad[0].message
    assert rec.choices[0].content == "Hi"  # the bad chunk carried " there — 你好!"
    assert rec.choices[0].finish_reason == "stop"
    assert not rec.has("lenient_sse")  # a lenient parse would not read more: strict result kept


def test_stream_cut_off_is_reconstructed_as_far_as_it_got() -> None:
    rec = analyzer.load(DATA / "stream_cut_off.txt")[0].reconstruct()
    assert rec.choices[0].content == "Hi"
    assert rec.truncated and not rec.done
    assert rec.has("truncated")


def test_torn_last_line_of_a_capture_is_reported_and_the_rest_loads() -> None:
    exchanges = analyzer.load(DATA / "torn_last_line.jsonl")
    assert len(exchanges) == 2
    assert [str(p) for p in exchanges.problems] == [
        f"{DATA / 'torn_last_line.jsonl'} line 3: torn last line (cut off mid-write, e.g. the writer was killed); line skipped"
    ]


def test_one_bad_file_never_aborts_a_batch(tmp_path: Path) -> None:
    shutil.copy(DATA / "raw_http_chunked_framed.txt", tmp_path / "good.txt")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "garbage.bin").write_bytes(b"\0\1\2\3" * 100)
    (tmp_path / "notes.md").write_text("# just notes\n\nnothing to see\n")
    exchanges = analyzer.load(tmp_path)
    assert [x.id for x in exchanges] == ["good.txt#1"]
    reasons = {Path(p.source).name: p.reason for p in exchanges.problems}
    assert set(reasons) == {"empty.txt", "garbage.bin", "notes.md"}
    assert all("no exchanges found" in reason for reason in reasons.values())


def test_a_list_with_a_missing_path_loads_the_others(tmp_path: Path) -> None:
    exchanges = analyzer.load([DATA / "completion_body.json", tmp_path / "missing.jsonl"])
    assert len(exchanges) == 1
    assert exchanges.problems[0].reason == "no such file or directory"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prefix", "outcome"),
    [
        (b"", "no exchanges found"),
        (b"{", "invalid JSON"),
        (b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\ndata: {', "bad_chunk"),
    ],
    ids=["text", "json", "sse"],
)
def test_a_200_mb_single_line_does_not_hang(tmp_path: Path, prefix: bytes, outcome: str) -> None:
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        handle.write(prefix)
        block = b"x" * (1 << 20)
        for _ in range(200):
            handle.write(block)
    if outcome == "bad_chunk":
        rec = analyzer.load(huge)[0].reconstruct()
        assert rec.has("bad_chunk") and rec.truncated
        assert rec.choices[0].content == "a"
        assert len(max((w.message for w in rec.warnings), key=len)) < 500  # previews, not the payload
    else:
        with pytest.raises(analyzer.LoadError, match=outcome):
            analyzer.load(huge)
