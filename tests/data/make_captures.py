"""Write the synthetic sample captures `captures/*.jsonl` (schema `chatcap/1`).

Everything these files hold was made up for chatcap's tests and demo: the prompts, the
answers, the ids and the credentials (synthetic, and stored already redacted). Each line
is what `addons/chatcap.py` would have written for such an exchange: one HAR 1.2 entry
with `response._chunks` giving every network read as `[t_ms, end_byte]`. The arrival
times below are written out by hand (multiples of 1/8 ms, so every sum is exact) and
`tests/test_bundled_captures.py` asserts the timing figures worked out from them.

Run from the repository root: `python tests/data/make_captures.py [OUT_DIR]` (default
`captures/`). The output is deterministic (fixed dates, fixed seeds); review the diff
after changing this file.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "captures"
COMMENT = "synthetic exchange written by tests/data/make_captures.py for chatcap's tests; not real traffic"


# -- building blocks ------------------------------------------------------------------------


class Secret(str):
    """A synthetic credential: stored only as `<redacted:sha256-prefix>`, like the addon does."""


def redacted(secret: str) -> str:
    return f"<redacted:{hashlib.sha256(secret.encode()).hexdigest()[:8]}>"


def headers(pairs: list[tuple[str, str]]) -> tuple[list[dict[str, str]], list[str]]:
    """HAR headers, with `Secret` values redacted; also the names that were redacted."""
    out = [{"name": name, "value": redacted(value) if isinstance(value, Secret) else value} for name, value in pairs]
    return out, [name for name, value in pairs if isinstance(value, Secret)]


def compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def event(payload: Any, *, spaced: bool = False) -> str:
    """One SSE event; `spaced` writes the JSON the way Python's json.dumps does by default."""
    text = json.dumps(payload, ensure_ascii=False) if spaced else compact(payload)
    return f"data: {text}\n\n"


DONE = "data: [DONE]\n\n"


def cadence(start: float, count: int, gaps: tuple[float, ...]) -> list[float]:
    """`count` arrival times from `start`, the gaps between them taken from `gaps` in turn."""
    times = [start]
    for n in range(count - 1):
        times.append(times[-1] + gaps[n % len(gaps)])
    return times


class Body:
    """A response body built read by read, as the addon records it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.reads: list[list[float]] = []

    def read(self, t_ms: float, piece: str | bytes) -> None:
        """One network read arriving at `t_ms`, carrying `piece`."""
        raw = piece.encode() if isinstance(piece, str) else piece
        assert raw and (not self.reads or t_ms > self.reads[-1][0]), (t_ms, piece)
        self.data += raw
        self.reads.append([t_ms, len(self.data)])

    def split(self, t_first: float, t_rest: float, piece: str, cut: int) -> None:
        """`piece` in two reads, the first ending `cut` bytes in."""
        raw = piece.encode()
        self.read(t_first, raw[:cut])
        self.read(t_rest, raw[cut:])

    def split_inside(self, t_first: float, t_rest: float, piece: str, character: str) -> None:
        """`piece` in two reads, the first ending after the first byte of `character` (a
        multi-byte UTF-8 character), so the read splits that character."""
        raw = piece.encode()
        assert len(character.encode()) > 1
        self.split(t_first, t_rest, piece, raw.index(character.encode()) + 1)


def epoch(started: str) -> int:
    return int(datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp())


def entry(
    *,
    started: str,
    url: str,
    http_version: str,
    request_headers: list[tuple[str, str]],
    request_body: dict[str, Any],
    status: int,
    reason: str,
    response_headers: list[tuple[str, str]],
    body: Body,
    send: float,
    wait: float,
    error: str | None = None,
) -> dict[str, Any]:
    """One capture line: a HAR 1.2 entry as addons/chatcap.py writes it."""
    request_text = compact(request_body)
    request_bytes = request_text.encode()
    request_pairs = [*request_headers, ("content-length", str(len(request_bytes)))]
    response_text = body.data.decode("utf-8")  # every body here is valid UTF-8
    first_byte = send + wait
    last_byte = body.reads[-1][0]
    assert body.reads[0][0] >= first_byte
    request_har, request_redacted = headers(request_pairs)
    response_har, response_redacted = headers(response_headers)
    content_type = next(value for name, value in response_headers if name.lower() == "content-type")
    timings = {"send": send, "wait": wait, "receive": last_byte - first_byte}
    result: dict[str, Any] = {
        "startedDateTime": started,
        "time": send + wait + timings["receive"],
        "request": {
            "method": "POST",
            "url": url,
            "httpVersion": http_version,
            "headers": request_har,
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": len(request_bytes),
            "postData": {"mimeType": "application/json", "text": request_text},
        },
        "response": {
            "status": status,
            "statusText": reason,
            "httpVersion": http_version,
            "headers": response_har,
            "cookies": [],
            "content": {"size": len(body.data), "mimeType": content_type, "text": response_text},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(body.data),
            "_chunks": body.reads,
        },
        "cache": {},
        "timings": timings,
        "comment": COMMENT,
    }
    if error is not None:
        result["_error"] = error
    result["_chatcap"] = {
        "schema": "chatcap/1",
        "version": "0.1.0",
        "redacted": sorted(set(request_redacted + response_redacted)),
        "complete": error is None,
    }
    return result


def openai_sdk_headers(host: str, key: str, *, asynchronous: bool = False, retry: int = 0) -> list[tuple[str, str]]:
    """What openai-python sends."""
    return [
        ("host", host),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate"),
        ("authorization", Secret(f"Bearer {key}")),
        ("content-type", "application/json"),
        ("user-agent", "AsyncOpenAI/Python 1.107.2" if asynchronous else "OpenAI/Python 1.107.2"),
        ("x-stainless-arch", "x64"),
        ("x-stainless-async", "async:asyncio" if asynchronous else "false"),
        ("x-stainless-lang", "python"),
        ("x-stainless-os", "Linux"),
        ("x-stainless-package-version", "1.107.2"),
        ("x-stainless-retry-count", str(retry)),
        ("x-stainless-runtime", "CPython"),
        ("x-stainless-runtime-version", "3.12.11"),
    ]


def openai_response_headers(date: str, content_type: str, request_id: str, ray: str) -> list[tuple[str, str]]:
    return [
        ("date", date),
        ("content-type", content_type),
        ("access-control-expose-headers", "X-Request-ID"),
        ("openai-organization", "user-synthetic0chatcap"),
        ("openai-processing-ms", "214"),
        ("openai-project", "proj_Synthetic0Chatcap0Fixture"),
        ("openai-version", "2020-10-01"),
        ("x-request-id", request_id),
        ("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
        ("cf-cache-status", "DYNAMIC"),
        ("set-cookie", Secret(f"__cf_bm=Synthetic.{ray}.cookie-0000; path=/; expires={date}; domain=.api.openai.com; HttpOnly; Secure; SameSite=None")),
        ("x-content-type-options", "nosniff"),
        ("server", "cloudflare"),
        ("cf-ray", f"{ray}-FRA"),
        ("alt-svc", 'h3=":443"; ma=86400'),
    ]  # fmt: skip


OPENAI_KEY = "sk-proj-SYNTHETIC0chatcap0fixture0key0not0real0000000000000000"
VLLM_KEY = "token-synthetic-chatcap-vllm-0001"
OPENROUTER_KEY = "sk-or-v1-0000synthetic0chatcap0fixture0key0000000000000000000000000"
DEEPSEEK_KEY = "sk-00000000synthetic0chatcap0fixture0"


# -- multi_choice_n2.jsonl: n=2, the two choices' chunks interleaved ---------------------------

N2_STARTED = "2025-09-16T09:26:53.589Z"
N2_ID = "chatcmpl-CGsynthetic0n2chatcapFixture1"
N2_MODEL = "gpt-4o-mini-2024-07-18"
N2_ANSWERS = (
    ["Synthetic", " answer", " A", ":", " “", "Drizzle", "”", " —", " short", ",", " friendly", " and", " easy", " to", " spell", "."],
    ["Synthetic", " answer", " B", ":", " “", "Isobar", "”", ",", " because", " it", " sounds", " precise", " 🌦", "."],
)  # fmt: skip
N2_USAGE = {
    "prompt_tokens": 38,
    "completion_tokens": 30,
    "total_tokens": 68,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


def multi_choice_n2() -> list[dict[str, Any]]:
    created = epoch(N2_STARTED)
    padding = random.Random(20250916)  # OpenAI's `obfuscation` field: random padding, no information

    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> str:
        return event({
            "id": N2_ID, "object": "chat.completion.chunk", "created": created, "model": N2_MODEL,
            "service_tier": "default", "system_fingerprint": "fp_51db84afab", "choices": choices, "usage": usage,
            "obfuscation": "".join(padding.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=padding.randint(2, 12))),
        })  # fmt: skip

    def role(index: int) -> str:
        delta = {"role": "assistant", "content": "", "refusal": None}
        return chunk([{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}])

    tokens = [iter(answer) for answer in N2_ANSWERS]

    def text(index: int) -> str:
        delta = {"content": next(tokens[index])}
        return chunk([{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}])

    def stop(index: int) -> str:
        return chunk([{"index": index, "delta": {}, "logprobs": None, "finish_reason": "stop"}])

    body = Body()
    body.read(412.375, role(0) + role(1))  # both role chunks in one read
    body.split(430.125, 436.5, text(0), 40)  # the first token's event arrives in two reads: TTFT is 436.5
    body.read(441.25, text(1))
    body.read(462.875, text(0))
    body.read(468.0, text(1))
    body.read(489.625, text(0) + text(1))
    body.read(513.25, text(0))
    body.read(518.75, text(1))
    body.read(540.375, text(0))
    body.read(546.0, text(1))
    body.read(567.125, text(0))
    body.read(572.5, text(1))
    body.read(593.875, text(0))
    body.read(599.25, text(1))
    body.split_inside(614.0, 620.5, text(0), "—")  # " —": a read ends inside the em dash
    body.read(626.125, text(1))
    body.read(697.375, text(0))  # a 71.25 ms hiccup: the largest gap
    body.read(702.75, text(1))
    body.read(724.0, text(0))
    body.read(729.5, text(1))
    body.read(750.875, text(0) + text(1) + text(0))  # three events in one read
    body.read(777.25, text(1))
    body.read(781.625, text(0))
    body.read(803.0, text(1))
    body.read(808.375, text(0))
    body.read(829.75, text(1))
    body.read(835.125, text(0))
    body.read(856.5, stop(1))
    body.read(861.875, text(0))
    body.read(883.25, stop(0))
    body.read(909.625, chunk([], N2_USAGE))
    body.read(910.75, DONE)  # [DONE] in a read of its own: the last byte
    for rest in tokens:
        assert next(rest, None) is None

    request = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You name things. (Synthetic conversation for chatcap's tests.)"},
            {"role": "user", "content": "Suggest one name for a tiny weather app, with a reason."},
        ],
        "n": 2,
        "temperature": 1.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return [
        entry(
            started=N2_STARTED,
            url="https://api.openai.com/v1/chat/completions",
            http_version="HTTP/2.0",
            request_headers=openai_sdk_headers("api.openai.com", OPENAI_KEY),
            request_body=request,
            status=200,
            reason="",
            response_headers=openai_response_headers(
                "Tue, 16 Sep 2025 09:26:53 GMT",
                "text/event-stream; charset=utf-8",
                "req_5ynth371c0n2",
                "97f1a2b3c4d5e6f7",
            ),
            body=body,
            send=0.25,
            wait=398.125,
        )
    ]


# -- tool_calls.jsonl: a reasoning model calls two tools in parallel, then answers ---------------

TOOLS_STARTED = ("2025-09-16T10:02:11.204Z", "2025-09-16T10:02:13.622Z")
TOOLS_IDS = ("chatcmpl-0c5e1f2a9b7d4e3f8a6b5c4d3e2f1a01", "chatcmpl-7d2b9e4f1a3c5e8d6b0a9f2e4c1d3b02")
TOOLS_MODEL = "Qwen/Qwen3-32B"
TOOL_CALL_IDS = ("chatcmpl-tool-4f9e8d7c6b5a4f3e2d1c0b9a8f7e6d51", "chatcmpl-tool-a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6")
TOOLS_REASONING = ["The", " user", " asks", " which", " city", " is", " warmer", " right", " now", ".", " I", " need", " the", " current", " weather", " in", " Z", "ürich", " and", " Krak", "ów", ";", " the", " look", "ups", " are", " independent", ",", " so", " I", " call", " get", "_weather", " for", " both", " at", " once", "."]  # fmt: skip
TOOLS_ARGUMENTS = (
    ['{"', "city", '":', ' "', "Z", "ür", "ich", '",', ' "', "unit", '":', ' "', "c", "elsius", '"}'],
    ['{"', "city", '":', ' "', "Kr", "ak", "ów", '",', ' "', "unit", '":', ' "', "c", "elsius", '"}'],
)  # fmt: skip
TOOLS_RESULTS = (
    {"city": "Zürich", "temperature": 9, "unit": "celsius", "conditions": "overcast"},
    {"city": "Kraków", "temperature": 14, "unit": "celsius", "conditions": "sunny"},
)
FOLLOW_UP_REASONING = ["Z", "ürich", ":", " 9", " °", "C", ",", " overcast", ".", " Krak", "ów", ":", " 14", " °", "C", ",", " sunny", ".", " Krak", "ów", " is", " 5", " degrees", " warmer", "."]  # fmt: skip
FOLLOW_UP_ANSWER = ["Synthetic", " answer", ":", " Krak", "ów", " is", " warmer", " right", " now", " —", " 14", " °", "C", " and", " sunny", ",", " against", " 9", " °", "C", " and", " overcast", " in", " Z", "ürich", "."]  # fmt: skip
TOOLS_USAGE = (
    {"prompt_tokens": 296, "total_tokens": 400, "completion_tokens": 104, "prompt_tokens_details": None},
    {"prompt_tokens": 402, "total_tokens": 460, "completion_tokens": 58, "prompt_tokens_details": None},
)
LOCAL_GAPS = (18.625, 19.25, 17.875, 20.5, 18.0, 19.75)  # one token every ~19 ms on a local GPU

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
        },
    },
}
TOOLS_MESSAGES = [
    {"role": "system", "content": "You are a weather assistant. (Synthetic conversation for chatcap's tests.)"},
    {"role": "user", "content": "Which is warmer right now, Zürich or Kraków?"},
]


def vllm_chunk(chunk_id: str, created: int, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> str:
    payload: dict[str, Any] = {
        "id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": TOOLS_MODEL, "choices": choices,
    }  # fmt: skip
    if usage is not None:
        payload["usage"] = usage
    return event(payload)


def vllm_delta(chunk_id: str, created: int, delta: dict[str, Any]) -> str:
    return vllm_chunk(chunk_id, created, [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])


def vllm_finish(chunk_id: str, created: int, reason: str) -> str:
    # vLLM's last choice chunk names the stop token or string in `stop_reason`, a field no OpenAI type has.
    choice = {"index": 0, "delta": {"content": ""}, "logprobs": None, "finish_reason": reason, "stop_reason": None}
    return vllm_chunk(chunk_id, created, [choice])


def vllm_headers(date: str) -> list[tuple[str, str]]:
    return [
        ("date", date),
        ("server", "uvicorn"),
        ("content-type", "text/event-stream; charset=utf-8"),
        ("transfer-encoding", "chunked"),
    ]


def tool_calls() -> list[dict[str, Any]]:
    lines = []

    # Line 1: reasoning, then two parallel tool calls whose arguments arrive in fragments.
    chunk_id, created = TOOLS_IDS[0], epoch(TOOLS_STARTED[0])
    body = Body()
    body.read(101.125, vllm_delta(chunk_id, created, {"role": "assistant", "content": ""}))
    for t_ms, text in zip(cadence(263.5, len(TOOLS_REASONING), LOCAL_GAPS), TOOLS_REASONING, strict=True):
        body.read(t_ms, vllm_delta(chunk_id, created, {"reasoning_content": text}))
    # Reasoning ends at 966.125; the tool parser holds back `</think><tool_call>{"name": ...` for 192.125 ms.
    for number, (start, fragments) in enumerate(zip((1158.25, 1562.5), TOOLS_ARGUMENTS, strict=True)):
        header = {"index": number, "id": TOOL_CALL_IDS[number], "type": "function", "function": {"name": "get_weather"}}
        body.read(start, vllm_delta(chunk_id, created, {"tool_calls": [header]}))
        events = [vllm_delta(chunk_id, created, {"tool_calls": [{"index": number, "function": {"arguments": piece}}]}) for piece in fragments]  # fmt: skip
        times = cadence(start + 19.25, len(fragments), LOCAL_GAPS)
        if number == 0:
            for t_ms, piece, text in zip(times, fragments, events, strict=True):
                if piece == "ür":  # a read ends inside the ü of Zürich
                    body.split_inside(t_ms - 6.25, t_ms, text, "ü")
                else:
                    body.read(t_ms, text)
        else:
            for t_ms, text in zip(times[:12], events[:12], strict=True):
                body.read(t_ms, text)
            body.read(times[14], "".join(events[12:]))  # the last three fragments in one read
    body.read(1871.25, vllm_finish(chunk_id, created, "tool_calls"))
    body.read(1873.5, vllm_chunk(chunk_id, created, [], TOOLS_USAGE[0]) + DONE)
    request = {
        "model": "Qwen/Qwen3-32B",
        "messages": TOOLS_MESSAGES,
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    lines.append(
        entry(
            started=TOOLS_STARTED[0],
            url="http://localhost:8000/v1/chat/completions",
            http_version="HTTP/1.1",
            request_headers=openai_sdk_headers("localhost:8000", VLLM_KEY, asynchronous=True),
            request_body=request,
            status=200,
            reason="OK",
            response_headers=vllm_headers("Tue, 16 Sep 2025 10:02:11 GMT"),
            body=body,
            send=0.5,
            wait=96.75,
        )
    )

    # Line 2: the tool results go back; a short reasoning, then the answer.
    chunk_id, created = TOOLS_IDS[1], epoch(TOOLS_STARTED[1])
    body = Body()
    body.read(92.5, vllm_delta(chunk_id, created, {"role": "assistant", "content": ""}))
    for t_ms, text in zip(cadence(241.0, len(FOLLOW_UP_REASONING), LOCAL_GAPS), FOLLOW_UP_REASONING, strict=True):
        body.read(t_ms, vllm_delta(chunk_id, created, {"reasoning_content": text}))
    for t_ms, text in zip(cadence(741.375, len(FOLLOW_UP_ANSWER), LOCAL_GAPS), FOLLOW_UP_ANSWER, strict=True):
        piece = vllm_delta(chunk_id, created, {"content": text})
        if text == " —":  # a read ends inside the `data:` field name
            body.split(t_ms - 3.5, t_ms, piece, 2)
        else:
            body.read(t_ms, piece)
    body.read(1234.25, vllm_finish(chunk_id, created, "stop"))
    body.read(1236.5, vllm_chunk(chunk_id, created, [], TOOLS_USAGE[1]) + DONE)
    calls = [
        {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": "".join(fragments)}}
        for call_id, fragments in zip(TOOL_CALL_IDS, TOOLS_ARGUMENTS, strict=True)
    ]
    request = {
        "model": "Qwen/Qwen3-32B",
        "messages": [
            *TOOLS_MESSAGES,
            {"role": "assistant", "content": None, "tool_calls": calls},
            *[
                {"role": "tool", "tool_call_id": call_id, "content": compact(result)}
                for call_id, result in zip(TOOL_CALL_IDS, TOOLS_RESULTS, strict=True)
            ],
        ],
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    lines.append(
        entry(
            started=TOOLS_STARTED[1],
            url="http://localhost:8000/v1/chat/completions",
            http_version="HTTP/1.1",
            request_headers=openai_sdk_headers("localhost:8000", VLLM_KEY, asynchronous=True),
            request_body=request,
            status=200,
            reason="OK",
            response_headers=vllm_headers("Tue, 16 Sep 2025 10:02:13 GMT"),
            body=body,
            send=0.5,
            wait=88.25,
        )
    )
    return lines


# -- errors.jsonl: an HTTP 429, and errors that arrive inside a 200 stream -----------------------

ERRORS_STARTED = ("2025-09-16T11:40:02.117Z", "2025-09-16T11:40:06.002Z", "2025-09-16T12:15:47.880Z")
RATE_LIMIT_ERROR = {
    "message": "Rate limit reached for gpt-4o in organization org-Synthetic0Chatcap on tokens per min (TPM): Limit 30000, Used 29812, Requested 1450. Please try again in 2.524s. (Synthetic error for chatcap's tests.)",
    "type": "tokens",
    "param": None,
    "code": "rate_limit_exceeded",
}  # fmt: skip
IN_BAND_ID = "chatcmpl-CGsynthetic0errorChatcapFix2"
IN_BAND_ANSWER = ["Synthetic", " answer", ":", " the", " three", " primary", " colours", " of", " light", " are", " red", ",", " green", " and"]  # fmt: skip
IN_BAND_ERROR = {"message": "The server had an error while processing your request. (Synthetic error for chatcap's tests.)", "type": "server_error", "param": None, "code": None}  # fmt: skip
OPENROUTER_ID = "gen-1758024947-Synth3t1cChatcapFx03"
OPENROUTER_MODEL = "meta-llama/llama-3.3-70b-instruct"
OPENROUTER_ANSWER = ["Synthetic", " answer", ":", " a", " haiku", " about", " rain", " —", "\n", "soft", " rain", " on", " tin", " roofs", "\n", "the"]  # fmt: skip
OPENROUTER_ERROR = {"code": 502, "message": "Synthetic upstream error: the provider closed the connection (chatcap test)"}  # fmt: skip


def errors() -> list[dict[str, Any]]:
    lines = []

    # Line 1: HTTP 429 with OpenAI's pretty-printed error body and a Retry-After header.
    body = Body()
    body.read(144.625, json.dumps({"error": RATE_LIMIT_ERROR}, indent=4) + "\n")
    response_headers = openai_response_headers(
        "Tue, 16 Sep 2025 11:40:02 GMT", "application/json; charset=utf-8", "req_5ynth371c429", "97f1b0c1d2e3f405"
    )
    response_headers[2:2] = [
        ("content-length", str(len(body.data))),
        ("retry-after", "3"),
        ("x-ratelimit-limit-requests", "5000"),
        ("x-ratelimit-limit-tokens", "30000"),
        ("x-ratelimit-remaining-requests", "4999"),
        ("x-ratelimit-remaining-tokens", "188"),
        ("x-ratelimit-reset-requests", "12ms"),
        ("x-ratelimit-reset-tokens", "2.524s"),
    ]
    question = [{"role": "user", "content": "Name the three primary colours of light. (Synthetic conversation for chatcap's tests.)"}]  # fmt: skip
    request = {"model": "gpt-4o", "messages": question, "stream": True}
    lines.append(
        entry(
            started=ERRORS_STARTED[0],
            url="https://api.openai.com/v1/chat/completions",
            http_version="HTTP/2.0",
            request_headers=openai_sdk_headers("api.openai.com", OPENAI_KEY),
            request_body=request,
            status=429,
            reason="",
            response_headers=response_headers,
            body=body,
            send=0.375,
            wait=143.625,
        )
    )

    # Line 2: the retry streams some content, then a bare {"error": ...} event; the server closes.
    created = epoch(ERRORS_STARTED[1])

    def chunk(delta: dict[str, Any]) -> str:
        return event({
            "id": IN_BAND_ID, "object": "chat.completion.chunk", "created": created, "model": "gpt-4o-2024-08-06",
            "service_tier": "default", "system_fingerprint": "fp_f33640a400",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
        })  # fmt: skip

    body = Body()
    body.read(318.25, chunk({"role": "assistant", "content": "", "refusal": None}))
    for t_ms, text in zip(cadence(342.0, len(IN_BAND_ANSWER), (23.5, 27.25, 21.75, 31.0, 24.5)), IN_BAND_ANSWER, strict=True):  # fmt: skip
        body.read(t_ms, chunk({"content": text}))
    body.read(1284.125, event({"error": IN_BAND_ERROR}, spaced=True))  # written by Python's json.dumps
    lines.append(
        entry(
            started=ERRORS_STARTED[1],
            url="https://api.openai.com/v1/chat/completions",
            http_version="HTTP/2.0",
            request_headers=openai_sdk_headers("api.openai.com", OPENAI_KEY, retry=1),
            request_body=request,
            status=200,
            reason="",
            response_headers=openai_response_headers(
                "Tue, 16 Sep 2025 11:40:06 GMT",
                "text/event-stream; charset=utf-8",
                "req_5ynth371c500",
                "97f1b0d9e8f7a6b5",
            ),
            body=body,
            send=0.375,
            wait=301.5,
        )
    )

    # Line 3: OpenRouter: processing comments, then content, then a chunk with a top-level
    # error and finish_reason "error" (its documented mid-stream error shape).
    created = epoch(ERRORS_STARTED[2])

    def openrouter(choice: dict[str, Any], error: dict[str, Any] | None = None) -> str:
        payload: dict[str, Any] = {
            "id": OPENROUTER_ID, "provider": "DeepInfra", "model": OPENROUTER_MODEL,
            "object": "chat.completion.chunk", "created": created,
        }  # fmt: skip
        if error is not None:
            payload["error"] = error
        payload["choices"] = [{"index": 0, **choice, "native_finish_reason": None, "logprobs": None}]
        return event(payload)

    body = Body()
    body.read(221.375, ": OPENROUTER PROCESSING\n\n")
    body.read(721.5, ": OPENROUTER PROCESSING\n\n")
    times = cadence(958.75, len(OPENROUTER_ANSWER), (31.25, 26.5, 35.75, 28.5))
    for t_ms, text in zip(times, OPENROUTER_ANSWER, strict=True):
        delta = {"role": "assistant", "content": text}  # OpenRouter repeats the role in every chunk
        body.read(t_ms, openrouter({"delta": delta, "finish_reason": None}))
    body.read(1662.0, openrouter({"delta": {"role": "assistant", "content": ""}, "finish_reason": "error"}, OPENROUTER_ERROR))  # fmt: skip
    request = {
        "model": OPENROUTER_MODEL,
        "messages": [
            {"role": "user", "content": "Write a haiku about rain. (Synthetic conversation for chatcap's tests.)"}
        ],
        "stream": True,
    }
    lines.append(
        entry(
            started=ERRORS_STARTED[2],
            url="https://openrouter.ai/api/v1/chat/completions",
            http_version="HTTP/2.0",
            request_headers=[
                ("host", "openrouter.ai"),
                ("accept", "*/*"),
                ("authorization", Secret(f"Bearer {OPENROUTER_KEY}")),
                ("content-type", "application/json"),
                ("http-referer", "https://chatcap.example"),
                ("x-title", "chatcap synthetic fixture"),
                ("user-agent", "node"),
            ],
            request_body=request,
            status=200,
            reason="",
            response_headers=[
                ("date", "Tue, 16 Sep 2025 12:15:48 GMT"),
                ("content-type", "text/event-stream"),
                ("access-control-allow-origin", "*"),
                ("cache-control", "no-cache"),
                ("x-generation-id", OPENROUTER_ID),
                ("vary", "Accept-Encoding"),
                ("server", "cloudflare"),
                ("cf-ray", "97f1c2d3e4f5a6b7-FRA"),
            ],
            body=body,
            send=0.625,
            wait=219.5,
        )
    )
    return lines


# -- truncated.jsonl: a stream cut off by the client, then the same question not streamed -------

TRUNCATED_STARTED = ("2025-09-16T13:05:19.431Z", "2025-09-16T13:05:31.208Z")
TRUNCATED_IDS = ("3f6c1a2e-9b8d-4c7e-a5f1-2d0e9c8b7a61", "8a4d2c6e-1f3b-4e9a-b7c5-0d2e4f6a8c93")
BREW_FIRST = ["Synthetic", " answer", ":", " to", " brew", " pour", "-over", " coffee", ",", " heat", " water", " to", " about", " 94", " °", "C", ",", " rinse", " the", " paper", " filter", ",", " add", " 15", " g", " of", " medium", "-fine", " coffee", ","]  # fmt: skip
BREW_AFTER_STALL = [" bloom", " it", " with", " 30", " g", " of"]
BREW_FULL = (
    "Synthetic answer: to brew pour-over coffee, heat water to about 94 °C, rinse the paper filter, "
    "add 15 g of medium-fine coffee, bloom it with 30 g of water for 30 seconds, then pour slowly in "
    "circles up to 250 g. The whole brew should take around three minutes."
)
BREW_USAGE = {
    "prompt_tokens": 88,
    "completion_tokens": 61,
    "total_tokens": 149,
    "prompt_tokens_details": {"cached_tokens": 64},
    "prompt_cache_hit_tokens": 64,
    "prompt_cache_miss_tokens": 24,
}
DEEPSEEK_GAPS = (28.75, 33.5, 26.25, 31.5)
BREW_MESSAGES = [
    {"role": "system", "content": "You are a concise barista. Answer in two sentences at most. (Synthetic conversation for chatcap's tests.)"},
    {"role": "user", "content": "How do I brew pour-over coffee?"},
]  # fmt: skip


def deepseek_headers(date: str, trace: str, content_type: str) -> list[tuple[str, str]]:
    return [
        ("date", date),
        ("content-type", content_type),
        ("cache-control", "no-cache"),
        ("vary", "origin, access-control-request-method, access-control-request-headers"),
        ("access-control-allow-credentials", "true"),
        ("x-ds-trace-id", trace),
        ("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
        ("x-content-type-options", "nosniff"),
    ]


def truncated() -> list[dict[str, Any]]:
    lines = []

    # Line 1: keep-alive comments while queued, 30 tokens, a 1.5 s stall, 6 more, then the client hangs up.
    created = epoch(TRUNCATED_STARTED[0])

    def chunk(delta: dict[str, Any]) -> str:
        return event({
            "id": TRUNCATED_IDS[0], "object": "chat.completion.chunk", "created": created, "model": "deepseek-chat",
            "system_fingerprint": "fp_synthetic_prod0820_fp8_kvcache",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
        })  # fmt: skip

    body = Body()
    body.read(207.125, ": keep-alive\n\n")
    body.read(688.5, chunk({"role": "assistant", "content": ""}))
    for t_ms, text in zip(cadence(702.25, len(BREW_FIRST), DEEPSEEK_GAPS), BREW_FIRST, strict=True):
        if text == " °":  # a read ends inside the degree sign
            body.split_inside(t_ms - 4.0, t_ms, chunk({"content": text}), "°")
        else:
            body.read(t_ms, chunk({"content": text}))
    # The last token above arrives at 1571.0; nothing comes for 1512.375 ms.
    for t_ms, text in zip(cadence(3083.375, len(BREW_AFTER_STALL), DEEPSEEK_GAPS), BREW_AFTER_STALL, strict=True):
        body.read(t_ms, chunk({"content": text}))
    lines.append(
        entry(
            started=TRUNCATED_STARTED[0],
            url="https://api.deepseek.com/chat/completions",
            http_version="HTTP/2.0",
            request_headers=openai_sdk_headers("api.deepseek.com", DEEPSEEK_KEY),
            request_body={"model": "deepseek-chat", "messages": BREW_MESSAGES, "stream": True},
            status=200,
            reason="",
            response_headers=deepseek_headers(
                "Tue, 16 Sep 2025 13:05:19 GMT", "5e1f0a9b8c7d6e5f4a3b2c1d0e9f8a71", "text/event-stream; charset=utf-8"
            ),
            body=body,
            send=0.5,
            wait=205.0,
            error="client disconnected",
        )
    )

    # Line 2: the same question without streaming. DeepSeek keeps a queued non-streaming
    # request alive with blank lines before the JSON body.
    completion = {
        "id": TRUNCATED_IDS[1],
        "object": "chat.completion",
        "created": epoch(TRUNCATED_STARTED[1]),
        "model": "deepseek-chat",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": BREW_FULL},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": BREW_USAGE,
        "system_fingerprint": "fp_synthetic_prod0820_fp8_kvcache",
    }
    body = Body()
    body.read(1199.125, "\n")
    body.split_inside(4387.5, 4388.25, compact(completion), "°")  # the JSON in two reads, split inside "°"
    lines.append(
        entry(
            started=TRUNCATED_STARTED[1],
            url="https://api.deepseek.com/chat/completions",
            http_version="HTTP/2.0",
            request_headers=openai_sdk_headers("api.deepseek.com", DEEPSEEK_KEY),
            request_body={"model": "deepseek-chat", "messages": BREW_MESSAGES, "stream": False},
            status=200,
            reason="",
            response_headers=deepseek_headers(
                "Tue, 16 Sep 2025 13:05:31 GMT", "6f2a1b0c9d8e7f6a5b4c3d2e1f0a9b82", "application/json"
            ),
            body=body,
            send=0.5,
            wait=198.25,
        )
    )
    return lines


FILES = {
    "multi_choice_n2.jsonl": multi_choice_n2,
    "tool_calls.jsonl": tool_calls,
    "errors.jsonl": errors,
    "truncated.jsonl": truncated,
}


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, build in FILES.items():
        text = "".join(compact(line) + "\n" for line in build())
        (out / name).write_text(text, encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
