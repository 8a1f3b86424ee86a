"""Live-capture overhead: what the chatcap addon adds to streamed chat/completions responses, in one run.

    python benchmarks/proxy.py                  # 1, 50, 200 concurrent streams of 2,000 chunks with no gaps, 3 repeats
    python benchmarks/proxy.py --quick          # 1, 50 concurrent streams of 100 chunks, 1 repeat
    python benchmarks/proxy.py --chunks 500 --concurrency 1,50,200 --gap-ms 2   # a paced upstream
    python benchmarks/proxy.py --addon OTHER/addon.py   # another copy of the addon (say, an older commit's)
    python benchmarks/proxy.py --profile        # also: cProfile of the mitmdump running the addon

Three paths, measured side by side (rounds interleaved, so a busy moment hits all of them; a
repeat is one round of each path, back to back):

- direct              httpx → upstream
- mitmdump            httpx → mitmdump (regular proxy mode) with a three-line addon that sets
                      `flow.response.stream = True` for the same flows: plain streaming, the peer
- mitmdump + chatcap  httpx → mitmdump -s addons/chatcap.py, which records every exchange

Each mitmdump runs in a session of its own (`start_new_session`): the kernel's autogroup
scheduling gives each session its own share of the CPU, so both proxies get the same share
beside the client and the upstream, as two proxies started from two terminals would.

The upstream is `analyzer.replay.serve` on 127.0.0.1 in a child process (on 2 cores, 200 upstream
threads under the client's GIL would make the client the bottleneck of every path), replaying a
scripted chat/completions stream: the first event at --first-ms, then one ~170-byte
chat.completion.chunk event every --gap-ms (by default none: a fast upstream, which makes the
proxy the bottleneck, so any cost of the addon shows). The client is asyncio httpx, one
AsyncClient of one kept-alive connection per concurrent stream (httpcore's pool slows down with
many connections), the connections opened by a warmup round. Where fewer than 20 streams run at
once, each client asks for its streams one after another until a round holds 20.

Per stream the client notes when each event's last byte arrived. Reported per path and concurrency:
time to first chunk (TTFC, request sent → first event whole), total time (request sent → last byte),
throughput (events delivered / wall time of the round), per-chunk lateness (arrival − the time the
upstream was scheduled to send it, counted from when the client sent the request: so it includes
the request's way to the upstream) at p50/p99, and the proxy's CPU time per event. Every body must
arrive byte for byte, and the addon's capture must hold one complete exchange per request with the
whole body and its reads, so a broken proxy or addon cannot look fast.

Targets (#21), chatcap over plain streaming mitmdump: under 1 ms more per chunk at p99 at one
stream, under 5 % less throughput at every concurrency, each judged per repeat (the two proxies'
rounds of one repeat) and reported as the range over the repeats, the median against the target.
On a fast upstream lateness accumulates along a stream, so the p99 difference there is mostly the
difference in how long a stream takes. The proxy's CPU counts its children (the addon's writer
process) too, per round and over the whole run until the last record is written. All traffic
stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import multiprocessing
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import mitmproxy.version
import orjson
from machine import describe, header

import analyzer
from analyzer import capture, replay
from analyzer.model import Exchange, Request, Response

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
ADDON = ROOT / "addons" / "chatcap.py"
MITMDUMP = Path(sys.executable).with_name("mitmdump")
P99_TARGET_MS = 1.0  # chatcap adds < 1 ms per chunk at p99 over plain streaming mitmdump
THROUGHPUT_TARGET = 0.05  # ... and costs < 5 % of its throughput
STREAMS_A_ROUND = 20  # a round asks for at least this many streams, one after another where fewer run at once
SATURATED = 0.9  # a path delivering less than this share of the offered events/s is saturated

# The peer: mitmdump streaming the same flows, recording nothing.
PLAIN_STREAMING_ADDON = """\
def responseheaders(flow):
    if flow.request.method == "POST" and flow.request.path.split("?", 1)[0].endswith("/chat/completions"):
        flow.response.stream = True
"""

PATHS = ("direct", "mitmdump", "mitmdump + chatcap")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the addon's writer process is a child of its mitmdump)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo += [int(child) for child in (task / "children").read_text().split()]
    return found


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU time of `pid` and of each of its descendants, by process."""
    times = {}
    for member in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):  # a process that just ended
            times[member] = cpu_seconds(member)
    return times


def cpu_seconds(pid: int) -> float:
    """CPU time of a process's live threads, in nanoseconds from Linux's schedstat (the threads
    that matter live through a round: connections are kept alive); without schedstat, user +
    system time from /proc/<pid>/stat in clock ticks (10 ms)."""
    tasks = Path(f"/proc/{pid}/task")
    if not (tasks / str(pid) / "schedstat").exists():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    total = 0
    for task in tasks.iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


# The upstream: a scripted stream, served by the replay server in a child process.


@dataclass(frozen=True, slots=True)
class Script:
    """One scripted stream: what the client sends, what it must get back, and when each event is due."""

    name: str
    request_body: bytes
    body: bytes
    event_ends: tuple[int, ...]  # byte offset in `body` where each event ends
    due_s: tuple[float, ...]  # when the upstream sends each event, seconds after the request arrives

    @property
    def events(self) -> int:
        return len(self.event_ends)


def scripted_stream(
    name: str, events: int, gap_ms: float, first_ms: float, model: str = "gpt-4o"
) -> tuple[Script, Exchange]:
    """A chat/completions stream of `events` SSE events (content deltas, a finish with usage, [DONE]),
    the first sent at `first_ms`, then one every `gap_ms` (after tests/e2e/harness.py). The request's
    message names it, so the replay server tells streams apart by their messages."""
    words = max(1, events - 2)
    payloads = []
    for n in range(words):
        delta = {"role": "assistant", "content": ""} if n == 0 else {"content": f" w{n}"}
        payloads.append({"id": "chatcmpl-7b", "object": "chat.completion.chunk",
                         "created": 1_800_000_000, "model": model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})  # fmt: skip
    payloads.append({"id": "chatcmpl-7b", "object": "chat.completion.chunk",
                     "created": 1_800_000_000, "model": model,
                     "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 12, "completion_tokens": words, "total_tokens": 12 + words}})  # fmt: skip
    pieces = [b"data: " + orjson.dumps(payload) + b"\n\n" for payload in payloads] + [b"data: [DONE]\n\n"]
    ends, end = [], 0
    for piece in pieces:
        end += len(piece)
        ends.append(end)
    due_ms = [first_ms + n * gap_ms for n in range(len(pieces))]
    body = b"".join(pieces)
    request_body = orjson.dumps({"model": model, "stream": True, "stream_options": {"include_usage": True},
                                 "messages": [{"role": "user", "content": f"{name}: say {words} words."}]})  # fmt: skip
    request = Request(method="POST", url="http://upstream/v1/chat/completions", body=request_body)
    response = Response(status=200, reason="OK", headers=[("content-type", "text/event-stream; charset=utf-8")],
                        body=body, chunks=list(zip(due_ms, ends, strict=True)))  # fmt: skip
    exchange = Exchange(id=f"{name}#1", source="<bench>", format="chatcap-jsonl", request=request, response=response)
    script = Script(name, request_body, body, tuple(ends), tuple(t / 1000 for t in due_ms))
    return script, exchange


def _serve_upstream(exchanges: list[Exchange], ready: Any) -> None:
    """Child process: the replay server on a free loopback port, reported through `ready`."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Two http.server defaults that real LLM servers do not share: a listen backlog of 5 (a burst of
    # 200 connects would wait out SYN retries) and Nagle's algorithm, which holds each small event
    # until the previous one is ACKed; with delayed ACKs, a keep-alive connection's events then arrive
    # in ~20 ms bursts. Set here, in this child process only.
    replay.ReplayServer.request_queue_size = 1024
    replay._Handler.disable_nagle_algorithm = True
    server = replay.serve(exchanges, "127.0.0.1", 0, speed=1.0)
    ready.send(server.server_address[1])
    server.serve_forever()


@dataclass(slots=True)
class Upstream:
    process: multiprocessing.process.BaseProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(10)


def start_upstream(exchanges: list[Exchange]) -> Upstream:
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=_serve_upstream, args=(exchanges, sending), name="replay-upstream", daemon=True)
    process.start()
    if not receiving.poll(30):
        process.terminate()
        raise RuntimeError("the replay upstream did not start within 30 s")
    return Upstream(process, receiving.recv())


# The proxies.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    try:
        capture.wait_for_port(port, process)
    except capture.CaptureError as exc:
        raise RuntimeError(f"mitmdump: {exc}; see {log}") from None


@dataclass(slots=True)
class Proxy:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    stats: Path | None  # cProfile output, when profiled

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM, as a user's Ctrl-C would: mitmdump shuts down and the addon's `done` runs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_proxy(name: str, workdir: Path, script: Path, *options: str, profile: bool = False) -> Proxy:
    """mitmdump on a free loopback port with its own confdir, `script` loaded; waits until it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    arguments = ["--listen-host", "127.0.0.1", "--listen-port", str(port), "--set", f"confdir={workdir / 'conf'}",
                 "-s", str(script), *options]  # fmt: skip
    stats = workdir / "mitmdump.pstats" if profile else None
    if stats is None:
        command = [str(MITMDUMP), *arguments]
    else:  # cProfile.run catches the SystemExit of a SIGTERM shutdown and still writes the stats
        code = ("import cProfile, sys; from mitmproxy.tools.main import mitmdump; "
                f"sys.argv = ['mitmdump', *{arguments!r}]; cProfile.run('mitmdump()', {str(stats)!r})")  # fmt: skip
        command = [sys.executable, "-c", code]
    log = workdir / "mitmdump.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)  # fmt: skip
    proxy = Proxy(name, process, port, log, stats)
    try:
        wait_for_port(port, process, log)
    except BaseException:
        proxy.stop()
        raise
    return proxy


# The client.

REQUEST_HEADERS = {
    "content-type": "application/json",
    "accept": "text/event-stream",
    "authorization": "Bearer sk-bench-0123456789abcdefghijklmnopqrstuvwxyzABCDEF",  # not a key; the addon redacts it
    "user-agent": "chatcap-bench/1",
}


@dataclass(slots=True)
class Stream:
    """One stream as the client saw it: perf_counter times."""

    sent: float
    arrivals: list[float]  # when each event's last byte arrived
    ended: float
    intact: bool  # the body arrived byte for byte


async def fetch(client: httpx.AsyncClient, url: str, script: Script) -> Stream:
    ends, arrivals, parts, received = script.event_ends, [], [], 0
    sent = time.perf_counter()
    async with client.stream("POST", url, content=script.request_body, headers=REQUEST_HEADERS) as response:
        async for data in response.aiter_raw():
            now = time.perf_counter()
            parts.append(data)
            received += len(data)
            while len(arrivals) < len(ends) and ends[len(arrivals)] <= received:
                arrivals.append(now)
        ended = time.perf_counter()
        intact = response.status_code == 200 and b"".join(parts) == script.body
    return Stream(sent, arrivals, ended, intact)


def new_client(proxy: Proxy | None) -> httpx.AsyncClient:
    """A client of one kept-alive connection. One per concurrent stream: httpcore 1.0's pool is
    O(connections²) per request added or finished (`AsyncConnectionPool._assign_requests_to_connections`),
    and one pool of 200 connections makes the client, not the proxy, the bottleneck."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=3600)
    return httpx.AsyncClient(
        proxy=proxy.url if proxy else None,
        limits=limits,
        timeout=httpx.Timeout(300.0, pool=300.0),
        trust_env=False,  # never an *_PROXY from the environment: direct means direct
    )


@dataclass(slots=True)
class Round:
    path: str
    concurrency: int
    wall_s: float
    streams: list[Stream]
    cpu_s: dict[str, float]  # CPU time of the client, the upstream and (when there is one) the proxy
    proxy_children_cpu_s: float  # of the proxy's: its child processes' (the addon's writer)


async def run_round(path: str, clients: Sequence[httpx.AsyncClient], upstream: Upstream, script: Script,
                    concurrency: int, proxy: Proxy | None) -> Round:  # fmt: skip
    """`concurrency` streams at once, one per client."""
    pids = {"client": os.getpid(), "upstream": upstream.process.pid} | ({"proxy": proxy.process.pid} if proxy else {})
    cpu_before = {role: tree_cpu_seconds(pid) for role, pid in pids.items()}
    started = time.perf_counter()

    async def in_turn(client: httpx.AsyncClient) -> list[Stream]:
        return [await fetch(client, upstream.url, script) for _ in range(turns)]

    turns = streams_in_turn(concurrency)
    streams = [
        s for per_client in await asyncio.gather(*(in_turn(c) for c in clients[:concurrency])) for s in per_client
    ]
    wall = time.perf_counter() - started
    cpu, children = {}, 0.0
    for role, pid in pids.items():  # a process started during the round counts from zero
        after = tree_cpu_seconds(pid) if role != "client" else {pid: cpu_seconds(pid)}
        used = {member: seconds - cpu_before[role].get(member, 0.0) for member, seconds in after.items()}
        cpu[role] = sum(used.values())
        if role == "proxy":
            children = cpu[role] - used.get(pid, 0.0)
    broken = [s for s in streams if not s.intact or len(s.arrivals) != script.events]
    if broken:
        raise RuntimeError(f"{path}: {len(broken)} of {len(streams)} streams did not arrive intact")
    return Round(path, concurrency, wall, list(streams), cpu, children)


def streams_in_turn(concurrency: int) -> int:
    """Streams each client asks for one after another in a round: at least STREAMS_A_ROUND
    in all, so that a round at one stream lasts long enough to measure."""
    return max(1, math.ceil(STREAMS_A_ROUND / concurrency))


# Figures.


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values), max(1, math.ceil(q / 100 * len(sorted_values)))) - 1]


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50)


@dataclass(slots=True)
class Figures:
    """One path at one concurrency, over all its rounds; times in ms."""

    path: str
    concurrency: int
    rounds: int
    ttfc_p50_ms: float
    ttfc_p99_ms: float
    total_p50_ms: float
    total_p99_ms: float
    wall_s: float  # median round
    events_per_s: float  # median round
    offered_events_per_s: float  # what the upstream sends when nobody falls behind
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float
    proxy_cpu_us_per_event: float | None  # over all rounds, its child processes included
    proxy_children_cpu_us_per_event: float  # of which its child processes'
    cpu_us_per_event: dict[str, float]  # client, upstream, proxy and all: CPU time over all rounds per event
    round_events_per_s: list[float] = field(default_factory=list)
    round_late_p99_ms: list[float] = field(default_factory=list)


def lateness_ms(stream: Stream, script: Script) -> list[float]:
    """Per event: when it arrived − when the upstream was due to send it, both from the request's sending."""
    return [(arrival - stream.sent - due) * 1000 for arrival, due in zip(stream.arrivals, script.due_s, strict=True)]


def figures(rounds: list[Round], script: Script) -> Figures:
    ttfc = sorted((s.arrivals[0] - s.sent) * 1000 for r in rounds for s in r.streams)
    total = sorted((s.ended - s.sent) * 1000 for r in rounds for s in r.streams)
    late = sorted(ms for r in rounds for s in r.streams for ms in lateness_ms(s, script))
    rates = [len(r.streams) * script.events / r.wall_s for r in rounds]
    round_p99 = [percentile(sorted(ms for s in r.streams for ms in lateness_ms(s, script)), 99) for r in rounds]
    events = sum(len(r.streams) for r in rounds) * script.events
    cpu = {role: sum(r.cpu_s.get(role, 0.0) for r in rounds) / events * 1e6 for role in rounds[0].cpu_s}
    return Figures(
        path=rounds[0].path,
        concurrency=rounds[0].concurrency,
        rounds=len(rounds),
        ttfc_p50_ms=percentile(ttfc, 50),
        ttfc_p99_ms=percentile(ttfc, 99),
        total_p50_ms=percentile(total, 50),
        total_p99_ms=percentile(total, 99),
        wall_s=median([r.wall_s for r in rounds]),
        events_per_s=median(rates),
        offered_events_per_s=rounds[0].concurrency * script.events / script.due_s[-1],
        late_p50_ms=percentile(late, 50),
        late_p99_ms=percentile(late, 99),
        late_max_ms=late[-1],
        proxy_cpu_us_per_event=cpu.get("proxy"),
        proxy_children_cpu_us_per_event=sum(r.proxy_children_cpu_s for r in rounds) / events * 1e6,
        cpu_us_per_event=cpu | {"all": sum(cpu.values())},
        round_events_per_s=rates,
        round_late_p99_ms=round_p99,
    )


def verify_capture(directory: Path, sent: dict[Script, int]) -> dict[str, Any]:
    """The addon's capture must hold one complete exchange per request sent, each with the whole body
    and reads that cover it."""
    files = sorted(directory.glob("*.jsonl"))
    by_body = {script.body: script for script in sent}
    recorded = dict.fromkeys(sent, 0)
    reads: dict[Script, list[int]] = {script: [] for script in sent}
    problems: list[str] = []
    lines = 0
    for path in files:
        with path.open("rb") as handle:
            for line in handle:
                lines += 1
                entry = orjson.loads(line)
                response = entry["response"]
                script = by_body.get(response["content"].get("text", "").encode("utf-8"))
                if script is None:
                    problems.append(f"exchange {lines}: the recorded body is none of the bodies sent")
                elif not response.get("_chunks") or response["_chunks"][-1][1] != len(script.body):
                    problems.append(f"exchange {lines}: the recorded reads do not cover the body")
                elif not entry["_chatcap"]["complete"] or entry.get("_error"):
                    problems.append(f"exchange {lines}: recorded as incomplete ({entry.get('_error')})")
                else:
                    recorded[script] += 1
                    reads[script].append(len(response["_chunks"]))
    for script, count in sent.items():
        if recorded[script] != count:
            problems.append(f"{script.name}: {recorded[script]} whole exchanges recorded, {count} requests sent")
    return {"files": len(files), "lines": lines, "recorded": {s.name: n for s, n in recorded.items()},
            "sent": {s.name: n for s, n in sent.items()}, "problems": problems[:10], "ok": not problems,
            "reads_per_event": {s.name: sum(n) / len(n) / s.events for s, n in reads.items() if n}}  # fmt: skip


def settle(directory: Path, lines: int, timeout: float = 120.0) -> None:
    """Wait until the capture files in `directory` hold `lines` lines (or `timeout` passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(path.read_bytes().count(b"\n") for path in directory.glob("*.jsonl")) >= lines:
            return
        time.sleep(0.2)


def profile_text(stats: Path, limit: int = 30) -> str:
    out = io.StringIO()
    pstats.Stats(str(stats), stream=out).sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def machine() -> dict[str, Any]:
    return describe(
        "addons",
        {
            "chatcap": analyzer.__version__,
            "mitmproxy": mitmproxy.version.VERSION,
            "httpx": httpx.__version__,
            "orjson": orjson.__version__,
        },
    )


def table(rows: list[Figures]) -> str:
    header = (f"{'streams':>7}  {'path':<19} {'TTFC p50':>9} {'TTFC p99':>9} {'total p50':>10} {'total p99':>10}"
              f" {'events/s':>10} {'late p50':>9} {'late p99':>9} {'proxy CPU':>10} {'all CPU':>9}")  # fmt: skip
    units = (f"{'':>7}  {'':<19} {'ms':>9} {'ms':>9} {'ms':>10} {'ms':>10} {'':>10} {'ms':>9} {'ms':>9}"
             f" {'µs/event':>10} {'µs/event':>9}")  # fmt: skip
    lines = [header, units]
    for row in rows:
        cpu = f"{row.proxy_cpu_us_per_event:10.1f}" if row.proxy_cpu_us_per_event is not None else f"{'—':>10}"
        streams = str(row.concurrency) if row.path == PATHS[0] else ""
        rate = f"{row.events_per_s:,.0f}{'*' if row.events_per_s < SATURATED * row.offered_events_per_s else ' '}"
        lines.append(f"{streams:>7}  {row.path:<19} {row.ttfc_p50_ms:9.2f} {row.ttfc_p99_ms:9.2f} {row.total_p50_ms:10.1f}"
                     f" {row.total_p99_ms:10.1f} {rate:>10} {row.late_p50_ms:9.2f} {row.late_p99_ms:9.2f} {cpu} {row.cpu_us_per_event['all']:9.1f}")  # fmt: skip
    return "\n".join(lines)


def overhead(plain: Figures, chatcap: Figures) -> dict[str, Any]:
    """chatcap over plain streaming mitmdump at one concurrency, against the targets: per repeat
    (the two proxies' rounds of one repeat ran back to back), then the range over the repeats."""
    ratios = [c / p for c, p in zip(chatcap.round_events_per_s, plain.round_events_per_s, strict=True)]
    added = [c - p for c, p in zip(chatcap.round_late_p99_ms, plain.round_late_p99_ms, strict=True)]
    p99 = median(added)
    loss = 1 - median(ratios)
    cpu = (chatcap.proxy_cpu_us_per_event or 0) - (plain.proxy_cpu_us_per_event or 0)
    return {
        "concurrency": plain.concurrency,
        "throughput_ratio_by_repeat": ratios,
        "added_p99_ms_by_repeat": added,
        "added_p50_ms": chatcap.late_p50_ms - plain.late_p50_ms,
        "added_p99_ms": p99,
        "throughput_loss": loss,
        "added_cpu_us_per_event": cpu,
        "writer_cpu_us_per_event": chatcap.proxy_children_cpu_us_per_event,
        "added_cpu_share": cpu / plain.proxy_cpu_us_per_event if plain.proxy_cpu_us_per_event else None,
        "rounds_events_per_s": {"mitmdump": plain.round_events_per_s, "mitmdump + chatcap": chatcap.round_events_per_s},
        "rounds_late_p99_ms": {"mitmdump": plain.round_late_p99_ms, "mitmdump + chatcap": chatcap.round_late_p99_ms},
        # the p99 difference is smaller than the p99's own spread between rounds of one path
        "p99_within_spread": min(chatcap.round_late_p99_ms) <= max(plain.round_late_p99_ms),
        "saturated": min(plain.events_per_s, chatcap.events_per_s) < SATURATED * plain.offered_events_per_s,
        "p99_met": p99 < P99_TARGET_MS,  # the median repeat; the range is reported beside it
        "throughput_met": loss < THROUGHPUT_TARGET,
    }


# The run.


async def measure(args: argparse.Namespace, script: Script, warmup: Script, upstream: Upstream,
                  proxies: dict[str, Proxy | None]) -> tuple[list[Round], dict[str, Counter[Script]]]:  # fmt: skip
    """Warm every path up, then the rounds: per concurrency, per repeat, each path (in a rotating order).
    Returns the rounds and the requests sent on each path."""
    most = max(args.concurrency)
    clients = {path: [new_client(proxy) for _ in range(most)] for path, proxy in proxies.items()}
    sent: dict[str, Counter[Script]] = {path: Counter() for path in proxies}
    rounds: list[Round] = []
    try:
        print(f"warmup   {most} short streams and 1 full stream per path", file=sys.stderr, flush=True)
        for path, path_clients in clients.items():
            await run_round(path, path_clients, upstream, warmup, most, proxies[path])
            await run_round(path, path_clients, upstream, script, 1, proxies[path])
            sent[path].update({warmup: most, script: streams_in_turn(1)})
        for concurrency in args.concurrency:
            for repeat in range(args.repeats):
                order = list(PATHS[repeat % len(PATHS) :] + PATHS[: repeat % len(PATHS)])
                for path in order:
                    await asyncio.sleep(args.pause)
                    result = await run_round(path, clients[path], upstream, script, concurrency, proxies[path])
                    sent[path][script] += concurrency * streams_in_turn(concurrency)
                    rounds.append(result)
                    rate = len(result.streams) * script.events / result.wall_s
                    print(f"  {concurrency:>4} × {path:<19} round {repeat + 1}: {result.wall_s:6.2f} s, {rate:8,.0f} events/s",
                          file=sys.stderr, flush=True)  # fmt: skip
    finally:
        for client in (client for per_path in clients.values() for client in per_path):
            await client.aclose()
    return rounds, sent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=None, help="events per stream (default 2000; 100 with --quick)")
    parser.add_argument(
        "--concurrency", default=None, help="comma-separated stream counts (default 1,50,200; 1,50 with --quick)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="rounds per path and concurrency (default 3; 1 with --quick)"
    )
    parser.add_argument("--gap-ms", type=float, default=0.0, help="upstream gap between events (default 0)")
    parser.add_argument("--first-ms", type=float, default=20.0, help="upstream time to the first event (default 20)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between rounds (default 0.5)")
    parser.add_argument("--quick", action="store_true", help="a smoke run in well under a minute")
    parser.add_argument(
        "--profile", action="store_true", help="run the chatcap mitmdump under cProfile and print its top"
    )
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is not met")
    parser.add_argument(
        "--addon", type=Path, default=ADDON, help="the addon file to measure (default addons/chatcap.py)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                        help="a mitmdump option for the chatcap proxy, e.g. chatcap_redact=false (repeatable)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the work dir (mitmdump logs, the addon's capture)")
    args = parser.parse_args(argv)
    args.chunks = args.chunks or (100 if args.quick else 2000)
    args.repeats = args.repeats or (1 if args.quick else 3)
    try:
        args.concurrency = [int(n) for n in (args.concurrency or ("1,50" if args.quick else "1,50,200")).split(",")]
    except ValueError:
        parser.error("--concurrency takes numbers separated by commas, e.g. 1,50,200")
    if args.chunks < 3 or min(args.concurrency) < 1:
        parser.error("--chunks must be at least 3 and every concurrency at least 1")

    try:
        report = run(args)
    except (RuntimeError, TimeoutError, OSError, httpx.HTTPError) as exc:
        sys.exit(f"proxy benchmark: {type(exc).__name__}: {exc}")
    if not report["capture_check"]["ok"]:
        return 2
    met = all(v["p99_met"] and v["throughput_met"] for v in report["chatcap_over_mitmdump"])
    return 1 if args.check and not met else 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the upstream and both mitmdumps, measure, stop them, check the capture, print and save the report."""
    started = time.perf_counter()
    info = machine()
    print(header(info))

    script, exchange = scripted_stream("measured", args.chunks, args.gap_ms, args.first_ms)
    warmup, warmup_exchange = scripted_stream("warmup", 20, args.gap_ms, args.first_ms)
    print(f"stream   {script.events} events, {len(script.body) / script.events:.0f} bytes each on average, "
          f"first at {args.first_ms:g} ms then every {args.gap_ms:g} ms ({script.due_s[-1]:.2f} s a stream when nothing falls behind)")  # fmt: skip
    print(f"rounds   {args.repeats} per path at {', '.join(map(str, args.concurrency))} concurrent streams", flush=True)

    addon_version = args.addon.stat().st_mtime_ns
    work = Path(tempfile.mkdtemp(prefix="chatcap-bench-proxy-"))
    (work / "plain_streaming.py").write_text(PLAIN_STREAMING_ADDON)
    capture_dir = work / "chatcap" / "live"
    upstream: Upstream | None = None
    proxies: dict[str, Proxy | None] = {"direct": None}
    try:
        upstream = start_upstream([exchange, warmup_exchange])
        proxies["mitmdump"] = start_proxy("mitmdump", work / "plain", work / "plain_streaming.py")
        proxies["mitmdump + chatcap"] = chatcap = start_proxy(
            "mitmdump + chatcap",
            work / "chatcap",
            args.addon,
            "--set",
            f"chatcap_dir={capture_dir}",
            *(part for option in args.set for part in ("--set", option)),
            profile=args.profile,
        )
        print(f"upstream {upstream.url} (replay server, pid {upstream.process.pid}); "
              + "; ".join(f"{p.name} on :{p.port}" for p in proxies.values() if p) + f"\nwork dir {work}", flush=True)  # fmt: skip
        cpu_start = {name: sum(tree_cpu_seconds(p.process.pid).values()) for name, p in proxies.items() if p}
        rounds, sent = asyncio.run(measure(args, script, warmup, upstream, proxies))
        # The addon writes its records in a process of its own, partly after each round: wait until
        # every exchange is on disk, then count the whole run's CPU of each proxy and its children.
        settle(capture_dir, sum(sent["mitmdump + chatcap"].values()))
        whole_run_cpu = {
            name: (sum(tree_cpu_seconds(p.process.pid).values()) - cpu_start[name])
            / sum(n * s.events for s, n in sent[name].items())
            * 1e6
            for name, p in proxies.items()
            if p
        }
    finally:
        for proxy in proxies.values():
            if proxy is not None:
                proxy.stop()
        if upstream is not None:
            upstream.stop()
    capture = verify_capture(capture_dir, sent["mitmdump + chatcap"])
    capture["addon_changed_during_run"] = args.addon.stat().st_mtime_ns != addon_version

    rows = [
        figures([r for r in rounds if r.path == path and r.concurrency == concurrency], script)
        for concurrency in args.concurrency
        for path in PATHS
    ]
    print(f"\n{table(rows)}")
    print(f"\nTTFC: request sent → first event whole (the upstream sends it at {args.first_ms:g} ms). total: request sent →\n"
          "last byte. late: event arrived − when the upstream was due to send it, from the request's sending.\n"
          "events/s: the median round; * below 90 % of what the upstream offers, so the path is saturated and\n"
          "lateness there is mostly queueing. CPU: time on a core per event, mitmdump's (proxy) and client +\n"
          "upstream + proxy (all); the machine has " f"{os.cpu_count()} cores for all three.")  # fmt: skip

    by = {(row.path, row.concurrency): row for row in rows}
    verdicts = [overhead(by["mitmdump", n], by["mitmdump + chatcap", n]) for n in args.concurrency]
    print(f"\nchatcap over plain streaming mitmdump (targets: < {P99_TARGET_MS:g} ms more per chunk at p99, "
          f"< {THROUGHPUT_TARGET:.0%} less throughput)")  # fmt: skip
    for v in verdicts:
        ratios, added = sorted(v["throughput_ratio_by_repeat"]), sorted(v["added_p99_ms_by_repeat"])
        print(f"  {v['concurrency']:>4} streams: throughput ×{ratios[0]:.3f}–{ratios[-1]:.3f} (median ×{median(ratios):.3f}: "
              f"{'met' if v['throughput_met'] else 'NOT met'}), p99 per chunk {added[0]:+.2f} to {added[-1]:+.2f} ms "
              f"(median {v['added_p99_ms']:+.2f}: {'met' if v['p99_met'] else 'NOT met'}) over {len(ratios)} repeats;"
              f" proxy CPU {v['added_cpu_us_per_event']:+5.1f} µs/event ({v['added_cpu_share'] or 0:+.0%}) in its rounds"
              f" (the writer process {v['writer_cpu_us_per_event']:.1f})")  # fmt: skip
        plain_rates, chatcap_rates = (sorted(rates) for rates in v["rounds_events_per_s"].values())
        plain_p99, chatcap_p99 = (sorted(p99s) for p99s in v["rounds_late_p99_ms"].values())
        print(f"{'':>15} by round: late p99 mitmdump {plain_p99[0]:,.2f}–{plain_p99[-1]:,.2f} ms, chatcap {chatcap_p99[0]:,.2f}–"
              f"{chatcap_p99[-1]:,.2f} ms{' (overlapping)' if v['p99_within_spread'] else ''}; events/s mitmdump "
              f"{plain_rates[0]:,.0f}–{plain_rates[-1]:,.0f}, chatcap {chatcap_rates[0]:,.0f}–{chatcap_rates[-1]:,.0f}")  # fmt: skip
    print(f"{'':>6} whole run, every request through the proxy and its children, until the last record was written:"
          f" mitmdump {whole_run_cpu['mitmdump']:.1f} µs/event, mitmdump + chatcap {whole_run_cpu['mitmdump + chatcap']:.1f}"
          f" ({whole_run_cpu['mitmdump + chatcap'] - whole_run_cpu['mitmdump']:+.1f})")  # fmt: skip
    status = "ok" if capture["ok"] else "FAILED: " + "; ".join(capture["problems"])
    print(f"capture  {capture['lines']} exchanges in {capture['files']} file(s); "
          f"{sum(capture['recorded'].values())} of {sum(capture['sent'].values())} requests recorded whole: {status}"
          f" ({capture['reads_per_event'].get(script.name, 0):.2f} network reads per event, all rounds)")  # fmt: skip
    if capture["addon_changed_during_run"]:
        print(f"warning  {args.addon} changed during the run and mitmdump reloaded it: run again")

    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": info | {"load_average_after": os.getloadavg()},
        "settings": {
            "chunks": script.events,
            "event_bytes_mean": len(script.body) / script.events,
            "gap_ms": args.gap_ms,
            "first_ms": args.first_ms,
            "concurrency": args.concurrency,
            "repeats": args.repeats,
            "pause_s": args.pause,
        },
        "paths": {
            "direct": "httpx.AsyncClient → analyzer.replay upstream",
            "mitmdump": "mitmdump -s <addon setting flow.response.stream = True>",
            "mitmdump + chatcap": f"mitmdump -s {args.addon}" + "".join(f" --set {option}" for option in args.set),
        },
        "results": [asdict(row) for row in rows],
        "chatcap_over_mitmdump": verdicts,
        "whole_run_proxy_cpu_us_per_event": whole_run_cpu,
        "targets": {"added_p99_ms": P99_TARGET_MS, "throughput_loss": THROUGHPUT_TARGET},
        "capture_check": capture,
    }
    if chatcap.stats is not None and chatcap.stats.exists():
        text = profile_text(chatcap.stats)
        print(
            "\nmitmdump + chatcap, cProfile over the whole run, by own time (profiling slows that mitmdump\n"
            f"several times over, so its figures above are not comparable this run):\n{text}"
        )
        report["profile_top"] = text
    if args.keep:
        print(f"kept     {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"proxy-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(f"\nresults  {path.relative_to(ROOT)} ({time.perf_counter() - started:.0f} s in all)")
    return report


if __name__ == "__main__":
    sys.exit(main())
