"""Memory and time of `analyzer.load` on large inputs, side by side with naive loaders, in one run.

    python benchmarks/large_inputs.py            # three 1 GB inputs (about 3 minutes)
    python benchmarks/large_inputs.py --quick    # 100 MB each: a smoke run (about 20 s)
    make bench

Three inputs, written by large_corpus.py and cached in benchmarks/data/ (see benchmarks/README.md):

- browser HAR   a browser's HAR file: page assets, 300 LLM calls among them
- API HAR       a HAR file in which every entry is an LLM call (`chatcap convert --to har`)
- capture       a chatcap/1 capture (JSON lines, every line an LLM call), as the addon writes it

chatcap reads a HAR file past `analyzer.ingest.STREAM_HAR_BYTES` entry by entry (the entries found
by bracket structure with numpy, each parsed by orjson; docs/hostile-input.md) and a
capture one line at a time. Every peer runs alone in a fresh Python process, so its peak RSS
(`getrusage().ru_maxrss`) is its own; its baseline is its RSS after its imports.

HAR peers:
- chatcap                        analyzer.load(path), then x.reconstruct() for every exchange
- ijson, entries discarded       ijson.items(file, "log.entries.item", use_float=True), nothing kept:
                                 a streaming parse (chatcap's HAR reader built on it until issue 19)
- orjson whole file              orjson.loads(open(path, "rb").read()): what a naive loader does
- json whole file                json.load(open(path, "rb"))

Capture peers:
- chatcap                        as above
- chatcap lines, discarded       analyzer.ingest._read_lines over the file, each Exchange dropped
                                 as soon as it is made: load()'s own line reader, nothing kept
- orjson whole file              orjson.loads of every line of open(path, "rb").read()
- orjson per line                [orjson.loads(line) for line in open(path, "rb")]
- json per line                  [json.loads(line) for line in open(path, "rb")]

Targets (the issue: "a 1 GB HAR loads without holding more than about twice its size in memory,
and JSONL captures are read one line at a time (constant memory per exchange)"):
- either HAR: chatcap's peak RSS while loading ≤ 2× the file's size
- capture: chatcap's peak RSS while loading − baseline ≤ what the returned exchanges hold (every
  object reachable from them, counted once, as the allocator rounds it) + 200 MB: nothing the
  size of the file on top of what is kept
- capture: load()'s line reader with the exchanges dropped: peak RSS − baseline ≤ 200 MB,
  whatever the file's size (the memory per line does not grow with the lines before it)

Before a peer's figures count, it must find every entry (every LLM call, for chatcap) and chatcap
must reconstruct something from every exchange, so a loader that skips work cannot look thrifty.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import json
import os
import resource
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
MB = 1_000_000
HAR_TARGET = 2.0  # chatcap's peak RSS loading a HAR file ≤ 2× its size
CONSTANT = 200 * MB  # what a capture's reading may hold beyond the exchanges kept


# In the child process: one peer, measured.


def peak_rss() -> int:
    """The process's peak resident set so far, in bytes (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Phases:
    """Wall time, peak RSS and RSS at the end of each phase of a peer's run."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.marks: dict[str, dict[str, float]] = {}

    def mark(self, name: str) -> None:
        self.marks[name] = {"s": time.perf_counter() - self.started, "peak_rss": peak_rss(), "rss": current_rss()}


def retained_bytes(roots: Iterable[Any], seen: set[int]) -> int:
    """The memory of every object reachable from `roots` and not in `seen` (which it extends), each once:
    sys.getsizeof rounded as CPython's allocators round it (pymalloc: up to 512 bytes, in steps of 16;
    above that glibc malloc, 8 bytes of header and steps of 16). Classes are not counted (everything shares
    them). msgspec structs declared `gc=False` (chatcap's stream chunks) have no referents for the garbage
    collector, so their fields are followed by name."""
    total, stack = 0, list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        size = sys.getsizeof(obj)
        total += (size + 15) & ~15 if size <= 512 else (size + 8 + 15) & ~15
        fields = getattr(type(obj), "__struct_fields__", None)
        stack.extend(gc.get_referents(obj) if fields is None else [getattr(obj, name) for name in fields])
    return total


def _has_output(choice: Any) -> bool:
    return bool(choice.content or choice.reasoning or choice.tool_calls)


def _payload_bytes(exchange: Any) -> int:
    """The bytes an Exchange keeps: its raw record and its request and response bodies."""
    request = exchange.request.body if exchange.request else None
    response = exchange.response.body if exchange.response else None
    return len(exchange.raw) + len(request or b"") + len(response or b"")


def allocated_bytes(blobs: Iterable[bytes]) -> int | None:
    """What the allocator reserved for `blobs` (glibc's malloc_usable_size), which can be far more than
    their length: a bytes object made by orjson.dumps keeps the whole buffer orjson wrote into. Objects of
    up to 512 bytes live in pymalloc's pools and count as their size. None without glibc."""
    try:
        usable = ctypes.CDLL("libc.so.6").malloc_usable_size
    except OSError:
        return None
    usable.argtypes, usable.restype = [ctypes.c_void_p], ctypes.c_size_t
    return sum(usable(id(blob)) if sys.getsizeof(blob) > 512 else sys.getsizeof(blob) for blob in blobs)


def chatcap(path: Path, phases: Phases) -> dict[str, Any]:
    import analyzer

    exchanges = analyzer.load(path, progress=False)
    phases.mark("load")
    reconstructions = [exchange.reconstruct() for exchange in exchanges]
    phases.mark("reconstruct")
    empty = sum(1 for rec in reconstructions if rec.error is None and not any(map(_has_output, rec.choices)))
    payload = sum(map(_payload_bytes, exchanges))
    # What load() returned, without the reconstructions cached on it since; then the reconstructions.
    seen = {id(rec) for rec in reconstructions}
    kept = retained_bytes(exchanges, seen)
    seen -= {id(rec) for rec in reconstructions}
    return {
        "exchanges": len(exchanges),
        "problems": [str(problem) for problem in exchanges.problems],
        "nothing_reconstructed": empty,
        "chunks": sum(len(rec.chunks) for rec in reconstructions),
        "payload_bytes": payload,
        "raw_bytes": sum(len(x.raw) for x in exchanges),
        "raw_allocated_bytes": allocated_bytes([x.raw for x in exchanges]),
        "retained_bytes": kept,
        "reconstructions_bytes": retained_bytes(reconstructions, seen),
    }


def chatcap_lines(path: Path, phases: Phases) -> dict[str, Any]:
    from analyzer import ingest

    problems: list[Any] = []
    with path.open("rb") as handle:
        count = deque(enumerate(ingest._read_lines(iter(handle), str(path), "chatcap-jsonl", problems), 1), maxlen=1)
    phases.mark("read")
    return {"exchanges": count[0][0] if count else 0, "problems": [str(problem) for problem in problems]}


def ijson_entries(path: Path, phases: Phases) -> dict[str, Any]:
    import ijson

    with path.open("rb") as handle:
        count = deque(enumerate(ijson.items(handle, "log.entries.item", use_float=True), 1), maxlen=1)
    phases.mark("read")
    return {"entries": count[0][0] if count else 0}


def orjson_har(path: Path, phases: Phases) -> dict[str, Any]:
    import orjson

    with path.open("rb") as handle:
        har = orjson.loads(handle.read())
    phases.mark("read")
    return {"entries": len(har["log"]["entries"])}


def json_har(path: Path, phases: Phases) -> dict[str, Any]:
    with path.open("rb") as handle:
        har = json.load(handle)
    phases.mark("read")
    return {"entries": len(har["log"]["entries"])}


def orjson_whole_lines(path: Path, phases: Phases) -> dict[str, Any]:
    import orjson

    with path.open("rb") as handle:
        lines = [orjson.loads(line) for line in handle.read().splitlines()]
    phases.mark("read")
    return {"entries": len(lines)}


def orjson_lines(path: Path, phases: Phases) -> dict[str, Any]:
    import orjson

    with path.open("rb") as handle:
        lines = [orjson.loads(line) for line in handle]
    phases.mark("read")
    return {"entries": len(lines)}


def json_lines(path: Path, phases: Phases) -> dict[str, Any]:
    with path.open("rb") as handle:
        lines = [json.loads(line) for line in handle]
    phases.mark("read")
    return {"entries": len(lines)}


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    run: Callable[[Path, Phases], dict[str, Any]]
    imports: tuple[str, ...]  # imported before the baseline is taken
    stdlib_json: bool = False  # skipped with --no-stdlib


HAR_PEERS = [
    Peer("chatcap", chatcap, ("analyzer", "analyzer.protocols", "analyzer.metrics", "numpy")),
    Peer("ijson, entries discarded", ijson_entries, ("ijson",)),
    Peer("orjson whole file", orjson_har, ("orjson",)),
    Peer("json whole file", json_har, ("json",), stdlib_json=True),
]
JSONL_PEERS = [
    Peer("chatcap", chatcap, ("analyzer", "analyzer.protocols", "analyzer.metrics")),
    Peer("chatcap lines, discarded", chatcap_lines, ("analyzer",)),
    Peer("orjson whole file", orjson_whole_lines, ("orjson",)),
    Peer("orjson per line", orjson_lines, ("orjson",)),
    Peer("json per line", json_lines, ("json",), stdlib_json=True),
]
PEERS = {"har": HAR_PEERS, "api-har": HAR_PEERS, "jsonl": JSONL_PEERS}
INPUTS = {"har": "browser HAR", "api-har": "API HAR", "jsonl": "capture"}  # what large_corpus writes


def child(kind: str, name: str, path: Path) -> None:
    """Run one peer on one input and print its figures as one JSON line."""
    peer = next(p for p in PEERS[kind] if p.name == name)
    for module in peer.imports:
        importlib.import_module(module)
    gc.collect()
    baseline = {"peak_rss": peak_rss(), "rss": current_rss()}
    phases = Phases()
    facts = peer.run(path, phases)
    print(json.dumps({"baseline": baseline, "phases": phases.marks, "facts": facts}))


# In the parent: inputs, peers one after another, figures, targets.


def run_peer(kind: str, peer: Peer, path: Path) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--peer", kind, peer.name, str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        sys.exit(f"{peer.name} on {path.name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def warm(path: Path) -> None:
    """Read the file once, so every peer finds it in the page cache."""
    with path.open("rb", buffering=0) as handle:
        while handle.read(16 << 20):
            pass


@dataclass(slots=True)
class Row:
    peer: str
    phase: str
    seconds: float
    peak_rss: int  # bytes, absolute
    above_baseline: int  # peak RSS − RSS after the imports
    held: int  # RSS at the end of the phase − RSS at the baseline: what the result holds

    def mb_per_s(self, size: int) -> float:
        return size / MB / self.seconds


def rows_of(peer: Peer, figures: dict[str, Any]) -> list[Row]:
    base = figures["baseline"]
    rows = []
    for phase, mark in figures["phases"].items():
        label = peer.name if len(figures["phases"]) == 1 else f"{peer.name} {phase}"
        if phase == "reconstruct":
            label = f"{peer.name} load + reconstruct"
        rows.append(Row(label, phase, mark["s"], mark["peak_rss"], mark["peak_rss"] - base["rss"], mark["rss"] - base["rss"]))  # fmt: skip
    return rows


def table(rows: list[Row], size: int) -> str:
    lines = [f"{'peer':<32} {'time s':>7} {'MB/s':>7} {'peak RSS MB':>12} {'× input':>8} {'above base MB':>14} {'held MB':>8}"]  # fmt: skip
    for row in rows:
        lines.append(f"{row.peer:<32} {row.seconds:7.1f} {row.mb_per_s(size):7.1f} {row.peak_rss / MB:12,.0f}"
                     f" {row.peak_rss / size:8.2f} {row.above_baseline / MB:14,.0f} {row.held / MB:8,.0f}")  # fmt: skip
    return "\n".join(lines)


def measure(kind: str, peers: Sequence[Peer], large: Any, expected: dict[str, int]) -> tuple[list[Row], dict[str, Any]]:
    """Every peer on one input, each in its own process; exits when a peer finds the wrong number of entries
    or chatcap reconstructs nothing from an exchange, so a loader that skips work cannot look thrifty."""
    warm(large.path)
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    for peer in peers:
        print(f"  {kind:<5} {peer.name} …", file=sys.stderr, flush=True)
        figures = run_peer(kind, peer, large.path)
        facts = figures["facts"]
        for key, want in expected.items():
            if key in facts and facts[key] != want:
                sys.exit(f"{peer.name} on {large.path.name}: {facts[key]:,} {key}, the file has {want:,}")
        if facts.get("nothing_reconstructed"):
            sys.exit(
                f"chatcap reconstructed nothing from {facts['nothing_reconstructed']} exchanges of {large.path.name}"
            )
        raw[peer.name] = figures
        rows += rows_of(peer, figures)
    return rows, raw


def judge(kind: str, size: int, raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What chatcap kept, and the targets for one input: printed and returned."""
    ours = raw["chatcap"]
    facts, load = ours["facts"], ours["phases"]["load"]
    print(f"chatcap  {facts['exchanges']:,} exchanges kept: {facts['payload_bytes'] / MB:,.0f} MB of raw records and"
          f" bodies, {facts['retained_bytes'] / MB:,.0f} MB of objects in all; their reconstructions"
          f" {facts['reconstructions_bytes'] / MB:,.0f} MB ({facts['chunks']:,} chunks)")  # fmt: skip
    if facts["raw_allocated_bytes"] is not None:
        print(f"         of which raw records {facts['raw_bytes'] / MB:,.0f} MB, for which malloc reserved"
              f" {facts['raw_allocated_bytes'] / MB:,.0f} MB")  # fmt: skip
    for problem in facts["problems"]:
        print(f"         problem: {problem}")
    if kind in ("har", "api-har"):
        ratio = load["peak_rss"] / size
        met = ratio <= HAR_TARGET
        print(f"target   {INPUTS[kind]}: peak RSS loading ≤ {HAR_TARGET:g}× the file: {ratio:.2f}× "
              f"({load['peak_rss'] / MB:,.0f} MB) — {'met' if met else 'NOT met'}")  # fmt: skip
        return {
            f"{kind}_peak_vs_size": {"target": HAR_TARGET, "ratio": ratio, "peak_rss": load["peak_rss"], "met": met}
        }
    above, allowed = load["peak_rss"] - ours["baseline"]["rss"], facts["retained_bytes"] + CONSTANT
    kept_met = above <= allowed
    print(f"target   capture: peak RSS loading − baseline ≤ what the exchanges hold + {CONSTANT / MB:.0f} MB: "
          f"{above / MB:,.0f} MB ≤ {facts['retained_bytes'] / MB:,.0f} + {CONSTANT / MB:.0f} MB "
          f"(margin {(allowed - above) / MB:,.0f} MB) — {'met' if kept_met else 'NOT met'}")  # fmt: skip
    lines = raw["chatcap lines, discarded"]
    streaming = lines["phases"]["read"]["peak_rss"] - lines["baseline"]["rss"]
    lines_met = streaming <= CONSTANT
    print(f"target   capture: load()'s line reader, exchanges dropped: peak RSS − baseline ≤ {CONSTANT / MB:.0f} MB: "
          f"{streaming / MB:,.0f} MB — {'met' if lines_met else 'NOT met'}")  # fmt: skip
    return {
        "capture_peak_vs_kept": {"above_baseline": above, "retained": facts["retained_bytes"], "constant": CONSTANT, "met": kept_met},
        "capture_lines_constant": {"above_baseline": streaming, "target": CONSTANT, "met": lines_met},
    }  # fmt: skip


def machine() -> dict[str, Any]:
    import ijson
    import orjson
    from machine import describe

    import analyzer

    return describe("analyzer", {"chatcap": analyzer.__version__, "ijson": f"{ijson.__version__} ({ijson.backend})",
                                 "orjson": orjson.__version__})  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, help="size of each input in MB (default 1000; 100 with --quick)")
    parser.add_argument("--quick", action="store_true", help="100 MB inputs for a smoke run")
    parser.add_argument("--seed", type=int, default=1, help="input seed (default 1)")
    parser.add_argument("--only", choices=list(INPUTS), help="measure one input only")
    parser.add_argument("--no-stdlib", action="store_true", help="skip the json (standard library) peers")
    parser.add_argument("--delete-inputs", action="store_true", help="delete the generated inputs afterwards")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is not met")
    parser.add_argument("--peer", nargs=3, metavar=("KIND", "NAME", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer:
        child(args.peer[0], args.peer[1], Path(args.peer[2]))
        return 0
    import large_corpus

    sys.stdout.reconfigure(line_buffering=True)  # in step with the progress lines on stderr
    size = int((args.size_mb or (100.0 if args.quick else 1000.0)) * MB)
    started = time.perf_counter()
    from machine import header

    info = machine()
    print(header(info))

    from analyzer.ingest import STREAM_HAR_BYTES

    kinds = [args.only] if args.only else list(INPUTS)
    report: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
                              "settings": {"size": size, "seed": args.seed, "stdlib": not args.no_stdlib},
                              "inputs": {}, "targets": {}}  # fmt: skip
    inputs = []
    for kind in kinds:
        began = time.perf_counter()
        large = getattr(large_corpus, kind.replace("-", "_"))(size, args.seed)
        inputs.append(large)
        how = "read from the cache" if large.cached else f"generated in {time.perf_counter() - began:.0f} s"
        print(f"\n{INPUTS[kind]}: {large.size / MB:,.1f} MB, {large.entries:,} entries, {large.llm_calls:,} LLM calls;"
              f" {large.path.relative_to(ROOT)} ({how})", flush=True)  # fmt: skip
        if kind != "jsonl" and large.size <= STREAM_HAR_BYTES:
            print(f"         (not past STREAM_HAR_BYTES, {STREAM_HAR_BYTES / MB:.0f} MB: chatcap reads it whole)")
        peers = [p for p in PEERS[kind] if not (args.no_stdlib and p.stdlib_json)]
        expected = {"entries": large.entries, "exchanges": large.llm_calls}
        rows, raw = measure(kind, peers, large, expected)
        print(table(rows, large.size))
        report["inputs"][kind] = {"path": str(large.path.relative_to(ROOT)), "bytes": large.size,
                                  "entries": large.entries, "llm_calls": large.llm_calls,
                                  "generator_version": large_corpus.GENERATOR_VERSION,
                                  "rows": [asdict(row) | {"mb_per_s": row.mb_per_s(large.size)} for row in rows],
                                  "peers": raw}  # fmt: skip
        report["targets"] |= judge(kind, large.size, raw)

    print("\ntime s: the phase's wall time in its own process (chatcap's load + reconstruct counts both);"
          " MB/s: input MB / time s.\npeak RSS: ru_maxrss at the end of the phase; × input: peak RSS / input size;"
          " above base: peak RSS − RSS after\nthe process's imports (its baseline); held: RSS at the end of the phase − RSS"
          " after the imports (what the result holds).")  # fmt: skip
    if args.delete_inputs:
        for large in inputs:
            large.path.unlink(missing_ok=True)
            large.path.with_name(large.path.name + ".counts").unlink(missing_ok=True)
        print("deleted  the generated inputs")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"large-inputs-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(f"\nresults  {path.relative_to(ROOT)} ({time.perf_counter() - started:.0f} s in all)")
    return 1 if args.check and not all(target["met"] for target in report["targets"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
