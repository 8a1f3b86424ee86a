"""Reconstruction throughput for the event-typed protocols (Anthropic Messages, OpenAI Responses,
Gemini), each side by side with its official SDK and the orjson floor, in one run.

    python benchmarks/protocols.py                 # ~20 MB of bodies per protocol, best of 3
    python benchmarks/protocols.py --quick         # ~3 MB per protocol, best of 1
    python benchmarks/protocols.py --profile       # also: where chatcap spends its time (cProfile, stages)
    python benchmarks/protocols.py --check         # exit 1 when a target is missed

Peers per protocol, one after another in this process over the same body bytes:

- chatcap        Exchange(request=Request("POST", <the protocol's URL>), response=Response(200,
                 text/event-stream, body)).reconstruct(): the whole body as one read
- orjson floor   orjson.loads of every event's JSON payload, payloads split out before timing
                 (run.json_payloads): JSON parsing and nothing else
- Anthropic SDK  what `client.messages.stream()` does with the body: anthropic's SSEDecoder.iter_bytes,
                 the event-name filter and sse.json() of `Stream.__stream__`, construct_type
                 (RawMessageStreamEvent), then MessageStream's accumulate_event + build_events
- openai SDK     what `client.responses.stream()` does: openai's SSEDecoder.iter_bytes, sse.json(),
                 the error check, construct_type(ResponseStreamEvent), ResponseStreamState.handle_event
                 (accumulate_event and the events it fires), get_final_response
- google-genai   what `client.models.generate_content_stream()` does per chunk: the SDK's own
                 HttpResponse.segments() over an httpx.Response holding the body (iter_lines, the data:
                 join, json.loads), request_streamed's json.dumps and error check, json.loads again,
                 _GenerateContentResponse_from_mldev/_from_vertex, GenerateContentResponse._from_response
                 (pydantic model_validate), StreamContinuation.observe; then what a user writes to get
                 the answer out: text, thought text and function calls concatenated across chunks

Two workloads per protocol. First a seeded synthetic corpus written from the protocol's documentation
(~20 MB of bodies by default, generated in memory in about a second): 65 % plain answers, 20 % with
reasoning first (Anthropic thinking blocks, Responses reasoning summaries, Gemini thought parts),
15 % with an optional lead-in and one to three tool calls whose arguments stream in pieces of a
few characters (Gemini: whole calls on the Gemini API, streamed partialArgs on Vertex AI); text
deltas of 1–8 tokens, answers long-tailed (median 40 deltas, up to 1,200), usage at the end; each
generator's docstring says what its protocol's events look like. Then the recorded streams of
that protocol, `<provider>__<protocol>__<name>.sse` in tests/data/real/ (`--real DIR` for another
directory), timed per stream.

MB are 10^6 bytes of response body; events are JSON payloads (Anthropic's pings included).
Before timing, chatcap and the SDK must agree on sampled bodies' answer text, reasoning, tool
calls (id, name, arguments), stop reason and usage, and chatcap must reconstruct each sampled
synthetic body without a warning, so a peer that skips work cannot look fast.
Targets, as for chat/completions: chatcap ≥ 0.5× the floor's MB/s and ≥ 10× the SDK's, judged on
the synthetic corpus. Also printed: chatcap and the floor per stream shape, and per event on single
answers of 200, 2,000 and 20,000 text deltas (a cost per event that rises with the length means
work that grows faster than the stream).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import io
import json
import math
import os
import pstats
import random
import string
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import corpus
import httpx
import openai
import orjson
import pydantic
from anthropic._models import construct_type as anthropic_construct
from anthropic._streaming import SSEDecoder as AnthropicSSEDecoder
from anthropic._types import NOT_GIVEN
from anthropic.lib.streaming._messages import accumulate_event, build_events
from anthropic.types import RawMessageStreamEvent
from google import genai
from google.genai import types as genai_types
from google.genai._api_client import HttpResponse as GenaiSession
from google.genai._extra_utils import StreamContinuation
from google.genai.models import _GenerateContentResponse_from_mldev, _GenerateContentResponse_from_vertex
from machine import best_of, describe, header
from openai._models import construct_type as openai_construct
from openai._streaming import SSEDecoder as OpenAISSEDecoder
from openai._utils import is_mapping
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent
from run import Row, json_payloads, real_framing, table

import analyzer
from analyzer.model import Exchange, Reconstruction, Request, Response
from analyzer.protocols import MODULES
from analyzer.sse import cut, decode

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REAL = HERE.parent / "tests" / "data" / "real"  # streams recorded from real providers (its PROVENANCE.md)
EVENT_STREAM = [("content-type", "text/event-stream")]
FLOOR_TARGET = 0.5  # chatcap ≥ 0.5× the orjson floor
SDK_TARGET = 10.0  # chatcap ≥ 10× the protocol's SDK
MIX = {"text": 65, "reasoning": 20, "tools": 15}
LENGTHS, LENGTHS_QUICK = (200, 2_000, 20_000), (200, 2_000, 8_000)  # answers for the stream-length figures
ALNUM = string.ascii_letters + string.digits


# The corpus: what each API sends for one streamed request, written from its documentation.


def long_tail(rng: random.Random, median: float, low: int, high: int) -> int:
    """A long-tailed count (log-normal, spread 0.8) with the given median."""
    return max(low, min(high, round(rng.lognormvariate(math.log(median), 0.8))))


class Text:
    """Deltas of 1–8 tokens of English, CJK or mixed text with the odd newline, quote, backslash
    or emoji (corpus.py's vocabulary), and the token count of what was written."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cjk_share = rng.choice([0.0, 0.0, 0.05, 0.3, 0.9])
        self.tokens = 0

    def token(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:
            return rng.choice(corpus.SPECIAL)
        if roll < 0.12:
            return rng.choice(corpus.PUNCTUATION)
        if rng.random() < self.cjk_share:
            return rng.choice(corpus.CJK)
        word = rng.choice(corpus.ENGLISH)
        return " " + word if rng.random() < 0.9 else " " + word.capitalize()

    def delta(self) -> str:
        count = self.rng.choices(range(1, 9), weights=(26, 20, 15, 12, 9, 7, 6, 5))[0]
        self.tokens += count
        return "".join(self.token() for _ in range(count))

    def words(self, count: int) -> str:
        return "".join(self.token() for _ in range(count)).strip()


def arguments(rng: random.Random, text: Text) -> tuple[str, dict[str, Any]]:
    """A tool name and its arguments (corpus.TOOLS: weather, search, read_file, run_sql)."""
    name = rng.choice(list(corpus.TOOLS))
    return name, corpus.TOOLS[name](rng, text.words)


def pieces(rng: random.Random, value: str) -> list[str]:
    """`value` cut into fragments of 1–12 characters, as tool arguments stream."""
    out, start = [], 0
    while start < len(value):
        size = rng.choices((1, 2, 3, 4, 6, 8, 12), weights=(8, 20, 22, 20, 14, 10, 6))[0]
        out.append(value[start : start + size])
        start += size
    return out


def ident(rng: random.Random, prefix: str, length: int) -> str:
    return prefix + "".join(rng.choices(ALNUM, k=length))


def signature(rng: random.Random, low: int, high: int) -> str:
    return base64.b64encode(rng.randbytes(rng.randint(low, high))).decode()


# Anthropic Messages: https://docs.anthropic.com/en/docs/build-with-claude/streaming
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
ANTHROPIC_MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001"]


def anthropic_body(rng: random.Random, kind: str, deltas: int | None = None) -> tuple[bytes, str]:
    """message_start, a ping, per block content_block_start / _delta… / _stop (thinking with its
    signature_delta, text, tool_use with input_json_delta pieces), message_delta with the stop
    reason and usage, message_stop. As recorded from api.anthropic.com, most events pad their JSON
    with spaces before the last brace, and pings are written `{"type": "ping"}`."""
    events: list[bytes] = []
    text = Text(rng)

    def emit(payload: dict[str, Any]) -> None:
        data = orjson.dumps(payload)
        if rng.random() < 0.85:
            data = data[:-1] + b" " * rng.randint(1, 15) + b"}"
        events.append(b"event: " + payload["type"].encode() + b"\ndata: " + data + b"\n\n")

    def ping() -> None:
        events.append(b'event: ping\ndata: {"type": "ping"}\n\n')

    prompt = rng.randint(20, 6000)
    cached = rng.choice([0, 0, prompt // 2])
    usage = {
        "input_tokens": prompt - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": rng.randint(1, 4),
        "service_tier": "standard",
    }
    message = {
        "model": rng.choice(ANTHROPIC_MODELS),
        "id": ident(rng, "msg_01", 22),
        "type": "message",
        "role": "assistant",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    emit({"type": "message_start", "message": message})
    ping()
    index = 0
    if kind == "reasoning":
        emit({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})  # fmt: skip
        for _ in range(long_tail(rng, 60, 5, 1500)):
            emit({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": text.delta()}})  # fmt: skip
        emit({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": signature(rng, 200, 500)}})  # fmt: skip
        emit({"type": "content_block_stop", "index": index})
        index += 1
    answer = {"text": long_tail(rng, 40, 3, 1200), "reasoning": long_tail(rng, 30, 3, 600)}.get(kind)
    answer = deltas or answer  # a fixed answer length, for the stream-length figures
    if kind == "tools" and rng.random() < 0.5:
        answer = long_tail(rng, 10, 2, 60)  # "Let me look that up."
    stop = "max_tokens" if kind != "tools" and rng.random() < 0.03 else "end_turn"
    if answer:
        emit({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
        for n in range(answer):
            emit({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text.delta()}})  # fmt: skip
            if n % 97 == 96:
                ping()
        emit({"type": "content_block_stop", "index": index})
        index += 1
    if kind == "tools":
        stop = "tool_use"
        for _ in range(rng.choices((1, 2, 3), weights=(70, 22, 8))[0]):
            name, values = arguments(rng, text)
            block = {"type": "tool_use", "id": ident(rng, "toolu_01", 22), "name": name, "input": {}}
            emit({"type": "content_block_start", "index": index, "content_block": block})
            for piece in ["", *pieces(rng, json.dumps(values, ensure_ascii=False))]:
                text.tokens += 1
                emit({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})  # fmt: skip
            emit({"type": "content_block_stop", "index": index})
            index += 1
    final_usage: dict[str, Any] = {"output_tokens": text.tokens}
    if rng.random() < 0.5:  # newer API versions repeat the input figures on message_delta
        final_usage = {key: usage[key] for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")} | final_usage  # fmt: skip
    emit({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": final_usage})
    emit({"type": "message_stop"})
    return b"".join(events), ANTHROPIC_URL


# OpenAI Responses: https://platform.openai.com/docs/api-reference/responses-streaming
RESPONSES_URL = "https://api.openai.com/v1/responses"


def _tool_definitions() -> list[dict[str, Any]]:
    schemas = {
        "get_weather": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "search": {"query": {"type": "string"}, "limit": {"type": "integer"}},
        "read_file": {"path": {"type": "string"}},
        "run_sql": {"sql": {"type": "string"}, "timeout": {"type": "integer"}},
    }
    return [
        {
            "type": "function",
            "description": f"{name.replace('_', ' ').capitalize()} for the user.",
            "name": name,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            },
            "strict": True,
        }
        for name, properties in schemas.items()
    ]


RESPONSES_TOOLS = _tool_definitions()


def responses_body(rng: random.Random, kind: str, deltas: int | None = None) -> tuple[bytes, str]:
    """response.created and response.in_progress (the whole response object, output empty); per
    output item output_item.added, its parts and deltas (reasoning summary parts and
    reasoning_summary_text.delta; output_text.delta; function_call_arguments.delta), the `.done`
    events that repeat the whole value, output_item.done; then response.completed (or
    response.incomplete for max_output_tokens) with the whole output and usage. Every event has a
    sequence_number; deltas carry `obfuscation` padding, as OpenAI sends them."""
    events: list[bytes] = []
    text = Text(rng)
    sequence = 0

    def emit(kind_: str, **fields: Any) -> None:
        nonlocal sequence
        payload = {"type": kind_, "sequence_number": sequence, **fields}
        sequence += 1
        events.append(b"event: " + kind_.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n")

    def padding() -> str:
        return "".join(rng.choices(string.ascii_letters, k=rng.randint(1, 15)))

    reasoning_model = kind == "reasoning" or rng.random() < 0.4
    model = rng.choice(["gpt-5-2025-08-07", "gpt-5-mini-2025-08-07", "o4-mini-2025-04-16"]) if reasoning_model else rng.choice(["gpt-4.1-2025-04-14", "gpt-4o-2024-08-06"])  # fmt: skip
    response: dict[str, Any] = {
        "id": "resp_" + f"{rng.getrandbits(200):050x}",
        "object": "response",
        "created_at": 1_760_000_000 + rng.randint(0, 10_000_000),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": text.words(rng.randint(5, 60)) if rng.random() < 0.5 else None,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": model,
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "reasoning": {"effort": "medium", "summary": "auto" if kind == "reasoning" else None},
        "safety_identifier": None,
        "service_tier": "auto",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": RESPONSES_TOOLS if kind == "tools" else [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": {},
    }
    emit("response.created", response=response)
    emit("response.in_progress", response=response)
    output: list[dict[str, Any]] = []
    reasoning_tokens = 0
    if reasoning_model:
        item_id = "rs_" + f"{rng.getrandbits(200):050x}"
        index = len(output)
        emit("response.output_item.added", output_index=index, item={"id": item_id, "type": "reasoning", "summary": []})
        summary = []
        for summary_index in range(rng.choices((0, 1, 2, 3), weights=(0, 50, 35, 15) if kind == "reasoning" else (1, 0, 0, 0))[0]):  # fmt: skip
            emit("response.reasoning_summary_part.added", item_id=item_id, output_index=index, summary_index=summary_index, part={"type": "summary_text", "text": ""})  # fmt: skip
            written = [f"**{text.words(rng.randint(2, 5)).capitalize()}**\n\n"]
            emit("response.reasoning_summary_text.delta", item_id=item_id, output_index=index, summary_index=summary_index, delta=written[0], obfuscation=padding())  # fmt: skip
            for _ in range(long_tail(rng, 40, 3, 800)):
                written.append(text.delta())
                emit("response.reasoning_summary_text.delta", item_id=item_id, output_index=index, summary_index=summary_index, delta=written[-1], obfuscation=padding())  # fmt: skip
            whole = "".join(written)
            emit("response.reasoning_summary_text.done", item_id=item_id, output_index=index, summary_index=summary_index, text=whole)  # fmt: skip
            emit("response.reasoning_summary_part.done", item_id=item_id, output_index=index, summary_index=summary_index, part={"type": "summary_text", "text": whole})  # fmt: skip
            summary.append({"type": "summary_text", "text": whole})
        reasoning_tokens = text.tokens + rng.randint(50, 3000)  # the reasoning itself is not streamed
        item = {"id": item_id, "type": "reasoning", "summary": summary}
        emit("response.output_item.done", output_index=index, item=item)
        output.append(item)
    answer = {"text": long_tail(rng, 40, 3, 1200), "reasoning": long_tail(rng, 30, 3, 600)}.get(kind)
    answer = deltas or answer  # a fixed answer length, for the stream-length figures
    if kind == "tools" and rng.random() < 0.3:
        answer = long_tail(rng, 10, 2, 60)
    incomplete = kind != "tools" and rng.random() < 0.03
    if answer:
        item_id = "msg_" + f"{rng.getrandbits(200):050x}"
        index = len(output)
        emit("response.output_item.added", output_index=index, item={"id": item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"})  # fmt: skip
        emit("response.content_part.added", item_id=item_id, output_index=index, content_index=0, part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""})  # fmt: skip
        written = []
        for _ in range(answer):
            written.append(text.delta())
            emit("response.output_text.delta", item_id=item_id, output_index=index, content_index=0, delta=written[-1], logprobs=[], obfuscation=padding())  # fmt: skip
        whole = "".join(written)
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": whole}
        emit("response.output_text.done", item_id=item_id, output_index=index, content_index=0, text=whole, logprobs=[])  # fmt: skip
        emit("response.content_part.done", item_id=item_id, output_index=index, content_index=0, part=part)
        item = {"id": item_id, "type": "message", "status": "incomplete" if incomplete else "completed", "content": [part], "role": "assistant"}  # fmt: skip
        emit("response.output_item.done", output_index=index, item=item)
        output.append(item)
    if kind == "tools":
        for _ in range(rng.choices((1, 2, 3), weights=(70, 22, 8))[0]):
            name, values = arguments(rng, text)
            item_id, index = "fc_" + f"{rng.getrandbits(200):050x}", len(output)
            item = {"id": item_id, "type": "function_call", "status": "in_progress", "arguments": "", "call_id": ident(rng, "call_", 24), "name": name}  # fmt: skip
            emit("response.output_item.added", output_index=index, item=item)
            whole = orjson.dumps(values).decode()
            for piece in pieces(rng, whole):
                text.tokens += 1
                emit("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=piece, obfuscation=padding())  # fmt: skip
            emit("response.function_call_arguments.done", item_id=item_id, output_index=index, arguments=whole)
            item = item | {"status": "completed", "arguments": whole}
            emit("response.output_item.done", output_index=index, item=item)
            output.append(item)
    prompt = rng.randint(20, 6000)
    completion = text.tokens + reasoning_tokens
    usage = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": rng.choice([0, 0, prompt // 2])},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": prompt + completion,
    }
    final = response | {"status": "incomplete" if incomplete else "completed", "output": output, "usage": usage}
    if incomplete:
        final["incomplete_details"] = {"reason": "max_output_tokens"}
    emit("response.incomplete" if incomplete else "response.completed", response=final)
    return b"".join(events), RESPONSES_URL


# Gemini: https://ai.google.dev/api/generate-content (streamGenerateContent with alt=sse); Vertex AI:
# https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.endpoints/streamGenerateContent
GEMINI_MODELS = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-3-pro-preview"]
GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/models/{model}:streamGenerateContent?alt=sse"
VERTEX_URL = "https://us-central1-aiplatform.googleapis.com/v1/projects/bench-1/locations/us-central1/publishers/google/models/{model}:streamGenerateContent?alt=sse"  # fmt: skip


def gemini_body(rng: random.Random, kind: str, deltas: int | None = None) -> tuple[bytes, str]:
    """Each event a whole GenerateContentResponse with the next parts of candidate 0, ended by
    CR LF CR LF as Google's servers send it. Gemini API (70 %): `index: 0`, usageMetadata (a running
    total) on every chunk, modelVersion, responseId; thought parts (`thought: true`) before the
    answer; function calls whole, one part each; gemini-3 models add a thoughtSignature (on the
    first call, or on a closing empty text part). Vertex AI (30 %): no candidate index, usage only
    `trafficType` until the last chunk, createTime; tool arguments streamed
    (`streamFunctionCallArguments`): a functionCall with the name and willContinue, partialArgs
    with a JSON path and a piece of a string value, an empty functionCall closing the call."""
    vertex = rng.random() < 0.3
    model = rng.choice(GEMINI_MODELS)
    text = Text(rng)
    events: list[bytes] = []
    prompt = rng.randint(20, 6000)
    thoughts = 0
    response_id = ident(rng, "", 23)
    created = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999999):06d}Z"  # fmt: skip

    def usage(final: bool) -> dict[str, Any]:
        if vertex and not final:
            return {"trafficType": "ON_DEMAND"}
        answer = text.tokens - thoughts
        out: dict[str, Any] = {"promptTokenCount": prompt}
        if answer:
            out["candidatesTokenCount"] = answer
        out["totalTokenCount"] = prompt + text.tokens
        if vertex:
            out["trafficType"] = "ON_DEMAND"
        out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
        if thoughts:
            out["thoughtsTokenCount"] = thoughts
        return out

    def emit(parts: list[dict[str, Any]], finish: str | None = None) -> None:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
        if not vertex:
            candidate["index"] = 0
        payload: dict[str, Any] = {"candidates": [candidate], "usageMetadata": usage(finish is not None), "modelVersion": model}  # fmt: skip
        if vertex:
            payload["createTime"] = created
        payload["responseId"] = response_id
        events.append(b"data: " + orjson.dumps(payload) + b"\r\n\r\n")

    if kind == "reasoning":
        for _ in range(long_tail(rng, 40, 3, 1000)):
            emit([{"text": text.delta(), "thought": True}])
        thoughts = text.tokens
    answer = {"text": long_tail(rng, 40, 3, 1200), "reasoning": long_tail(rng, 30, 3, 600)}.get(kind)
    answer = deltas or answer  # a fixed answer length, for the stream-length figures
    if kind == "tools" and rng.random() < 0.4:
        answer = long_tail(rng, 10, 2, 60)
    finish = "MAX_TOKENS" if kind != "tools" and rng.random() < 0.03 else "STOP"
    closing_signature = model.startswith("gemini-3") and kind != "tools"
    for n in range(answer or 0):
        last = n == answer - 1 and not closing_signature and kind != "tools"  # type: ignore[operator]
        emit([{"text": text.delta()}], finish if last else None)
    if closing_signature:
        emit([{"text": "", "thoughtSignature": signature(rng, 150, 400)}], finish)
    if kind == "tools":
        calls = [arguments(rng, text) for _ in range(rng.choices((1, 2, 3), weights=(70, 22, 8))[0])]
        if not vertex:
            parts = []
            for number, (name, values) in enumerate(calls):
                part: dict[str, Any] = {"functionCall": {"name": name, "args": values}}
                if number == 0 and model.startswith("gemini-3"):
                    part["thoughtSignature"] = signature(rng, 150, 400)
                parts.append(part)
                text.tokens += len(orjson.dumps(values)) // 4
            emit(parts)
            emit([{"text": ""}], "STOP")
        for number, (name, values) in enumerate(calls if vertex else ()):
            start: dict[str, Any] = {"functionCall": {"name": name, "willContinue": True}}
            if number == 0:
                start["thoughtSignature"] = signature(rng, 150, 400)
            emit([start])
            for key, value in values.items():
                if isinstance(value, str):
                    for piece in pieces(rng, value):
                        text.tokens += 1
                        emit([{"functionCall": {"partialArgs": [{"jsonPath": f"$.{key}", "stringValue": piece, "willContinue": True}], "willContinue": True}}])  # fmt: skip
                    emit([{"functionCall": {"partialArgs": [{"jsonPath": f"$.{key}", "stringValue": ""}], "willContinue": True}}])  # fmt: skip
                else:
                    text.tokens += 1
                    emit([{"functionCall": {"partialArgs": [{"jsonPath": f"$.{key}", "numberValue": value}], "willContinue": True}}])  # fmt: skip
            emit([{"functionCall": {}}], "STOP" if number == len(calls) - 1 else None)
    url = (VERTEX_URL if vertex else GEMINI_URL).format(model=model)
    return b"".join(events), url


# The protocols: generator, SDK peer and the views the sanity check compares.


@dataclass(slots=True)
class Stream:
    kind: str  # text, reasoning, tools; or the recorded file's name
    url: str
    body: bytes
    payloads: list[bytes] = field(default_factory=list)


def build_corpus(generate: Callable[..., tuple[bytes, str]], size_mb: float, seed: int) -> list[Stream]:
    """Bodies adding up to at least `size_mb` MB, the same for the same seed."""
    rng = random.Random(seed)
    streams: list[Stream] = []
    total, target = 0, int(size_mb * 1_000_000)
    while total < target:
        kind = rng.choices(list(MIX), list(MIX.values()))[0]
        body, url = generate(rng, kind)
        streams.append(Stream(kind, url, body, json_payloads(body)))
        total += len(body)
    return streams


def chatcap(body: bytes, url: str) -> Reconstruction:
    """chatcap on an addon capture of one streamed request, the body as one read."""
    request = Request(method="POST", url=url)
    response = Response(status=200, headers=EVENT_STREAM, body=body)
    return Exchange(id="bench", source="bench", format="sse-text", request=request, response=response).reconstruct()


# The SDKs, minus the HTTP transport.

ANTHROPIC_EVENTS = frozenset(  # the names anthropic's Stream.__stream__ passes to process_data for messages
    {
        "message_start",
        "message_delta",
        "message_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
    }
)


def anthropic_sdk(body: bytes, url: str) -> Any:
    """`client.messages.stream(...).get_final_message()` over one body (anthropic/_streaming.py,
    anthropic/lib/streaming/_messages.py)."""
    snapshot = None
    for sse in AnthropicSSEDecoder().iter_bytes(iter((body,))):  # client._make_sse_decoder(), one read
        if sse.event in ANTHROPIC_EVENTS:
            data = sse.json()
            if isinstance(data, dict) and "type" not in data:
                data["type"] = sse.event
            event = anthropic_construct(type_=RawMessageStreamEvent, value=data)  # _process_response_data
            snapshot = accumulate_event(event=event, current_snapshot=snapshot, output_format=NOT_GIVEN)
            for _fired in build_events(event=event, message_snapshot=snapshot):  # MessageStream.__stream__
                pass
        elif sse.event == "error":
            raise RuntimeError(f"error event: {sse.data[:200]}")
    return snapshot


def responses_sdk(body: bytes, url: str) -> Any:
    """`client.responses.stream(...).get_final_response()` over one body (openai/_streaming.py,
    openai/lib/streaming/responses/_responses.py); for a response that ends `response.incomplete`
    (get_final_response raises) the response that event carries."""
    state = ResponseStreamState(input_tools=openai.omit, text_format=openai.omit)
    ended = None
    for sse in OpenAISSEDecoder().iter_bytes(iter((body,))):
        if sse.data.startswith("[DONE]"):
            break
        data = sse.json()
        if is_mapping(data) and data.get("error"):
            raise RuntimeError(f"error event: {sse.data[:200]}")
        event = openai_construct(type_=ResponseStreamEvent, value=data)
        for _fired in state.handle_event(event):  # ResponseStream.__stream__
            pass
        if event.type in ("response.incomplete", "response.failed"):
            ended = event.response
    return state._completed_response or ended


GENAI_PARAMETERS = genai_types._GenerateContentParameters(model="gemini-2.5-flash", contents="Hello")


@dataclass(slots=True)
class GeminiAnswer:
    """What a user of `generate_content_stream` collects from its chunks."""

    texts: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    calls: list[list[Any]] = field(default_factory=list)  # [id, name, args]
    finish: Any = None
    usage: Any = None


def gemini_sdk(body: bytes, url: str) -> GeminiAnswer:
    """`client.models.generate_content_stream()` per chunk (google/genai/models.py
    `_generate_content_stream`, _api_client.py `request_streamed` and `HttpResponse.segments`),
    and the user's loop that concatenates text, thoughts and function calls (Vertex's streamed
    arguments: each partialArgs value set at its `$.key`, strings appended)."""
    vertex = "aiplatform.googleapis.com" in url
    transport = httpx.Response(200, headers=EVENT_STREAM, content=body)
    session = GenaiSession(headers=transport.headers, response_stream=transport)
    continuation = StreamContinuation(None)
    continuation.start_hop()
    answer = GeminiAnswer()
    open_call: list[Any] | None = None
    for segment in session.segments():
        dump = json.dumps(segment)  # request_streamed
        if dump.startswith('{"error":'):
            raise RuntimeError(f"error chunk: {dump[:200]}")
        response_dict = json.loads(dump)  # _generate_content_stream
        if vertex:
            response_dict = _GenerateContentResponse_from_vertex(response_dict, None, GENAI_PARAMETERS)
        else:
            response_dict = _GenerateContentResponse_from_mldev(response_dict, None, GENAI_PARAMETERS)
        chunk = genai_types.GenerateContentResponse._from_response(response=response_dict, kwargs={})
        chunk.sdk_http_response = genai_types.HttpResponse(headers=session.headers)
        chunk = continuation.observe(chunk)
        # The user's side.
        for candidate in chunk.candidates or ():
            if candidate.index:
                continue
            for part in (candidate.content.parts if candidate.content else None) or ():
                call = part.function_call
                if call is not None:
                    if call.name:
                        answer.calls.append([call.id, call.name, dict(call.args or {})])
                        open_call = answer.calls[-1] if call.will_continue else None
                    elif open_call is not None:
                        for piece in call.partial_args or ():
                            key = (piece.json_path or "$.")[2:]
                            if piece.string_value is not None:
                                open_call[2][key] = open_call[2].get(key, "") + piece.string_value
                            elif piece.number_value is not None:
                                open_call[2][key] = piece.number_value
                            elif piece.bool_value is not None:
                                open_call[2][key] = piece.bool_value
                        if not call.will_continue:
                            open_call = None
                elif part.text:
                    (answer.thoughts if part.thought else answer.texts).append(part.text)
            if candidate.finish_reason:
                answer.finish = candidate.finish_reason
        if chunk.usage_metadata is not None:
            answer.usage = chunk.usage_metadata
    return answer


# What the sanity check compares: the same facts from chatcap's reconstruction and the SDK's result.


def _parsed(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def chatcap_view(rec: Reconstruction) -> dict[str, Any]:
    choice = rec.choices[0] if rec.choices else None
    native = rec.native if isinstance(rec.native, dict) else {}
    view: dict[str, Any] = {
        "content": (choice.content if choice else None) or "",
        "reasoning": (choice.reasoning if choice else None) or "",
        "tool_calls": [(c.id, c.name, _parsed(c.arguments)) for c in choice.tool_calls] if choice else [],
    }
    if rec.protocol == "anthropic_messages":
        usage = native.get("usage") or {}
        view["finish"] = native.get("stop_reason")
        view["usage"] = (usage.get("input_tokens"), usage.get("output_tokens"), usage.get("cache_read_input_tokens"))
    elif rec.protocol == "openai_responses":
        usage = native.get("usage") or {}
        view["finish"] = native.get("status")
        view["usage"] = (usage.get("input_tokens"), usage.get("output_tokens"), usage.get("total_tokens"))
    else:
        candidates = native.get("candidates") or [{}]
        usage = native.get("usageMetadata") or {}
        view["finish"] = candidates[0].get("finishReason")
        view["usage"] = tuple(usage.get(k) for k in ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount"))  # fmt: skip
    return view


def anthropic_view(message: Any) -> dict[str, Any]:
    blocks = message.content
    usage = message.usage
    return {
        "content": "".join(b.text for b in blocks if b.type == "text"),
        "reasoning": "\n\n".join(b.thinking for b in blocks if b.type == "thinking"),  # chatcap's join of several
        "tool_calls": [(b.id, b.name, b.input) for b in blocks if b.type == "tool_use"],
        "finish": message.stop_reason,
        "usage": (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens),
    }


def responses_view(response: Any) -> dict[str, Any]:
    summaries, raw = [], []
    for item in response.output:
        if item.type == "reasoning":
            summaries += [s.text for s in item.summary or ()]
            raw += [c.text for c in getattr(item, "content", None) or ()]
    usage = response.usage
    return {
        "content": "".join(
            c.text
            for item in response.output
            if item.type == "message"
            for c in item.content
            if c.type == "output_text"
        ),
        "reasoning": "\n\n".join(summaries) if summaries else "".join(raw),  # chatcap's rule
        "tool_calls": [
            (i.call_id, i.name, _parsed(i.arguments if i.type == "function_call" else i.input))
            for i in response.output
            if i.type in ("function_call", "custom_tool_call")
        ],
        "finish": response.status,
        "usage": (usage.input_tokens, usage.output_tokens, usage.total_tokens) if usage else (None, None, None),
    }


def gemini_view(answer: GeminiAnswer) -> dict[str, Any]:
    usage = answer.usage
    finish = answer.finish
    return {
        "content": "".join(answer.texts),
        "reasoning": "".join(answer.thoughts),
        "tool_calls": [tuple(call) for call in answer.calls],
        "finish": getattr(finish, "value", finish),
        "usage": (
            usage.prompt_token_count,
            usage.candidates_token_count,
            usage.thoughts_token_count,
            usage.total_token_count,
        )
        if usage
        else (None, None, None, None),
    }


@dataclass(slots=True, frozen=True)
class Protocol:
    name: str  # chatcap's protocol name, as in the recorded files' names
    title: str
    generate: Callable[..., tuple[bytes, str]]  # (rng, kind, deltas=None) -> (body, request URL)
    sdk_name: str
    sdk: Callable[[bytes, str], Any]
    sdk_view: Callable[[Any], dict[str, Any]]
    real_url: Callable[[str], str]  # a request URL for a recorded file, from its name


PROTOCOLS = {
    "anthropic": Protocol(
        name="anthropic_messages",
        title="Anthropic Messages",
        generate=anthropic_body,
        sdk_name="anthropic SDK",
        sdk=anthropic_sdk,
        sdk_view=anthropic_view,
        real_url=lambda name: ANTHROPIC_URL,
    ),
    "responses": Protocol(
        name="openai_responses",
        title="OpenAI Responses",
        generate=responses_body,
        sdk_name="openai SDK",
        sdk=responses_sdk,
        sdk_view=responses_view,
        real_url=lambda name: RESPONSES_URL,
    ),
    "gemini": Protocol(
        name="gemini",
        title="Gemini",
        generate=gemini_body,
        sdk_name="google-genai SDK",
        sdk=gemini_sdk,
        sdk_view=gemini_view,
        real_url=lambda name: (VERTEX_URL if "vertex" in name else GEMINI_URL).format(model="gemini-2.5-flash"),
    ),
}


def disagreements(protocol: Protocol, stream: Stream, strict: bool) -> list[str]:
    """Where chatcap and the SDK differ on one body (and, with `strict`, chatcap's warnings)."""
    rec = chatcap(stream.body, stream.url)
    if rec.protocol != protocol.name:
        return [f"chatcap read it as {rec.protocol}"]
    ours, theirs = chatcap_view(rec), protocol.sdk_view(protocol.sdk(stream.body, stream.url))
    problems = [
        f"{key}: chatcap {ours[key]!r:.100} / SDK {theirs[key]!r:.100}" for key in ours if ours[key] != theirs[key]
    ]
    if strict:
        if not ours["content"] and not ours["reasoning"] and not ours["tool_calls"]:
            problems.append("nothing reconstructed")
        if rec.warnings or not rec.done or rec.truncated:
            problems.append(f"chatcap: done={rec.done} truncated={rec.truncated} warnings={[str(w) for w in rec.warnings][:3]}")  # fmt: skip
    return problems


def sanity_check(protocol: Protocol, streams: Sequence[Stream], per_kind: int = 12) -> int:
    """chatcap and the SDK must agree on a sample of each kind of body; exits at the first
    disagreement. Returns the sample size."""
    sample: list[int] = []
    for kind in MIX:
        matching = [n for n, stream in enumerate(streams) if stream.kind == kind]
        sample += matching[:: max(1, len(matching) // per_kind)][:per_kind]
    for n in sample:
        problems = disagreements(protocol, streams[n], strict=True)
        if problems:
            sys.exit(
                f"sanity check failed on {protocol.title} body {n} ({streams[n].kind}):\n  " + "\n  ".join(problems)
            )
    return len(sample)


# Measuring.


def run_each(peer: Callable[[bytes, str], object], streams: Sequence[Stream]) -> Callable[[], None]:
    def work() -> None:
        for stream in streams:
            peer(stream.body, stream.url)

    return work


def parse_each(payloads: Sequence[bytes]) -> Callable[[], None]:
    def work() -> None:
        loads = orjson.loads
        for payload in payloads:
            loads(payload)

    return work


def interleaved(repeats: int, works: dict[str, Callable[[], None]]) -> dict[str, list[float]]:
    """Every work once per round, `repeats` rounds (a full collection before each run): on a shared
    machine whose load comes and goes, each peer's best run then falls in the same quiet spells."""
    runs: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(repeats):
        for name, work in works.items():
            runs[name] += best_of(1, work)[1]
    return runs


def measure_synthetic(protocol: Protocol, streams: list[Stream], repeats: int, every: int) -> dict[str, Any]:
    """The three peers over the synthetic corpus, interleaved; prints the table, returns the figures."""
    flat = [payload for stream in streams for payload in stream.payloads]
    sdk_streams = streams[::every]
    sdk_name = protocol.sdk_name if every == 1 else f"{protocol.sdk_name} (every {every}th body)"
    groups = {"orjson floor": streams, "chatcap": streams, sdk_name: sdk_streams}
    print(f"\n{protocol.title}: best of {repeats}, peers interleaved; timing ...", file=sys.stderr, flush=True)
    runs = interleaved(
        repeats,
        {
            "orjson floor": parse_each(flat),
            "chatcap": run_each(chatcap, streams),
            sdk_name: run_each(protocol.sdk, sdk_streams),
        },
    )
    rows = [
        Row(name, sum(len(s.body) for s in group), sum(len(s.payloads) for s in group), len(group), min(runs[name]), runs[name],
            f"measured on every {every}th body; its MB/s stands for the corpus" if group is sdk_streams and every > 1 else "")
        for name, group in groups.items()
    ]  # fmt: skip
    floor, ours, sdk = (row.mb_per_s for row in rows)
    print(f"\n{table(rows, floor, sdk).replace('chunks/s', 'events/s', 1)}")
    verdicts = {"floor": (ours / floor, ours / floor >= FLOOR_TARGET), "sdk": (ours / sdk, ours / sdk >= SDK_TARGET)}
    print(f"targets  chatcap ≥ 0.5× the orjson floor: {verdicts['floor'][0]:.3f}× — {'met' if verdicts['floor'][1] else 'NOT met'}")  # fmt: skip
    print(f"         chatcap ≥ 10× the {protocol.sdk_name}: {verdicts['sdk'][0]:.1f}× — {'met' if verdicts['sdk'][1] else 'NOT met'}")  # fmt: skip
    by_kind = {}
    total = sum(len(stream.body) for stream in streams)
    for kind in MIX:
        group = [stream for stream in streams if stream.kind == kind]
        size = sum(len(stream.body) for stream in group) / 1e6
        kind_runs = interleaved(repeats, {"chatcap": run_each(chatcap, group), "floor": parse_each([p for s in group for p in s.payloads])})  # fmt: skip
        by_kind[kind] = {"bytes": size * 1e6, "chatcap_mb_per_s": size / min(kind_runs["chatcap"]), "floor_mb_per_s": size / min(kind_runs["floor"])}  # fmt: skip
    print("by shape " + "; ".join(
        f"{kind} {figures['bytes'] / total:.0%} of bytes: chatcap {figures['chatcap_mb_per_s']:.1f} MB/s, "
        f"{figures['chatcap_mb_per_s'] / figures['floor_mb_per_s']:.2f}× floor"
        for kind, figures in by_kind.items()))  # fmt: skip
    return {
        "peers": [asdict(row) | {"mb_per_s": row.mb_per_s, "events_per_s": row.chunks_per_s} for row in rows],
        "targets": {
            "chatcap_vs_floor": {"target": FLOOR_TARGET, "ratio": verdicts["floor"][0], "met": verdicts["floor"][1]},
            "chatcap_vs_sdk": {"target": SDK_TARGET, "ratio": verdicts["sdk"][0], "met": verdicts["sdk"][1]},
        },
        "by_shape": by_kind,
    }


def by_length(protocol: Protocol, lengths: Sequence[int], repeats: int, seed: int) -> dict[int, dict[str, float]]:
    """chatcap's and the floor's time per event on single plain answers of `lengths` text deltas:
    flat when a stream's cost grows with its length, rising when it grows faster."""
    figures = {}
    for deltas in lengths:
        body, url = protocol.generate(random.Random(seed), "text", deltas=deltas)
        payloads = json_payloads(body)
        runs = interleaved(max(3, repeats), {"chatcap": lambda b=body, u=url: chatcap(b, u) and None, "floor": parse_each(payloads)})  # fmt: skip
        figures[deltas] = {
            "bytes": len(body),
            "events": len(payloads),
            "chatcap_us_per_event": min(runs["chatcap"]) / len(payloads) * 1e6,
            "floor_us_per_event": min(runs["floor"]) / len(payloads) * 1e6,
        }
    print("by length (one plain answer of N text deltas; µs per event, chatcap / floor): " + "; ".join(
        f"{deltas:,} deltas ({f['bytes'] / 1e6:.2f} MB) {f['chatcap_us_per_event']:.2f} / {f['floor_us_per_event']:.2f}"
        for deltas, f in figures.items()))  # fmt: skip
    return figures


def real_streams(protocol: Protocol, directory: Path) -> list[Stream]:
    """The recorded bodies of this protocol: `<provider>__<protocol>__<name>.sse`."""
    return [
        Stream(path.name, protocol.real_url(path.name), body, json_payloads(body))
        for path in sorted(directory.glob(f"*__{protocol.name}__*.sse"))
        for body in [path.read_bytes()]
    ]


def measure_real(protocol: Protocol, streams: list[Stream], repeats: int) -> dict[str, Any]:
    """chatcap, the floor and the SDK per recorded stream (chatcap and the floor looped to ~20 ms);
    streams the SDK raises on are left out of every peer's total, and where chatcap and the SDK
    disagree is listed, not fatal (recorded streams carry what the views do not cover)."""
    rows: list[dict[str, Any]] = []
    for stream in streams:
        row: dict[str, Any] = {"stream": stream.kind, "bytes": len(stream.body), "events": len(stream.payloads)}
        try:
            protocol.sdk(stream.body, stream.url)
            row["disagreements"] = disagreements(protocol, stream, strict=False)
        except Exception as exc:  # the SDKs give up on some real streams (error events, odd shapes)
            rows.append(row | {"sdk_error": f"{type(exc).__name__}: {str(exc)[:120]}"})
            continue
        loops = max(1, 400_000 // max(1, len(stream.body)))
        ours, _ = best_of(repeats, lambda s=stream, loops=loops: [chatcap(s.body, s.url) for _ in range(loops)] and None)  # fmt: skip
        floor, _ = best_of(repeats, lambda s=stream, loops=loops: [orjson.loads(p) for _ in range(loops) for p in s.payloads] and None)  # fmt: skip
        sdk, _ = best_of(max(1, repeats), lambda s=stream: protocol.sdk(s.body, s.url) and None)
        rows.append(row | {"chatcap_s": ours / loops, "floor_s": floor / loops, "sdk_s": sdk})
    timed = [row for row in rows if "sdk_error" not in row]
    if not timed:
        print(f"\nrecorded {protocol.title} streams: none the SDK reads; {len(rows)} raise")
        return {"streams": rows}
    size = sum(row["bytes"] for row in timed) / 1e6
    events = sum(row["events"] for row in timed)
    ours, floor, sdk = (sum(row[key] for row in timed) for key in ("chatcap_s", "floor_s", "sdk_s"))
    failed = [f"{row['stream']} ({row['sdk_error'].split(':')[0]})" for row in rows if "sdk_error" in row]
    left_out = f"; {len(failed)} more the SDK raises on, left out: {', '.join(failed)}" if failed else ""
    print(f"\nrecorded {protocol.title} streams: {len(timed)} streams, {size:.3f} MB, {events:,} events{left_out}")
    real_rows = [
        Row("orjson floor", int(size * 1e6), events, len(timed), floor),
        Row("chatcap", int(size * 1e6), events, len(timed), ours),
        Row(protocol.sdk_name, int(size * 1e6), events, len(timed), sdk),
    ]
    print(table(real_rows, size / floor, size / sdk).replace("chunks/s", "events/s", 1))
    print("  furthest from the floor:")
    for row in sorted(timed, key=lambda row: row["floor_s"] / row["chatcap_s"])[:5]:
        print(f"    {row['floor_s'] / row['chatcap_s']:5.2f}× floor {row['sdk_s'] / row['chatcap_s']:6.1f}× SDK"
              f"  {row['bytes'] / 1e3:7.1f} kB  {row['stream']}")  # fmt: skip
    differing = [row for row in timed if row["disagreements"]]
    for row in differing:
        print(f"  chatcap and the SDK differ on {row['stream']}: " + "; ".join(row["disagreements"]))
    totals = {"bytes": size * 1e6, "events": events, "chatcap_mb_per_s": size / ours, "floor_mb_per_s": size / floor, "sdk_mb_per_s": size / sdk}  # fmt: skip
    return {"streams": rows, "totals": totals}


def profile(streams: Sequence[Stream], name: str, limit: int = 25) -> str:
    """cProfile over one chatcap pass: the functions with the most time of their own."""
    profiler = cProfile.Profile()
    gc.collect()
    profiler.runcall(run_each(chatcap, streams))
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stats.dump_stats(RESULTS / f"chatcap-{name}.pstats")
    return out.getvalue()


def stages(protocol: Protocol, streams: Sequence[Stream], repeats: int) -> dict[str, float]:
    """Where chatcap's time goes, stage by stage and without a profiler's overhead: each row runs
    chatcap's path up to that stage over every body, results dropped (rows interleaved, best of
    `repeats`), so the difference between two rows is what the later stage adds."""
    module = MODULES[protocol.name]
    built = [
        Exchange(id="bench", source="bench", format="sse-text", request=Request(method="POST", url=s.url),
                 response=Response(status=200, headers=EVENT_STREAM, body=s.body))
        for s in streams
    ]  # fmt: skip

    def each(step: Callable[[Exchange], object]) -> Callable[[], None]:
        def work() -> None:
            for exchange in built:
                step(exchange)

        return work

    def fresh() -> Reconstruction:
        return Reconstruction(protocol=protocol.name, streamed=True)

    def whole(exchange: Exchange) -> None:
        exchange.reconstruct()
        exchange._reconstruction = None  # not kept: done again next round, and no heap for gc to walk

    name = module.__name__.rsplit(".", 1)[1]
    steps = {
        "analyzer.sse.cut (the body cut into JSON lines)": each(
            lambda x: cut(x.response.body, x.response.chunks, done=True)  # type: ignore[union-attr]
        ),
        f"+ the typed decode ({name}._typed_events)": each(lambda x: module._typed_events(x, fresh())),
        f"+ the fold ({name}.reconstruct_stream)": each(lambda x: module.reconstruct_stream(x, fresh())),
        "+ detect, metrics.timing (Exchange.reconstruct)": each(whole),
    }
    aside = {
        "orjson floor (payloads split out beforehand)": parse_each([p for s in streams for p in s.payloads]),
        "analyzer.sse.decode alone (the general SSE decoder)": each(lambda x: decode(x.response.body)),  # type: ignore[union-attr]
    }
    repeats = max(5, repeats)
    seconds = {name: min(runs) for name, runs in interleaved(repeats, steps | aside).items()}
    size = sum(len(s.body) for s in streams) / 1e6
    before = 0.0
    print(f"stages   (chatcap's path up to each row over every body, rows interleaved, best of {repeats}, no profiler)")
    for name in steps:
        print(
            f"  {name:<60} {seconds[name]:6.3f} s {size / seconds[name]:7.1f} MB/s  ({seconds[name] - before:+.3f} s)"
        )
        before = seconds[name]
    for name in aside:
        print(f"  {name:<60} {seconds[name]:6.3f} s {size / seconds[name]:7.1f} MB/s")
    return seconds


def machine() -> dict[str, Any]:
    return describe(
        "analyzer",
        {
            "chatcap": analyzer.__version__,
            "anthropic": anthropic.__version__,
            "openai": openai.__version__,
            "google-genai": genai.__version__,
            "pydantic": pydantic.VERSION,
            "orjson": orjson.__version__,
        },
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, help="MB of bodies per protocol (default 20; 3 with --quick)")
    parser.add_argument("--repeats", type=int, help="runs per peer, the best counts (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="~3 MB per protocol, best of 1: a smoke run")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument("--sdk-every", type=int, default=4, help="the SDK runs on every Nth body (default 4; 1 = all)")  # fmt: skip
    parser.add_argument("--protocol", choices=list(PROTOCOLS), action="append", help="only these (repeatable)")
    parser.add_argument("--real", type=Path, default=REAL, metavar="DIR", help=f"recorded streams (default {REAL})")
    parser.add_argument("--profile", action="store_true", help="also: chatcap under cProfile, and by stage")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is not met")
    parser.add_argument(
        "--framing",
        choices=("clean", "real"),
        default="clean",
        help="the synthetic bodies as generated (default), or their events framed as real servers frame them "
        "(run.real_framing; the floor parses the same payloads)",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Pydantic serializer warnings")
    size_mb = args.size_mb or (3.0 if args.quick else 20.0)
    repeats = args.repeats or (1 if args.quick else 3)
    every = max(1, args.sdk_every)

    started = time.perf_counter()
    info = machine()
    print(header(info))
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": info,
        "settings": {
            "size_mb": size_mb,
            "repeats": repeats,
            "seed": args.seed,
            "sdk_every": every,
            "framing": args.framing,
        },
        "protocols": {},
    }
    missed = []
    for key in args.protocol or list(PROTOCOLS):
        protocol = PROTOCOLS[key]
        began = time.perf_counter()
        streams = build_corpus(protocol.generate, size_mb, args.seed)
        if args.framing == "real":
            # google-genai reads only `data: ` lines (with the space) and no comments (HttpResponse.segments)
            sdk_reads_all = protocol.name != "gemini"
            for stream in streams:
                stream.body = real_framing(stream.body, comments=sdk_reads_all, bare_data=sdk_reads_all)
        size = sum(len(stream.body) for stream in streams)
        events = sum(len(stream.payloads) for stream in streams)
        mix = ", ".join(f"{sum(s.kind == kind for s in streams):,} {kind}" for kind in MIX)
        print(f"\n== {protocol.title} ({protocol.name})")
        print(f"corpus   {len(streams):,} bodies ({mix}), {size / 1e6:.1f} MB, {events:,} events; seed {args.seed}; "
              f"generated in {time.perf_counter() - began:.1f} s")  # fmt: skip
        sampled = sanity_check(protocol, streams)
        print(f"sanity   chatcap and the {protocol.sdk_name} agree on {sampled} sampled bodies", flush=True)
        figures = measure_synthetic(protocol, streams, repeats, every)
        figures["by_length"] = by_length(protocol, LENGTHS_QUICK if args.quick else LENGTHS, repeats, args.seed)
        figures["corpus"] = {"bodies": len(streams), "bytes": size, "events": events, "kinds": {k: sum(s.kind == k for s in streams) for k in MIX}}  # fmt: skip
        missed += [f"{protocol.title} {name}" for name, target in figures["targets"].items() if not target["met"]]
        if args.real.is_dir():
            recorded = real_streams(protocol, args.real)
            if recorded:
                figures["real"] = measure_real(protocol, recorded, repeats)
            else:
                print(f"\nrecorded streams: none named *__{protocol.name}__*.sse in {args.real}")
        else:
            print(f"\nrecorded streams: {args.real} does not exist; skipped")
        if args.profile:
            print(f"\nchatcap profile, {protocol.title} (cProfile, one pass over the corpus, by own time):")
            figures["profile_top"] = profile(streams, key)
            print(figures["profile_top"])
            figures["stages"] = stages(protocol, streams, repeats)
        report["protocols"][key] = figures
    report["machine"]["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"protocols-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str))
    print(f"\nresults  {path.relative_to(HERE.parent)} ({time.perf_counter() - started:.0f} s in all)")
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
