"""Reconstruction throughput, side by side in one run: chatcap, the openai SDK, and the floors.

    python benchmarks/run.py                # 200 MB corpus, best of 3
    python benchmarks/run.py --quick        # 20 MB smoke run
    make bench

Peers, all over the same bodies in the same process:
- chatcap          Exchange(...).reconstruct() on each body (what `analyzer.load` does per exchange)
- chatcap (parse)  analyzer.parse(body): the same plus format sniffing
- openai SDK       what the SDK does when streaming: its SSEDecoder, json.loads, construct_type
                   to ChatCompletionChunk, ChatCompletionStreamState.handle_chunk, get_final_completion
- orjson floor     orjson.loads over every chunk's payload alone (payloads split out beforehand)
- msgspec floor    msgspec.json.decode (untyped) of the same payloads
The SDK is slow enough that it runs on a fixed leading share of the corpus; its MB/s is
measured on that share and says so.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

import analyzer  # noqa: E402
from analyzer.model import Exchange, Response  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
HEADERS = [("content-type", "text/event-stream")]


def exchange(body: bytes) -> Exchange:
    return Exchange(id="bench", source="bench", format="sse-text", request=None, response=Response(200, None, None, HEADERS, body))


def run_chatcap(bodies: list[bytes]) -> None:
    for body in bodies:
        exchange(body).reconstruct()


def run_chatcap_parse(bodies: list[bytes]) -> None:
    for body in bodies:
        analyzer.parse(body)[0].reconstruct()


def sdk_final(body: bytes) -> object:
    from openai._models import construct_type
    from openai._streaming import SSEDecoder
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    state = ChatCompletionStreamState()
    for sse in SSEDecoder().iter_bytes(iter([body])):
        if sse.data.startswith("[DONE]"):
            break
        state.handle_chunk(construct_type(type_=ChatCompletionChunk, value=sse.json()))
    return state.get_final_completion()


def run_sdk(bodies: list[bytes]) -> None:
    for body in bodies:
        sdk_final(body)


def best_of(repeats: int, work: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def sanity_check(bodies: list[bytes]) -> None:
    """The peers must agree, so that a peer doing no work cannot look fast."""
    for body in bodies[:: max(1, len(bodies) // 25)]:
        ours = exchange(body).reconstruct().to_openai()["choices"][0]["message"]
        theirs = sdk_final(body).choices[0].message
        assert ours["content"] == theirs.content, "content differs from the SDK"
        assert [c["function"]["arguments"] for c in ours.get("tool_calls", [])] == [
            c.function.arguments for c in theirs.tool_calls or []
        ], "tool calls differ from the SDK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=200.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sdk-share", type=float, default=0.05, help="share of the corpus the SDK runs on")
    parser.add_argument("--quick", action="store_true", help="a 20 MB corpus, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.size_mb, args.repeats = 20.0, 1

    bodies = corpus.build(args.size_mb)
    payloads = [corpus.payloads(body) for body in bodies]
    total_mb = sum(map(len, bodies)) / 1e6
    chunks = sum(map(len, payloads))
    sdk_bodies = bodies[: max(1, int(len(bodies) * args.sdk_share))]
    sdk_mb = sum(map(len, sdk_bodies)) / 1e6
    sdk_chunks = sum(len(p) for p in payloads[: len(sdk_bodies)])
    print(f"corpus: {len(bodies):,} exchanges, {total_mb:,.1f} MB, {chunks:,} chunks")
    print(f"python {platform.python_version()}, {platform.machine()}, msgspec {msgspec.__version__}, orjson {orjson.__version__}")
    sanity_check(bodies)

    def orjson_floor() -> None:
        loads = orjson.loads
        for events in payloads:
            for payload in events:
                loads(payload)

    def msgspec_floor() -> None:
        decode = msgspec.json.decode
        for events in payloads:
            for payload in events:
                decode(payload)

    rows = [
        ("orjson floor", best_of(args.repeats, orjson_floor), total_mb, chunks),
        ("msgspec floor", best_of(args.repeats, msgspec_floor), total_mb, chunks),
        ("chatcap", best_of(args.repeats, lambda: run_chatcap(bodies)), total_mb, chunks),
        ("chatcap (parse)", best_of(args.repeats, lambda: run_chatcap_parse(bodies)), total_mb, chunks),
        (f"openai SDK ({args.sdk_share:.0%} of corpus)", best_of(1, lambda: run_sdk(sdk_bodies)), sdk_mb, sdk_chunks),
    ]
    rate = {name: mb / seconds for name, seconds, mb, _ in rows}
    floor, sdk = rate["orjson floor"], rate[rows[-1][0]]
    print(f"\n{'peer':28} {'MB/s':>9} {'chunks/s':>12} {'time s':>8} {'× floor':>8} {'× SDK':>8}")
    for name, seconds, mb, count in rows:
        print(f"{name:28} {mb / seconds:9.1f} {count / seconds:12,.0f} {seconds:8.2f} {rate[name] / floor:8.2f} {rate[name] / sdk:8.1f}")
    ours = rate["chatcap"]
    print(f"\ntargets: chatcap ≥ 0.5× orjson floor: {ours / floor:.2f}× {'met' if ours / floor >= 0.5 else 'NOT met'}; "
          f"≥ 10× the SDK: {ours / sdk:.0f}× {'met' if ours / sdk >= 10 else 'NOT met'}")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    result = {
        "corpus": {"exchanges": len(bodies), "mb": total_mb, "chunks": chunks},
        "python": platform.python_version(),
        "peers": {name: {"mb_per_s": mb / s, "chunks_per_s": c / s, "seconds": s} for name, s, mb, c in rows},
    }
    (RESULTS / f"reconstruction-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
