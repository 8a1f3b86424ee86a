"""Reconstruction throughput, side by side in one run: chatcap, the openai SDK, and JSON-parse floors.

    python benchmarks/run.py                 # 200 MB corpus, best of 3
    python benchmarks/run.py --quick         # 20 MB smoke run, best of 1
    python benchmarks/run.py --profile       # also: where chatcap spends its time (cProfile)
    python benchmarks/run.py --framing real  # the same events framed as many real servers frame them
    make bench

Peers, one after another in this process over the same bodies (see benchmarks/README.md):

- chatcap            Exchange(..., format="sse-text", response=Response(200, event-stream, body)).reconstruct()
- chatcap (parse)    analyzer.parse(body)[0].reconstruct(): the same plus format sniffing and text repair
- chatcap (timed)    the Exchange with per-read arrival times, as the addon records them: timing computed too
- openai SDK         what `client.chat.completions.stream()` does with the body: SSEDecoder.iter_bytes,
                     json.loads, construct_type(ChatCompletionChunk), ChatCompletionStreamState.handle_chunk,
                     get_final_completion. Slow, so by default it runs on every 10th exchange and its
                     per-MB rate stands for the whole corpus (labelled in the table).
- orjson floor       orjson.loads of every chunk's JSON payload, payloads split out before timing
- msgspec floor      msgspec.json.decode (untyped) of the same payloads

MB are 10^6 bytes of response body; chunks are JSON payloads (not `[DONE]`, not comments).
With `--framing real` every body carries the same events framed the way many real servers
frame them (`real_framing`); the floors parse the same payloads as for the clean corpus.
Before timing, chatcap and the SDK must agree on every sampled exchange's content, reasoning,
tool calls, finish reason and usage, so a peer that skips work cannot look fast.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import corpus
import msgspec
import openai
import orjson
import pydantic
from machine import best_of, describe, header
from openai._models import construct_type
from openai._streaming import SSEDecoder
from openai._utils import is_mapping
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import analyzer
from analyzer.model import Exchange, Reconstruction, Response
from analyzer.sse import decode

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
EVENT_STREAM = [("content-type", "text/event-stream")]
FLOOR_TARGET = 0.5  # chatcap ≥ 0.5× the orjson floor
SDK_TARGET = 10.0  # chatcap ≥ 10× the openai SDK


# The peers: each reconstructs (or, for the floors, parses) one body.


def chatcap(body: bytes) -> Reconstruction:
    """chatcap without format sniffing: the Exchange that `analyzer.load` builds for a bare stream."""
    response = Response(status=200, headers=EVENT_STREAM, body=body)
    return Exchange(id="bench", source="bench", format="sse-text", request=None, response=response).reconstruct()


def read_times(body: bytes) -> list[tuple[float, int]]:
    """Per-read arrival times as the addon records them (`response._chunks`): here one network
    read per event (or comment), 20 ms apart after a 300 ms wait."""
    ends = [match.end() for match in re.finditer(rb"\r?\n\r?\n", body)]
    return [(300.0 + 20.0 * n, end) for n, end in enumerate(ends)]


def real_framing(body: bytes, comments: bool = True, bare_data: bool = True) -> bytes:
    """The same events framed as many real servers frame them (issue #21): CRLF line ends, an
    `: OPENROUTER PROCESSING` comment first and a `: keep-alive` comment before every 16th
    event, `data:` without its space, and every 8th event's data on two `data:` lines (split
    after its opening brace: the decoder joins them with an LF, which JSON reads as a space).
    Without `comments` or `bare_data`, no comments or `data: ` with its space."""
    events, _ = decode(body)
    data_field = b"data:" if bare_data else b"data: "
    out = [b": OPENROUTER PROCESSING\r\n\r\n"] if comments else []
    for n, event in enumerate(events):
        if comments and n and n % 16 == 0:
            out.append(b": keep-alive\r\n\r\n")
        if event.event is not None:
            out.append(b"event:" + event.event.encode() + b"\r\n")
        data = event.data
        if n % 8 == 7 and data.startswith(b"{"):
            data = b"{\r\n" + data_field + data[1:]
        out.append(data_field + data + b"\r\n\r\n")
    return b"".join(out)


def chatcap_timed(body: bytes, reads: list[tuple[float, int]]) -> Reconstruction:
    """chatcap on an addon capture: the same body with per-read arrival times, so timing is computed too."""
    response = Response(status=200, headers=EVENT_STREAM, body=body, chunks=reads)
    return Exchange(id="bench", source="bench", format="sse-text", request=None, response=response).reconstruct()


def chatcap_parse(body: bytes) -> Reconstruction:
    """chatcap from raw bytes, as a user calls it."""
    return analyzer.parse(body)[0].reconstruct()


def openai_sdk(body: bytes) -> ChatCompletion:
    """The SDK's streaming path over one body, as `Stream.__stream__` and `ChatCompletionStream` run it
    (openai/_streaming.py, openai/lib/streaming/chat/_completions.py), minus the HTTP transport."""
    decoder = SSEDecoder()  # what `client._make_sse_decoder()` returns
    state = ChatCompletionStreamState()
    for sse in decoder.iter_bytes(iter((body,))):  # httpx's response.iter_bytes(), here one read
        if sse.data.startswith("[DONE]"):
            break
        data = sse.json()  # json.loads
        if is_mapping(data) and data.get("error"):
            raise RuntimeError(f"error event in the corpus: {data}")
        chunk = construct_type(type_=ChatCompletionChunk, value=data)  # _process_response_data, no strict validation
        for _event in state.handle_chunk(chunk):  # ChatCompletionStream.__stream__ yields these
            pass
    try:
        return state.get_final_completion()
    except openai.LengthFinishReasonError as exc:  # raised for finish_reason "length"; the completion is built
        return exc.completion


def run_each(peer: Callable[[bytes], object], bodies: Sequence[bytes]) -> Callable[[], None]:
    def work() -> None:
        for body in bodies:
            peer(body)

    return work


def parse_each(loads: Callable[[bytes], object], payloads: Sequence[bytes]) -> Callable[[], None]:
    def work() -> None:
        for payload in payloads:
            loads(payload)

    return work


# Measuring.


@dataclass(slots=True)
class Row:
    peer: str
    bytes: int
    chunks: int
    exchanges: int
    seconds: float
    runs: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds


def measure(
    name: str, work: Callable[[], None], repeats: int, bodies: Sequence[bytes], chunks: int, note: str = ""
) -> Row:
    print(f"  {name} ...", end="", flush=True, file=sys.stderr)
    seconds, runs = best_of(repeats, work)
    print(f" {seconds:.2f} s", file=sys.stderr)
    return Row(name, sum(map(len, bodies)), chunks, len(bodies), seconds, runs, note)


# The sanity check.


def _sdk_view(completion: ChatCompletion) -> dict[str, Any]:
    choice = completion.choices[0]
    message = choice.message
    return {
        "content": message.content,
        "reasoning": getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None),
        "tool_calls": [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []],
        "finish_reason": choice.finish_reason,
        "usage": completion.usage.model_dump(exclude_none=True) if completion.usage else None,
    }


def _chatcap_view(rec: Reconstruction) -> dict[str, Any]:
    choice = rec.choices[0]
    return {
        "content": choice.content,
        "reasoning": choice.reasoning,
        "tool_calls": [(c.id, c.name, c.arguments) for c in choice.tool_calls],
        "finish_reason": choice.finish_reason,
        "usage": rec.usage.raw if rec.usage else None,
    }


def sanity_check(
    bodies: Sequence[bytes], kinds: Sequence[str], counts: Sequence[int] | None = None, per_kind: int = 12
) -> int:
    """chatcap (all three entry points) and the SDK must reconstruct the same exchange from each sampled
    body, with one chunk per JSON payload (`counts`: how many each body holds, when not the clean
    corpus's); exits with the first disagreement. Returns the sample size."""
    sample: list[int] = []
    for kind in dict.fromkeys(kinds):
        matching = [n for n, k in enumerate(kinds) if k == kind]
        sample += matching[:: max(1, len(matching) // per_kind)][:per_kind]
    for n in sample:
        body = bodies[n]
        rec = chatcap(body)
        ours, theirs = _chatcap_view(rec), _sdk_view(openai_sdk(body))
        problems = [key for key in ours if ours[key] != theirs[key]]
        if not ours["content"] and not ours["reasoning"] and not ours["tool_calls"]:
            problems.append("nothing reconstructed")
        count = counts[n] if counts is not None else len(corpus.payloads(body))
        if len(rec.chunks) != count:
            problems.append(f"{len(rec.chunks)} chunks, the body has {count}")
        if _chatcap_view(chatcap_parse(body)) != ours:
            problems.append("analyzer.parse gives a different reconstruction")
        timed = chatcap_timed(body, read_times(body))
        if _chatcap_view(timed) != ours or timed.timing is None or timed.timing.source != "chunks":
            problems.append("per-read times change the reconstruction or give no timing")
        if problems:
            detail = "; ".join(
                f"{key}: chatcap {ours.get(key)!r:.80} / SDK {theirs.get(key)!r:.80}" for key in problems if key in ours
            )
            sys.exit(f"sanity check failed on exchange {n} ({kinds[n]}): {', '.join(problems)}\n{detail}")
    return len(sample)


# Recorded streams (optional, --real DIR).


def real_streams(directory: Path) -> list[tuple[str, bytes]]:
    """Recorded chat/completions bodies: the *.sse files whose name says openai_chat, else every *.sse file."""
    files = sorted(directory.glob("*openai_chat*.sse")) or sorted(directory.glob("*.sse"))
    return [(path.name, path.read_bytes()) for path in files]


def json_payloads(body: bytes) -> list[bytes]:
    """Every `data:` line holding a JSON object, whatever the line ends and event names."""
    payloads = []
    for line in body.splitlines():
        if line.startswith(b"data:"):
            value = line[5:].strip()
            if value.startswith(b"{"):
                payloads.append(value)
    return payloads


def measure_real(streams: list[tuple[str, bytes]], repeats: int) -> dict[str, Any]:
    """chatcap, the orjson floor and the SDK per recorded stream (each timed over enough loops to
    take ~20 ms); streams the SDK raises on are left out of every peer's total."""
    rows = []
    for name, body in streams:
        payloads = json_payloads(body)
        try:
            openai_sdk(body)
        except Exception as exc:  # the SDK gives up on some real streams (errors mid-stream, odd shapes)
            rows.append({"stream": name, "bytes": len(body), "sdk_error": type(exc).__name__})
            continue
        loops = max(1, 400_000 // max(1, len(body)))
        ours, _ = best_of(repeats, lambda body=body, loops=loops: [chatcap(body) for _ in range(loops)] and None)
        floor, _ = best_of(repeats, lambda payloads=payloads, loops=loops: [orjson.loads(p) for _ in range(loops) for p in payloads] and None)  # fmt: skip
        sdk, _ = best_of(1, lambda body=body: openai_sdk(body) and None)
        rows.append({"stream": name, "bytes": len(body), "chatcap_s": ours / loops, "floor_s": floor / loops, "sdk_s": sdk})  # fmt: skip
    return {"streams": rows}


def print_real(real: dict[str, Any], directory: Path) -> None:
    timed = [row for row in real["streams"] if "sdk_error" not in row]
    failed = [row["stream"] for row in real["streams"] if "sdk_error" in row]
    size = sum(row["bytes"] for row in timed) / 1e6
    ours, floor, sdk = (sum(row[key] for row in timed) for key in ("chatcap_s", "floor_s", "sdk_s"))
    real["totals"] = {"bytes": size * 1e6, "chatcap_mb_per_s": size / ours, "floor_mb_per_s": size / floor, "sdk_mb_per_s": size / sdk}  # fmt: skip
    print(f"\nrecorded streams in {directory}: {len(timed)} streams, {size:.2f} MB"
          f"{f' ({len(failed)} more the SDK raises on, left out)' if failed else ''}")  # fmt: skip
    print(f"  chatcap {size / ours:.1f} MB/s, orjson floor {size / floor:.1f} MB/s ({floor / ours:.2f}× floor), "
          f"SDK {size / sdk:.2f} MB/s ({sdk / ours:.1f}× SDK)")  # fmt: skip
    print("  furthest from the floor:")
    for row in sorted(timed, key=lambda row: row["floor_s"] / row["chatcap_s"])[:8]:
        print(f"    {row['floor_s'] / row['chatcap_s']:5.2f}× floor {row['sdk_s'] / row['chatcap_s']:6.1f}× SDK"
              f"  {row['bytes'] / 1e3:7.1f} kB  {row['stream']}")  # fmt: skip


# Per stream shape.


def by_shape(
    main_corpus: corpus.Corpus, side: corpus.Corpus, repeats: int, every: int, clean: dict[bytes, list[bytes]]
) -> dict[str, Any]:
    """chatcap against the floor and the SDK for each stream shape, printed and returned (`clean`:
    the payloads of each body that is not framed as the clean corpus is)."""
    print(f"\nby stream shape (chatcap and floor best of {repeats}, SDK best of 1 on every {every}th exchange; "
          f"openrouter is a side corpus of {side.size / 1e6:.0f} MB, not in the table above):")  # fmt: skip
    print(
        f"{'shape':<11} {'share':>6} {'chatcap MB/s':>13} {'floor MB/s':>11} {'× floor':>8} {'SDK MB/s':>9} {'× SDK':>7}"
    )
    shapes: dict[str, Any] = {}
    for kind, source in [(kind, main_corpus) for kind in corpus.MAIN_MIX] + [("openrouter", side)]:
        group = [body for body, body_kind in zip(source.bodies, source.kinds, strict=True) if body_kind == kind]
        size = sum(map(len, group))
        ours, _ = best_of(repeats, run_each(chatcap, group))
        floor, _ = best_of(
            repeats, parse_each(orjson.loads, [p for body in group for p in clean.get(body) or corpus.payloads(body)])
        )
        sdk_group = group[::every] if source is main_corpus else group[:: max(1, len(group) // 40)]
        sdk, _ = best_of(1, run_each(openai_sdk, sdk_group))
        sdk_rate = sum(map(len, sdk_group)) / 1e6 / sdk
        shapes[kind] = {"bytes": size, "chatcap_mb_per_s": size / 1e6 / ours, "floor_mb_per_s": size / 1e6 / floor, "sdk_mb_per_s": sdk_rate}  # fmt: skip
        share = f"{size / main_corpus.size:.0%}" if source is main_corpus else "side"
        print(f"{kind:<11} {share:>6} {size / 1e6 / ours:13.1f} {size / 1e6 / floor:11.1f} {floor / ours:8.2f}"
              f" {sdk_rate:9.2f} {size / 1e6 / ours / sdk_rate:7.1f}")  # fmt: skip
    return shapes


# Reporting.


def machine() -> dict[str, Any]:
    return describe(
        "analyzer",
        {
            "chatcap": analyzer.__version__,
            "openai": openai.__version__,
            "pydantic": pydantic.VERSION,
            "msgspec": msgspec.__version__,
            "orjson": orjson.__version__,
        },
    )


def table(rows: list[Row], floor: float, sdk: float) -> str:
    lines = [f"{'peer':<34} {'MB':>7} {'MB/s':>8} {'chunks/s':>11} {'time s':>8} {'× floor':>8} {'× SDK':>7}"]
    for row in rows:
        lines.append(
            f"{row.peer:<34} {row.bytes / 1e6:7.1f} {row.mb_per_s:8.1f} {row.chunks_per_s:11,.0f} {row.seconds:8.2f}"
            f" {row.mb_per_s / floor:8.2f} {row.mb_per_s / sdk:7.1f}"
        )
    return "\n".join(lines)


def profile(bodies: Sequence[bytes], limit: int = 25) -> str:
    """cProfile over one chatcap pass: the functions with the most time of their own."""
    profiler = cProfile.Profile()
    gc.collect()
    profiler.runcall(run_each(chatcap, bodies))
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stats.dump_stats(RESULTS / "chatcap.pstats")
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, help="corpus size in MB of bodies (default 200; 20 with --quick)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per peer, the best counts (default 3; 1 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="a 20 MB corpus for a smoke run")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument(
        "--sdk-every", type=int, default=10, help="the SDK runs on every Nth exchange (default 10; 1 = all)"
    )
    parser.add_argument("--profile", action="store_true", help="also profile chatcap's path with cProfile")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is not met")
    parser.add_argument("--real", type=Path, metavar="DIR", help="also measure the recorded *.sse bodies in DIR")
    parser.add_argument(
        "--framing",
        choices=("clean", "real"),
        default="clean",
        help="clean `data: {...}` LF LF events (default), or the same events framed as real servers frame them",
    )
    args = parser.parse_args(argv)
    # The SDK's pydantic models warn when a provider sends content as a list of parts (Mistral).
    warnings.filterwarnings("ignore", message="Pydantic serializer warnings")
    args.size_mb = args.size_mb or (20.0 if args.quick else 200.0)
    repeats = args.repeats or (1 if args.quick else 3)

    started = time.perf_counter()
    info = machine()
    print(header(info))

    main_corpus = corpus.build(args.size_mb, args.seed)
    bodies, kinds = main_corpus.bodies, main_corpus.kinds
    payloads = [corpus.payloads(body) for body in bodies]
    flat = [payload for events in payloads for payload in events]
    chunks = len(flat)
    mix = ", ".join(f"{kinds.count(kind):,} {kind}" for kind in corpus.MAIN_MIX)
    print(
        f"corpus   {len(bodies):,} exchanges ({mix}), {main_corpus.size / 1e6:,.1f} MB, {chunks:,} chunks; seed {args.seed}"
    )
    how = "read from the cache" if main_corpus.cached else f"generated in {time.perf_counter() - started:.1f} s"
    print(f"         {main_corpus.path.relative_to(HERE.parent)} ({how})")

    side = corpus.build(max(1.0, args.size_mb / 20), args.seed, corpus.OPENROUTER_MIX)
    counts = side_counts = None
    clean: dict[bytes, list[bytes]] = {}  # a framed body's payloads (and so the floors): the clean body's
    if args.framing == "real":
        framed = [real_framing(body) for body in bodies]
        clean = dict(zip(framed, payloads, strict=True))
        bodies = framed
        main_corpus = corpus.Corpus(
            bodies, kinds, main_corpus.seed, main_corpus.mix, main_corpus.path, main_corpus.cached
        )
        side_payloads = [corpus.payloads(body) for body in side.bodies]
        side_counts = list(map(len, side_payloads))
        side_framed = [real_framing(body) for body in side.bodies]
        clean.update(zip(side_framed, side_payloads, strict=True))
        side = corpus.Corpus(side_framed, side.kinds, side.seed, side.mix, side.path, side.cached)
        counts = [len(events) for events in payloads]
        print(
            f"framing  real: CRLF, comments, `data:` without its space, multi-line data ({main_corpus.size / 1e6:,.1f} MB)"
        )
    sampled = sanity_check(bodies, kinds, counts) + sanity_check(side.bodies, side.kinds, side_counts, per_kind=6)
    print(f"sanity   chatcap (all three entry points) and the SDK agree on {sampled} sampled exchanges", flush=True)

    reads = [read_times(body) for body in bodies]

    def timed_each() -> None:
        for body, body_reads in zip(bodies, reads, strict=True):
            chatcap_timed(body, body_reads)

    every = max(1, args.sdk_every)
    sdk_bodies = bodies[::every]
    sdk_chunks = sum(len(events) for events in payloads[::every])
    sdk_name = "openai SDK" if every == 1 else f"openai SDK (every {every}th exchange)"
    print(f"\nbest of {repeats}; timing:", file=sys.stderr, flush=True)
    rows = [
        measure("orjson floor", parse_each(orjson.loads, flat), repeats, bodies, chunks),
        measure("msgspec floor (untyped)", parse_each(msgspec.json.decode, flat), repeats, bodies, chunks),
        measure("chatcap", run_each(chatcap, bodies), repeats, bodies, chunks),
        measure("chatcap (analyzer.parse)", run_each(chatcap_parse, bodies), repeats, bodies, chunks),
        measure("chatcap (with per-read times)", timed_each, repeats, bodies, chunks),
        measure(sdk_name, run_each(openai_sdk, sdk_bodies), repeats, sdk_bodies, sdk_chunks,
                note="" if every == 1 else f"measured on every {every}th exchange; its MB/s stands for the corpus"),
    ]  # fmt: skip
    rate = {row.peer: row.mb_per_s for row in rows}
    floor, sdk, ours = rate["orjson floor"], rate[sdk_name], rate["chatcap"]
    print(f"\n{table(rows, floor, sdk)}")
    if every > 1:
        estimate = main_corpus.size / 1e6 / sdk
        print(
            f"  SDK: {len(sdk_bodies):,} of {len(bodies):,} exchanges measured; at that rate the whole corpus takes ~{estimate:.0f} s"
        )
    verdicts = {
        "floor": (ours / floor, ours / floor >= FLOOR_TARGET),
        "sdk": (ours / sdk, ours / sdk >= SDK_TARGET),
    }
    print("\ntargets  chatcap ≥ 0.5× the orjson floor: "
          f"{verdicts['floor'][0]:.3f}× — {'met' if verdicts['floor'][1] else 'NOT met'}")  # fmt: skip
    print(
        f"         chatcap ≥ 10× the openai SDK:    {verdicts['sdk'][0]:.1f}× — {'met' if verdicts['sdk'][1] else 'NOT met'}"
    )

    shapes = by_shape(main_corpus, side, repeats, every, clean)
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": info | {"load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "settings": {
            "size_mb": args.size_mb,
            "repeats": repeats,
            "seed": args.seed,
            "sdk_every": every,
            "framing": args.framing,
        },
        "corpus": {
            "path": str(main_corpus.path.relative_to(HERE.parent)),
            "exchanges": len(bodies),
            "bytes": main_corpus.size,
            "chunks": chunks,
            "kinds": {kind: kinds.count(kind) for kind in corpus.MAIN_MIX},
            "generator_version": corpus.GENERATOR_VERSION,
        },
        "sanity_checked_exchanges": sampled,
        "peers": [asdict(row) | {"mb_per_s": row.mb_per_s, "chunks_per_s": row.chunks_per_s} for row in rows],
        "targets": {
            "chatcap_vs_floor": {"target": FLOOR_TARGET, "ratio": verdicts["floor"][0], "met": verdicts["floor"][1]},
            "chatcap_vs_sdk": {"target": SDK_TARGET, "ratio": verdicts["sdk"][0], "met": verdicts["sdk"][1]},
        },
        "by_shape": shapes,
    }
    if args.real:
        report["real"] = measure_real(real_streams(args.real), repeats)
        print_real(report["real"], args.real)
    if args.profile:
        print("\nchatcap profile (cProfile, one pass over the corpus, by own time):")
        text = profile(bodies)
        print(text)
        report["profile_top"] = text
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"reconstruction-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    (RESULTS / "latest.json").write_text(path.read_text())
    print(f"\nresults  {path.relative_to(HERE.parent)} ({time.perf_counter() - started:.0f} s in all)")
    return 1 if args.check and not all(met for _, met in verdicts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
