"""The tables of a capture directory on every core, incrementally, and queried (issue #22).

    python benchmarks/scale.py                        # 2 GB in 128 files, 3 runs of each phase
    python benchmarks/scale.py --size-mb 256 --runs 3 # smaller, for a quick look

The directory is the addon's capture lines from `large_corpus.jsonl` (the project's generator of
LLM calls as `chatcap capture` records them: histories, tools, streamed replies with their read
times, 429s, abandoned streams), cut at line boundaries into `--files` files of consecutive
lines, cached in benchmarks/data/. Each phase runs in a fresh process, `--runs` times; figures
are ranges (fastest–slowest) and peak RSS (the phase's own process, and its largest worker,
a fork whose figure counts the pages it shares with the phase's process).

- floor          one process reads every line and parses it with orjson: what reading costs
- 1 worker       `chatcap export --format parquet` (analyzer.dataset.build) with --workers 1
- N workers      the same with every core: speed-up and parallel efficiency (speed-up / cores);
                 its tables must equal the 1-worker tables, file for file, before it counts
- nothing new    the same export again on the same directory: nothing is read or written
- +1 % files     the export again after 1 % more files were added (a nightly run)
- duckdb / pandas one question (median TTFT and cost by model) over the dataset, DuckDB beside
                 pandas reading the same Parquet files
"""

from __future__ import annotations

import argparse
import filecmp
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import large_corpus  # noqa: E402
import machine  # noqa: E402

QUESTION = "SELECT served_model, median(ttft_ms) AS ttft_p50, sum(cost_usd) AS cost, count(*) AS n FROM exchanges GROUP BY 1 ORDER BY 1"  # fmt: skip


def directory(size_mb: int, files: int) -> Path:
    """The capture directory: `size_mb` of capture lines in `files` files, cached."""
    target = large_corpus.DATA / f"scale-v1-{size_mb}MB-{files}files"
    if (target / ".complete").exists():
        return target
    source = large_corpus.jsonl(size_mb * 1_000_000).path
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    lines = source.read_bytes().splitlines(keepends=True)
    per = -(-len(lines) // files)
    for n in range(files):
        (target / f"capture-{n:04d}.jsonl").write_bytes(b"".join(lines[n * per : (n + 1) * per]))
    (target / ".complete").write_text(f"{len(lines)} lines\n")
    return target


def phase(name: str, *arguments: str) -> dict[str, Any]:
    """Run one phase in a fresh process; its figures."""
    run = subprocess.run([sys.executable, __file__, "--phase", name, *arguments], capture_output=True, text=True, check=False)  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{run.stderr}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def run_phase(name: str, arguments: list[str]) -> dict[str, Any]:
    """Inside the phase's own process."""
    start = time.perf_counter()
    found: dict[str, Any] = {}
    if name == "floor":
        import orjson

        lines = 0
        for file in sorted(Path(arguments[0]).glob("*.jsonl")):
            with file.open("rb") as handle:
                for line in handle:
                    orjson.loads(line)
                    lines += 1
        found["lines"] = lines
    elif name == "export":
        from analyzer import dataset

        source, out, workers = arguments
        built = dataset.build(source, out, workers=int(workers), progress=False)
        found.update(exchanges=built.exchanges, read=built.read, reused=built.reused, written=len(built.written))
    elif name in ("duckdb", "pandas"):
        out = arguments[0]
        if name == "duckdb":
            import analyzer

            answer = analyzer.sql(QUESTION, out, progress=False)
        else:
            import pandas as pd
            import pyarrow.dataset

            frame = pd.read_parquet(
                Path(out) / "exchanges", columns=["served_model", "ttft_ms", "cost_usd"],
                partitioning=pyarrow.dataset.partitioning(flavor="hive"),
            )  # fmt: skip
            answer = (
                frame.groupby("served_model", dropna=False)
                .agg(ttft_p50=("ttft_ms", "median"), cost=("cost_usd", "sum"), n=("ttft_ms", "size"))
                .reset_index()
            )
        found["rows"] = len(answer)
    found["seconds"] = time.perf_counter() - start
    found["rss_mb"] = own_peak_mb()
    found["worker_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return found


def own_peak_mb() -> float:
    """This process's peak RSS since it started (VmHWM: the getrusage figure would carry the
    peak of the process that started it, a fork keeping its parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def span(values: list[float], unit: str = "s", digits: int = 1) -> str:
    low, high = min(values), max(values)
    return f"{low:.{digits}f}–{high:.{digits}f} {unit}" if len(values) > 1 else f"{low:.{digits}f} {unit}"


def same_tables(a: Path, b: Path) -> bool:
    """Whether two datasets hold the same partition files, byte for byte."""
    files = sorted(p.relative_to(a) for p in a.glob("*/date=*/*.parquet"))
    if files != sorted(p.relative_to(b) for p in b.glob("*/date=*/*.parquet")):
        return False
    return all(filecmp.cmp(a / f, b / f, shallow=False) for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=2048, help="size of the capture directory (default 2048)")
    parser.add_argument("--files", type=int, default=128, help="files it is cut into (default 128)")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per phase (default 3)")
    parser.add_argument("--workers", type=int, default=None, help="workers of the all-core phase (default: every core)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    options, rest = parser.parse_known_args()
    if options.phase:
        print(json.dumps(run_phase(options.phase, rest)))
        return

    from analyzer.parallel import cores

    workers = options.workers or cores()
    print(machine.header(machine.describe(str(HERE.parent / "analyzer"), {})))
    source = directory(options.size_mb, options.files)
    size = sum(p.stat().st_size for p in source.glob("*.jsonl"))
    print(f"\ninput  {size / 1e6:,.0f} MB in {options.files} capture files ({source})")
    print(f"runs   {options.runs} fresh process(es) per phase; {workers} worker(s) on {cores()} core(s)\n")
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="chatcap-scale-") as temporary:
        scratch = Path(temporary)
        captures = shutil.copytree(source, scratch / "captures", ignore=shutil.ignore_patterns(".complete"))
        extra = max(1, options.files // 100)
        for run in range(options.runs):
            results.setdefault("floor", []).append(phase("floor", str(captures)))
            for label, count in (("1 worker", 1), (f"{workers} workers", workers)):
                out = scratch / f"out-{count}"
                shutil.rmtree(out, ignore_errors=True)
                results.setdefault(label, []).append(phase("export", str(captures), str(out), str(count)))
            if run == 0 and not same_tables(scratch / "out-1", scratch / f"out-{workers}"):
                raise SystemExit(f"the {workers}-worker tables differ from the 1-worker tables")
            out = str(scratch / f"out-{workers}")
            results.setdefault("nothing new", []).append(phase("export", str(captures), out, str(workers)))
            added = [captures / f"new-{n:04d}.jsonl" for n in range(extra)]
            for n, path in enumerate(added):  # 1 % more files: another night's, here copies of the first ones
                path.write_bytes((captures / f"capture-{n:04d}.jsonl").read_bytes())
            results.setdefault("+1 % files", []).append(phase("export", str(captures), out, str(workers)))
            results.setdefault("duckdb", []).append(phase("duckdb", out))
            results.setdefault("pandas", []).append(phase("pandas", out))
            for path in added:
                path.unlink()
            print(f"run {run + 1} of {options.runs} done", file=sys.stderr, flush=True)

    def seconds(label: str) -> list[float]:
        return [r["seconds"] for r in results[label]]

    floor = statistics.median(seconds("floor"))
    one = statistics.median(seconds("1 worker"))
    many = statistics.median(seconds(f"{workers} workers"))
    print(f"{'phase':<14} {'wall':>16} {'vs floor':>10} {'peak RSS (process / largest worker)':>40}")
    for label in results:
        walls = seconds(label)
        rss = f"{max(r['rss_mb'] for r in results[label]):,.0f} / {max(r['worker_rss_mb'] for r in results[label]):,.0f} MB"
        print(f"{label:<14} {span(walls):>16} {statistics.median(walls) / floor:>9.1f}× {rss:>40}")
    speedups = [a / b for a, b in zip(seconds("1 worker"), seconds(f"{workers} workers"), strict=True)]
    print(f"\nspeed-up with {workers} workers: {span(speedups, '×', 2)} (median {one / many:.2f}×), "
          f"parallel efficiency {min(speedups) / workers:.0%}–{max(speedups) / workers:.0%} (goal: speed-up ≥ 0.8 × cores)")  # fmt: skip
    grown = statistics.median(seconds("+1 % files"))
    print(f"+1 % files: {grown / many:.0%} of the full {workers}-worker run; nothing new: {statistics.median(seconds('nothing new')):.2f} s")  # fmt: skip
    duck, pandas = statistics.median(seconds("duckdb")), statistics.median(seconds("pandas"))
    print(f"query: DuckDB {duck:.2f} s, pandas {pandas:.2f} s (each a fresh process, imports included)")
    exchanges = results["1 worker"][0]["exchanges"]
    print(f"exchanges: {exchanges:,}; the {workers}-worker tables equal the 1-worker tables byte for byte")


if __name__ == "__main__":
    main()
