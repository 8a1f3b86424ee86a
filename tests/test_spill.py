"""analyzer.spill: values kept in an unnamed temporary file, and in memory when the file cannot
be written; and `chatcap summary --group-by conversation`, which keeps the histories' assistant
messages there, under a real file size limit (RLIMIT_FSIZE: every write past it fails)."""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from bundled import ROOT, captures_as_cloned
from child_memory import distinct_histories
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.spill import Spill

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(), VALUES, max_size=30))
def test_every_value_reads_back_as_it_was_put(values: dict[int, object]) -> None:
    with Spill() as kept:
        for key, value in values.items():
            kept[key] = value
        assert len(kept) == len(values) and set(kept) == set(values)
        assert {key: kept[key] for key in values} == values
        assert kept.trouble is None


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(VALUES, max_size=8), max_size=6),
    st.booleans(),
    st.dictionaries(st.integers(), VALUES, max_size=5),
)
def test_every_value_of_every_list_reads_back_alone_in_a_file_or_in_memory(
    lists: list[list[object]], in_file: bool, values: dict[int, object]
) -> None:
    """Lists (`extend`) beside single values, in the file or (`file=False`) in memory."""
    with Spill(file=in_file) as kept:
        for n, found in enumerate(lists):
            kept.extend(("list", n), found)
            for key, value in values.items():
                kept[n, key] = value
        for n, found in enumerate(lists):
            assert [kept.item(("list", n), at) for at in range(len(found))] == found
            assert {key: kept[n, key] for key in values} == values
        assert kept.trouble is None and (kept._file is not None) is (in_file and bool(lists))


def test_the_file_has_no_name_in_the_temporary_directory_and_only_this_user_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    kept = Spill()
    kept["a"] = "text " * 1000
    assert list(tmp_path.iterdir()) == []
    assert stat.S_IMODE(os.fstat(kept._file.fileno()).st_mode) & 0o077 == 0
    kept.close()


def test_a_missing_key_is_a_key_error() -> None:
    with Spill() as kept, pytest.raises(KeyError):
        kept[1] = "one"
        kept[2]


def _limited(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_past_a_file_size_limit_values_are_kept_in_memory_and_the_trouble_said() -> None:
    """Written in a child process whose files may not grow past 5,000 bytes: the first values (and
    a list) go to the file, the rest (and a later list) to memory, every one reads back, and
    one `Unspilled` warning says so."""
    script = """
from analyzer.spill import Spill
import warnings
kept = Spill()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    kept.extend("first", ["item"] * 10)
    for n in range(100):
        kept[n] = f"value {n} " * 20
    kept.extend("later", [f"item {n} " * 20 for n in range(100)])
assert [kept[n] for n in range(100)] == [f"value {n} " * 20 for n in range(100)]
assert [kept.item("first", n) for n in range(10)] == ["item"] * 10 and "first" in kept._lists
assert [kept.item("later", n) for n in range(100)] == [f"item {n} " * 20 for n in range(100)]
assert 0 < len(kept._where) < 100, len(kept._where)
assert [w.category.__name__ for w in caught] == ["Unspilled"], caught
print(kept.trouble)
"""
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT, preexec_fn=lambda: _limited(5000)
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("File too large"), run.stdout


def test_summary_by_conversation_past_a_file_size_limit_says_so_and_prints_the_same(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "analyzer", "summary", "--group-by", "conversation", str(captures_as_cloned())]
    free = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    limited = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, preexec_fn=lambda: _limited(1))  # fmt: skip
    assert free.returncode == limited.returncode == 0, limited.stderr
    assert limited.stdout == free.stdout
    assert "note: could not write a temporary file: File too large" in limited.stderr
    assert "note:" not in free.stderr and "Traceback" not in limited.stderr


def test_an_export_past_a_file_size_limit_for_its_temporary_file_says_so_and_writes_the_same(tmp_path: Path) -> None:
    """Markdown transcripts of 100 exchanges, each under 200 kB, while the assistant messages the
    threading keeps in its temporary file pass it: the same files, and a note."""
    capture = distinct_histories(tmp_path / "chats.jsonl", 100)
    command = [sys.executable, "-m", "analyzer", "export", str(capture), "--format", "markdown", "--out"]
    free = subprocess.run([*command, str(tmp_path / "free")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    limited = subprocess.run([*command, str(tmp_path / "limited")], capture_output=True, text=True, timeout=120,
                             cwd=ROOT, preexec_fn=lambda: _limited(200_000))  # fmt: skip
    assert free.returncode == limited.returncode == 0, limited.stderr
    assert "note: could not write a temporary file: File too large" in limited.stderr
    assert "note:" not in free.stderr and "Traceback" not in limited.stderr
    files = sorted(p.name for p in (tmp_path / "free").iterdir())
    assert len(files) == 100 and files == sorted(p.name for p in (tmp_path / "limited").iterdir())
    assert all((tmp_path / "free" / name).read_bytes() == (tmp_path / "limited" / name).read_bytes() for name in files)
