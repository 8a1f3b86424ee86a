"""The tables of a capture directory as a Spark job on `local[N]` beside `chatcap export --format
parquet --workers N` (and 1 worker), the same data, end to end (issue #22, item 5's Spark phase).

    python benchmarks/spark_scale.py                             # 256 MB in 32 files, 2 runs, N = every core
    python benchmarks/spark_scale.py --size-mb 2048 --files 128  # benchmarks/scale.py's directory

The directory is benchmarks/scale.py's (the addon's capture lines from `large_corpus.jsonl`, cut at
line boundaries into `--files` files, cached in benchmarks/data/). Each phase runs in a fresh
process, `--runs` times, interleaved:

- export 1       `analyzer.dataset.build` with one worker (what `chatcap export --workers 1` runs)
- export N       the same with N worker processes
- spark N        `analyzer.spark.tables(spark, DIR, out)` on a new `local[N]` session: the session's
                 start (its JVM) is timed apart from the job, which includes its Python workers
                 starting and importing chatcap; the session is stopped after

The Spark job's dataset must equal the 1-worker export's, file for file and byte for byte, before
its time counts. Peak memory is the largest sum of the resident sets of the phase's process and
all its descendants (the JVM and Spark's Python workers; the export's worker processes), sampled
every 50 ms from /proc (Linux).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import machine  # noqa: E402
import scale  # noqa: E402


class PeakMemory:
    """The largest resident set of this process and its descendants, sampled in a thread."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, _tree_rss(os.getpid()))


def _tree_rss(root: int) -> int:
    """Bytes resident in `root` and every process descended from it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for pid in tree:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def phase(name: str, *arguments: str) -> dict[str, Any]:
    """Run one phase in a fresh process; its figures."""
    run = subprocess.run([sys.executable, __file__, "--phase", name, *arguments], capture_output=True, text=True, check=False)  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{run.stderr[-4000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def run_phase(name: str, arguments: list[str]) -> dict[str, Any]:
    """Inside the phase's own process."""
    source, out, cores = arguments
    found: dict[str, Any] = {}
    with PeakMemory() as memory:
        start = time.perf_counter()
        if name == "export":
            from analyzer import dataset

            built = dataset.build(source, out, workers=int(cores), progress=False)
            found["exchanges"] = built.exchanges
        else:
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            from pyspark.sql import SparkSession

            from analyzer import spark as job

            session = (
                SparkSession.builder.master(f"local[{cores}]")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.driver.maxResultSize", "8g")
                .getOrCreate()
            )
            session.sparkContext.setLogLevel("ERROR")
            found["session_seconds"] = time.perf_counter() - start
            job_start = time.perf_counter()
            built = job.tables(session, source, out)
            found["job_seconds"] = time.perf_counter() - job_start
            found["exchanges"] = built.exchanges
            session.stop()
        found["seconds"] = time.perf_counter() - start
    found["peak_mb"] = memory.peak / 1e6
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=256, help="size of the capture directory (default 256)")
    parser.add_argument("--files", type=int, default=32, help="files it is cut into (default 32)")
    parser.add_argument("--runs", type=int, default=2, help="fresh processes per phase (default 2)")
    parser.add_argument("--cores", type=int, default=None, help="N: workers and local[N] (default: every core)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    options, rest = parser.parse_known_args()
    if options.phase:
        print(json.dumps(run_phase(options.phase, rest)))
        return

    from analyzer.parallel import cores

    n = options.cores or cores()
    print(machine.header(machine.describe(str(HERE.parent / "analyzer"), {})))
    source = scale.directory(options.size_mb, options.files)
    size = sum(p.stat().st_size for p in source.glob("*.jsonl"))
    print(f"\ninput  {size / 1e6:,.0f} MB in {options.files} capture files ({source})")
    print(f"runs   {options.runs} fresh process(es) per phase; N = {n} on {cores()} core(s)\n")
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="chatcap-spark-scale-") as temporary:
        scratch = Path(temporary)
        captures = shutil.copytree(source, scratch / "captures", ignore=shutil.ignore_patterns(".complete"))
        for run in range(options.runs):
            for label, kind, count in (("export 1", "export", 1), (f"export {n}", "export", n), (f"spark {n}", "spark", n)):  # fmt: skip
                out = scratch / label.replace(" ", "-")
                shutil.rmtree(out, ignore_errors=True)
                results.setdefault(label, []).append(phase(kind, str(captures), str(out), str(count)))
            if run == 0 and not scale.same_tables(scratch / "export-1", scratch / f"spark-{n}"):
                raise SystemExit("the Spark job's tables differ from the 1-worker export's")
            print(f"run {run + 1} of {options.runs} done", file=sys.stderr, flush=True)

    def seconds(label: str, key: str = "seconds") -> list[float]:
        return [r[key] for r in results[label]]

    print(f"{'phase':<12} {'wall':>16} {'peak RSS, all processes':>26}")
    for label in results:
        peak = max(r["peak_mb"] for r in results[label])
        print(f"{label:<12} {scale.span(seconds(label)):>16} {peak:>23,.0f} MB")
    spark = f"spark {n}"
    print(f"  of which   {scale.span(seconds(spark, 'session_seconds')):>16}  the session's start (JVM)")
    print(f"  and        {scale.span(seconds(spark, 'job_seconds')):>16}  the job")
    exchanges = results["export 1"][0]["exchanges"]
    one, many = statistics.median(seconds("export 1")), statistics.median(seconds(f"export {n}"))
    job = statistics.median(seconds(spark, "job_seconds"))
    print(f"\nexchanges: {exchanges:,}; Spark's tables equal the 1-worker export's byte for byte")
    print(f"median: export 1 {one:.1f} s, export {n} {many:.1f} s, Spark job {job:.1f} s (+ session start)")


if __name__ == "__main__":
    main()
