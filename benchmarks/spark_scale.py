"""The four tables of a capture directory as a Spark job (`local[N]`) beside one process and,
where analyzer.parallel is there, its process pool with N workers: wall time, same data.

    python benchmarks/spark_scale.py                          # 64 MB in 32 files, local[2]
    python benchmarks/spark_scale.py --size-mb 256 --files 100 --cores 2

The directory is `large_corpus.jsonl` (the addon's capture lines, cached in benchmarks/data/)
cut at line boundaries into `--files` files of consecutive lines, in a temporary directory.
Every path builds the redacted tables (load, redact, reconstruct, `frames.parts`, `frames.assemble`)
and must give the same frames as the one process before its time counts. Spark's figures are
the session's start (its JVM) apart, then the job cold (the first, its Python workers importing
chatcap) and warm (the same job again on the same session). This is the small version of
#22's benchmarks/scale.py phase "Spark local[N] vs --workers N".
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import large_corpus  # noqa: E402
import pandas as pd  # noqa: E402

from analyzer import frames, load  # noqa: E402
from analyzer.export.redaction import redacted  # noqa: E402


def split(source: Path, into: Path, files: int) -> int:
    """`source`'s lines in `files` files of consecutive lines; returns the lines written."""
    lines = source.read_bytes().splitlines(keepends=True)
    per = -(-len(lines) // files)
    for n in range(files):
        (into / f"capture-{n:04d}.jsonl").write_bytes(b"".join(lines[n * per : (n + 1) * per]))
    return len(lines)


def one_process(directory: str) -> dict[str, pd.DataFrame]:
    kept = []
    for exchange in map(redacted, load(directory, progress=False)):
        try:
            exchange.reconstruct()
        except Exception:
            continue
        kept.append(exchange)
    return frames.all_frames(kept)


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def same(got: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    for name in frames.TABLES:
        pd.testing.assert_frame_equal(got[name], expected[name], obj=name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=64)
    parser.add_argument("--files", type=int, default=32)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()

    capture = large_corpus.jsonl(int(args.size_mb * 1e6))
    with tempfile.TemporaryDirectory(prefix="chatcap-spark-bench-") as scratch:
        lines = split(capture.path, Path(scratch), args.files)
        print(f"{capture.size / 1e6:.0f} MB, {lines:,} exchanges in {args.files} files; {args.cores} cores")
        expected, seconds = timed(lambda: one_process(scratch))
        rows = len(expected["exchanges"])
        print(f"one process                 {seconds:7.1f} s  ({1e6 * seconds / rows:.0f} us/exchange)")
        try:
            from analyzer import parallel
        except ImportError:
            print("process pool                (analyzer.parallel is not here)")
        else:
            built, seconds = timed(lambda: parallel.frames_of(scratch, workers=args.cores, redact=True))
            same(built.frames, expected)
            print(f"process pool, {args.cores} workers     {seconds:7.1f} s  ({1e6 * seconds / rows:.0f} us/exchange)")

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

        from analyzer import spark as job

        session, seconds = timed(
            lambda: (
                SparkSession.builder.master(f"local[{args.cores}]")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.driver.maxResultSize", "4g")
                .getOrCreate()
            )
        )
        session.sparkContext.setLogLevel("ERROR")
        print(f"Spark session start         {seconds:7.1f} s")
        try:
            for run in ("cold", "warm"):
                built, seconds = timed(lambda: job.tables(session, scratch))
                same(built.frames, expected)
                print(
                    f"Spark local[{args.cores}], {run}         {seconds:7.1f} s  ({1e6 * seconds / rows:.0f} us/exchange)"
                )
        finally:
            session.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
