"""Live capture of the newer streaming protocols: each protocol's official SDK as the
client, mitmdump with chatcap's addon in between, chatcap's replay server (its own
process) as the upstream.

The upstream plays the scripted streams in `tests/data/protocols/` (written by
`tests/data/make_protocol_captures.py` from each protocol's streaming docs) read by read
at their scheduled times. Each test checks that the capture the addon wrote reconstructs
exactly what the SDK returned (the SDK's own accumulator is the oracle where it has
one), that the recorded timing follows the schedule, and that the API key is redacted.

The replay server runs in a process of its own: in this one, the SDK's first-event work
(building its pydantic models) holds the GIL long enough to delay a threaded upstream's
sends by tens of milliseconds, which would be measured as the stream's own timing.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as genai_types
from harness import ROOT, Proxy, free_port, start_proxy

import analyzer
from analyzer.capture import wait_for_port
from analyzer.model import Exchange

pytestmark = pytest.mark.e2e

DATA = ROOT / "tests" / "data" / "protocols"
EXPECTED = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))
PROMPT = "Weather in Zürich?"
ANTHROPIC_KEY = "sk-ant-e2eSECRETanthropic0123456789"
OPENAI_KEY = "sk-proj-e2eSECRETresponses0123456789"
GEMINI_KEY = "AIzaE2eSECRETgemini0123456789abcdefghi"  # the documented `AIza` + 35 characters shape
# Recorded times must match the upstream's schedule this closely (as in test_capture.py).
TOLERANCE_MS = 30.0


# -- the processes ------------------------------------------------------------------------------


@dataclass
class Replay:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def replay(*names: str) -> Iterator[Replay]:
    """`chatcap replay` serving the named scripted streams, stopped (by its own id) on exit."""
    port = free_port()
    paths = [str(DATA / f"{name}.jsonl") for name in names]
    process = subprocess.Popen(
        [sys.executable, "-m", "analyzer", "replay", *paths, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield Replay(process, port)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """One mitmdump with the addon for the module; each test finds its exchange by path."""
    running = start_proxy(tmp_path_factory.mktemp("protocols"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def mixed_upstream() -> Iterator[Replay]:
    """All three streams on one replay server, as `chatcap replay` serves a folder of mixed captures."""
    with replay("anthropic-messages", "gemini", "openai-responses") as running:
        yield running


# -- checks -------------------------------------------------------------------------------------


def scripted(name: str) -> Exchange:
    (exchange,) = analyzer.load(DATA / f"{name}.jsonl")
    return exchange


def captured(proxy: Proxy, path_part: str, timeout: float = 10.0) -> Exchange:
    """The one recorded exchange whose URL contains `path_part`, once the addon has written it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [x for x in proxy.captured() if x.request and path_part in (x.request.url or "")]
        if found:
            (exchange,) = found
            return exchange
        time.sleep(0.05)
    raise TimeoutError(f"no exchange with {path_part!r} recorded within {timeout} s")


def assert_timing_follows_schedule(recorded: Exchange, name: str) -> None:
    """Every event was recorded when the upstream sent it, and TTFT / time to answer are the
    scheduled arrivals of the first generated text (reasoning) and the first answer text."""
    rec, expected = recorded.reconstruct(), scripted(name).reconstruct()
    assert rec.timing.source == "chunks"
    assert len(rec.chunks) == len(expected.chunks)
    for got, want in zip(rec.chunks, expected.chunks, strict=True):
        assert abs(got.t_ms - want.t_ms) <= TOLERANCE_MS, (got.seq, got.t_ms, want.t_ms)
    assert abs(rec.timing.ttft_ms - EXPECTED[name]["first_token_ms"]) <= TOLERANCE_MS
    assert abs(rec.timing.time_to_answer_ms - EXPECTED[name]["first_answer_ms"]) <= TOLERANCE_MS


def assert_recorded_exactly(recorded: Exchange, name: str) -> None:
    """The body byte for byte (one read of it ends inside a multi-byte character), complete."""
    assert recorded.response.body == scripted(name).response.body
    assert recorded.complete and not recorded.error


def assert_key_redacted(recorded: Exchange, proxy: Proxy, header: str, key: str) -> None:
    text = "".join(path.read_text(encoding="utf-8") for path in Path(proxy.out).glob("*.jsonl"))
    assert key not in text
    assert header.lower() in {name.lower() for name in recorded.redacted}
    value = recorded.request.header(header)
    # The whole value, or the credential after its scheme (`Bearer <redacted:…>`).
    assert value is not None and re.fullmatch(r"(?:Bearer )?<redacted:[0-9a-f]{8}>", value), value


# -- Anthropic Messages -------------------------------------------------------------------------


def test_anthropic_sdk_stream_is_recorded_and_reconstructs_its_final_message(
    proxy: Proxy, mixed_upstream: Replay
) -> None:
    with httpx.Client(proxy=proxy.url) as http:
        client = anthropic.Anthropic(
            base_url=mixed_upstream.url, api_key=ANTHROPIC_KEY, max_retries=0, http_client=http
        )
        with client.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=2048,
            messages=[{"role": "user", "content": PROMPT}],
            thinking={"type": "enabled", "budget_tokens": 1024},
            tools=[{"name": "get_weather", "description": "Weather for a city.",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "note": {"type": "string"}}}}],
        ) as stream:  # fmt: skip
            final = stream.get_final_message()
    recorded = captured(proxy, "/v1/messages")
    rec = recorded.reconstruct()

    assert rec.protocol == "anthropic_messages" and rec.done and not rec.truncated and not rec.warnings
    assert_recorded_exactly(recorded, "anthropic-messages")
    native, sdk = rec.to_native(), final.to_dict()
    for key in ("id", "model", "content", "stop_reason", "stop_sequence", "usage"):
        assert native[key] == sdk[key], key
    assert native == sdk  # nothing more, nothing less

    thinking, text, tool = final.content
    expected = EXPECTED["anthropic-messages"]
    assert (thinking.thinking, text.text, tool.input) == (expected["reasoning"], expected["content"], expected["tool_arguments"])  # fmt: skip
    assert thinking.signature and native["content"][0]["signature"] == thinking.signature
    openai_shape = rec.to_openai()
    message = openai_shape["choices"][0]["message"]
    assert message["reasoning_content"] == thinking.thinking
    assert message["content"] == text.text
    (call,) = message["tool_calls"]
    assert (call["id"], call["type"], call["function"]["name"]) == (tool.id, "function", tool.name)
    assert json.loads(call["function"]["arguments"]) == tool.input
    assert openai_shape["choices"][0]["finish_reason"] == "tool_calls"  # stop_reason "tool_use"
    # input_tokens leaves out cache reads and writes (Anthropic's prompt caching docs, "Tracking cache performance").
    usage = final.usage
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    assert openai_shape["usage"]["prompt_tokens"] == prompt
    assert openai_shape["usage"]["completion_tokens"] == usage.output_tokens
    assert openai_shape["usage"]["prompt_tokens_details"] == {"cached_tokens": usage.cache_read_input_tokens}

    assert_timing_follows_schedule(recorded, "anthropic-messages")
    request = recorded.request.json()
    assert request["messages"] == [{"role": "user", "content": PROMPT}] and request["stream"] is True
    assert_key_redacted(recorded, proxy, "x-api-key", ANTHROPIC_KEY)


# -- OpenAI Responses ---------------------------------------------------------------------------

# Fields the SDK's parse step adds to output items (its structured-output helpers); not on the wire.
SDK_PARSE_FIELDS = frozenset({"parsed", "parsed_arguments"})


def without_parse_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_parse_fields(v) for k, v in value.items() if k not in SDK_PARSE_FIELDS}
    if isinstance(value, list):
        return [without_parse_fields(v) for v in value]
    return value


def test_openai_sdk_responses_stream_is_recorded_and_reconstructs_its_final_response(
    proxy: Proxy, mixed_upstream: Replay
) -> None:
    with httpx.Client(proxy=proxy.url) as http:
        client = openai.OpenAI(base_url=f"{mixed_upstream.url}/v1", api_key=OPENAI_KEY, max_retries=0, http_client=http)
        with client.responses.stream(
            model="gpt-5",
            input=[{"role": "user", "content": PROMPT}],
            reasoning={"effort": "medium", "summary": "auto"},
            tools=[{"type": "function", "name": "get_weather", "description": "Weather for a city.", "strict": False,
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "note": {"type": "string"}}}}],
        ) as stream:  # fmt: skip
            streamed_text = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
            final = stream.get_final_response()
    recorded = captured(proxy, "/v1/responses")
    rec = recorded.reconstruct()

    # No warning: among others, what the deltas added up to is what response.completed holds.
    assert rec.protocol == "openai_responses" and rec.done and not rec.truncated and not rec.warnings
    assert_recorded_exactly(recorded, "openai-responses")
    native, sdk = rec.to_native(), without_parse_fields(final.to_dict())
    for key in ("id", "status", "model", "output", "usage"):
        assert native[key] == sdk[key], key
    assert native == sdk

    reasoning, message, call = final.output
    expected = EXPECTED["openai-responses"]
    assert (reasoning.summary[0].text, message.content[0].text) == (expected["reasoning"], expected["content"])
    assert json.loads(call.arguments) == expected["tool_arguments"]
    openai_shape = rec.to_openai()
    choice = openai_shape["choices"][0]
    assert choice["message"]["reasoning_content"] == reasoning.summary[0].text
    assert choice["message"]["content"] == final.output_text == streamed_text
    (tool_call,) = choice["message"]["tool_calls"]
    assert (tool_call["id"], tool_call["function"]["name"]) == (call.call_id, call.name)
    assert tool_call["function"]["arguments"] == call.arguments
    assert choice["finish_reason"] == "tool_calls"
    # input_tokens / output_tokens already count the cached and the reasoning tokens (API reference, ResponseUsage).
    usage = final.usage
    assert openai_shape["usage"] == {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.input_tokens_details.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.output_tokens_details.reasoning_tokens},
    }

    assert_timing_follows_schedule(recorded, "openai-responses")
    assert recorded.request.json()["input"] == [{"role": "user", "content": PROMPT}]
    assert_key_redacted(recorded, proxy, "Authorization", OPENAI_KEY)


# -- Gemini -------------------------------------------------------------------------------------


def test_gemini_sdk_stream_is_recorded_and_reconstructs_what_its_chunks_add_up_to(proxy: Proxy) -> None:
    # A replay server of its own: among other streams it would not pick this one (see the next test).
    with replay("gemini") as gemini_upstream, httpx.Client(proxy=proxy.url) as http:
        options = genai_types.HttpOptions(base_url=gemini_upstream.url, httpx_client=http)
        client = genai.Client(api_key=GEMINI_KEY, http_options=options)
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents=PROMPT))
    recorded = captured(proxy, ":streamGenerateContent")
    rec = recorded.reconstruct()

    assert rec.protocol == "gemini" and rec.done and not rec.truncated and not rec.warnings
    assert_recorded_exactly(recorded, "gemini")
    # Gemini's SDK has no accumulator: what its chunks add up to, part by part.
    thoughts, texts, calls = [], [], []
    for chunk in chunks:
        for part in chunk.candidates[0].content.parts:
            if part.function_call is not None:
                calls.append(part)
            elif part.thought:
                thoughts.append(part.text)
            elif part.text:
                texts.append(part.text)
    last = chunks[-1]
    expected = EXPECTED["gemini"]
    assert ("".join(thoughts), "".join(texts)) == (expected["reasoning"], expected["content"])

    native = rec.to_native()
    (candidate,) = native["candidates"]
    parts = candidate["content"]["parts"]
    # Streamed pieces merged into the parts a non-streaming generateContent would hold: the
    # thought, the answer, the call (with its signature), in the order they came.
    assert [sorted(p) for p in parts] == [["text", "thought"], ["text"], ["functionCall", "thoughtSignature"]]
    assert "".join(p["text"] for p in parts if p.get("thought")) == "".join(thoughts)
    assert "".join(p["text"] for p in parts if "text" in p and not p.get("thought")) == "".join(texts)
    native_calls = [p for p in parts if "functionCall" in p]
    assert [(p["functionCall"]["name"], p["functionCall"]["args"]) for p in native_calls] == [
        (p.function_call.name, p.function_call.args) for p in calls
    ]
    # The SDK decodes the signature from base64 (thought signatures docs: return it as received).
    assert [p["thoughtSignature"] for p in native_calls] == [
        base64.b64encode(p.thought_signature).decode() for p in calls
    ]
    assert candidate["finishReason"] == last.candidates[0].finish_reason.value == "STOP"
    # usageMetadata is cumulative: the last one stands (API reference, UsageMetadata).
    assert native["usageMetadata"] == last.usage_metadata.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert (native["modelVersion"], native["responseId"]) == (last.model_version, last.response_id)

    openai_shape = rec.to_openai()
    choice = openai_shape["choices"][0]
    assert choice["message"]["reasoning_content"] == "".join(thoughts)
    assert choice["message"]["content"] == "".join(texts)
    (tool_call,) = choice["message"]["tool_calls"]
    assert tool_call["function"]["name"] == calls[0].function_call.name
    assert json.loads(tool_call["function"]["arguments"]) == calls[0].function_call.args == expected["tool_arguments"]
    assert choice["finish_reason"] == "tool_calls"  # STOP, with a function call
    # Gemini counts the thoughts apart from the candidates (thinking docs); OpenAI's completion counts both.
    usage = last.usage_metadata
    assert openai_shape["usage"]["prompt_tokens"] == usage.prompt_token_count
    assert openai_shape["usage"]["completion_tokens"] == usage.candidates_token_count + usage.thoughts_token_count
    assert openai_shape["usage"]["total_tokens"] == usage.total_token_count
    assert openai_shape["usage"]["completion_tokens_details"] == {"reasoning_tokens": usage.thoughts_token_count}

    assert_timing_follows_schedule(recorded, "gemini")
    assert recorded.request.json()["contents"] == [{"parts": [{"text": PROMPT}], "role": "user"}]
    assert "alt=sse" in recorded.request.url
    assert_key_redacted(recorded, proxy, "x-goog-api-key", GEMINI_KEY)


def test_replay_server_answers_a_gemini_request_with_the_gemini_stream_among_others(mixed_upstream: Replay) -> None:
    url = f"{mixed_upstream.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    body = {"contents": [{"parts": [{"text": PROMPT}], "role": "user"}]}
    for _ in range(2):  # two answers in a row: a turn over three streams cannot give this one twice
        with httpx.stream("POST", url, json=body, timeout=10) as response:
            first = next(response.iter_lines())
        assert first.startswith('data: {"candidates"'), first
