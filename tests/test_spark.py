"""`analyzer.spark`: the four tables built as a Spark job on a real local session (`local[2]`,
bound to the loopback) equal the tables one process builds from the same files (redacted,
reconstructed, `frames.all_frames`), row for row, on the bundled captures, the real-provider
recordings and the external recordings in every format chatcap reads, and the dataset it writes
is byte for byte the one `chatcap export --format parquet` writes (`analyzer.dataset.build`, one
worker); what cannot be read is reported as `analyzer.load` and the export report it. One Spark
session serves every test (its JVM takes about ten seconds to start)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from bundled import BUNDLED, CAPTURES, REAL_CORPUS, captures_as_cloned

import analyzer
from analyzer import dataset, frames
from analyzer.errors import LoadError
from analyzer.export.redaction import redacted
from analyzer.ingest import Problem

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = ROOT / "tests" / "data" / "external"
# The real corpus's streams, by the protocol their names say, at that protocol's path (as
# tests/data/make_frames_golden.py gathers them).
PATHS = {
    "anthropic_messages": "https://provider/v1/messages",
    "openai_responses": "https://provider/v1/responses",
    "gemini": "https://provider/v1beta/models/gemini:streamGenerateContent?alt=sse",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """A local Spark session on two cores, its driver on the loopback, no web UI, workers
    running this interpreter (which has chatcap)."""
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("chatcap-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def wrap() -> ModuleType:
    """tests/data/external/wrap.py: a recorded exchange written as another tool writes it."""
    return _module("external_wrap", EXTERNAL / "wrap.py")


@pytest.fixture(scope="module")
def real_recordings(tmp_path_factory: pytest.TempPathFactory, wrap: ModuleType) -> Path:
    """Each stream of the real-provider corpus with its recorded request (where there is one), at
    its protocol's path, as a capture line of its own file."""
    out = tmp_path_factory.mktemp("real")
    for stream in sorted(REAL_CORPUS.glob("*.sse")):
        request_file = stream.with_suffix(".request.json")
        meta = {
            "request": {
                "method": "POST",
                "url": PATHS.get(stream.stem.split("__")[1], "https://provider/v1/chat/completions"),
                "headers": {"content-type": "application/json"},
                "body": request_file.read_text(encoding="utf-8") if request_file.exists() else None,
            },
            "response": {"status": 200, "headers": {"content-type": "text/event-stream"}},
        }
        (out / f"{stream.stem}.jsonl").write_bytes(wrap.jsonl(meta, stream.read_bytes()))
    return out


@pytest.fixture(scope="module")
def external_recordings(tmp_path_factory: pytest.TempPathFactory, wrap: ModuleType) -> Path:
    """Every external recording in every format chatcap reads (HAR, capture lines, JSON dumps, raw
    HTTP, bare bodies and mitmproxy flows), a directory per format."""
    out = tmp_path_factory.mktemp("external")
    wrap.write_all(out)
    return out


def single_process(paths: str | list[str]) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """The tables one process builds: `analyzer.load`, each exchange redacted and reconstructed
    (one that fails is a problem), then `frames.all_frames`."""
    found = analyzer.load(paths, progress=False)
    problems = list(found.problems)
    kept = []
    for exchange in map(redacted, found):
        try:
            exchange.reconstruct()
        except Exception as exc:
            problems.append(Problem(exchange.id, f"could not reconstruct: {type(exc).__name__}: {exc}"))
        else:
            kept.append(exchange)
    return frames.all_frames(kept), problems


def assert_same_tables(got: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    assert list(got) == list(frames.TABLES)
    for name in frames.TABLES:
        pd.testing.assert_frame_equal(got[name], expected[name], obj=name)


def partitions(directory: Path) -> dict[str, bytes]:
    """A dataset's Parquet files (`<table>/date=…/part-0.parquet`), by path, with their bytes."""
    return {path.relative_to(directory).as_posix(): path.read_bytes() for path in directory.glob("*/*/*.parquet")}


def assert_same_as_export(spark: object, paths: str | list[str], out: Path) -> None:
    """The job's tables equal one process's, its problems are theirs, and the dataset it writes
    into `out`/spark is the one chatcap export writes into `out`/export."""
    from analyzer import spark as job

    built = job.tables(spark, paths, out=out / "spark")
    expected, problems = single_process(paths)
    assert built.exchanges == len(expected["exchanges"]) > 0
    assert_same_tables(built.frames, expected)
    assert built.problems == problems
    exported = dataset.build(paths, out / "export", workers=1, progress=False)
    assert exported.problems == problems
    written = partitions(out / "export")
    assert {name.split("/")[0] for name in written} == set(frames.TABLES)
    assert partitions(out / "spark") == written


def test_tables_and_dataset_equal_the_single_process_ones_on_the_bundled_captures(
    spark: object, tmp_path: Path
) -> None:
    assert_same_as_export(spark, str(captures_as_cloned()), tmp_path)


def test_tables_and_dataset_equal_the_single_process_ones_on_the_real_provider_recordings(
    spark: object, real_recordings: Path, tmp_path: Path
) -> None:
    assert len(list(real_recordings.iterdir())) == len(list(REAL_CORPUS.glob("*.sse")))
    assert_same_as_export(spark, str(real_recordings), tmp_path)


def test_tables_and_dataset_equal_the_single_process_ones_on_the_external_recordings_in_every_format(
    spark: object, external_recordings: Path, tmp_path: Path
) -> None:
    formats = {path.name for path in external_recordings.iterdir()}
    assert formats >= {"har", "jsonl", "dump", "http", "body"}
    assert_same_as_export(spark, str(external_recordings), tmp_path)


def test_captures_given_as_file_uris_are_read_through_spark_and_make_the_same_tables(spark: object) -> None:
    """A URI is read by Spark's binaryFile source (as s3a:// or hdfs:// would be); the exchanges'
    source is the file's URI, every other cell is what the plain paths give."""
    from analyzer import spark as job

    captures = captures_as_cloned()
    built = job.tables(spark, captures.as_uri())
    expected, _ = single_process(str(captures))
    sources = expected["exchanges"]["source"].map(lambda source: "file:" + source).astype("string")
    expected["exchanges"]["source"] = sources
    assert [file.label for file in built.files] == list(BUNDLED)
    assert_same_tables(built.frames, expected)


def test_a_file_that_cannot_be_read_is_reported_and_the_others_make_the_tables(spark: object, tmp_path: Path) -> None:
    """Beside two bundled captures: a file that is no capture, one with a line that is not JSON,
    a gzip file cut short after its first exchanges (kept), and a path that names nothing."""
    import gzip

    from analyzer import spark as job

    captures = tmp_path / "captures"
    captures.mkdir()
    (captures / "notes.txt").write_text("nothing captured here\n")
    shutil.copyfile(CAPTURES / "tool_calls.jsonl", captures / "tool_calls.jsonl")
    lines = (CAPTURES / "branching_conversation.jsonl").read_bytes().splitlines(keepends=True)
    (captures / "bad_line.jsonl").write_bytes(b"".join([lines[0], b"{not json\n", *lines[1:]]))
    whole = gzip.compress((CAPTURES / "errors.jsonl").read_bytes())
    (captures / "cut.jsonl.gz").write_bytes(whole[: len(whole) * 2 // 3])
    paths = [str(captures), str(tmp_path / "missing.jsonl")]

    built = job.tables(spark, paths)
    expected, problems = single_process(paths)
    reasons = {problem.source: problem.reason for problem in problems}
    assert "no such file or directory" in reasons[str(tmp_path / "missing.jsonl")]
    assert "no exchanges found" in reasons[str(captures / "notes.txt")]
    assert any(problem.position == "line 2" for problem in problems)
    assert built.problems == problems
    assert_same_tables(built.frames, expected)
    assert set(built.frames["exchanges"]["source"]) == {
        str(captures / name) for name in ("tool_calls.jsonl", "bad_line.jsonl", "cut.jsonl.gz")
    }
    assert dataset.build(paths, tmp_path / "export", workers=1, progress=False).problems == problems


def test_a_single_file_that_cannot_be_read_raises_as_load_does(spark: object, tmp_path: Path) -> None:
    from analyzer import spark as job

    notes = tmp_path / "notes.txt"
    notes.write_text("nothing captured here\n")
    with pytest.raises(LoadError) as expected:
        analyzer.load(str(notes), progress=False)
    with pytest.raises(LoadError) as got:
        job.tables(spark, str(notes))
    assert (got.value.source, got.value.reason) == (expected.value.source, expected.value.reason)


def test_uris_that_cannot_be_read_are_reported_as_paths_are(spark: object, tmp_path: Path) -> None:
    """Through Spark's binaryFile source: a single file URI that is no capture raises (named by
    its URI), a directory URI whose only file is in its own directory of that name does not, and
    a URI that names nothing is a problem in a list, an error alone."""
    from analyzer import spark as job

    notes = tmp_path / "notes.txt"
    notes.write_text("nothing captured here\n")
    with pytest.raises(LoadError) as alone:
        job.tables(spark, notes.as_uri())
    assert (alone.value.source, alone.value.reason.split(":")[0]) == (f"file:{notes}", "no exchanges found")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes").write_text("nothing captured here\n")
    in_directory = job.tables(spark, (tmp_path / "notes").as_uri())
    assert [(problem.source, problem.reason.split(":")[0]) for problem in in_directory.problems] == [
        (f"file:{tmp_path / 'notes' / 'notes'}", "no exchanges found")
    ]
    missing = (tmp_path / "missing").as_uri()
    listed = job.tables(spark, [missing, str(captures_as_cloned() / "errors.jsonl")])
    assert [(problem.source, problem.reason) for problem in listed.problems] == [(missing, "no such file or directory")]
    assert listed.exchanges > 0
    with pytest.raises(LoadError, match="no such file or directory"):
        job.tables(spark, missing)


def test_the_command_says_what_it_skipped_and_fails_when_nothing_is_left(
    spark: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m analyzer.spark` on the session already running (left running): a directory
    whose only file is no capture is one `skipped` line and an error, and no tables."""
    from analyzer import spark as job

    (tmp_path / "captures").mkdir()
    (tmp_path / "captures" / "notes.txt").write_text("nothing captured here\n")
    status = job.main([str(tmp_path / "captures"), "--out", str(tmp_path / "tables")])
    err = capsys.readouterr().err.splitlines()
    assert status == 1
    assert err[0].startswith(f"skipped {tmp_path / 'captures' / 'notes.txt'}: no exchanges found")
    assert err[-1] == f"error: no exchanges found in {tmp_path / 'captures'}"
    assert not (tmp_path / "tables").exists()
    assert not spark.sparkContext._jsc.sc().isStopped()  # type: ignore[attr-defined]


@pytest.mark.parametrize("as_uri", [False, True], ids=["directory", "uri"])
def test_a_rerun_leaves_only_its_own_partitions(spark: object, tmp_path: Path, as_uri: bool) -> None:
    """Written again into the same place (a directory, or a file: URI copied to by Hadoop), the
    dataset holds this run's partitions alone: one of a day no longer in the captures is gone."""
    from analyzer import spark as job

    captures = str(captures_as_cloned())
    stale = tmp_path / "spark" / "exchanges" / "date=1999-01-01" / "part-0.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an earlier run's rows")
    job.tables(spark, captures, out=(tmp_path / "spark").as_uri() if as_uri else tmp_path / "spark")
    dataset.build(captures, tmp_path / "export", workers=1, progress=False)
    assert not stale.exists()
    assert partitions(tmp_path / "spark") == partitions(tmp_path / "export")


# runpy says so because the tests imported the module before; `python -m` in a new process does not.
@pytest.mark.filterwarnings("ignore:'analyzer.spark' found in sys.modules:RuntimeWarning")
def test_python_m_analyzer_spark_writes_the_dataset_export_writes(
    spark: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry point as `python -m analyzer.spark` (and spark-submit) runs it, as __main__, on
    the session already running: the tasks pickle what they return under the module's own name."""
    import runpy

    captures = str(captures_as_cloned())
    monkeypatch.setattr(sys, "argv", ["analyzer.spark", captures, "--out", str(tmp_path / "spark")])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("analyzer.spark", run_name="__main__", alter_sys=True)
    assert exited.value.code == 0
    dataset.build(captures, tmp_path / "export", workers=1, progress=False)
    assert partitions(tmp_path / "spark") == partitions(tmp_path / "export")


def test_a_file_given_twice_is_read_twice_as_load_reads_it(spark: object) -> None:
    """A directory and a file in it, or one URI twice: each reading is its own exchanges, the
    second labelled by its path (or URI), as the loader makes labels unique."""
    from analyzer import spark as job

    captures = captures_as_cloned()
    paths = [str(captures), str(captures / "errors.jsonl")]
    expected, problems = single_process(paths)
    built = job.tables(spark, paths)
    assert_same_tables(built.frames, expected)
    assert built.problems == problems
    once, _ = single_process(str(captures / "errors.jsonl"))
    twice = job.tables(spark, [(captures / "errors.jsonl").as_uri()] * 2)
    uri = f"file:{captures / 'errors.jsonl'}"
    assert list(twice.frames["exchanges"]["id"]) == [
        *once["exchanges"]["id"],
        *(exchange.replace("errors.jsonl#", f"{uri}#") for exchange in once["exchanges"]["id"]),
    ]


def test_the_command_shows_control_characters_of_what_it_reports_escaped(
    spark: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file name (or a reason quoting captured text) with an escape sequence or a bidirectional
    override is printed with them as escapes, so the terminal does not act on them."""
    from analyzer import spark as job

    (tmp_path / "captures").mkdir()
    shutil.copyfile(CAPTURES / "errors.jsonl", tmp_path / "captures" / "errors.jsonl")
    (tmp_path / "captures" / "\x1b]0;owned\x07\u202enotes.txt").write_text("nothing captured here\n")
    assert job.main([str(tmp_path / "captures"), "--out", str(tmp_path / "tables")]) == 0
    err = capsys.readouterr().err
    assert "\\x1b]0;owned\\x07\\u202enotes.txt: no exchanges found" in err
    assert not any(character in err for character in "\x1b\x07\u202e")
