"""What a user runs on a capture file, beside the floor of reading it (issue #21).

    python benchmarks/load.py              # 100 MB of capture lines of each length, best of 3
    python benchmarks/load.py --quick      # 10 MB each, best of 1

Two capture files, written as the addon writes them (`chatcap/1` lines: the request, the
streamed response body as text, its network reads, one to three events a read): run.py's
chat/completions streams (benchmarks/corpus.py: plain, reasoning and tool-call answers) as
generated ("long") and with a tenth of their deltas ("short": a few dozen events, like most
real chat turns). Cached in benchmarks/data/. Peers, one after another in this process, each
the best of `--repeats`, the file read once beforehand so that every peer finds it in the page
cache:

- floor      each line read and parsed (orjson), then its response body's event payloads
             split out (`corpus.payloads`) and each parsed: reading the file and decoding every payload
- load       `analyzer.load(path)`, then `reconstruct()` of every exchange: what a notebook runs
- stream     `analyzer.stream(path)`, each exchange reconstructed and dropped: what the CLI runs

Before timing, every exchange must reconstruct with content, reasoning or tool calls.
Target: load + reconstruct ≥ 0.7× the floor on long and on short streams.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import corpus
import large_corpus
import orjson
from machine import best_of, describe, header

import analyzer

HERE = Path(__file__).resolve().parent
TARGET = 0.7
LENGTHS = {"long": 1.0, "short": 0.1}  # corpus.exchange_body's scale of the deltas
REQUEST = orjson.dumps(
    {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Tell me about the sea."}]}
).decode()


def capture(size_mb: float, length: str, seed: int) -> Path:
    """The capture file of `size_mb` MB of lines of streams of `length`, written once."""
    path = corpus.DATA / f"load-v{corpus.GENERATOR_VERSION}-{length}-seed{seed}-{size_mb:g}MB.jsonl"
    if path.exists():
        return path
    corpus.DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names, weights = list(corpus.MAIN_MIX), list(corpus.MAIN_MIX.values())
    partial, written, n = path.with_suffix(".partial"), 0, 0
    with partial.open("wb") as handle:
        while written < size_mb * 1_000_000:
            body = corpus.exchange_body(rng, n, rng.choices(names, weights)[0], LENGTHS[length])
            line = orjson.dumps(_line(rng, body)) + b"\n"
            handle.write(line)
            written, n = written + len(line), n + 1
    partial.rename(path)  # a killed run leaves no half-written cache behind
    return path


def _line(rng: random.Random, body: bytes) -> dict[str, Any]:
    ends = [at + 2 for at in range(len(body)) if body.startswith(b"\n\n", at)]
    reads = large_corpus.network_reads(rng, ends, stalls=False)
    headers = [{"name": "content-type", "value": "application/json"}]
    return {
        "startedDateTime": "2026-12-07T12:00:00.000Z",
        "request": {"method": "POST", "url": "https://api.openai.com/v1/chat/completions", "httpVersion": "HTTP/1.1",
                    "headers": headers, "postData": {"mimeType": "application/json", "text": REQUEST}},
        "response": {"status": 200, "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "content-type", "value": "text/event-stream"}],
                     "content": {"mimeType": "text/event-stream", "size": len(body), "text": body.decode()},
                     "_chunks": reads},
        "_chatcap": {"schema": "chatcap/1", "version": "0.1.0", "redacted": [], "complete": True},
    }  # fmt: skip


def floor(path: Path) -> int:
    """Every line parsed, and every event payload of its response body."""
    count = 0
    with path.open("rb") as handle:
        for line in handle:
            record = orjson.loads(line)
            for payload in corpus.payloads(record["response"]["content"]["text"].encode()):
                orjson.loads(payload)
                count += 1
    return count


def load(path: Path) -> int:
    exchanges = analyzer.load(path, progress=False)
    for exchange in exchanges:
        exchange.reconstruct()
    return len(exchanges)


def stream(path: Path) -> int:
    count = 0
    for exchange in analyzer.stream(path, progress=False):
        exchange.reconstruct()
        count += 1
    return count


PEERS: dict[str, Callable[[Path], int]] = {"floor": floor, "load": load, "stream": stream}


def check(path: Path) -> int:
    """Every exchange reconstructs with something in it; how many there are."""
    found = 0
    for exchange in analyzer.stream(path, progress=False):
        rec = exchange.reconstruct()
        choice = rec.choices[0] if rec is not None and rec.choices else None
        if choice is None or not (choice.content or choice.reasoning or choice.tool_calls):
            sys.exit(f"{exchange.id}: reconstructed nothing")
        found += 1
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, help="MB of capture lines per file (default 100; 10 with --quick)")
    parser.add_argument("--repeats", type=int, help="runs per peer, the best counts (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="10 MB files, one run of each peer")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check", action="store_true", help="exit with status 1 when the target is missed")
    args = parser.parse_args()
    size_mb = args.size_mb or (10.0 if args.quick else 100.0)
    repeats = args.repeats or (1 if args.quick else 3)
    info = describe("analyzer", {"orjson": orjson.__version__})
    print(header(info))
    results: dict[str, Any] = {"settings": {"size_mb": size_mb, "repeats": repeats, "seed": args.seed}}
    missed = False
    print(f"{'file':<8} {'exchanges':>10} {'payloads':>10} {'peer':<8} {'s':>8} {'MB/s':>8} {'× floor':>8}")
    for length in LENGTHS:
        path = capture(size_mb, length, args.seed)
        exchanges, payloads = check(path), floor(path)  # also reads the file into the page cache
        mb = path.stat().st_size / 1e6
        times = {name: best_of(repeats, functools.partial(peer, path))[0] for name, peer in PEERS.items()}
        results[length] = {"path": str(path), "mb": mb, "exchanges": exchanges, "payloads": payloads, "seconds": times}
        for name, seconds in times.items():
            ratio = times["floor"] / seconds
            print(
                f"{length:<8} {exchanges:>10,} {payloads:>10,} {name:<8} {seconds:>8.2f} {mb / seconds:>8.1f} {ratio:>8.2f}"
            )
        missed = missed or times["floor"] / times["load"] < TARGET
        print(f"target   load + reconstruct ≥ {TARGET}× the floor ({length}): {times['floor'] / times['load']:.2f}×")
    out = HERE / "results" / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": info, **results}, indent=1))
    print(f"results  {out.relative_to(HERE.parent)}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
