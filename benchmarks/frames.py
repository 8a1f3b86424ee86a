"""How long the four frames take over 100,000 reconstructed exchanges, threading included.

    python benchmarks/frames.py                          # 100,000 exchanges, 3 runs of each phase (about 12 minutes)
    python benchmarks/frames.py --baseline ../old        # also each phase with the analyzer of another checkout, side by side
    python benchmarks/frames.py --quick                  # 10,000 exchanges, one run: a smoke run (about a minute)
    python benchmarks/frames.py --stages --profile       # also the parts of frames.exchanges, and a cProfile of it
    make bench

The exchanges (see benchmarks/README.md, "Frames") are what a proxy in front of a chat app records
over a few days: multi-turn conversations in OpenAI's chat format, interleaved in time, where each
request resends the history and the reply before it; tool rounds, regenerations, edited questions,
429s and their retries, clients that resend reasoning as content or cut a reply short; gpt-4o-mini
and DeepSeek (priced by genai-prices) and local Qwen/Llama servers (no price, some without usage).
Responses are corpus.exchange_body streams with a tenth of its deltas, so that reconstructing them
is not the whole story. They are written once to benchmarks/data/ and read back by every phase.

Each phase runs in a fresh Python process (so no cache of one leaks into another), `--runs` times,
interleaved with the other phases (and the baseline's), and calls what it measures `--best-of`
times after reconstructing every exchange, keeping the fastest call:

- exchanges       frames.exchanges(xs): the figure the target is about
- threads         threads.analyse(xs): conversations and history notices alone
- chunks, messages, tool_calls   the other frames
- floor           frames._frame over the exchange columns already collected: pandas alone
- (once)          reconstruct; frames.exchanges on exchanges not yet reconstructed, as after load

Wall time and the process's CPU time are both kept: on a machine shared with other work the wall
time stretches, the CPU time much less. frames.exchanges must find every conversation, parent,
branch and turn the generator made; every run of a phase must build the same frame, and with
`--baseline`, the same frame as the baseline (a digest of dtypes and values), so a builder that
skips work cannot look fast.

Target (the issue, "Frames at columnar speed"): frames.exchanges over 100,000 reconstructed
exchanges at ≤ 20 µs per row, threading included.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import json
import math
import os
import pstats
import random
import resource
import struct
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import corpus
import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
TARGET_US_PER_ROW = 20.0  # frames.exchanges over 100,000 reconstructed exchanges, threading included
TARGET_COUNT = 100_000
GENERATOR_VERSION = 1  # bump when the exchanges change: old cache files are then ignored
SCALE = 0.1  # of corpus.exchange_body's deltas per reply

# The workload: conversations.

URLS = (
    "https://api.openai.com/v1/chat/completions",
    "https://api.deepseek.com/chat/completions",
    "http://localhost:8000/v1/chat/completions",  # a vLLM server on the user's machine
)
OPENAI, DEEPSEEK, LOCAL = range(3)
# Served model, as corpus.exchange_body names it → (the name the client asks for, URL, share of conversations).
MODELS = {
    "gpt-4o-mini-2024-07-18": ("gpt-4o-mini", OPENAI, 25),
    "gpt-4o-2024-08-06": ("gpt-4o", OPENAI, 12),
    "gpt-4.1-mini-2025-04-14": ("gpt-4.1-mini", OPENAI, 12),
    "deepseek-chat": ("deepseek-chat", DEEPSEEK, 15),
    "deepseek-reasoner": ("deepseek-reasoner", DEEPSEEK, 8),
    "Qwen/Qwen3-32B": ("Qwen/Qwen3-32B", LOCAL, 18),
    "meta-llama/Llama-3.3-70B-Instruct": ("meta-llama/Llama-3.3-70B-Instruct", LOCAL, 10),
}
BRANCHES = (None, "regeneration", "edit")
BEGIN = datetime(2026, 11, 2, tzinfo=UTC)
TOOL_PARAMETERS = {
    "get_weather": {"location": "string", "unit": "string"},
    "search": {"query": "string", "limit": "integer"},
    "read_file": {"path": "string"},
    "run_sql": {"sql": "string", "timeout": "integer"},
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name.replace('_', ' ').capitalize()} for the user.",
            "parameters": {
                "type": "object",
                "properties": {key: {"type": kind} for key, kind in parameters.items()},
                "required": list(parameters)[:1],
            },
        },
    }
    for name, parameters in TOOL_PARAMETERS.items()
]
RATE_LIMITED = {"message": "Rate limit reached for requests", "type": "requests", "param": None, "code": "rate_limit_exceeded"}  # fmt: skip
RATE_LIMITED_BODY = orjson.dumps({"error": RATE_LIMITED})
REQUEST_HEADERS = [("content-type", "application/json")]
EVENT_STREAM = [("content-type", "text/event-stream")]
RATE_LIMITED_HEADERS = [("content-type", "application/json"), ("retry-after", "20")]


def _count(rng: random.Random, median: float, low: int, high: int) -> int:
    """A long-tailed count (log-normal, spread 0.9) with the given median."""
    return max(low, min(high, round(rng.lognormvariate(math.log(median), 0.9))))


class _Text:
    """Prose for user messages, system prompts and tool results: slices of a long text made of
    corpus's words (English, CJK, or both), so that making a message costs next to nothing."""

    def __init__(self, rng: random.Random) -> None:
        words = [*corpus.ENGLISH, *(w.capitalize() for w in corpus.ENGLISH[:20])]
        english, cjk = [], []
        for _ in range(250_000):
            english.append(rng.choice(words) + rng.choices(["", "", "", "", ",", ".", ".\n", ":", "?"])[0])
        for _ in range(120_000):
            cjk.append(rng.choice(corpus.CJK) + rng.choices(["", "", "", "", "，", "。", "。\n", "、"])[0])
        self.english = " ".join(english)
        self.cjk = "".join(cjk)

    def take(self, rng: random.Random, length: int, language: str) -> str:
        if language == "mixed":
            half = length // 2
            return f"{self.take(rng, half, 'en')} {self.take(rng, max(1, (length - half) // 3), 'cjk')}"
        pool = self.cjk if language == "cjk" else self.english
        start = rng.randrange(len(pool) - length - 1)
        return pool[start : start + length].strip() or "?"


class _Bodies:
    """corpus.exchange_body streams handed out by served model and shape; a body of another model
    than the one wanted waits for a conversation that wants it (the corpus picks the dialect)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.waiting: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        self.made = 0

    def take(self, model: str, kind: str) -> bytes:
        waiting = self.waiting[model, kind]
        while not waiting:
            body = corpus.exchange_body(self.rng, self.made, kind, SCALE)
            self.made += 1
            served = orjson.loads(body[6 : body.index(b"\n\n")])["model"]
            self.waiting[served, kind].append(body)
        return waiting.pop()


def _without_usage(body: bytes) -> bytes:
    """The stream as a server sends it without `stream_options.include_usage`: no usage chunk."""
    return b"".join(event + b"\n\n" for event in body.split(b"\n\n")[:-1] if b'"choices":[]' not in event)


def reply_of(body: bytes) -> tuple[dict[str, Any], str | None]:
    """The assistant message a client keeps from a stream (content and tool calls), and the
    reasoning it streamed: read with orjson alone, not with chatcap."""
    content, reasoning, calls = [], [], {}
    for payload in corpus.payloads(body):
        for choice in orjson.loads(payload).get("choices") or ():
            delta = choice.get("delta") or {}
            content.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            for call in delta.get("tool_calls") or ():
                entry = calls.setdefault(call["index"], {"id": None, "type": "function", "function": {"name": None, "arguments": ""}})  # fmt: skip
                entry["id"] = call.get("id") or entry["id"]
                function = call.get("function") or {}
                entry["function"]["name"] = function.get("name") or entry["function"]["name"]
                entry["function"]["arguments"] += function.get("arguments") or ""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    return message, "".join(reasoning) or None


@dataclass(slots=True)
class Record:
    """One exchange as stored, with what frames.exchanges should find for it."""

    started_us: int  # µs since BEGIN
    url: int
    status: int
    request: bytes
    response: bytes
    conversation: int  # the generator's number for it
    parent: int  # position of the exchange this one continues, or -1
    branch: int  # index in BRANCHES
    turn: int


_RECORD = struct.Struct("<qBHIIIiBH")


@dataclass(slots=True)
class _Conversations:
    """Writes conversations one at a time as the clients of a chat app would send them."""

    rng: random.Random
    text: _Text
    bodies: _Bodies
    span_s: float
    records: list[Record] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)  # by record, before sorting
    facts: Counter[str] = field(default_factory=Counter)
    system_prompts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.system_prompts = [self.text.take(self.rng, _count(self.rng, 900, 60, 12_000), "en") for _ in range(40)]

    def conversation(self, number: int) -> None:
        rng = self.rng
        served = rng.choices(list(MODELS), [share for _, _, share in MODELS.values()])[0]
        asked, url, _ = MODELS[served]
        tools = served != "deepseek-reasoner" and rng.random() < 0.25
        usage = url != LOCAL or rng.random() < 0.5
        resends_reasoning = rng.random() < 0.15
        language = rng.choices(["en", "cjk", "mixed"], [80, 10, 10])[0]
        state = _State(number, served, asked, url, tools, usage, resends_reasoning, language)
        state.now = rng.uniform(0, self.span_s)
        self.facts["conversations"] += 1
        if rng.random() < 0.85:
            prompt = self.system_prompts[min(int(rng.paretovariate(1.2)) - 1, len(self.system_prompts) - 1)]
            state.messages.append({"role": "system", "content": prompt})
        for turn in range(1, _count(rng, 5, 1, 80) + 1):
            if turn > 1 and rng.random() < 0.03:  # the user sends a question, then edits it
                self.send(state, [*state.messages, self.user(state)], keep=False)
                state.now += rng.uniform(10, 120)
                self.facts["edits"] += 1
            history = [*state.messages, self.user(state)]
            for round_ in range(4):
                reply, reasoning = self.send(state, history, keep=True)
                while rng.random() < 0.06:  # the user asks for another answer
                    state.now += rng.uniform(4, 60)
                    reply, reasoning = self.send(state, history, keep=True)
                    self.facts["regenerations"] += 1
                history = [*history, self.resent(state, reply, reasoning)]
                if "tool_calls" not in reply or round_ == 3:
                    break
                for call in reply["tool_calls"]:
                    result = {"result": self.text.take(rng, _count(rng, 400, 10, 20_000), state.language)}
                    history.append({"role": "tool", "tool_call_id": call["id"], "content": orjson.dumps(result).decode()})  # fmt: skip
                state.now += rng.uniform(0.3, 4)
                self.facts["tool rounds"] += 1
            state.messages = history
            state.now += min(3600, max(3, rng.lognormvariate(math.log(45), 1.0)))

    def user(self, state: _State) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < 0.03:  # a pasted document
            length = _count(rng, 6000, 1000, 60_000)
            self.facts["pasted documents"] += 1
        else:
            length = _count(rng, 160, 24, 4000)
        return {"role": "user", "content": self.text.take(rng, length, state.language)}

    def shape(self, state: _State) -> str:
        rng = self.rng
        if state.served == "deepseek-reasoner":
            return "reasoning"
        if state.tools and rng.random() < 0.3:
            return "tools"
        if state.url == LOCAL and rng.random() < 0.3:
            return "reasoning"
        return "text"

    def send(self, state: _State, history: list[dict[str, Any]], keep: bool) -> tuple[dict[str, Any], str | None]:
        """One request for `history` (retried after a 429) and the reply it got; `keep`: the client
        continues from this reply (an edited question's first version is dropped)."""
        rng = self.rng
        request: dict[str, Any] = {"model": state.asked, "messages": history, "stream": True}
        if state.usage:
            request["stream_options"] = {"include_usage": True}
        if state.tools:
            request["tools"] = TOOLS
        key = orjson.dumps(history)
        while True:
            # What threads should find: the exchange whose reply the history ends with; a history
            # sent before is a regeneration, a second child of one exchange an edit.
            parent = state.tip
            branch = 1 if key in state.sent else 2 if parent >= 0 and state.children[parent] else 0
            state.sent.add(key)
            if parent >= 0:
                state.children[parent] += 1
            turn = max(1, sum(m["role"] == "user" for m in history))
            status, body = 200, b""
            if state.url != LOCAL and rng.random() < 0.01:
                status, body = 429, RATE_LIMITED_BODY
                self.facts["429s"] += 1
            else:
                body = self.bodies.take(state.served, self.shape(state))
                if not state.usage:
                    body = _without_usage(body)
            uid = len(self.records)
            self.records.append(Record(round(state.now * 1e6), state.url, status, orjson.dumps(request), body, state.number, parent, branch, turn))  # fmt: skip
            state.now += rng.uniform(0.5, 8)
            if status == 200:
                break
            state.now += rng.uniform(1, 30)  # the client waits and retries
        if keep:
            state.last = uid
        return reply_of(body)

    def resent(self, state: _State, reply: dict[str, Any], reasoning: str | None) -> dict[str, Any]:
        """The reply as the client puts it in the next request's history."""
        state.tip = state.last
        message = dict(reply)
        content = message["content"] or ""
        if reasoning and state.resends_reasoning:
            message["content"] = f"{reasoning}\n\n{content}"
            self.facts["replies resent with their reasoning"] += 1
        elif len(content) >= 20 and "tool_calls" not in message and self.rng.random() < 0.01:
            message["content"] = content[: len(content) // 2]  # the client kept part of it
            self.facts["replies resent cut short"] += 1
        return message


@dataclass(slots=True)
class _State:
    number: int
    served: str
    asked: str
    url: int
    tools: bool
    usage: bool
    resends_reasoning: bool
    language: str
    now: float = 0.0
    messages: list[dict[str, Any]] = field(default_factory=list)
    tip: int = -1  # the record whose reply the history ends with
    last: int = -1  # the record whose reply the client keeps
    sent: set[bytes] = field(default_factory=set)
    children: Counter[int] = field(default_factory=Counter)


@dataclass(slots=True, frozen=True)
class Workload:
    path: Path
    count: int
    facts: dict[str, Any]
    cached: bool


def build(count: int, seed: int) -> Workload:
    """`count` exchanges, the earliest of enough conversations, generated once and then read from the cache."""
    corpus.DATA.mkdir(parents=True, exist_ok=True)
    path = corpus.DATA / f"frames-v{GENERATOR_VERSION}-seed{seed}-{count}.bin"
    facts_path = path.with_suffix(".json")
    if path.exists() and facts_path.exists():
        return Workload(path, count, json.loads(facts_path.read_text()), cached=True)
    rng = random.Random(seed)
    writer = _Conversations(rng, _Text(rng), _Bodies(random.Random(seed + 1)), span_s=count * 2.5)
    while len(writer.records) < count:
        writer.conversation(writer.facts["conversations"] + 1)
    order = sorted(range(len(writer.records)), key=lambda uid: writer.records[uid].started_us)[:count]
    position = {uid: n for n, uid in enumerate(order)}
    records = [writer.records[uid] for uid in order]
    for record in records:
        record.parent = position[record.parent] if record.parent >= 0 else -1
    facts = _describe(records, writer)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        for r in records:
            handle.write(_RECORD.pack(r.started_us, r.url, r.status, len(r.request), len(r.response), r.conversation, r.parent, r.branch, r.turn))  # fmt: skip
            handle.write(r.request)
            handle.write(r.response)
    facts_path.write_text(json.dumps(facts, indent=1))
    partial.rename(path)  # a killed run leaves no half-written cache behind
    return Workload(path, count, facts, cached=False)


def _describe(records: list[Record], writer: _Conversations) -> dict[str, Any]:
    messages = [len(orjson.loads(r.request)["messages"]) for r in records]
    served = Counter(orjson.loads(r.response[6 : r.response.index(b"\n\n")])["model"] for r in records if r.status == 200)  # fmt: skip
    return {
        "exchanges": len(records),
        "conversations": len({r.conversation for r in records}),
        "request_bytes": sum(len(r.request) for r in records),
        "response_bytes": sum(len(r.response) for r in records),
        "messages_mean": sum(messages) / len(messages),
        "messages_max": max(messages),
        "served_models": dict(served.most_common()),
        "hosts": dict(Counter(URLS[r.url].split("/")[2] for r in records).most_common()),
        "branches": {str(BRANCHES[b]): n for b, n in sorted(Counter(r.branch for r in records).items())},
        "generated": dict(writer.facts),  # before the cut to `count` exchanges
        "bodies_made": writer.bodies.made,
    }


def read(path: Path, limit: int | None = None) -> list[Record]:
    """The first `limit` records of a workload file (all of them without)."""
    records: list[Record] = []
    with path.open("rb") as handle:
        while limit is None or len(records) < limit:
            head = handle.read(_RECORD.size)
            if not head:
                break
            started, url, status, request_size, response_size, conversation, parent, branch, turn = _RECORD.unpack(head)
            request, response = handle.read(request_size), handle.read(response_size)
            records.append(Record(started, url, status, request, response, conversation, parent, branch, turn))
    return records


def exchanges_of(records: Sequence[Record]) -> list[Any]:
    """The records as the Exchanges analyzer.load would return for a capture."""
    from analyzer.model import Exchange, Request, Response

    xs = []
    for n, r in enumerate(records):
        headers = EVENT_STREAM if r.status == 200 else RATE_LIMITED_HEADERS
        xs.append(
            Exchange(
                id=f"bench#{n}",
                source="<bench>",
                format="chatcap-jsonl",
                request=Request(method="POST", url=URLS[r.url], headers=list(REQUEST_HEADERS), body=r.request),
                response=Response(status=r.status, headers=list(headers), body=r.response, chunks=None),
                started_at=BEGIN + timedelta(microseconds=r.started_us),
            )
        )
    return xs


# In a child process: one phase, measured.


class Clock:
    """The wall time of a block, the CPU time this process spent in it (other work on the machine
    stretches the one, hardly the other), and how much of it the garbage collector took."""

    def __enter__(self) -> Clock:
        self.gc_seconds, self.full_collections, self._gc_started = 0.0, 0, 0.0
        gc.callbacks.append(self._on_gc)
        self.started, self.cpu_started = time.perf_counter(), time.process_time()
        return self

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_seconds += time.perf_counter() - self._gc_started
            self.full_collections += info["generation"] == 2

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu_started
        gc.callbacks.remove(self._on_gc)

    def figures(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "gc_seconds": self.gc_seconds,
                "full_collections": self.full_collections}  # fmt: skip


def peak_rss() -> int:
    """The process's peak resident set so far, in bytes (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reconstructed(path: Path, limit: int | None = None) -> tuple[list[Record], list[Any], dict[str, Any]]:
    """The records, their Exchanges, every one reconstructed (timed), and a full collection after."""
    records = read(path, limit)
    xs = exchanges_of(records)
    gc.collect()
    with Clock() as clock:
        for exchange in xs:
            exchange.reconstruct()
    gc.collect()
    return records, xs, clock.figures()


def best_of(times: int, work: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """`work()` `times` times, each after a full collection: its last result and the fastest call's figures."""
    best: dict[str, Any] | None = None
    result = None
    for _ in range(times):
        result = None  # the previous frame is let go first
        gc.collect()
        with Clock() as clock:
            result = work()
        figures = clock.figures()
        if best is None or figures["seconds"] < best["seconds"]:
            best = figures
    assert best is not None
    return result, best


def digest(frame: Any) -> str:
    """A digest of a frame's dtypes and values: two builders that agree give the same."""
    text = "\n".join(f"{name} {dtype}" for name, dtype in frame.dtypes.items()) + frame.to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_threads(frame: Any, records: Sequence[Record]) -> dict[str, Any]:
    """Exit unless frames.exchanges found the conversations, parents, branches and turns the
    generator made; returns what the frame holds, counted."""

    def values(name: str) -> list[Any]:
        return [value if isinstance(value, str | int) else None for value in frame[name].astype(object)]

    conversation_of: dict[int, str] = {}
    wrong: list[str] = []
    columns = zip(values("conversation"), values("parent"), values("branch"), values("turn"), strict=True)
    for n, (record, (conversation, parent, branch, turn)) in enumerate(zip(records, columns, strict=True)):
        want_parent = f"bench#{record.parent}" if record.parent >= 0 else None
        if conversation_of.setdefault(record.conversation, conversation) != conversation:
            wrong.append(f"bench#{n}: conversation {conversation}, expected {conversation_of[record.conversation]}")
        if parent != want_parent or branch != BRANCHES[record.branch] or turn != record.turn:
            wrong.append(f"bench#{n}: parent {parent}, branch {branch}, turn {turn}; expected {want_parent}, {BRANCHES[record.branch]}, {record.turn}")  # fmt: skip
    if len(set(conversation_of.values())) != len(conversation_of):
        wrong.append("two generated conversations share one conversation id")
    if wrong:
        sys.exit(f"frames.exchanges: {len(wrong):,} exchanges not threaded as generated, e.g.\n  " + "\n  ".join(wrong[:10]))  # fmt: skip
    codes = Counter(code for codes in frame["warnings"] for code in codes)
    tokens_source = frame["tokens_source"].value_counts(dropna=False).items()
    return {
        "rows": len(frame),
        "conversations": int(frame["conversation"].nunique()),
        "cost_source": {str(k): int(v) for k, v in frame["cost_source"].value_counts().items()},
        "tokens_source": {k if isinstance(k, str) else "none": int(v) for k, v in tokens_source},
        "warnings": dict(codes.most_common()),
        "frame_bytes": int(frame.memory_usage(deep=True).sum()),
    }


def timed(stages: dict[str, float], name: str, work: Callable[[], Any]) -> Any:
    gc.collect()
    started = time.perf_counter()
    result = work()
    stages[name] = time.perf_counter() - started
    print(f"    {name}: {stages[name]:.2f} s", file=sys.stderr, flush=True)
    return result


def stages_of(xs: list[Any]) -> dict[str, Any]:
    """frames.exchanges' parts, each alone over every exchange, in the order it runs them."""
    from analyzer import anomalies, frames, protocols, threads, tokens
    from analyzer.cost import cost_of
    from analyzer.cost import notice as cost_notice

    stages: dict[str, float] = {}
    order = timed(stages, "threads.ordered (by start time)", lambda: threads.ordered(xs))
    recs = [x.reconstruct() for x in order]
    # The parsed requests are not kept (100k of them take gigabytes): each part parses what it needs.
    timed(stages, "request JSON parsed (frames._request_body)", lambda: [frames._request_body(x) and None for x in order])  # fmt: skip
    timed(stages, "parsed + protocols.request_messages", lambda: [len(protocols.request_messages(x, frames._request_body(x))) for x in order])  # fmt: skip

    def walk() -> None:
        walker = threads.Walk()
        for exchange in order:
            walker.add(exchange, protocols.request_messages(exchange, frames._request_body(exchange)))

    timed(stages, "parsed + request_messages + threads.Walk.add", walk)
    tools = [protocols.request_tools(x) or None for x in order]
    messages = [[] if r.usage else protocols.request_messages(x) for x, r in zip(order, recs, strict=True)]
    timed(stages, "parsed + request_tools + request_params", lambda: [(protocols.request_tools(x, b), protocols.request_params(x, b)) for x in order for b in (frames._request_body(x),)])  # fmt: skip
    usages = timed(stages, "tokens.usage_or_estimate", lambda: [tokens.usage_or_estimate(r, m, t) for r, m, t in zip(recs, messages, tools, strict=True)])  # fmt: skip
    timed(stages, "cost: its first call (imports genai-prices, once)", lambda: cost_of(order[0], recs[0], usages[0], None))  # fmt: skip
    timed(stages, "cost.cost_of + notice", lambda: [cost_notice(cost_of(x, r, u, None)) for x, r, u in zip(order, recs, usages, strict=True)])  # fmt: skip
    timed(stages, "anomalies.found", lambda: [anomalies.found(x, r) for x, r in zip(order, recs, strict=True)])
    frame = timed(stages, "frames.exchanges, all of it", lambda: frames.exchanges(xs))
    columns = columns_of(frame)
    timed(stages, "frames._frame: one DataFrame from the columns, dtypes", lambda: frames._frame(columns, frames._EXCHANGE_DTYPES))  # fmt: skip
    return {"stages": stages}


def columns_of(frame: Any) -> dict[str, list[Any]]:
    """The values of frames.exchanges' columns as the lists its builder collects, before any dtype."""
    import pandas as pd

    def plain(value: Any) -> Any:
        if value is None or value is pd.NA or value is pd.NaT:
            return None
        return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value

    return {name: [plain(value) for value in frame[name].astype(object)] for name in frame.columns}


def child(phase: str, path: Path, rows: int | None, repeat: int) -> dict[str, Any]:
    """Run one phase; its figures as a dict (printed as one JSON line by the caller)."""
    from analyzer import frames, threads

    if phase == "reconstruct":
        records, xs, clock = reconstructed(path, rows)
        return clock | {"exchanges": len(xs), "chunks": sum(len(x.reconstruct().chunks) for x in xs)}
    if phase == "exchanges-cold":
        xs = exchanges_of(read(path, rows))
        gc.collect()
        with Clock() as clock:
            frame = frames.exchanges(xs)
        return clock.figures() | {"exchanges": len(xs)}
    records, xs, reconstruction = reconstructed(path, rows)
    if phase == "exchanges":
        frame, best = best_of(repeat, lambda: frames.exchanges(xs))
        return best | {"exchanges": len(xs), "reconstruct": reconstruction, "digest": digest(frame)} | check_threads(frame, records)  # fmt: skip
    if phase == "threads":
        (found, _), best = best_of(repeat, lambda: threads.analyse(xs))
        return best | {"exchanges": len(xs), "conversations": len({thread.conversation for thread in found.values()})}
    if phase == "floor":  # pandas alone: the same frame from its columns already collected
        columns = columns_of(frames.exchanges(xs))
        frame, best = best_of(repeat, lambda: frames._frame({name: list(values) for name, values in columns.items()}, frames._EXCHANGE_DTYPES))  # fmt: skip
        return best | {"exchanges": len(xs)}
    if phase == "stages":
        return stages_of(xs)
    if phase == "profile":
        profiler = cProfile.Profile()
        profiler.runcall(frames.exchanges, xs)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(30)
        RESULTS.mkdir(parents=True, exist_ok=True)
        stats.dump_stats(RESULTS / "frames.pstats")
        return {"profile": out.getvalue()}
    frame, best = best_of(repeat, lambda: getattr(frames, phase)(xs))  # chunks, messages, tool_calls
    return best | {"exchanges": len(xs), "rows": len(frame), "digest": digest(frame)}


# In the parent: the workload, the phases one after another, figures, the targets.


def run_phase(phase: str, workload: Workload, repeat: int, analyzer_dir: Path | None = None) -> dict[str, Any]:
    """One phase in a fresh process, with the analyzer package of `analyzer_dir` (a checkout of
    another commit) instead of this one's when given."""
    label = phase if analyzer_dir is None else f"{phase} (baseline)"
    print(f"  {label} …", file=sys.stderr, flush=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, str(workload.path), "--best-of", str(repeat)]  # fmt: skip
    if workload.count:
        command += ["--rows", str(workload.count)]
    env = dict(os.environ)
    if analyzer_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(analyzer_dir), env.get("PYTHONPATH")]))
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=None, text=True, timeout=7200, env=env)
    if done.returncode != 0:
        sys.exit(f"phase {label} failed (exit {done.returncode})")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if "seconds" in figures:
        print(
            f"    {figures['seconds']:.2f} s (CPU {figures.get('cpu_seconds', 0):.2f} s)", file=sys.stderr, flush=True
        )
    return figures


def machine() -> dict[str, Any]:
    import genai_prices
    import numpy
    import pandas
    from machine import describe

    import analyzer

    return describe("analyzer", {"chatcap": analyzer.__version__, "pandas": pandas.__version__,
                                 "numpy": numpy.__version__, "genai-prices": genai_prices.__version__,
                                 "orjson": orjson.__version__})  # fmt: skip


def _span(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    """`low–high` (or one value) of `values` times `scale`."""
    low, high = min(values) * scale, max(values) * scale
    return f"{low:,.{digits}f}" if f"{low:,.{digits}f}" == f"{high:,.{digits}f}" else f"{low:,.{digits}f}–{high:,.{digits}f}"  # fmt: skip


PHASES = ("exchanges", "threads", "chunks", "messages", "tool_calls", "floor")
LABELS = {
    "exchanges": "frames.exchanges, after reconstructing",
    "threads": "threads.analyse (threads and history notices)",
    "chunks": "frames.chunks",
    "messages": "frames.messages",
    "tool_calls": "frames.tool_calls",
    "floor": "floor: frames._frame from ready columns",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, help="exchanges (default 100,000; 10,000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="10,000 exchanges, one run of each phase")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument("--runs", type=int, help="fresh processes per phase (default 3; 1 with --quick)")
    parser.add_argument("--best-of", type=int, default=3, help="calls per process, the fastest kept (default 3)")
    parser.add_argument("--baseline", type=Path, metavar="DIR", help="also run every phase with the analyzer package in DIR (a checkout of another commit)")  # fmt: skip
    parser.add_argument("--no-others", action="store_true", help="skip chunks, messages and tool_calls")
    parser.add_argument("--stages", action="store_true", help="also time frames.exchanges' parts, each alone")
    parser.add_argument("--profile", action="store_true", help="also profile one frames.exchanges call (cProfile)")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is not met")
    parser.add_argument("--phase", nargs=2, metavar=("PHASE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        figures = child(args.phase[0], Path(args.phase[1]), args.rows, args.best_of)
        print(json.dumps(figures | {"peak_rss": peak_rss()}))
        return 0

    sys.stdout.reconfigure(line_buffering=True)  # in step with the progress lines on stderr
    count = args.count or (10_000 if args.quick else TARGET_COUNT)
    runs = args.runs or (1 if args.quick else 3)
    started = time.perf_counter()
    from machine import header

    info = machine()
    print(header(info))
    baseline = args.baseline.resolve() if args.baseline else None
    if baseline is not None and not (baseline / "analyzer" / "__init__.py").exists():
        sys.exit(f"--baseline {baseline}: no analyzer package there")

    began = time.perf_counter()
    workload = build(count, args.seed)
    facts = workload.facts
    how = "read from the cache" if workload.cached else f"generated in {time.perf_counter() - began:.0f} s"
    print(f"\nworkload {facts['exchanges']:,} exchanges in {facts['conversations']:,} conversations; "
          f"requests {facts['request_bytes'] / 1e6:,.0f} MB ({facts['messages_mean']:.1f} messages on average, "
          f"up to {facts['messages_max']}), responses {facts['response_bytes'] / 1e6:,.0f} MB")  # fmt: skip
    print(f"         hosts {', '.join(f'{h} {n:,}' for h, n in facts['hosts'].items())}")
    print(f"         branches {', '.join(f'{b} {n:,}' for b, n in facts['branches'].items())}; "
          + ", ".join(f"{k} {v:,}" for k, v in facts["generated"].items() if k != "conversations"))  # fmt: skip
    print(f"         {workload.path.relative_to(ROOT)} ({how})")

    phases = [p for p in PHASES if not (args.no_others and p in ("chunks", "messages", "tool_calls"))]
    print(f"\nphases, each in {runs} fresh process(es), the best of {args.best_of} calls in each:", file=sys.stderr)
    measured: dict[str, list[dict[str, Any]]] = {}
    before: dict[str, list[dict[str, Any]]] = {}
    for _ in range(runs):  # runs interleaved, so a busy spell of the machine does not fall on one side only
        for phase in phases:
            measured.setdefault(phase, []).append(run_phase(phase, workload, args.best_of))
            if baseline is not None and phase != "floor":  # the floor is pandas alone, the same code
                before.setdefault(phase, []).append(run_phase(phase, workload, args.best_of, baseline))
    extra: dict[str, Any] = {"reconstruct": run_phase("reconstruct", workload, 1)}
    extra["exchanges-cold"] = run_phase("exchanges-cold", workload, 1)
    if args.stages:
        extra["stages"] = run_phase("stages", workload, 1)
    if args.profile:
        extra["profile"] = run_phase("profile", workload, 1)

    ours = measured["exchanges"][0]
    print(f"\nframes.exchanges found {ours['conversations']:,} conversations, every parent, branch and turn as generated; "
          f"cost {', '.join(f'{k} {v:,}' for k, v in ours['cost_source'].items())}; "
          f"tokens {', '.join(f'{k} {v:,}' for k, v in ours['tokens_source'].items())}")  # fmt: skip
    print(f"         warnings: {', '.join(f'{k} {v:,}' for k, v in ours['warnings'].items())}")
    for phase, runs_of in [*measured.items(), *before.items()]:
        digests = {run["digest"] for run in runs_of if "digest" in run}
        if len(digests) > 1:
            sys.exit(f"{phase}: the runs built different frames")
    if baseline is not None:
        for phase in ("exchanges", "chunks", "messages", "tool_calls"):
            if phase in measured and measured[phase][0]["digest"] != before[phase][0]["digest"]:
                sys.exit(f"{phase}: the frame differs from the baseline's")
        print("         every frame is the baseline's, dtypes and values (a digest of each)")

    print(f"\n{'phase':<48} {'rows':>9} {'time s':>13} {'µs/row':>13} {'CPU µs/row':>13} {'peak RSS MB':>13}")

    def line(name: str, runs_of: list[dict[str, Any]], rows: int) -> None:
        seconds = [run["seconds"] for run in runs_of]
        cpu = [run["cpu_seconds"] for run in runs_of]
        rss = [run["peak_rss"] for run in runs_of]
        print(f"{name:<48} {rows:9,} {_span(seconds, 1, 2):>13} {_span(seconds, 1e6 / count):>13} "
              f"{_span(cpu, 1e6 / count):>13} {_span(rss, 1e-6, 0):>13}")  # fmt: skip

    rebuilt = extra["reconstruct"]
    line("reconstruct (x.reconstruct() for each)", [rebuilt], count)
    for phase in phases:
        rows = measured[phase][0].get("rows", count)
        line(LABELS[phase], measured[phase], rows)
        if phase in before:
            line("  ↳ baseline", before[phase], rows)
    line("frames.exchanges, reconstructing as it goes (once)", [extra["exchanges-cold"]], count)
    print(f"time: each run the fastest of {args.best_of} calls, ranges over {runs} run(s) in fresh processes; µs/row: per"
          " exchange\n(rows: what the frame holds); CPU: this process's CPU time in the call, which other work on the"
          " machine\nstretches less than the wall time")  # fmt: skip
    if "stages" in extra:
        stages = extra["stages"]["stages"]
        print(f"\nwhere frames.exchanges' time goes (each part alone over all {count:,} exchanges, one run):")
        for name, seconds in stages.items():
            print(f"  {name:<60} {seconds:7.2f} s {seconds / count * 1e6:7.1f} µs/row")
    if "profile" in extra:
        print(f"\nframes.exchanges profile (cProfile; results/frames.pstats):\n{extra['profile']['profile']}")

    target_us = TARGET_US_PER_ROW
    best_us = min(run["seconds"] for run in measured["exchanges"]) / count * 1e6
    met = best_us <= target_us
    print(f"\ntarget   frames.exchanges over {count:,} reconstructed exchanges, threading included, ≤ {target_us:g} µs per row: "
          f"{_span([run['seconds'] for run in measured['exchanges']], 1e6 / count)} µs — {'met' if met else 'NOT met'}")  # fmt: skip
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": info | {"load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "settings": {
            "count": count,
            "seed": args.seed,
            "runs": runs,
            "best_of": args.best_of,
            "scale": SCALE,
            "baseline": str(baseline) if baseline else None,
        },
        "workload": {"path": str(workload.path.relative_to(ROOT)), "generator_version": GENERATOR_VERSION} | facts,
        "phases": measured,
        "baseline": before,
        "once": extra,
        "target": {"us_per_row": target_us, "best_measured": best_us, "met": met},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"frames-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(f"\nresults  {path.relative_to(ROOT)} ({time.perf_counter() - started:.0f} s in all)")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
