"""A realistic, reproducible corpus of chat/completions SSE bodies for the benchmark.

Shapes follow what OpenAI-compatible providers send: the full envelope on every chunk
(id, object, created, model, system_fingerprint, choices[{index, delta, logprobs,
finish_reason}]), deltas of one to four tokens of mixed English and CJK text, some
reasoning streams (reasoning_content first), some tool-call streams with fragmented
arguments, a usage chunk with `choices: []` and `data: [DONE]`. Cached in
benchmarks/data/ so a second run starts at once.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import orjson

DATA = Path(__file__).resolve().parent / "data"
WORDS = (
    "the of and to in is you that it for on are as with this be at have from or one had by word but not what all "
    "were we when your can said there use an each which she do how their if will up other about out many then them "
    "model token stream latency reasoning answer context window request response 你好 世界 模型 推理 数据 流式 "
    "请求 响应 😊 🚀 — “quoted” café naïve"
).split()
MODELS = ["gpt-4o-2024-08-06", "gpt-4.1-mini-2025-04-14", "deepseek-chat", "llama-3.3-70b-versatile", "qwen3-max"]


def _tokens(rng: random.Random) -> str:
    return "".join((" " if rng.random() < 0.8 else "") + rng.choice(WORDS) for _ in range(rng.randint(1, 4)))


def exchange_body(rng: random.Random, n: int) -> bytes:
    """One SSE body: a plain, reasoning or tool-call stream."""
    kind = rng.choices(["text", "reasoning", "tools"], weights=[70, 15, 15])[0]
    model = rng.choice(MODELS)
    envelope = {
        "id": f"chatcmpl-{n:08d}{rng.getrandbits(48):012x}",
        "object": "chat.completion.chunk",
        "created": 1_760_000_000 + n,
        "model": model,
        "system_fingerprint": f"fp_{rng.getrandbits(40):010x}",
    }
    lines = []

    def emit(delta: dict, finish: str | None = None) -> None:
        chunk = {**envelope, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        lines.append(b"data: " + orjson.dumps(chunk) + b"\n\n")

    emit({"role": "assistant", "content": ""})
    if kind == "reasoning":
        for _ in range(rng.randint(40, 160)):
            emit({"reasoning_content": _tokens(rng)})
    if kind == "tools":
        for call in range(rng.randint(1, 2)):
            emit({"tool_calls": [{"index": call, "id": f"call_{rng.getrandbits(64):016x}", "type": "function",
                                  "function": {"name": rng.choice(["get_weather", "search", "read_file"]), "arguments": ""}}]})  # fmt: skip
            arguments = orjson.dumps({"query": _tokens(rng) * 3, "limit": rng.randint(1, 50)}).decode()
            for start in range(0, len(arguments), 6):
                emit({"tool_calls": [{"index": call, "function": {"arguments": arguments[start : start + 6]}}]})
        emit({}, "tool_calls")
    else:
        for _ in range(rng.randint(20, 120)):
            emit({"content": _tokens(rng)})
        emit({}, "stop")
    usage = {"prompt_tokens": rng.randint(20, 4000), "completion_tokens": len(lines), "total_tokens": 0,
             "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}  # fmt: skip
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    lines.append(b"data: " + orjson.dumps({**envelope, "choices": [], "usage": usage}) + b"\n\n")
    lines.append(b"data: [DONE]\n\n")
    return b"".join(lines)


def build(size_mb: float, seed: int = 1) -> list[bytes]:
    """Bodies adding up to at least `size_mb` MB, cached on disk."""
    DATA.mkdir(parents=True, exist_ok=True)
    cache = DATA / f"chat-{seed}-{size_mb:g}MB.bin"
    if cache.exists():
        return _read(cache)
    rng = random.Random(seed)
    bodies, total, target = [], 0, int(size_mb * 1_000_000)
    while total < target:
        body = exchange_body(rng, len(bodies))
        bodies.append(body)
        total += len(body)
    with cache.open("wb") as handle:
        for body in bodies:
            handle.write(struct.pack("<I", len(body)) + body)
    return bodies


def _read(path: Path) -> list[bytes]:
    data = path.read_bytes()
    bodies, position = [], 0
    while position < len(data):
        (length,) = struct.unpack_from("<I", data, position)
        bodies.append(data[position + 4 : position + 4 + length])
        position += 4 + length
    return bodies


def payloads(body: bytes) -> list[bytes]:
    """Each event's data, as a parser floor sees it (everything but `[DONE]`)."""
    return [event[6:] for event in body.split(b"\n\n") if event.startswith(b"data: {")]
