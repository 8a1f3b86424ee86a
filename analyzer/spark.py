"""The four tables as a Spark job: capture files read and reconstructed on the executors (packed
into tasks as Spark packs a file source), with chatcap's own code; the conversations threaded on
the driver.

    from pyspark.sql import SparkSession
    import analyzer.spark

    spark = SparkSession.builder.getOrCreate()
    built = analyzer.spark.tables(spark, ["captures/"], out="tables/")
    built.frames["exchanges"]      # the same frames as analyzer.frames.all_frames, redacted
    built.problems                 # what could not be read, as chatcap export reports it

    python -m analyzer.spark captures/ --out tables/           # the same from the command line

Each task loads its files (`analyzer.ingest.file_exchanges`), redacts every exchange as the
exports do (`export.redaction.redacted`), reconstructs it and returns each file's `frames.parts`
pickled in a binary column (`mapInArrow`); the driver collects the parts in the files' order and `frames.assemble`s
them, since threading the conversations is one walk in time order over every exchange.

Where the executors read: a plain path is opened by the executor itself, streamed a record at a
time, so it must be visible to every executor (the same path on a shared filesystem; any path in
local mode); a URI with a scheme (`s3a://`, `hdfs://`, `abfss://`, `file:/`) is listed and read by
Spark's `binaryFile` source, from any filesystem Hadoop reaches, each file whole (up to 2 GB) in
its task's memory. `out` is a directory, or a URI the dataset is copied to once written.
docs/spark.md says how to run it on a cluster.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from analyzer import frames
from analyzer.errors import LoadError
from analyzer.ingest import Problem, _unique, sources
from analyzer.parallel import read_file

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import SparkSession

    from analyzer.cost import Prices

__all__ = ["Built", "CaptureFile", "capture_files", "main", "tables"]

# A URI with a scheme, as Hadoop names files (`file:/data/x.jsonl`, `s3a://bucket/x.jsonl`); a
# Windows drive letter (`C:\`) is one letter and stays a path.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")
# What each task returns, a row per file: its place in the job, and a `_FileResult` pickled.
_RESULT_SCHEMA = "file long, result binary"
# Files are given to tasks as Spark's file sources split them (spark.sql.files.maxPartitionBytes and
# openCostInBytes, at their defaults): small files share a task, a large one has its own.
_TASK_BYTES = 128 * 1024 * 1024
_OPEN_COST_BYTES = 4 * 1024 * 1024


@dataclass(slots=True, frozen=True)
class CaptureFile:
    """One capture file of the job: `source` is where the executors read it (a path, or a URI
    read through `binaryFile`) and its exchanges' source; `label` names them `label#1`, …"""

    source: str
    label: str

    @property
    def is_uri(self) -> bool:
        return _URI.match(self.source) is not None


@dataclass(slots=True)
class Built:
    """What the job made: the four frames (with no rows when no exchange was found), what could not
    be loaded or reconstructed, and the files read."""

    frames: dict[str, pd.DataFrame]
    problems: list[Problem] = field(default_factory=list)
    files: list[CaptureFile] = field(default_factory=list)

    @property
    def exchanges(self) -> int:
        return len(self.frames["exchanges"])


def tables(
    spark: SparkSession,
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    prices: Prices | None = None,
) -> Built:
    """The four tables of the captures at `paths` (files, directories, glob patterns or URIs),
    built as a Spark job; with `out`, written there as `chatcap export --format parquet` writes
    them. As `analyzer.load`, a single path that cannot be read raises `LoadError`; in a
    directory or list, a file that cannot be read is a problem and the others make the tables."""
    found, problems, alone = capture_files(spark, paths)
    results = _collected(spark, found, prices) if found else []
    failure = results[0].failure if alone and results else None
    if failure is not None:  # a single file that could not be read: raised, as load raises it
        raise LoadError(failure.source, failure.reason, failure.position)
    for result in results:
        problems += [*result.problems, *([result.failure] if result.failure else [])]
    batches = [parts for result in results for parts in result.parts]
    built = Built(frames.assemble(batches), problems, found)
    if out is not None and batches:
        _write(spark, built.frames, os.fspath(out))
    return built


# -- the files, listed on the driver ----------------------------------------------------------------


def capture_files(
    spark: SparkSession, paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
) -> tuple[list[CaptureFile], list[Problem], bool]:
    """The files a job reads, in the order `analyzer.stream` reads them and with its labels (a
    file's path below the directory given, or its name); the paths that name nothing, as
    problems; and whether `paths` is a single file (whose failure is raised, as `load` raises it).
    Plain paths are listed here (`analyzer.ingest.sources`), URIs by Spark (`binaryFile`, its
    hidden files left out)."""
    single = isinstance(paths, str | os.PathLike)
    given = [os.fspath(path) for path in ([paths] if single else paths)]  # type: ignore[union-attr]
    found: list[CaptureFile] = []
    problems: list[Problem] = []
    alone = False
    for text in given:
        if _URI.match(text):
            try:
                files, is_file = _listed(spark, text)
            except LoadError as exc:
                if single:
                    raise
                problems.append(Problem(exc.source, exc.reason))
                continue
            found += files
            alone = single and is_file
            continue
        files, alone, missing = sources(text if single else [text])
        found += [CaptureFile(str(file), label) for file, label in files]
        problems += missing
    # Labels made unique across the paths given, by the loader's own rule (a label met again: the file's path).
    unique = _unique([(file.source, file.label) for file in found])  # type: ignore[arg-type]
    return [CaptureFile(str(source), label) for source, label in unique], problems, alone


def _listed(spark: SparkSession, root: str) -> tuple[list[CaptureFile], bool]:
    """The files under the URI `root`, as Spark's file index lists them, in the order a directory
    is read, and whether `root` names a file. Raises `LoadError` when it cannot be listed."""
    from pyspark.errors import AnalysisException

    try:
        rows = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(root).select("path").collect()
    except AnalysisException as exc:
        found = exc.getCondition() != "PATH_NOT_FOUND"
        raise LoadError(root, str(exc).splitlines()[0] if found else "no such file or directory") from None
    base = PurePosixPath(urlsplit(root).path)
    files = []
    is_file = False
    for row in rows:
        where = PurePosixPath(urlsplit(row.path).path)
        is_file = is_file or where == base
        label = str(where.relative_to(base)) if where != base and where.is_relative_to(base) else where.name
        if not where.name.startswith(".") and where.name != "README.md":  # as a directory is read
            files.append(CaptureFile(row.path, label))
    return sorted(files, key=lambda file: PurePosixPath(file.label).parts), is_file


def _name(uri: str) -> str:
    return PurePosixPath(urlsplit(uri).path).name


# -- the tasks, on the executors --------------------------------------------------------------------


@dataclass(slots=True)
class _FileResult:
    """What a task makes of one file: its parts (a batch or more; none when it gave no
    exchange), its problems (a record skipped, an exchange that did not reconstruct) and what
    stopped its reading."""

    parts: list[frames.Parts]
    problems: list[Problem]
    failure: Problem | None


def _collected(spark: SparkSession, found: list[CaptureFile], prices: Prices | None) -> list[_FileResult]:
    """Each file's result, in the files' order (a file given twice is read twice, as `load` reads it)."""
    paths = [n for n, file in enumerate(found) if not file.is_uri]
    uris: dict[str, list[int]] = {}  # each URI, with where it is in `found`
    for n, file in enumerate(found):
        if file.is_uri:
            uris.setdefault(file.source, []).append(n)
    results: list[Any] = []
    if paths:  # one row and one partition per task: each task opens its files
        packed = _packed([found[n].source for n in paths], spark.sparkContext.defaultParallelism)
        work = [[paths[n] for n in task] for task in packed]
        tasks = spark.range(0, len(work), 1, len(work))
        results += tasks.mapInArrow(_by_path(found, work, prices), _RESULT_SCHEMA).collect()
    if uris:
        content = spark.read.format("binaryFile").load(list(uris)).select("path", "content")
        results += content.mapInArrow(_by_content(found, uris, prices), _RESULT_SCHEMA).collect()
    return [pickle.loads(row.result) for row in sorted(results, key=lambda row: row.file)]


def _packed(files: list[str], parallelism: int) -> list[list[int]]:
    """`files` (by index) in tasks, as Spark packs the files of a file source into partitions: the
    largest first, each task filled up to a size that spreads them over `parallelism` tasks (at
    most `_TASK_BYTES`), each file counting `_OPEN_COST_BYTES` more than its size."""
    sizes = [_size(file) for file in files]
    total = sum(sizes) + _OPEN_COST_BYTES * len(files)
    most = min(_TASK_BYTES, max(_OPEN_COST_BYTES, total // max(parallelism, 1)))
    tasks: list[list[int]] = []
    filled = 0
    for n in sorted(range(len(files)), key=lambda n: -sizes[n]):
        if not tasks or filled + sizes[n] > most:
            tasks.append([])
            filled = 0
        tasks[-1].append(n)
        filled += sizes[n] + _OPEN_COST_BYTES
    return tasks


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _by_path(found: list[CaptureFile], work: list[list[int]], prices: Prices | None) -> Any:
    """The task over rows of `spark.range`: row n reads the files `work[n]` (indexes into `found`)
    where they lie."""

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for n in batch.column(0).to_pylist():
                for number in work[n]:
                    yield _result(number, _file_result(found[number], None, prices))

    return task


def _by_content(found: list[CaptureFile], uris: dict[str, list[int]], prices: Prices | None) -> Any:
    """The task over `binaryFile` rows (path, content): each file read from its bytes, once for
    each place `uris` gives it in `found`."""

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for row, path in enumerate(batch.column(0).to_pylist()):
                content = batch.column(1)[row].as_py()
                for number in uris[path]:
                    yield _result(number, _file_result(found[number], content, prices))

    return task


def _result(number: int, result: _FileResult) -> pa.RecordBatch:
    import pyarrow as pa

    return pa.RecordBatch.from_pydict(
        {"file": [number], "result": [pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)]},
        schema=pa.schema([("file", pa.int64()), ("result", pa.binary())]),
    )


def _file_result(file: CaptureFile, content: bytes | None, prices: Prices | None) -> _FileResult:
    """What `chatcap export` makes of one file read as a directory's file is read
    (`parallel.read_file`: each exchange loaded, named `label#n`, redacted and reconstructed,
    one at a time; the problems in the order met, and what stopped the reading, if anything
    did, the exchanges before it kept). `content`: the file's bytes, read from a copy."""
    with _readable(file, content) as path:
        done = read_file(Path(path), file.label, source=file.source, redact=True, prices=prices)
    return _FileResult(done.parts, done.problems, done.failure)


@contextlib.contextmanager
def _readable(file: CaptureFile, content: bytes | None) -> Iterator[str]:
    """A path the loader reads `file` from: its own, or a temporary copy of `content` under its name."""
    if content is None:
        yield file.source
        return
    with tempfile.TemporaryDirectory(prefix="chatcap-spark-") as scratch:
        path = Path(scratch) / (_name(file.source) or "capture")
        path.write_bytes(content)
        yield str(path)


# -- writing ----------------------------------------------------------------------------------------


def _write(spark: SparkSession, built: dict[str, pd.DataFrame], out: str) -> None:
    """The tables written as `chatcap export --format parquet` writes its dataset (analyzer.dataset);
    to a URI (`s3a://…`), written here first and then copied there by Hadoop's filesystem."""
    from analyzer.dataset import write

    if not _URI.match(out):
        _, partitions = write(built, out)
        for name in built:  # partitions of an earlier run that this one has no rows for
            for stale in sorted(Path(out, name).glob("date=*/*.parquet")):
                # a linked directory is not ours to empty (write refuses to write through one too)
                if stale.relative_to(out).as_posix() not in partitions and not stale.parent.is_symlink():
                    stale.unlink()
                    with contextlib.suppress(OSError):
                        stale.parent.rmdir()
        return
    with tempfile.TemporaryDirectory(prefix="chatcap-spark-out-") as scratch:
        write(built, scratch)
        hadoop = spark._jvm.org.apache.hadoop.fs  # type: ignore[attr-defined]
        target = hadoop.Path(out)
        filesystem = target.getFileSystem(spark._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
        filesystem.mkdirs(target)
        for table in sorted(os.listdir(scratch)):  # each table's directory replaced whole
            filesystem.delete(hadoop.Path(target, table), True)
            filesystem.copyFromLocalFile(False, True, hadoop.Path(Path(scratch, table).as_uri()), target)


# -- the command line ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m analyzer.spark CAPTURES... --out DIR`, or the same under spark-submit."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m analyzer.spark",
        description="Build chatcap's four tables (exchanges, chunks, messages, tool_calls) as a Spark job.",
    )
    parser.add_argument("captures", nargs="+", help="capture files, directories, glob patterns or URIs (s3a://…)")
    parser.add_argument("--out", required=True, help="where the tables are written: a directory, or a URI (s3a://…)")
    parser.add_argument("--master", help="Spark master when not run by spark-submit (default: local[*])")
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("chatcap")
    if args.master:
        builder = builder.master(args.master)
    if "PYSPARK_GATEWAY_PORT" not in os.environ and (args.master or "local").startswith("local"):
        # Run by python itself on this machine: the workers are this interpreter, which has chatcap.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    ours = SparkSession.getActiveSession() is None  # a session already running (a notebook's) is left running
    spark = builder.getOrCreate()
    try:
        captures = args.captures[0] if len(args.captures) == 1 else args.captures
        try:
            built = tables(spark, captures, args.out)
        except LoadError as exc:
            print(_visible(f"error: {exc}"), file=sys.stderr)
            return 1
        for problem in built.problems:
            print(_visible(f"skipped {problem}"), file=sys.stderr)
        if not built.exchanges:
            print(_visible("error: no exchanges found in " + ", ".join(args.captures)), file=sys.stderr)
            return 1
        print(f"{built.exchanges:,} exchanges from {len(built.files):,} files: tables in {args.out}", file=sys.stderr)
        return 0
    finally:
        if ours:
            spark.stop()


# What a terminal acts on (C0 but tab and newline, DEL, C1, bidirectional controls): a file name
# or a problem may quote captured text. The rule of cli.visible, which this module cannot import.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(text: str) -> str:
    return _CONTROL.sub(lambda match: ascii(match.group())[1:-1], text)


if __name__ == "__main__":
    # Run as the module itself, not as __main__: the tasks' functions and what they pickle must be
    # importable by that name on the executors.
    from analyzer import spark

    sys.exit(spark.main())
