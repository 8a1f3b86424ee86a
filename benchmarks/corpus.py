"""A realistic, reproducible corpus of chat/completions SSE bodies for the benchmark.

Every body is what an OpenAI-compatible server sends for one streamed request: the full
envelope on every chunk (id, object, created, model, system_fingerprint, choices[{index,
delta, logprobs: null, finish_reason}]), deltas of one to four tokens of English, CJK or
mixed text, a usage chunk with `choices: []` and `data: [DONE]`. Three stream shapes:

- `text`: a plain answer (70 %)
- `reasoning`: `reasoning_content` deltas first, then the answer, as DeepSeek and vLLM send it (15 %)
- `tools`: an optional lead-in, then one to three tool calls whose arguments arrive in
  fragments of a few characters (15 %)

and three provider dialects of the same envelope, as recorded from the real services:
OpenAI (`service_tier`, `"usage": null` on every chunk with `include_usage`, `obfuscation`
padding, `refusal: null` in the first delta), DeepSeek (`"usage": null` too, `content:
null` beside `reasoning_content`) and vLLM (no fingerprint).

`openrouter` is a fourth shape kept out of the main mix: OpenRouter's keep-alive comments
and its extension fields (`provider`, `native_finish_reason`, `reasoning_details`, cost in
usage), for a side measurement of the paths provider extensions take.

Bodies are cached in benchmarks/data/, keyed by generator version, mix, seed and size.
"""

from __future__ import annotations

import math
import random
import string
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

DATA = Path(__file__).resolve().parent / "data"
GENERATOR_VERSION = 3  # bump when the output changes: old cache files are then ignored
MAIN_MIX = {"text": 70, "reasoning": 15, "tools": 15}
OPENROUTER_MIX = {"openrouter": 100}
KINDS = ("text", "reasoning", "tools", "openrouter")

ENGLISH = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "you",
    "that",
    "it",
    "for",
    "on",
    "are",
    "as",
    "with",
    "this",
    "be",
    "at",
    "have",
    "from",
    "or",
    "one",
    "had",
    "by",
    "word",
    "but",
    "not",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "an",
    "each",
    "which",
    "she",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "model",
    "token",
    "stream",
    "latency",
    "reasoning",
    "answer",
    "context",
    "window",
    "request",
    "response",
    "function",
    "value",
    "return",
    "error",
    "because",
    "however",
    "therefore",
    "example",
    "first",
    "second",
    "finally",
    "result",
    "results",
    "data",
    "table",
    "user",
    "system",
]
CJK = list(
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所"
)
CJK += [
    "你好",
    "世界",
    "模型",
    "推理",
    "数据",
    "流式",
    "请求",
    "响应",
    "问题",
    "答案",
    "です",
    "ます",
    "します",
    "こと",
    "ように",
    "데이터",
    "모델",
]
PUNCTUATION = [",", ".", ":", ";", "?", "!", "，", "。", "、", "：", "（", "）"]
SPECIAL = ["\n", "\n\n", "**", "`", "- ", "1.", '"', "\\", "—", "…", "😊", "🚀", "café", "naïve", "\t"]
TOOLS = {
    "get_weather": lambda rng, words: {"location": words(2), "unit": rng.choice(["celsius", "fahrenheit"])},
    "search": lambda rng, words: {"query": words(rng.randint(3, 12)), "limit": rng.randint(1, 50)},
    "read_file": lambda rng, words: {"path": "/srv/" + "/".join(rng.choice(ENGLISH) for _ in range(3)) + ".md"},
    "run_sql": lambda rng, words: {"sql": f"SELECT {words(2)} FROM t WHERE x > {rng.randint(0, 99)}", "timeout": 30},
}


@dataclass(slots=True, frozen=True)
class Corpus:
    bodies: list[bytes]
    kinds: list[str]
    seed: int
    mix: dict[str, int]
    path: Path
    cached: bool  # read from the cache rather than generated

    @property
    def size(self) -> int:
        return sum(map(len, self.bodies))


class _Stream:
    """One exchange's body being written: a provider dialect and its fixed envelope."""

    def __init__(self, rng: random.Random, n: int, kind: str) -> None:
        self.rng = rng
        self.events: list[bytes] = []
        self.completion_tokens = 0
        if kind == "openrouter":
            self.dialect = "openrouter"
        elif kind == "reasoning":
            self.dialect = rng.choice(["deepseek", "deepseek", "vllm"])
        else:
            self.dialect = rng.choices(["openai", "deepseek", "vllm"], weights=[60, 20, 20])[0]
        created = 1_760_000_000 + n * 7
        alnum = string.ascii_letters + string.digits
        if self.dialect == "openai":
            model = rng.choice(["gpt-4o-2024-08-06", "gpt-4.1-mini-2025-04-14", "gpt-4o-mini-2024-07-18"])
            self.envelope: dict[str, Any] = {
                "id": "chatcmpl-" + "".join(rng.choices(alnum, k=29)),
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": f"fp_{rng.getrandbits(40):010x}",
            }
        elif self.dialect == "deepseek":
            self.envelope = {
                "id": f"{rng.getrandbits(128):032x}",
                "object": "chat.completion.chunk",
                "created": created,
                "model": "deepseek-reasoner" if kind == "reasoning" else "deepseek-chat",
                "system_fingerprint": f"fp_{rng.getrandbits(40):010x}_prod0820_fp8_kvcache",
            }
        elif self.dialect == "vllm":
            self.envelope = {
                "id": f"chatcmpl-{rng.getrandbits(128):032x}",
                "object": "chat.completion.chunk",
                "created": created,
                "model": rng.choice(["Qwen/Qwen3-32B", "meta-llama/Llama-3.3-70B-Instruct"]),
            }
        else:
            self.envelope = {
                "id": f"gen-{created}-" + "".join(rng.choices(alnum, k=20)),
                "provider": rng.choice(["OpenAI", "Anthropic", "Google", "DeepInfra"]),
                "model": rng.choice(["openai/gpt-4o", "anthropic/claude-sonnet-4", "google/gemini-2.5-flash"]),
                "object": "chat.completion.chunk",
                "created": created,
            }

    def emit(self, delta: dict[str, Any], finish: str | None = None) -> None:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        if self.dialect == "openrouter":
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish, "logprobs": None}  # fmt: skip
        chunk = {**self.envelope, "choices": [choice]}
        if self.dialect in ("openai", "deepseek"):
            chunk["usage"] = None
        if self.dialect == "openai":
            chunk["obfuscation"] = "".join(self.rng.choices(string.ascii_letters, k=self.rng.randint(1, 14)))
        self.events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")

    def usage(self, prompt_tokens: int, reasoning_tokens: int) -> None:
        completion = self.completion_tokens
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}  # fmt: skip
        if self.dialect == "openai":
            usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
            usage["completion_tokens_details"] = {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}  # fmt: skip
        elif self.dialect == "deepseek":
            usage["prompt_tokens_details"] = {"cached_tokens": prompt_tokens // 2}
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
            usage["prompt_cache_hit_tokens"] = prompt_tokens // 2
            usage["prompt_cache_miss_tokens"] = prompt_tokens - prompt_tokens // 2
        elif self.dialect == "openrouter":
            usage["cost"] = round(self.rng.uniform(0.0001, 0.02), 7)
            usage["is_byok"] = False
            usage["prompt_tokens_details"] = {"cached_tokens": 0}
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
        chunk = {**self.envelope, "choices": [], "usage": usage}
        if self.dialect == "openai":
            chunk["obfuscation"] = "".join(self.rng.choices(string.ascii_letters, k=self.rng.randint(1, 14)))
        self.events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")


def _length(rng: random.Random, median: float, low: int, high: int) -> int:
    """A long-tailed count (log-normal, spread 0.8) with the given median."""
    return max(low, min(high, round(rng.lognormvariate(math.log(median), 0.8))))


def _text_source(rng: random.Random) -> Any:
    """A delta generator of one language profile: English, CJK, or mixed."""
    cjk_share = rng.choice([0.0, 0.0, 0.05, 0.3, 0.9])

    def token() -> str:
        roll = rng.random()
        if roll < 0.05:
            return rng.choice(SPECIAL)
        if roll < 0.12:
            return rng.choice(PUNCTUATION)
        if rng.random() < cjk_share:
            return rng.choice(CJK)
        word = rng.choice(ENGLISH)
        return " " + word if rng.random() < 0.9 else " " + word.capitalize()

    def delta() -> tuple[str, int]:
        count = rng.choices((1, 2, 3, 4), weights=(55, 25, 12, 8))[0]
        return "".join(token() for _ in range(count)), count

    return delta


def _words(rng: random.Random, text: Any) -> Any:
    return lambda count: "".join(text()[0] for _ in range(count)).strip()


def exchange_body(rng: random.Random, n: int, kind: str, scale: float = 1.0) -> bytes:
    """One SSE body of the given shape; `scale` multiplies the median number of deltas
    (1.0 gives the reconstruction benchmark's streams, unchanged)."""
    stream = _Stream(rng, n, kind)
    text = _text_source(rng)
    dialect = stream.dialect
    reasoning_tokens = 0
    if dialect == "openrouter":
        stream.events.extend([b": OPENROUTER PROCESSING\n\n"] * rng.randint(1, 6))
    first: dict[str, Any] = {"role": "assistant", "content": ""}
    if dialect == "openai":
        first["refusal"] = None
    if kind == "reasoning":
        first = {"role": "assistant", "content": None, "reasoning_content": ""}
    if kind == "tools" and rng.random() < 0.6:
        first = {"role": "assistant", "content": None}  # straight to the calls
        if dialect == "openai":
            first["refusal"] = None
        answer = 0
    elif kind == "tools":
        answer = _length(rng, 12 * scale, 2, 80)  # "Let me look that up."
    elif kind == "reasoning":
        answer = _length(rng, 25 * scale, 3, 600)
    else:
        answer = _length(rng, 32 * scale, 3, 1200)
    stream.emit(first)
    if kind == "reasoning" or (kind == "openrouter" and rng.random() < 0.3):
        for _ in range(_length(rng, 60 * scale, 5, 1500)):
            piece, tokens = text()
            reasoning_tokens += tokens
            stream.completion_tokens += tokens
            if dialect == "openrouter":
                detail = {"type": "reasoning.text", "text": piece, "format": "unknown", "index": 0}
                stream.emit({"role": "assistant", "content": "", "reasoning": piece, "reasoning_details": [detail]})
            elif dialect == "deepseek":
                stream.emit({"content": None, "reasoning_content": piece})
            else:
                stream.emit({"reasoning_content": piece})
    for _ in range(answer):
        piece, tokens = text()
        stream.completion_tokens += tokens
        if dialect == "deepseek" and kind == "reasoning":
            stream.emit({"content": piece, "reasoning_content": None})
        elif dialect == "openrouter":
            stream.emit({"role": "assistant", "content": piece})
        else:
            stream.emit({"content": piece})
    if kind == "tools":
        for index in range(rng.choices((1, 2, 3), weights=(70, 22, 8))[0]):
            name = rng.choice(list(TOOLS))
            arguments = orjson.dumps(TOOLS[name](rng, _words(rng, text))).decode()
            call = {"index": index, "id": "call_" + "".join(rng.choices(string.ascii_letters + string.digits, k=24)), "type": "function", "function": {"name": name, "arguments": ""}}  # fmt: skip
            stream.emit({"tool_calls": [call]})
            start = 0
            while start < len(arguments):
                size = rng.choices((1, 2, 3, 4, 6, 8), weights=(10, 25, 25, 20, 12, 8))[0]
                stream.emit(
                    {"tool_calls": [{"index": index, "function": {"arguments": arguments[start : start + size]}}]}
                )
                stream.completion_tokens += 1
                start += size
        stream.emit({}, "tool_calls")
    elif dialect == "deepseek" and kind == "reasoning":
        stream.emit({"content": "", "reasoning_content": None}, "stop")
    else:
        stream.emit({}, "length" if rng.random() < 0.02 else "stop")
    stream.usage(rng.randint(20, 6000), reasoning_tokens)
    stream.events.append(b"data: [DONE]\n\n")
    return b"".join(stream.events)


def build(size_mb: float, seed: int = 1, mix: dict[str, int] = MAIN_MIX) -> Corpus:
    """Bodies adding up to at least `size_mb` MB (10^6 bytes), generated once and then read from the cache."""
    DATA.mkdir(parents=True, exist_ok=True)
    mix_name = "-".join(f"{kind}{weight}" for kind, weight in mix.items())
    path = DATA / f"chat-v{GENERATOR_VERSION}-{mix_name}-seed{seed}-{size_mb:g}MB.bin"
    if path.exists():
        bodies, kinds = _read(path)
        return Corpus(bodies, kinds, seed, mix, path, cached=True)
    rng = random.Random(seed)
    bodies, kinds, total, target = [], [], 0, int(size_mb * 1_000_000)
    names, weights = list(mix), list(mix.values())
    while total < target:
        kind = rng.choices(names, weights)[0]
        body = exchange_body(rng, len(bodies), kind)
        bodies.append(body)
        kinds.append(kind)
        total += len(body)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        for kind, body in zip(kinds, bodies, strict=True):
            handle.write(struct.pack("<BI", KINDS.index(kind), len(body)))
            handle.write(body)
    partial.rename(path)  # a killed run leaves no half-written cache behind
    return Corpus(bodies, kinds, seed, mix, path, cached=False)


def _read(path: Path) -> tuple[list[bytes], list[str]]:
    data = path.read_bytes()
    bodies, kinds, position = [], [], 0
    while position < len(data):
        kind, length = struct.unpack_from("<BI", data, position)
        position += 5
        bodies.append(data[position : position + length])
        kinds.append(KINDS[kind])
        position += length
    return bodies, kinds


def payloads(body: bytes) -> list[bytes]:
    """Each event's data, as a bare JSON parser sees it: every JSON payload, not comments or `[DONE]`."""
    return [event[6:] for event in body.split(b"\n\n") if event.startswith(b"data: {")]
