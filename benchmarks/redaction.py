"""How fast redaction by structure is, beside parsing the same bytes (the least a structural
redactor must do) and the old regular-expression redactor it replaced.

    python benchmarks/redaction.py            # best of 5, ranges over 3 runs
    make bench

Inputs, each redacted whole as the addon and the exports do (`redact.redact_body`):

- real streams    the 99 recorded streams of tests/data/real, one by one
- long request    a 2,000-message history in one chat request body (0.7 MB), plain prose
- code request    the same with `total = price * count` and an e-mail address in every tenth
                  message, as chats about code have: an `=` or `@` could start a credential, so
                  the body's JSON strings are tokenised to judge the ones near each
- long stream     a 20,000-delta chat stream (2.5 MB), plain prose
- dense stream    the same with a credential and the words "basic", "bearer", "key: " every 50 deltas
- prose cells     the long request's 2,000 messages, each a text of its own (as the tables' cells
                  are redacted), with a question mark, a semicolon and the word "key" in each

Peers, over the same bytes:

- floor: orjson   `orjson.loads` of the body (request) or of each data line (streams)
- json (stdlib)   the same with the standard library
- old regex       chatcap's redactor before it worked by structure (patterns over the text;
                  it corrupted JSON and rewrote prose, kept here only as a yardstick)
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from bundled import REAL_CORPUS  # noqa: E402
from secrets_plant import SHAPES, chat_stream  # noqa: E402

from analyzer.redact import redact_body  # noqa: E402

_OLD = [
    re.compile(r"(?<=\b[Bb]earer )[^\s\"',;]+"),
    re.compile(r"(?<=\b[Bb]asic )[A-Za-z0-9+/=]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bsk-(?:ant-|proj-|or-v1-)?[A-Za-z0-9_-]{16,}"),
    re.compile(r"\b(?:gsk|xai|pplx|ghp|gho|ghu|ghs|ghr|hf|glpat|r8|fw)_[A-Za-z0-9_-]{16,}"),
    re.compile(r"\bxai-[A-Za-z0-9]{20,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"[?&](?:key|api_key|apikey|api-key|access_token|token|auth|sig|signature)=[^&#\s\"']+", re.I),
    re.compile(r"\"(?:api_key|apiKey|access_token|refresh_token|client_secret|password)\":\s?\"[^\"]+"),
]


def old_regex(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    for pattern in _OLD:
        text = pattern.sub("<redacted>", text)
    return text


def parse_floor(loads: Callable[[bytes], object]) -> Callable[[bytes], object]:
    def run(body: bytes) -> object:
        if body.startswith(b"{"):
            return loads(body)
        return [
            loads(line[5:]) for line in body.split(b"\n") if line.startswith(b"data:") and line[5:].strip()[:1] == b"{"
        ]

    return run


def inputs() -> dict[str, list[bytes]]:
    words = [
        "The",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        "while",
        "the",
        "model",
        "keeps",
        "streaming",
        "its",
        "answer",
    ]
    history = [{"role": "user" if n % 2 else "assistant", "content": " ".join(words[(n + k) % len(words)] for k in range(60))}
               for n in range(2000)]  # fmt: skip
    code = [
        {**m, "content": m["content"] + " total = price * count, ada@example.com"} if n % 10 == 0 else m
        for n, m in enumerate(history)
    ]
    dense = [
        f"{words[n % len(words)]} " if n % 50 else f"basic bearer key: {SHAPES['github_token']} " for n in range(20000)
    ]
    return {
        "real streams": [path.read_bytes() for path in sorted(REAL_CORPUS.glob("*.sse"))],
        "long request": [json.dumps({"model": "m", "messages": history, "max_tokens": 10}).encode()],
        "code request": [json.dumps({"model": "m", "messages": code, "max_tokens": 10}).encode()],
        "long stream": [chat_stream([words[n % len(words)] + " " for n in range(20000)])],
        "dense stream": [chat_stream(dense)],
        "prose cells": [f"{m['content']}; the key point? {m['content']}".encode() for m in history],
    }


def best_of(function: Callable[[bytes], object], bodies: list[bytes], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for body in bodies:
            function(body)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    peers: dict[str, Callable[[bytes], object]] = {
        "chatcap redact_body": lambda body: redact_body(body),
        "floor: orjson parse": parse_floor(orjson.loads),
        "json (stdlib) parse": parse_floor(json.loads),
        "old regex redactor": old_regex,
    }
    print(f"{'input':<14} {'MB':>6}  " + "  ".join(f"{name:>22}" for name in peers))
    for name, bodies in inputs().items():
        size = sum(map(len, bodies)) / 1e6
        cells = []
        for function in peers.values():
            runs = [size / best_of(function, bodies) for _ in range(3)]
            cells.append(f"{min(runs):>9.1f}-{max(runs):<6.1f}MB/s")
        print(f"{name:<14} {size:>6.2f}  " + "  ".join(f"{cell:>22}" for cell in cells))
    print("(MB/s of input: the range over 3 runs, each the best of 5)")


if __name__ == "__main__":
    main()
