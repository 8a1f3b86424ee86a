"""`chatcap summary` on large inputs, as a user runs it, beside the floor of reading them.

    python benchmarks/summary.py               # a 1 GB capture and a 1 GB API HAR, 3 rounds (about 5 minutes)
    python benchmarks/summary.py --quick       # 100 MB each, 1 round: a smoke run
    python benchmarks/summary.py --chatcap-root /tmp/old-checkout --peers floor,summary   # another version's CLI
    make bench

Inputs: large_corpus.py's capture (chatcap/1 lines) and API HAR (every entry an LLM call), cached
in benchmarks/data/. Peers, each a fresh process, run in turn in every round (so a slow minute of
the shared machine hits them alike):

- floor            capture: every line `orjson.loads`, then every `data:` payload of its stream;
                   HAR: `orjson.loads` of the whole file, then every payload of every entry
- summary          `python -m analyzer summary PATH`, its output piped to a file
- summary --all    `python -m analyzer summary --all PATH`, a line per exchange
- summary --group-by conversation
                   (only with --peers) every exchange threaded first, then the totals per conversation
- export           (only with --peers) `python -m analyzer export PATH --out DIR`: a Markdown
                   transcript per conversation (what every transcript format reads and keeps)

Wall time is the child's, from start to exit; CPU time (user + system) and peak RSS are the child's
`ru_utime + ru_stime` and `ru_maxrss` (os.wait4, from a small launcher process). Before
its figures count, a summary must name every LLM call of the input (its title's count, or one line
each with --all), so a run that skips work cannot look fast; an export, every conversation (each LLM
call of these inputs is one). Targets (#21): wall time ≤ 3× the floor in the same round, peak RSS
≤ 300 MB (set for summary and the Parquet export; the transcript exports are measured against them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
MB = 1_000_000
TIME_TARGET = 3.0  # summary's wall time ≤ 3× the floor's
RSS_TARGET = 300 * MB
INPUTS = {"jsonl": "capture", "api-har": "API HAR"}
PEERS = {
    "floor": [], "summary": ["summary"], "summary --all": ["summary", "--all"],
    "summary --group-by conversation": ["summary", "--group-by", "conversation"],
    "export": ["export", "--out", "{scratch}/out"],
}  # fmt: skip
DEFAULT_PEERS = ("floor", "summary", "summary --all")


def floor(kind: str, path: str) -> None:
    """The floor, in this (child) process: read every record and decode every stream payload."""
    import orjson

    def payloads(entry: dict[str, Any]) -> int:
        text = entry["response"]["content"].get("text") or ""
        count = 0
        for event in text.split("\n\n"):
            if event.startswith("data: ") and event != "data: [DONE]":
                orjson.loads(event[6:])
                count += 1
        return count

    records = 0
    if kind == "jsonl":
        with open(path, "rb") as handle:
            for line in handle:
                payloads(orjson.loads(line))
                records += 1
    else:
        with open(path, "rb") as handle:
            entries = orjson.loads(handle.read())["log"]["entries"]
        for entry in entries:
            payloads(entry)
            records += 1
    print(f"{records} records")


def run(peer: str, kind: str, path: Path, root: Path) -> dict[str, Any]:
    """One peer in a fresh process: wall time, peak RSS and how many exchanges it named."""
    with tempfile.TemporaryDirectory() as scratch:
        if peer == "floor":
            command = [sys.executable, str(Path(__file__).resolve()), "--floor", kind, str(path)]
            env = dict(os.environ)
        else:
            arguments = [argument.format(scratch=scratch) for argument in PEERS[peer]]
            command = [sys.executable, "-m", "analyzer", *arguments, str(path)]
            env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "200"}
        figures, out, err = (Path(scratch) / name for name in ("figures.json", "stdout", "stderr"))
        # Started from a small process: Linux carries the parent's resident set over into a child's
        # ru_maxrss (fork copies it, exec keeps it), and this one holds large_corpus's text pools.
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--measure", str(figures), str(out),
                        str(err), *command], env=env, cwd=tempfile.gettempdir(), check=True)  # fmt: skip
        found = json.loads(figures.read_text())
        text, errors = (p.read_text(encoding="utf-8", errors="replace") for p in (out, err))
    if found["status"] != 0:
        sys.exit(f"{peer} on {path.name} exited {found['status']}: {errors[-2000:]}")
    return {**found, "named": named(peer, text)}


def measure(figures: str, out: str, err: str, command: list[str]) -> None:
    """Run `command` with its output in files; write its wall time, peak RSS and exit status to `figures`."""
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    found = {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss": usage.ru_maxrss * 1024,
             "status": os.waitstatus_to_exitcode(status)}  # fmt: skip
    Path(figures).write_text(json.dumps(found))


def named(peer: str, output: str) -> int:
    """How many exchanges a peer's output accounts for."""
    if peer == "floor":
        return int(output.split()[0])
    if peer == "summary --all":
        return output.count("\n") - 1  # the header
    if peer == "export":
        wrote = re.search(r"^wrote ([\d,]+) file", output, re.MULTILINE)
        return int(wrote.group(1).replace(",", "")) if wrote else -1
    found = re.search(r"^(?:the last \d+ of )?([\d,]+) exchange", output, re.MULTILINE)
    return int(found.group(1).replace(",", "")) if found else -1


def against(runs: list[dict[str, Any]], floors: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """The runs' figure `key`, and each as a multiple of the floor's in the same round."""
    return [one[key] for one in runs], [one[key] / base[key] for one, base in zip(runs, floors, strict=True)]


def spread(values: list[float], unit: str = "", digits: int = 1) -> str:
    low, high = min(values), max(values)
    return (
        f"{low:,.{digits}f}{unit}"
        if f"{low:.{digits}f}" == f"{high:.{digits}f}"
        else f"{low:,.{digits}f}–{high:,.{digits}f}{unit}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, help="size of each input in MB (default 1000; 100 with --quick)")
    parser.add_argument("--quick", action="store_true", help="100 MB inputs, 1 round")
    parser.add_argument("--rounds", type=int, help="rounds of every peer (default 3; 1 with --quick)")
    parser.add_argument("--seed", type=int, default=1, help="input seed (default 1)")
    parser.add_argument("--only", choices=list(INPUTS), help="measure one input only")
    parser.add_argument("--peers", default=",".join(DEFAULT_PEERS), help=f"comma-separated, of: {', '.join(PEERS)} (default: {', '.join(DEFAULT_PEERS)})")  # fmt: skip
    parser.add_argument(
        "--chatcap-root", type=Path, default=ROOT, help="the checkout whose CLI runs (default this one)"
    )
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is not met")
    parser.add_argument("--floor", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--measure"]:
        measure(argv[1], argv[2], argv[3], argv[4:])
        return 0
    args = parser.parse_args(argv)
    if args.floor:
        floor(*args.floor)
        return 0
    import large_corpus
    from machine import describe, header

    sys.stdout.reconfigure(line_buffering=True)
    size = int((args.size_mb or (100.0 if args.quick else 1000.0)) * MB)
    rounds = args.rounds or (1 if args.quick else 3)
    peers = [peer.strip() for peer in args.peers.split(",")]
    if unknown := [peer for peer in peers if peer not in PEERS]:
        parser.error(f"unknown peer {unknown[0]!r}")
    root = args.chatcap_root.resolve()
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    info = describe("analyzer", {"orjson": __import__("orjson").__version__})
    print(header(info))
    print(f"chatcap  {root} ({commit.stdout.strip() or 'not a git checkout'})")
    report: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info, "chatcap_root": str(root),
                              "settings": {"size": size, "seed": args.seed, "rounds": rounds}, "inputs": {}}  # fmt: skip
    met = True
    for kind in [args.only] if args.only else list(INPUTS):
        large = getattr(large_corpus, kind.replace("-", "_"))(size, args.seed)
        print(f"\n{INPUTS[kind]}: {large.size / MB:,.0f} MB, {large.llm_calls:,} LLM calls ({large.path.name})")
        with open(large.path, "rb") as handle:  # into the page cache, for every peer alike
            while handle.read(1 << 24):
                pass
        figures: dict[str, list[dict[str, Any]]] = {peer: [] for peer in peers}
        for number in range(rounds):
            for peer in peers:
                print(f"  round {number + 1}: {peer} …", file=sys.stderr, flush=True)
                found = run(peer, kind, large.path, root)
                if found["named"] != large.llm_calls:
                    sys.exit(f"{peer} named {found['named']:,} exchanges of {large.path.name}'s {large.llm_calls:,}")
                figures[peer].append(found)
        width = max(15, *map(len, peers))
        print(f"  {'peer':<{width}} {'wall s':>12} {'× floor':>11} {'CPU s':>12} {'× floor':>11} {'peak RSS MB':>12}")
        floors = figures.get("floor", [])
        for peer in peers:
            runs = figures[peer]
            (seconds, ratios), (cpu, cpu_ratios) = (
                against(runs, floors, "seconds"),
                against(runs, floors, "cpu_seconds"),
            )
            rss = [one["peak_rss"] / MB for one in runs]
            print(f"  {peer:<{width}} {spread(seconds):>12} {spread(ratios, digits=2) if ratios else '':>11} "
                  f"{spread(cpu):>12} {spread(cpu_ratios, digits=2) if cpu_ratios else '':>11} "
                  f"{spread(rss, digits=0):>12}")  # fmt: skip
            if peer != "floor" and ratios:
                ok = max(ratios) <= TIME_TARGET and max(rss) * MB <= RSS_TARGET
                met &= ok
                print(f"  {'':<{width}} target ≤ {TIME_TARGET:g}× the floor's wall time and ≤ {RSS_TARGET / MB:.0f} MB: "
                      f"{'met' if ok else 'NOT met'}")  # fmt: skip
        report["inputs"][kind] = {"path": large.path.name, "bytes": large.size, "llm_calls": large.llm_calls,
                                  "runs": figures}  # fmt: skip
    print(f"\nthe range over {rounds} round(s); × floor: each run against the floor's run of the same round; CPU s: "
          "user + system time of the process (on a shared machine, wall time also holds waiting for a core).")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"summary-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"results  {path.relative_to(ROOT)}")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
