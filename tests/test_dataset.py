"""Tables on every core and as a dataset that grows (issue #22): `analyzer.parallel` (worker
processes, one capture file each) and `analyzer.dataset` (`chatcap export --format parquet`:
partitioned by date, a manifest, re-runs that read only what is new). Real worker processes,
real files, the CLI as a user runs it."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from bundled import BUNDLED_CAPTURES, ROOT, captures_as_cloned, copy_bundled
from child_memory import distinct_histories, peak_rss
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from terminal import in_a_terminal

import analyzer
from analyzer import dataset, frames, ingest, parallel
from analyzer.export.redaction import redacted_all

TABLES = frames.TABLES


def frames_of_one_process(path: Path) -> dict[str, pd.DataFrame]:
    """The frames the way a notebook makes them: load, redact, `frames.all_frames`."""
    return frames.all_frames(redacted_all(x for x in analyzer.load(path) if x.reconstruct() is not None))


def read_dataset(directory: Path) -> dict[str, pd.DataFrame]:
    """Each table of a dataset, its partitions read back in the order of their rows' exchanges
    (ids) and without the partition column, as one frame."""
    found = {}
    for name in TABLES:
        parts = sorted((directory / name).glob("date=*/part-0.parquet"))
        table = pd.concat([pq.read_table(part).to_pandas() for part in parts], ignore_index=True)
        key = ["id"] if name == "exchanges" else list(table.columns)
        found[name] = table.sort_values(key, kind="stable", ignore_index=True)
    return found


def test_frames_from_two_worker_processes_equal_the_frames_of_one_process() -> None:
    captures = captures_as_cloned()
    built = parallel.frames_of(captures, workers=2, redact=True)
    assert built.exchanges == 43 and built.problems == []
    for name, expected in frames_of_one_process(captures).items():
        pd.testing.assert_frame_equal(built.frames[name], expected, obj=name)


def test_frames_of_real_recordings_from_workers_equal_the_frames_of_one_process() -> None:
    recordings = ROOT / "tests" / "data" / "external"
    built = parallel.frames_of(recordings, workers=2, redact=True)
    assert built.exchanges > 50
    for name, expected in frames_of_one_process(recordings).items():
        pd.testing.assert_frame_equal(built.frames[name], expected, obj=name)


def test_a_file_that_cannot_be_read_is_a_problem_and_the_others_make_the_tables(tmp_path: Path) -> None:
    copy_bundled(captures_as_cloned(), tmp_path / "in")
    (tmp_path / "in" / "broken.jsonl").write_bytes(b"not json at all\n")
    built = parallel.frames_of(tmp_path / "in", workers=2)
    assert built.exchanges == 43 and len(built.frames["exchanges"]) == 43
    assert [problem.source for problem in built.problems] == [str(tmp_path / "in" / "broken.jsonl")]


def _open_by(path: Path) -> list[int]:
    """The processes that have `path` open."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if str(path) in links:
            found.append(int(pid))
    return found


def export_killing_readers_of(path: Path, captures: Path, out: Path) -> tuple[int, str, int]:
    """`chatcap export captures --format parquet` on two workers, every process but the export's
    own that opens `path` killed (SIGKILL, as the kernel's OOM killer does): its exit status, what
    it said on stderr and how many processes were killed."""
    command = [sys.executable, "-m", "analyzer", "export", str(captures), "--format", "parquet",
               "--out", str(out), "--workers", "2"]  # fmt: skip
    export = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kills = 0
    deadline = time.monotonic() + 300
    while export.poll() is None and time.monotonic() < deadline:
        for pid in _open_by(path):
            if pid != export.pid:
                os.kill(pid, signal.SIGKILL)
                kills += 1
        time.sleep(0.01)
    _, err = export.communicate(timeout=60)
    return export.returncode, err, kills


def test_a_worker_killed_while_reading_a_file_costs_that_file_only(tmp_path: Path) -> None:
    """The worker reading `big.jsonl` is killed (SIGKILL, as the kernel's OOM killer does)
    every time one opens it: the export still writes the tables of every other file and names
    the lost one on a line of its own."""
    captures = copy_bundled(captures_as_cloned(), tmp_path / "in")
    lines = (captures / "replayed" / "conversation.jsonl").read_bytes()
    big = captures / "big.jsonl"
    big.write_bytes(lines * max(1, (40 << 20) // len(lines)))  # ~40 MB: seconds of work for a worker
    status, err, kills = export_killing_readers_of(big, captures, tmp_path / "out")
    assert status == 0, err
    assert kills >= 3  # read together, again, then alone: killed each time
    assert f"skipped {big}: the worker process reading it died" in err and "Traceback" not in err
    tables = read_dataset(tmp_path / "out")
    assert len(tables["exchanges"]) == 43
    assert not any(str(x).startswith("big.jsonl") for x in tables["exchanges"]["id"])


def lone_har(path: Path, size: int = ingest.PIECE_BYTES) -> Path:
    """A HAR of `size` bytes or more (the Chrome-shaped recording's entries, over and over); of
    `ingest.PIECE_BYTES` or more, a file that, given alone, is read in a worker of its own."""
    har = orjson.loads((ROOT / "tests" / "data" / "har" / "chrome-devtools-shape.har").read_bytes())
    har["log"]["entries"] *= 1 + (size + (1 << 20)) // len(orjson.dumps(har["log"]["entries"]))
    path.write_bytes(orjson.dumps(har))
    return path


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_bar_moves_while_one_large_file_is_read_by_a_worker_or_this_process(tmp_path: Path, workers: str) -> None:
    """A lone HAR read entry by entry (past `ingest.STREAM_HAR_BYTES`): the bar over the bytes
    read shows where its reader is, not only 100 % once it is done."""
    big = lone_har(tmp_path / "big.har", ingest.STREAM_HAR_BYTES)
    command = [sys.executable, "-m", "analyzer", "export", str(big), "--format", "parquet", "--out", "out",
               "--workers", workers]  # fmt: skip
    status, drawn = in_a_terminal(command, tmp_path)
    assert status == 0 and "Traceback" not in drawn, drawn
    shown = [int(share) for share in re.findall(r"reading 1 file\(s\): +(\d+)%", drawn)]
    assert shown[-1] == 100 and any(0 < share < 100 for share in shown), shown


def test_a_worker_killed_while_reading_a_file_given_alone_is_a_one_line_error(tmp_path: Path) -> None:
    """A file as large as a piece, given alone, is read by a worker (the parent keeps none of
    what reading it allocates): that worker is killed each time it opens the file, read
    together, again and alone, and the export says so on one line and exits 1."""
    big = lone_har(tmp_path / "big.har")
    status, err, kills = export_killing_readers_of(big, big, tmp_path / "out")
    assert kills >= 3
    died = "the worker process reading it died (killed, or out of memory)"
    assert (status, err) == (1, f"Error: {big}: {died}\n")


def test_a_lone_file_read_by_a_worker_makes_the_tables_and_the_error_one_process_makes(tmp_path: Path) -> None:
    """A readable file and one that holds no exchange, each as large as a piece and given
    alone: two workers write the tables one process writes, and say the same error (the
    `LoadError` raised in the worker reaches the parent whole)."""
    big = lone_har(tmp_path / "big.har")
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(b'{"not": "a capture line"}\n' * (ingest.PIECE_BYTES // 26 + 1))
    assert ingest.line_pieces(junk, junk.stat().st_size // ingest.PIECE_BYTES) is None  # one task
    made = {
        workers: [export_parquet(path, tmp_path / workers / path.stem, "--workers", workers) for path in (big, junk)]
        for workers in ("1", "2")
    }
    for one, two in zip(made["1"], made["2"], strict=True):
        said = two.stdout.replace(str(tmp_path / "2"), str(tmp_path / "1"))
        assert (one.returncode, one.stdout, one.stderr) == (two.returncode, said, two.stderr)
    assert made["1"][0].returncode == 0 and made["1"][1].returncode == 1
    assert made["1"][1].stderr.startswith(f"Error: {junk}: ")
    one, two = read_dataset(tmp_path / "1" / "big"), read_dataset(tmp_path / "2" / "big")
    assert len(one["exchanges"]) > 1000
    for name in TABLES:
        pd.testing.assert_frame_equal(two[name], one[name], obj=name)


def export_parquet(captures: Path, out: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analyzer", "export", str(captures), "--format", "parquet", "--out", str(out), *more],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_a_rerun_with_nothing_new_reads_and_writes_nothing(tmp_path: Path) -> None:
    captures = copy_bundled(captures_as_cloned(), tmp_path / "in")
    first = export_parquet(captures, tmp_path / "out")
    assert first.returncode == 0, first.stderr
    files = sorted((tmp_path / "out").rglob("*.parquet"))
    stamps = [path.stat().st_mtime_ns for path in files]
    again = export_parquet(captures, tmp_path / "out")
    assert again.returncode == 0, again.stderr
    assert "is up to date: 43 exchange(s), no new or changed capture file" in again.stdout
    assert [path.stat().st_mtime_ns for path in sorted((tmp_path / "out").rglob("*.parquet"))] == stamps


def test_a_rerun_with_nothing_new_loads_no_kept_share_and_says_the_problems_again(tmp_path: Path) -> None:
    """The manifest alone answers a re-run with nothing new: shares made unloadable (garbage,
    still private) are not touched, and the problems of the first build are said again."""
    captures = copy_bundled(captures_as_cloned(), tmp_path / "in")
    (captures / "broken.jsonl").write_bytes(b"{not json\n" * 3)
    first = dataset.build(captures, tmp_path / "out", workers=1)
    assert any("broken.jsonl" in str(problem) for problem in first.problems)
    for share in (tmp_path / "out" / "_chatcap" / "parts").iterdir():
        share.write_bytes(b"not a pickle")
    again = dataset.build(captures, tmp_path / "out", workers=1)
    assert (again.up_to_date, again.read, again.exchanges) == (True, 0, first.exchanges)
    assert [str(p) for p in again.problems] == [str(p) for p in first.problems]


def test_a_rerun_after_new_files_reads_only_them_and_equals_a_build_from_scratch(tmp_path: Path) -> None:
    captures = tmp_path / "in"
    captures.mkdir()
    everything = captures_as_cloned()
    for path in BUNDLED_CAPTURES[:8]:  # the first night's captures
        shutil.copy(everything / path.relative_to(ROOT / "captures"), captures / path.name)
    first = dataset.build(captures, tmp_path / "out", workers=2)
    assert (first.read, first.reused) == (8, 0)
    for path in BUNDLED_CAPTURES[8:]:  # the next night's: one continues a conversation of the first
        target = captures / path.relative_to(ROOT / "captures")
        target.parent.mkdir(exist_ok=True)
        shutil.copy(everything / path.relative_to(ROOT / "captures"), target)
    second = dataset.build(captures, tmp_path / "out", workers=2)
    assert (second.read, second.reused) == (len(BUNDLED_CAPTURES) - 8, 8)
    scratch = dataset.build(captures, tmp_path / "scratch", workers=1)
    assert (scratch.read, scratch.reused) == (len(BUNDLED_CAPTURES), 0)
    grown, fresh = read_dataset(tmp_path / "out"), read_dataset(tmp_path / "scratch")
    for name in TABLES:
        pd.testing.assert_frame_equal(grown[name], fresh[name], obj=name)
    assert sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").glob("*/date=*/*")) == sorted(
        p.relative_to(tmp_path / "scratch") for p in (tmp_path / "scratch").glob("*/date=*/*")
    )


def test_a_changed_file_is_read_again_and_a_removed_ones_rows_leave_the_tables(tmp_path: Path) -> None:
    captures = copy_bundled(captures_as_cloned(), tmp_path / "in")
    dataset.build(captures, tmp_path / "out", workers=1)
    (captures / "errors.jsonl").unlink()
    lines = (captures / "tool_calls.jsonl").read_bytes().splitlines(keepends=True)
    (captures / "tool_calls.jsonl").write_bytes(b"".join(lines[:1]))
    again = dataset.build(captures, tmp_path / "out", workers=1)
    assert again.read == 1
    ids = set(read_dataset(tmp_path / "out")["exchanges"]["id"])
    assert not any(i.startswith("errors.jsonl#") for i in ids)
    assert {i for i in ids if i.startswith("tool_calls.jsonl#")} == {"tool_calls.jsonl#1"}


def test_the_manifest_names_each_file_with_size_time_and_sha256(tmp_path: Path) -> None:
    captures = copy_bundled(captures_as_cloned(), tmp_path / "in")
    dataset.build(captures, tmp_path / "out", workers=1)
    manifest = orjson.loads((tmp_path / "out" / "_chatcap" / "manifest.json").read_bytes())
    assert manifest["schema_version"] == dataset.SCHEMA_VERSION
    entry = next(e for e in manifest["files"] if e["label"] == "errors.jsonl")
    stat = (captures / "errors.jsonl").stat()
    assert (entry["size"], entry["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns)
    import hashlib

    assert entry["sha256"] == hashlib.sha256((captures / "errors.jsonl").read_bytes()).hexdigest()


def test_a_kept_share_others_can_write_is_not_loaded_and_its_file_is_read_again(tmp_path: Path) -> None:
    captures = copy_bundled(captures_as_cloned(), tmp_path / "in")
    dataset.build(captures, tmp_path / "out", workers=1)
    shares = sorted((tmp_path / "out" / "_chatcap" / "parts").iterdir())
    shares[0].chmod(0o666)
    again = dataset.build(captures, tmp_path / "out", workers=1)
    assert (again.read, again.reused, again.up_to_date) == (1, len(shares) - 1, False)


def test_a_file_that_grew_while_it_was_read_is_read_again_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A capture still being written: a line added after its exchanges were read, before its
    bytes were hashed, must not be taken for read (the hash would be of bytes the tables
    never saw, and the line never read)."""
    captures = copy_bundled(captures_as_cloned(), tmp_path / "in")
    growing = captures / "errors.jsonl"
    lines = growing.read_bytes().splitlines(keepends=True)
    growing.write_bytes(b"".join(lines[:-1]))
    real_hash = parallel.sha256_of

    def the_proxy_writes_one_more_line_then_hash(path: Path) -> str | None:
        if path == growing and growing.read_bytes().count(b"\n") < len(lines):
            with growing.open("ab") as handle:
                handle.write(lines[-1])
        return real_hash(path)

    monkeypatch.setattr(parallel, "sha256_of", the_proxy_writes_one_more_line_then_hash)
    first = dataset.build(captures, tmp_path / "out", workers=1)
    again = dataset.build(captures, tmp_path / "out", workers=1)
    scratch = dataset.build(captures, tmp_path / "scratch", workers=1)
    assert again.read == 1 and again.exchanges == first.exchanges + 1 == scratch.exchanges
    assert read_dataset(tmp_path / "out")["exchanges"].equals(read_dataset(tmp_path / "scratch")["exchanges"])


def test_a_touched_but_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    captures = copy_bundled(captures_as_cloned(), tmp_path / "in")
    dataset.build(captures, tmp_path / "out", workers=1)
    os.utime(captures / "errors.jsonl")
    again = dataset.build(captures, tmp_path / "out", workers=1)
    assert (again.read, again.written) == (0, [])


@pytest.mark.parametrize("table", TABLES)
def test_every_partition_of_a_table_has_the_same_arrow_schema_with_the_version(tmp_path: Path, table: str) -> None:
    dataset.build(captures_as_cloned(), tmp_path / "out", workers=1)
    schemas = [pq.read_schema(p) for p in (tmp_path / "out" / table).glob("date=*/part-0.parquet")]
    assert len(schemas) > 1
    assert all(schema.equals(schemas[0], check_metadata=True) for schema in schemas)
    assert schemas[0].metadata[b"chatcap.schema_version"] == str(dataset.SCHEMA_VERSION).encode()


@pytest.mark.parametrize("how", ["script", "stdin"])
def test_workers_run_from_a_script_without_a_main_guard_or_from_stdin(tmp_path: Path, how: str) -> None:
    """A new process that imports the caller's program again would run it again (or, for a
    program read from stdin, fail): the workers must not need to."""
    program = f"from analyzer import parallel\nbuilt = parallel.frames_of({str(captures_as_cloned())!r}, workers=2)\n"
    program += "print(built.exchanges, len(built.problems))\n"
    script = tmp_path / "tables.py"
    script.write_text(program)
    command = [sys.executable, str(script)] if how == "script" else [sys.executable, "-"]
    run = subprocess.run(command, input=None if how == "script" else program, capture_output=True, text=True,
                         timeout=300, check=False)  # fmt: skip
    assert (run.returncode, run.stdout, run.stderr) == (0, "43 0\n", "")


def one_long_capture(path: Path, bad_lines: int) -> Path:
    """A capture of many lines (the bundled JSON-lines captures, over and over) with bad lines
    among them, so pieces of it hold bad lines too."""
    captures = captures_as_cloned()
    lines = [line for name in ("replayed/conversation.jsonl", "tool_calls.jsonl", "branching_conversation.jsonl",
                               "errors.jsonl", "multi_choice_n2.jsonl")
             for line in (captures / name).read_bytes().splitlines(keepends=True)] * 6  # fmt: skip
    step = len(lines) // (bad_lines + 1)
    for n in range(bad_lines, 0, -1):
        lines.insert(n * step, b'{"not": "an exchange"}\n')
    path.write_bytes(b"".join(lines))
    return path


@pytest.mark.parametrize("bad_lines", [0, 3, 11])
def test_a_capture_read_in_pieces_by_workers_gives_what_reading_it_whole_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_lines: int
) -> None:
    """The same frames, exchange ids (numbered on from piece to piece), line numbers and
    problems (the first five bad lines named, the rest counted, as for a whole file)."""
    from analyzer import ingest

    capture = one_long_capture(tmp_path / "long.jsonl", bad_lines)
    whole = parallel.frames_of([capture], workers=1)  # below two PIECE_BYTES: read whole
    monkeypatch.setattr(ingest, "PIECE_BYTES", capture.stat().st_size // 5)  # the pieces of a large file, small
    assert len(ingest.line_pieces(capture, 5) or []) == 5
    pieces = parallel.frames_of([capture], workers=2)
    assert pieces.exchanges == whole.exchanges > 100
    assert pieces.problems == whole.problems and len(whole.problems) == min(bad_lines, 5) + (bad_lines > 5)
    for name in TABLES:
        pd.testing.assert_frame_equal(pieces.frames[name], whole.frames[name], obj=name)


def one_long_har(path: Path, odd: bool) -> Path:
    """A HAR of many entries (the Chrome-shaped recording's, over and over: LLM calls, assets, a
    WebSocket) with, when `odd`, bad entries among them (a number, objects without request
    and response, more than `PROBLEMS_PER_FILE` in all) and an LLM call whose answer holds the
    bytes a cut between entries looks like (`}, {` in a string), so pieces of it hold those too."""
    har = orjson.loads((ROOT / "tests" / "data" / "har" / "chrome-devtools-shape.har").read_bytes())
    entries = har["log"]["entries"] * 60
    if odd:
        call = next(entry for entry in entries if "/chat/completions" in entry["request"]["url"])
        tricky = orjson.loads(orjson.dumps(call))
        tricky["comment"] = '"}, {"startedDateTime": "x"}]} \\'
        step = len(entries) // 9
        for n in range(8, 0, -1):
            entries.insert(n * step, 17 if n % 2 else {"not": "an entry"})
            entries.insert(n * step - 3, tricky)
    har["log"]["entries"] = entries
    har["log"]["comment"] = "after the entries"
    path.write_bytes(orjson.dumps(har, option=orjson.OPT_INDENT_2))
    return path


@pytest.mark.parametrize("odd", [False, True])
def test_a_har_read_in_pieces_by_workers_gives_what_reading_it_whole_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, odd: bool
) -> None:
    """The same frames, exchange ids (numbered on from piece to piece), entry numbers and
    problems (the first five bad entries named, the rest counted, the entries that are not LLM
    calls added up), as for the file read whole, entry by entry or at once."""
    har = one_long_har(tmp_path / "long.har", odd)
    at_once = parallel.frames_of([har], workers=1)
    monkeypatch.setattr(ingest, "STREAM_HAR_BYTES", 0)  # read entry by entry, and cut
    whole = parallel.frames_of([har], workers=1)  # one worker: never cut
    monkeypatch.setattr(ingest, "PIECE_BYTES", har.stat().st_size // 5)
    cuts = ingest.har_pieces(har, 5) or []
    assert len(cuts) == 5 and [first for _, _, first in cuts] != [1, 1, 1, 1, 1]
    pieces = parallel.frames_of([har], workers=2)
    assert pieces.exchanges == whole.exchanges == at_once.exchanges > 100
    assert [str(p) for p in pieces.problems] == [str(p) for p in whole.problems] == [str(p) for p in at_once.problems]
    assert len(whole.problems) == (7 if odd else 1)  # five named, the rest counted; the entries left out
    for name in TABLES:
        pd.testing.assert_frame_equal(pieces.frames[name], whole.frames[name], obj=name)
        pd.testing.assert_frame_equal(pieces.frames[name], at_once.frames[name], obj=name)


@pytest.mark.parametrize(
    "shape",
    ["har/chrome-devtools-shape.har", "har/firefox-devtools-shape.har", "har/charles-shape.har",
     "har/httptoolkit-shape.har", "ingest/browser_mixed.har", "ingest/gzip_body.har"],
)  # fmt: skip
def test_every_producers_har_read_in_pieces_gives_what_reading_it_whole_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    """Each producer's HAR (its entries over and over, its own layout, key order and
    indentation kept: the entries are repeated in its bytes, not written again): the frames
    and problems of the pieces are those of the whole file."""
    data = (ROOT / "tests" / "data" / shape).read_bytes()
    entries = orjson.loads(data)["log"]["entries"]
    spans = list(ingest._har_elements(io.BytesIO(data), spans=True))
    start, end = spans[0][0], spans[-1][1]
    inner = data[start:end]
    assert orjson.loads(b"[" + inner + b"]") == entries  # the entries' own bytes, and only them
    path = tmp_path / "long.har"
    path.write_bytes(data[:start] + b",".join([inner] * 80) + data[end:])
    monkeypatch.setattr(ingest, "STREAM_HAR_BYTES", 0)
    whole = parallel.frames_of([path], workers=1)
    monkeypatch.setattr(ingest, "PIECE_BYTES", path.stat().st_size // 4)
    assert len(ingest.har_pieces(path, 4) or []) == 4
    pieces = parallel.frames_of([path], workers=2)
    assert pieces.exchanges == whole.exchanges >= 80
    assert [str(p) for p in pieces.problems] == [str(p) for p in whole.problems]
    for name in TABLES:
        pd.testing.assert_frame_equal(pieces.frames[name], whole.frames[name], obj=name)


@pytest.mark.parametrize("bad", [False, True])
def test_a_har_without_llm_calls_read_in_pieces_is_the_problem_reading_it_whole_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: bool
) -> None:
    """Assets only, with or without bad entries among them: no exchange, and the same problems
    (the last bad entry, or how many entries none of which is an LLM call) as read whole."""
    har = orjson.loads((ROOT / "tests" / "data" / "har" / "chrome-devtools-shape.har").read_bytes())
    assets = [entry for entry in har["log"]["entries"] if "/chat/completions" not in entry["request"]["url"]]
    har["log"]["entries"] = (assets + ([{"not": "an entry"}] if bad else [])) * 200
    path = tmp_path / "assets.har"
    path.write_bytes(orjson.dumps(har))
    monkeypatch.setattr(ingest, "STREAM_HAR_BYTES", 0)
    whole = parallel.frames_of([path], workers=1)
    monkeypatch.setattr(ingest, "PIECE_BYTES", path.stat().st_size // 4)
    assert len(ingest.har_pieces(path, 4) or []) == 4
    pieces = parallel.frames_of([path], workers=2)
    assert pieces.exchanges == whole.exchanges == 0
    assert [str(p) for p in pieces.problems] == [str(p) for p in whole.problems]
    assert "no exchanges found: " in str(whole.problems[-1])


def test_a_har_is_cut_only_between_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each piece `ingest.har_pieces` makes starts with an entry and ends with one: read back,
    the pieces' bytes are the entries' JSON, each entry once, in order, numbered as in the file."""
    har = one_long_har(tmp_path / "long.har", odd=True)
    monkeypatch.setattr(ingest, "STREAM_HAR_BYTES", 0)
    monkeypatch.setattr(ingest, "PIECE_BYTES", har.stat().st_size // 7)
    data = har.read_bytes()
    entries = orjson.loads(data)["log"]["entries"]
    cuts = ingest.har_pieces(har, 7)
    assert cuts is not None and len(cuts) == 7
    assert cuts[0][0] == 0 and cuts[-1][1] == len(data)
    read = []
    for n, (start, end, first) in enumerate(cuts):
        assert first == len(read) + 1
        inner = data[start:end]
        if n == 0:
            inner = inner[inner.index(b'"entries"') :].split(b"[", 1)[1]
        if n == len(cuts) - 1:
            inner = inner[: inner.rindex(b"]", 0, inner.rindex(b'"comment"'))]
        read += orjson.loads(b"[" + inner + b"]")
    assert read == entries


def test_a_har_that_is_damaged_or_small_or_gzipped_is_not_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut only where the whole file's structure was read: a damaged HAR (cut off, or a
    bracket closing nothing) is read whole, by one reader, which says what is wrong."""
    har = one_long_har(tmp_path / "long.har", odd=False)
    monkeypatch.setattr(ingest, "STREAM_HAR_BYTES", 0)
    monkeypatch.setattr(ingest, "PIECE_BYTES", har.stat().st_size // 5)
    data = har.read_bytes()
    cut_off = tmp_path / "cut.har"
    cut_off.write_bytes(data[: len(data) * 3 // 4])
    closing = tmp_path / "closing.har"
    middle = data.rindex(b"{", 0, data.index(b'"startedDateTime"', len(data) // 2))  # an entry's start
    closing.write_bytes(data[:middle] + b"]]]]" + data[middle:])
    gzipped = tmp_path / "long.har.gz"
    gzipped.write_bytes(gzip.compress(data))
    for path in (cut_off, closing):
        assert ingest.har_pieces(path, 5) is None, path
        built = parallel.frames_of([path], workers=2)
        assert built.exchanges > 10 and "HAR file is damaged after entry" in str(built.problems[-2:])
    assert ingest.har_pieces(gzipped, 5) is None
    monkeypatch.setattr(ingest, "STREAM_HAR_BYTES", len(data))
    assert ingest.har_pieces(har, 5) is None  # read at once, it would be parsed whole


def test_a_har_is_cut_only_when_it_is_more_than_a_workers_share_of_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two large HAR files for two workers: each read whole by one (finding cuts would cost a
    read of each for nothing); one of them beside a small capture: cut."""
    first = one_long_har(tmp_path / "first.har", odd=False)
    second = tmp_path / "second.har"
    shutil.copy(first, second)
    monkeypatch.setattr(ingest, "STREAM_HAR_BYTES", 0)
    monkeypatch.setattr(ingest, "PIECE_BYTES", first.stat().st_size // 5)
    cut: list[Path] = []

    def har_pieces(path: Path, *args: Any) -> Any:
        cut.append(path)
        return ingest.har_pieces(path, *args)

    monkeypatch.setattr(parallel, "har_pieces", har_pieces)
    both = parallel.frames_of([first, second], workers=2)
    assert cut == [] and both.exchanges > 200
    small = copy_bundled(captures_as_cloned(), tmp_path / "small") / "tool_calls.jsonl"
    beside = parallel.frames_of([first, small], workers=2)
    assert cut == [first] and beside.exchanges > 100


def test_a_piece_of_a_file_given_alone_that_cannot_be_read_stops_the_reading_of_the_other_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug met in one piece of a lone capture (every batch's parts raise here, after half a
    second) is the command's error at once: the pieces still queued for the two workers are
    not read first."""
    capture = one_long_capture(tmp_path / "long.jsonl", 0)
    monkeypatch.setattr(ingest, "PIECE_BYTES", capture.stat().st_size // 20)
    assert len(ingest.line_pieces(capture, 20) or []) == 20
    tried = tmp_path / "tried"

    def broken_parts(*args: Any, **kwargs: Any) -> Any:
        with tried.open("a") as handle:  # each worker's try, whichever process it is
            handle.write("x")
        time.sleep(0.5)
        raise RuntimeError("a bug")

    monkeypatch.setattr(frames, "parts", broken_parts)  # the workers are forks: they have it too
    with pytest.raises(analyzer.LoadError, match="could not be read: RuntimeError: a bug"):
        parallel.frames_of(capture, workers=2)
    assert len(tried.read_text()) < 10


def test_a_capture_of_only_bad_lines_read_in_pieces_is_one_problem_as_when_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analyzer import ingest

    capture = tmp_path / "bad.jsonl"
    capture.write_bytes(b'{"not": "an exchange"}\n' * 4000)
    whole = parallel.frames_of([capture], workers=1)
    monkeypatch.setattr(ingest, "PIECE_BYTES", capture.stat().st_size // 4)
    pieces = parallel.frames_of([capture], workers=2)
    assert pieces.exchanges == whole.exchanges == 0
    assert pieces.problems == whole.problems
    with pytest.raises(analyzer.LoadError, match="JSON object without request and response"):
        parallel.frames_of(capture, workers=2)  # a file given alone: raised, as load raises it


def test_two_roots_holding_the_same_relative_path_give_every_exchange_its_own_id(tmp_path: Path) -> None:
    """`a/x.jsonl` and `b/x.jsonl` given as `a/` and `b/`: the second is labelled by its path."""
    for root in ("a", "b"):
        (tmp_path / root).mkdir()
        shutil.copy(captures_as_cloned() / "errors.jsonl", tmp_path / root / "x.jsonl")
    loaded = [x.id for x in analyzer.load([tmp_path / "a", tmp_path / "b"])]
    assert loaded == ["x.jsonl#1", "x.jsonl#2", "x.jsonl#3", *(f"{tmp_path / 'b' / 'x.jsonl'}#{n}" for n in (1, 2, 3))]
    built = parallel.frames_of([tmp_path / "a", tmp_path / "b"], workers=2)
    assert list(built.frames["exchanges"]["id"]) == loaded


@pytest.mark.parametrize("select", [None, {"model": "claude*"}])
def test_the_dataset_is_the_same_bytes_whatever_the_number_of_workers(
    tmp_path: Path, select: dict[str, str] | None
) -> None:
    """Workers read the files and make the chunks' and messages' cells: the files written,
    their order and the manifest's partitions are those of one process, filtered or not."""
    captures = captures_as_cloned()
    one = dataset.build(captures, tmp_path / "one", workers=1, select=select)
    two = dataset.build(captures, tmp_path / "two", workers=2, select=select)
    assert one.exchanges == two.exchanges and (one.exchanges < 43) is bool(select)
    written = [
        [path.relative_to(tmp_path / run) for path in built.written] for run, built in (("one", one), ("two", two))
    ]
    assert written[0] == written[1]
    manifests = [orjson.loads((tmp_path / run / "_chatcap" / "manifest.json").read_bytes()) for run in ("one", "two")]
    assert list(manifests[0]["partitions"].items()) == list(manifests[1]["partitions"].items())
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").glob("*/date=*/*.parquet"))
    assert files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").glob("*/date=*/*.parquet"))
    assert len(files) == 4 if select else len(files) > 4  # the claude exchanges are of one day
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_a_partition_file_is_the_same_bytes_however_its_rows_were_given_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows given in batches of any size (each file's, each piece's) are written as the same
    rows given at once: row groups are cut where the rows alone say, after `_GROUP_ROWS` rows
    (the short rows here) or once their text reaches `_GROUP_BYTES` (the long ones)."""
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setattr(dataset, "_GROUP_ROWS", 1000)
    monkeypatch.setattr(dataset, "_GROUP_BYTES", 250_000)
    n = 4000
    texts = [f"{i:05d}" + "x" * (40 if i < n // 2 else 1000 + i % 7) for i in range(n)]
    rows = {
        "exchange": [f"a.jsonl#{i // 10}" for i in range(n)], "seq": list(range(n)), "t_ms": [float(i) for i in range(n)],
        "kind": ["content"] * n, "choice": [0] * n, "text": texts, "chars": [len(t) for t in texts],
        "est_tokens": [None] * n,
    }  # fmt: skip
    written = []
    for size in (n, 333, 7, 1999):
        tables = dataset._Tables(tmp_path / str(size), ["chunks"], {}, {})
        for start in range(0, n, size):
            tables.add("chunks", {k: v[start : start + size] for k, v in rows.items()}, ["2025-01-01"] * min(size, n - start))  # fmt: skip
        tables.finish()
        written.append(tmp_path / str(size) / "chunks" / "date=2025-01-01" / "part-0.parquet")
    assert all(path.read_bytes() == written[0].read_bytes() for path in written[1:])
    metadata = pq.ParquetFile(written[0]).metadata
    groups = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
    assert sum(groups) == n and groups[:2] == [1000, 1000]  # the short rows: by count
    assert len(groups) > 4 and all(200 < size < 1000 for size in groups[2:-1])  # the long ones: by their text
    assert pq.read_table(written[0]).column("text").to_pylist() == texts


def test_a_capture_cut_where_a_line_longer_than_a_read_runs_gives_what_reading_it_whole_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cut falling inside a line of megabytes (here a bad one, in the middle of the file)
    moves to the next line start, read a bounded piece at a time."""
    from analyzer import ingest

    capture = one_long_capture(tmp_path / "long.jsonl", 0)
    lines = capture.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    capture.write_bytes(b"".join([*lines[:middle], b"x" * (3 << 20) + b"\n", *lines[middle:]]))
    monkeypatch.setattr(ingest, "PIECE_BYTES", capture.stat().st_size // 5)
    pieces = ingest.line_pieces(capture, 4)
    assert pieces is not None and len(pieces) >= 2
    whole = parallel.frames_of([capture], workers=1)
    cut = parallel.frames_of([capture], workers=2)
    assert cut.exchanges == whole.exchanges > 100
    assert cut.problems == whole.problems and len(whole.problems) == 1
    for name in TABLES:
        pd.testing.assert_frame_equal(cut.frames[name], whole.frames[name], obj=name)


@pytest.mark.parametrize("enabled", [True, False])
def test_a_build_leaves_the_garbage_collector_as_it_found_it_even_when_it_fails(tmp_path: Path, enabled: bool) -> None:
    """`dataset.build` pauses Python's cyclic collector while it reads and threads (each full
    pass walks all it holds), and gives it back as it was, on or off, whatever happens."""
    import gc

    captures = captures_as_cloned()
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        paused: list[bool] = []
        real_add = frames.Assembly.add

        def add(*args: Any, **kwargs: Any) -> None:
            paused.append(not gc.isenabled())
            real_add(*args, **kwargs)

        frames.Assembly.add = add  # type: ignore[method-assign]
        try:
            built = dataset.build(captures, tmp_path / "out", workers=1)
            with pytest.raises(ValueError, match="no exchange matches"):
                dataset.build(captures, tmp_path / "other", workers=1, select={"model": "no-such-model"})
        finally:
            frames.Assembly.add = real_add  # type: ignore[method-assign]
        assert built.exchanges == 43 and len(paused) > 2 and all(paused)
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


@pytest.mark.parametrize(
    "select",
    [
        {"model": "claude*"},
        {"model": "GPT-4O*"},
        {"host": "*.anthropic.com"},
        {"since": "2025-10-02"},
        {"until": "2025-10-02"},
        {"model": "*", "host": "api.openai.com", "since": "2025-10-01", "until": "2025-10-03"},
        {"model": "no-such-model"},
    ],
)
def test_the_dataset_chooses_the_exchanges_the_transcript_exports_choose(select: dict[str, str]) -> None:
    """`dataset.chosen` (rows of the exchanges table) and `export.select` (exchanges) keep the
    same exchanges for every filter: one predicate, asked of a row or of an exchange."""
    from datetime import UTC, datetime

    from analyzer.export import select as export_select

    arguments = {
        name: datetime.fromisoformat(value).replace(tzinfo=UTC) if name in ("since", "until") else value
        for name, value in select.items()
    }
    exchanges = [x for x in analyzer.load(captures_as_cloned()) if x.reconstruct() is not None]
    table = frames.exchanges(exchanges)
    kept = {exchange.id for exchange in export_select(exchanges, **arguments)}
    assert dataset.chosen(table, **arguments) == kept
    assert (0 < len(kept) < len(exchanges)) is (select != {"model": "no-such-model"})


def test_reading_on_workers_shows_one_bar_over_all_the_files_bytes(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Asked for progress, `parallel.read` draws one bar over the bytes of every file, as
    `load` does (shown at once here: the half-second delay set to none)."""
    import analyzer.ingest

    monkeypatch.setattr(analyzer.ingest, "PROGRESS_DELAY_S", 0)
    files = [(path, path.name) for path in sorted(captures_as_cloned().glob("*.jsonl"))[:3]]
    done = parallel.read(files, workers=2, progress=True)
    assert sum(share.exchanges for share in done) > 3
    from tqdm import tqdm

    total = tqdm.format_sizeof(sum(path.stat().st_size for path, _ in files))
    err = capfd.readouterr().err
    assert "reading 3 file(s)" in err and f"/{total} [" in err


def test_a_second_build_of_the_same_dataset_meanwhile_is_refused_in_one_line_naming_the_first(tmp_path: Path) -> None:
    """Two builds writing one dataset (a nightly job that overran, one started by hand) would
    each write a manifest over the other's partitions: while one holds the dataset, another
    is refused at once, and runs once the first is done."""
    captures = copy_bundled(captures_as_cloned(), tmp_path / "in")
    out = tmp_path / "out"
    first = dataset.build(captures, out, workers=1)
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(out / '_chatcap' / 'lock')!r}, os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.ftruncate(fd, 0); os.pwrite(fd, f'{os.getpid()}\\n'.encode(), 0)\n"
            "print('held', flush=True); sys.stdin.read()\n"
        )],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(dataset.Busy, match=f"process {holder.pid}\\) is writing this dataset"):
            dataset.build(captures, out, workers=1)
        cli = export_parquet(captures, out)
        assert cli.returncode == 1 and "Traceback" not in cli.stderr
        (line,) = cli.stderr.splitlines()
        assert str(out) in line and f"process {holder.pid}" in line
    finally:
        holder.communicate("")
    again = dataset.build(captures, out, workers=1)
    assert (again.up_to_date, again.exchanges) == (True, first.exchanges)


def test_a_build_in_a_terminal_says_what_it_does_once_the_files_are_read(tmp_path: Path) -> None:
    """After the bar over the files' bytes, threading and writing take a while on big inputs:
    a spinner says so, and `chatcap sql` over captures (which builds the tables) shows it too."""
    captures = copy_bundled(captures_as_cloned(), tmp_path / "in")
    status, drawn = in_a_terminal(
        [sys.executable, "-m", "analyzer", "export", str(captures), "--format", "parquet", "--out", "out"], tmp_path
    )
    assert status == 0 and "Traceback" not in drawn, drawn
    assert "threading 43 exchange(s) and writing the tables" in drawn
    status, drawn = in_a_terminal(
        [sys.executable, "-m", "analyzer", "sql", "SELECT count(*) AS n FROM exchanges", str(captures)], tmp_path
    )
    assert status == 0 and "Traceback" not in drawn, drawn
    assert "threading 43 exchange(s) and writing the tables" in drawn and "43" in drawn.rsplit("writing", 1)[1]


def test_the_status_line_says_how_far_threading_and_writing_are_from_0_to_100_percent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threading and writing 1,000 exchanges (a walk over each, then each batch's rows)
    update the status line with a share that only rises, from at most half (the walk) to 100 %."""

    class Status:
        def __init__(self) -> None:
            self.said: list[str] = []

        def update(self, text: str) -> None:
            self.said.append(text)

    shown = Status()
    monkeypatch.setattr(dataset, "status", lambda what, progress: contextlib.nullcontext(shown))
    monkeypatch.setattr(parallel, "BATCH_EXCHANGES", 100)
    capture = tmp_path / "in" / "histories.jsonl"
    capture.parent.mkdir()
    distinct_histories(capture, 1000, kb=1)
    dataset.build(capture.parent, tmp_path / "out", workers=1)
    what = "threading 1,000 exchange(s) and writing the tables: "
    assert shown.said and all(text.startswith(what) for text in shown.said), shown.said[:3]
    shares = [int(text.removeprefix(what).removesuffix(" %")) for text in shown.said]
    assert shares == sorted(shares) and shares[0] <= 50 and shares[-1] == 100
    assert len(set(shares)) > 10  # the walk, then the batches: not only the ends


@pytest.mark.parametrize("workers", [1, 2])
def test_an_exchange_whose_id_redaction_changes_keeps_its_rows_in_every_table(tmp_path: Path, workers: int) -> None:
    """A real recording named like an xAI key (`xai-responses-x-search.response.json`) gets an
    id that redaction rewrites: its rows are still dated, chosen and written in every table,
    under the same redacted id, whatever the number of workers, filtered or not."""
    captures = tmp_path / "in"
    shutil.copytree(ROOT / "tests" / "data" / "external" / "vercel-ai", captures / "vercel-ai")
    shutil.copy(captures_as_cloned() / "four_protocols.jsonl", captures)
    expected = parallel.frames_of(captures, workers=1, redact=True).frames
    assert any("xai-responses" in exchange for exchange in expected["exchanges"]["id"])
    for select, out in ((None, tmp_path / "all"), ({"model": "grok*"}, tmp_path / "grok")):
        built = dataset.build(captures, out, workers=workers, select=select)
        tables = read_dataset(out)
        ids = set(tables["exchanges"]["id"])
        assert built.exchanges == len(ids) and (len(ids) < len(expected["exchanges"])) is bool(select)
        assert not any("xai-responses" in exchange for exchange in ids)
        for name in ("chunks", "messages", "tool_calls"):
            assert set(tables[name]["exchange"]) <= ids, name
        chosen = expected["chunks"]["exchange"].isin(dataset.chosen(expected["exchanges"], **(select or {})))
        assert len(tables["chunks"]) == chosen.sum()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_table_export_of_histories_that_never_repeat_takes_memory_below_two_and_a_half_times_the_file(
    tmp_path: Path, fmt: str
) -> None:
    """2,000 exchanges whose messages no other sends (about 56 MB): each batch is kept on disk
    as it is made, the rows are made a batch at a time (and, for Parquet, wait on disk for
    their partition), so memory grows by 1.4-1.8 times the file here (at 1 GB, under half of
    it). Holding every file's parts and then the frames took 3.7 (Parquet) and 5.1 (CSV) times it."""
    big = distinct_histories(tmp_path / "big.jsonl", 2000)
    size = big.stat().st_size
    assert size > 50_000_000
    alone = peak_rss(
        "export", distinct_histories(tmp_path / "one.jsonl", 1), "--format", fmt, "--out", tmp_path / "one"
    )
    assert peak_rss("export", big, "--format", fmt, "--out", tmp_path / "big") - alone < size * 2.5
    read = (
        pq.read_table(tmp_path / "big" / "exchanges")
        if fmt == "parquet"
        else pd.read_csv(tmp_path / "big" / "exchanges.csv")
    )
    assert len(read) == 2000


EXTERNAL = ROOT / "tests" / "data" / "external"  # other projects' recordings, as they are laid out


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("select", [None, {"model": "claude*"}])
def test_table_files_written_a_batch_at_a_time_are_the_files_of_the_whole_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, workers: int, select: dict[str, str] | None
) -> None:
    """`export --format csv|parquet` (`dataset.write_csv` / `dataset.build`: batches of three
    exchanges here, on one or two workers) writes the bytes `export.tables` writes from the
    frames of every exchange at once, on the bundled captures and other projects' recordings;
    filtered, the rows of the exchanges `chosen` picks, threaded among all. (The batches' rows
    become Arrow without a frame; the whole frames', through pandas.)"""
    from analyzer import export

    monkeypatch.setattr(parallel, "BATCH_EXCHANGES", 3)
    for name, source in (("bundled", captures_as_cloned()), ("external", EXTERNAL)):
        make = dataset.write_csv if fmt == "csv" else dataset.build
        streamed = make(source, tmp_path / name / "streamed", workers=workers, select=select)
        whole = redacted_all(analyzer.load(source, progress=False))
        frames_of = frames.all_frames(whole)
        only = dataset.chosen(frames_of["exchanges"], **select) if select else None
        written = export.write_tables(frames_of, tmp_path / name / "whole", fmt, only=only)
        assert streamed.exchanges == (len(only) if only is not None else len(whole)) > 0
        relative = [p.relative_to(tmp_path / name / "streamed") for p in streamed.written]
        assert relative == [p.relative_to(tmp_path / name / "whole") for p in written]
        for mine, theirs in zip(streamed.written, written, strict=True):
            assert mine.read_bytes() == theirs.read_bytes(), (name, mine.name)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from(TABLES))
def test_rows_made_arrow_without_a_frame_equal_their_frame_made_arrow_through_pandas(
    data: st.DataObject, name: str
) -> None:
    """`dataset.arrow_table` (the rows of a batch) gives the Arrow table `table_values` and
    `pa.Table.from_pandas` give for their frame (`frames.frame_of`), for values of every type
    a wire can put in a column: text with a secret in it, numbers in a text column, lists,
    NaN, infinities, integers in a float column, naive and aware times."""
    import pyarrow as pa

    from analyzer.export import table_values

    secret = "sk-proj-" + "Q7b9" * 10
    anything = st.one_of(
        st.none(), st.text(max_size=12), st.just(f"key {secret} here"), st.integers(-(2**70), 2**70),
        st.floats(), st.booleans(), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )  # fmt: skip
    of_dtype = {
        "Int16": st.integers(-(2**15), 2**15 - 1), "Int32": st.integers(-(2**31), 2**31 - 1),
        "Int64": st.integers(-(2**63), 2**63 - 1), "Float64": st.floats() | st.integers(-(2**1000), 2**1000),
        "boolean": st.booleans(),
        "datetime": st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30))]),
                                 min_value=datetime(2, 1, 1), max_value=datetime(9998, 1, 1)),
    }  # fmt: skip
    rows = data.draw(st.integers(0, 6))
    columns = {
        column: data.draw(st.lists(st.none() | of_dtype.get(dtype, anything), min_size=rows, max_size=rows))
        for column, dtype in frames.dtypes_of(name).items()
    }
    schema = dataset.schema_of(name)
    direct = dataset.arrow_table(name, columns, schema)
    through_pandas = pa.Table.from_pandas(
        table_values(frames.frame_of(name, columns), "parquet"), schema=schema, preserve_index=False
    )
    assert direct.equals(through_pandas), (direct.to_pylist(), through_pandas.to_pylist())
    assert secret not in str(direct.to_pylist())


def test_a_rerun_reusing_a_share_read_in_pieces_numbers_its_exchanges_as_a_build_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A capture read in pieces (each numbering its exchanges from 1) is kept as its pieces'
    batches; reused by the next build, they are numbered on from piece to piece again."""
    from analyzer import ingest

    captures = tmp_path / "in"
    captures.mkdir()
    one_long_capture(captures / "long.jsonl", 3)
    monkeypatch.setattr(ingest, "PIECE_BYTES", (captures / "long.jsonl").stat().st_size // 5)
    monkeypatch.setattr(parallel, "BATCH_EXCHANGES", 7)
    first = dataset.build(captures, tmp_path / "out", workers=2)
    shutil.copy(captures_as_cloned() / "errors.jsonl", captures / "errors.jsonl")
    again = dataset.build(captures, tmp_path / "out", workers=2)
    scratch = dataset.build(captures, tmp_path / "scratch", workers=1)
    assert (first.read, again.read, again.reused) == (1, 1, 1)
    assert again.exchanges == scratch.exchanges == first.exchanges + 3
    files = sorted(path.relative_to(tmp_path / "scratch") for path in (tmp_path / "scratch").glob("*/date=*/*.parquet"))
    assert files == sorted(path.relative_to(tmp_path / "out") for path in (tmp_path / "out").glob("*/date=*/*.parquet"))
    for name in files:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "scratch" / name).read_bytes(), name


def test_a_csv_time_is_written_to_the_microsecond_whatever_rows_share_its_batch() -> None:
    """pandas writes a column of times with every fraction as long as the longest: a batch of
    whole seconds would be written otherwise than the same rows beside a time with a fraction.
    Every time is written to the microsecond, one format that readers parse whole."""
    from datetime import UTC, datetime

    from analyzer.export import table_values

    times = [datetime(2025, 10, 1, 12, 0, 0, tzinfo=UTC), None, datetime(2025, 10, 1, 12, 0, 1, 250000, tzinfo=UTC)]
    frame = pd.DataFrame({"started_at": pd.to_datetime(times, utc=True)})

    def lines(rows: pd.DataFrame) -> list[str]:
        return table_values(rows, "csv")[["started_at"]].to_csv(index=False, header=False).splitlines()

    together = lines(frame)
    assert together == ["2025-10-01 12:00:00.000000+00:00", '""', "2025-10-01 12:00:01.250000+00:00"]
    assert list(pd.to_datetime(pd.Series(together).where(lambda t: t != '""'), utc=True)) == list(frame["started_at"])
    assert [line for at in range(3) for line in lines(frame.iloc[at : at + 1])] == together
