"""Every file chatcap writes is created 0600 and every directory it makes 0700, whatever the
umask; a symlink, FIFO or someone else's file planted at a path it would write is refused
with one line naming the path, the link's target is left untouched, and the rest of the
export still happens (DESIGN.md, "Security defaults"). Run through the real CLI."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "captures" / "four_protocols.jsonl"

# Every writer, as the CLI runs it: the arguments after the capture, and the files it writes
# under the output path (the transcripts' names come from the conversations' titles).
WRITERS = {
    "markdown": (["export", "--format", "markdown"], None),
    "html": (["export", "--format", "html"], "index.html"),
    "jsonl": (["export", "--format", "jsonl"], "conversations.jsonl"),
    "csv": (["export", "--format", "csv"], "exchanges.csv"),
    "parquet": (["export", "--format", "parquet"], "exchanges"),  # the table's directory
    "convert-har": (["convert", "--to", "har"], "chatcap.har"),
    "convert-jsonl": (["convert", "--to", "jsonl"], "chatcap.jsonl"),
}
MARKDOWN_FILE = "c2-how-warm-is-the-sea-there.md"
BAIT = b"the link's target, which must stay as it is\n"


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """The common umask (022), under which a plain open() makes files world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def run(writer: str, out: Path, capture: Path = CAPTURE) -> tuple[int, str, str]:
    args, single = WRITERS[writer]
    target = out / single if args[0] == "convert" and single else out
    result = CliRunner().invoke(main, [args[0], str(capture), *args[1:], "--out", str(target)])
    return result.exit_code, result.stdout, result.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("writer", WRITERS)
def test_every_writer_creates_files_0600_and_directories_0700(writer: str, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper"
    code, _, stderr = run(writer, out)
    assert code == 0, stderr
    files = [p for p in (tmp_path / "new").rglob("*") if p.is_file()]
    directories = [tmp_path / "new", *[p for p in (tmp_path / "new").rglob("*") if p.is_dir()]]
    assert files
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o600) for p in files}
    assert {str(p): oct(mode(p)) for p in directories} == {str(p): oct(0o700) for p in directories}


def test_convert_of_a_private_capture_stays_private(tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(CAPTURE.read_bytes())
    capture.chmod(0o600)
    code, _, stderr = run("convert-jsonl", tmp_path / "out", capture)
    assert code == 0, stderr
    assert mode(tmp_path / "out" / "chatcap.jsonl") == 0o600


@pytest.mark.parametrize("writer", WRITERS)
def test_a_planted_symlink_is_refused_in_one_line_and_its_target_untouched(writer: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    bait = tmp_path / "bait.txt"
    bait.write_bytes(BAIT)
    bait.chmod(0o644)
    name = WRITERS[writer][1] or MARKDOWN_FILE
    (out / name).symlink_to(bait)
    code, _, stderr = run(writer, out)
    assert code == 1
    assert bait.read_bytes() == BAIT and mode(bait) == 0o644
    assert (out / name).is_symlink()
    (line,) = stderr.splitlines()
    assert str(out / name) in line and "symbolic link" in line and "Traceback" not in stderr


@pytest.mark.parametrize("writer", ["markdown", "html", "csv"])
def test_the_rest_of_a_multi_file_export_is_written_past_a_refused_path(writer: str, tmp_path: Path) -> None:
    code, _, stderr = run(writer, tmp_path / "clean")
    assert code == 0, stderr
    expected = sorted(p.name for p in (tmp_path / "clean").iterdir())
    out = tmp_path / "out"
    out.mkdir()
    name = WRITERS[writer][1] or MARKDOWN_FILE
    (out / name).symlink_to(tmp_path / "bait.txt")
    code, _, stderr = run(writer, out)
    assert code == 1 and len(stderr.splitlines()) == 1
    written = sorted(p.name for p in out.iterdir() if not p.is_symlink())
    assert written == [n for n in expected if n != name] and len(written) >= 3
    assert not (tmp_path / "bait.txt").exists()  # the dangling link was not followed to create it


def test_an_output_directory_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").symlink_to(elsewhere)
    code, _, stderr = run("markdown", tmp_path / "out")
    assert code == 1 and list(elsewhere.iterdir()) == []
    (line,) = stderr.splitlines()
    assert str(tmp_path / "out") in line and "symbolic link" in line


def test_a_fifo_at_the_target_is_refused_without_waiting_for_a_reader(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "chatcap.har")
    # A process of its own: writing into a FIFO nobody reads would wait for ever.
    command = [
        sys.executable,
        "-m",
        "analyzer",
        "convert",
        str(CAPTURE),
        "--to",
        "har",
        "--out",
        str(out / "chatcap.har"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "not a regular file" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_an_existing_file_of_ours_is_rewritten_and_made_0600(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "conversations.jsonl").write_bytes(b"old contents, longer than nothing\n" * 1000)
    (out / "conversations.jsonl").chmod(0o644)
    code, _, stderr = run("jsonl", out)
    assert code == 0, stderr
    data = (out / "conversations.jsonl").read_bytes()
    assert b"old contents" not in data and data.count(b"\n") >= 3
    assert mode(out / "conversations.jsonl") == 0o600


def test_a_hard_link_to_another_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    bait = tmp_path / "bait.txt"
    bait.write_bytes(BAIT)
    os.link(bait, out / "index.html")
    code, _, stderr = run("html", out)
    assert code == 1 and "hard links" in stderr and bait.read_bytes() == BAIT


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file of another user needs root")
def test_another_users_file_at_the_target_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "exchanges.csv").write_bytes(BAIT)
    os.chown(out / "exchanges.csv", 65534, 65534)
    code, _, stderr = run("csv", out)
    assert code == 1 and "belongs to another user" in stderr
    assert (out / "exchanges.csv").read_bytes() == BAIT


def test_library_writers_frames_to_parquet_and_charts_save_write_0600(tmp_path: Path) -> None:
    import analyzer
    from analyzer import charts, frames

    exchanges = analyzer.load(CAPTURE)
    written = [
        *frames.to_parquet(exchanges, tmp_path / "frames"),
        charts.save(charts.latency(frames.exchanges(exchanges)), tmp_path / "c.svg"),
    ]
    assert {p.name: oct(mode(p)) for p in written} == {p.name: oct(0o600) for p in written}
    assert mode(tmp_path / "frames") == 0o700


def test_a_symlink_planted_as_a_datasets_manifest_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    """The manifest is put in place whole (written beside it, then renamed over it), never
    through a link someone put in its place between two nightly runs."""
    out = tmp_path / "out"
    code, _, stderr = run("parquet", out)
    assert code == 0, stderr
    bait = tmp_path / "bait.txt"
    bait.write_bytes(BAIT)
    manifest = out / "_chatcap" / "manifest.json"
    manifest.unlink()
    manifest.symlink_to(bait)
    code, _, stderr = run("parquet", out)
    assert code == 1 and bait.read_bytes() == BAIT and manifest.is_symlink()
    (line,) = stderr.splitlines()
    assert str(manifest) in line and "symbolic link" in line
    assert not list((out / "_chatcap").glob(".*.partial"))
