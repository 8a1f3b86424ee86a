"""Every Anthropic Messages, OpenAI Responses and Gemini stream recorded from a real
provider (tests/data/real) reconstructs as the official SDK accumulates it, and
Gemini's (which has no SDK accumulator) as the stream's parts concatenate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bundled import REAL_CORPUS as CORPUS

from analyzer.model import Exchange, Reconstruction, Request, Response

PATHS = {
    "anthropic_messages": "https://provider/v1/messages",
    "openai_responses": "https://provider/v1/responses",
    "gemini": "https://provider/v1beta/models/gemini:streamGenerateContent?alt=sse",
}


def streams(protocol: str) -> list[Path]:
    return sorted(CORPUS.glob(f"*__{protocol}__*.sse"))


ANTHROPIC, RESPONSES, GEMINI = (streams(p) for p in PATHS)
# Vertex streams a call's arguments in pieces (partialArgs); what they add up to, read from the stream.
STATED_CALLS = {
    "google__gemini__vertex-partial-args": [
        ("getWeather", {"location": "Boston"}),
        ("getWeather", {"location": "San Francisco"}),
    ],
}
# Fields the stream carries and the SDK's accumulator does not keep (checked in the stream below).
SDK_DROPS = {"context_management"}


def reconstruct(path: Path) -> Reconstruction:
    """A recorded body as the proxy would have captured it, by the protocol its name says."""
    protocol = path.stem.split("__")[1]
    request_file = path.with_suffix(".request.json")
    body = request_file.read_bytes() if request_file.exists() else None
    request = Request(method="POST", url=PATHS.get(protocol, "https://provider/v1/chat/completions"), body=body)
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=path.read_bytes())
    return Exchange(id=path.stem, source=str(path), format="sse-text", request=request, response=response).reconstruct()


def without_nulls(value: Any) -> Any:
    """The SDKs write every optional field, null when absent; the wire leaves it out."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None and k not in ("parsed_output",)}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def sdk_final(path: Path) -> dict[str, Any] | None:
    oracle = path.with_suffix(".oracle.json")
    return json.loads(oracle.read_text()) if oracle.exists() else None


def gemini_expected(path: Path) -> dict[str, Any]:
    """What a Gemini stream says, read with the standard library: every candidate-0 text part
    in order (thought parts apart), the function calls whole, the last usageMetadata."""
    text, thought, calls, usage, finish = [], [], [], None, None
    for line in path.read_text().splitlines():
        if not line.startswith("data:"):
            continue
        event = json.loads(line[5:])
        usage = event.get("usageMetadata") or usage
        for candidate in event.get("candidates", []):
            finish = candidate.get("finishReason") or finish
            for part in candidate.get("content", {}).get("parts", []):
                if "text" in part:
                    (thought if part.get("thought") else text).append(part["text"])
                if "functionCall" in part and part["functionCall"].get("name"):
                    calls.append((part["functionCall"]["name"], part["functionCall"].get("args")))
    calls = STATED_CALLS.get(path.stem, calls)
    return {"text": "".join(text), "thought": "".join(thought), "calls": calls, "usage": usage, "finish": finish}


def test_the_corpus_is_there() -> None:
    assert (len(ANTHROPIC), len(RESPONSES), len(GEMINI)) == (15, 14, 11)


@pytest.mark.parametrize("path", ANTHROPIC, ids=lambda p: p.stem)
def test_anthropic_stream_is_the_message_the_sdk_accumulates(path: Path) -> None:
    rec = reconstruct(path)
    assert rec.protocol == "anthropic_messages" and rec.done and not rec.truncated
    ours = without_nulls(rec.to_native())
    expected = without_nulls(sdk_final(path))
    for field in SDK_DROPS & set(ours) - set(expected):
        assert f'"{field}"'.encode() in path.read_bytes()
        del ours[field]
    assert ours == expected
    # The chat shape: text blocks are the content, thinking the reasoning, tool_use the calls.
    blocks = expected["content"]
    message = rec.to_openai()["choices"][0]["message"]
    texts = [b["text"] for b in blocks if b["type"] == "text"]
    assert message["content"] == ("".join(texts) if texts else None)
    thinking = [b["thinking"] for b in blocks if b["type"] == "thinking"]
    assert message.get("reasoning_content") == ("\n\n".join(thinking) if thinking else None)
    calls = [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"]
    got = [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message.get("tool_calls", [])
    ]
    assert got == calls
    usage = expected["usage"]
    prompt = (
        usage["input_tokens"] + usage.get("cache_read_input_tokens", 0) + usage.get("cache_creation_input_tokens", 0)
    )
    assert (rec.usage.prompt_tokens, rec.usage.completion_tokens) == (prompt, usage["output_tokens"])


@pytest.mark.parametrize("path", RESPONSES, ids=lambda p: p.stem)
def test_responses_stream_is_the_response_the_sdk_returns(path: Path) -> None:
    rec = reconstruct(path)
    assert rec.protocol == "openai_responses" and rec.done
    assert without_nulls(rec.to_native()) == without_nulls(sdk_final(path))
    # The deltas chatcap folded add up to the text the final response holds.
    assert not rec.has("final_differs"), [str(w) for w in rec.warnings]
    output = rec.to_native()["output"]
    message = rec.to_openai()["choices"][0]["message"]
    texts = [
        p.get("text", "") for i in output if i["type"] == "message" for p in i["content"] if p["type"] != "refusal"
    ]
    assert (message["content"] or "") == "".join(texts)
    calls = [(i["call_id"], i["name"]) for i in output if i["type"] in ("function_call", "custom_tool_call")]
    assert [
        (c["id"], c[c["type"] if c["type"] == "custom" else "function"]["name"]) for c in message.get("tool_calls", [])
    ] == calls


def test_responses_error_event_then_failed_carries_the_error() -> None:
    rec = reconstruct(CORPUS / "openai__openai_responses__error-insufficient-quota.sse")
    assert rec.error["code"] == "insufficient_quota" and rec.has("stream_error")
    assert not rec.truncated  # response.failed is how such a stream ends
    assert rec.to_openai()["choices"][0]["finish_reason"] is None


def test_responses_fixture_of_four_concatenated_responses_keeps_the_last_and_the_others() -> None:
    rec = reconstruct(CORPUS / "openai__openai_responses__reasoning-encrypted.sse")
    assert rec.has("several_responses") and len(rec.extras["earlier_responses"]) == 3
    assert rec.choices[0].content == "The final result is **570**."


@pytest.mark.parametrize("path", GEMINI, ids=lambda p: p.stem)
def test_gemini_stream_parts_concatenate(path: Path) -> None:
    rec = reconstruct(path)
    expected = gemini_expected(path)
    assert rec.protocol == "gemini" and rec.done and not rec.truncated
    choice = rec.choices[0]
    assert (choice.content or "") == expected["text"]
    assert (choice.reasoning or "") == expected["thought"]
    assert [(c.name, c.parsed_arguments) for c in choice.tool_calls] == expected["calls"]
    assert rec.usage.raw == expected["usage"]
    assert choice.extras["finishReason"] == expected["finish"]
    assert rec.to_native()["candidates"][0]["finishReason"] == expected["finish"]


def test_vertex_streamed_function_arguments_assemble_into_two_calls() -> None:
    rec = reconstruct(CORPUS / "google__gemini__vertex-partial-args.sse")
    assert len(rec.choices[0].tool_calls) == 2 and rec.choices[0].finish_reason == "tool_calls"
    assert all(c.parse_error is None for c in rec.choices[0].tool_calls)


def test_gemini_code_execution_parts_are_provider_extras() -> None:
    rec = reconstruct(CORPUS / "google__gemini__code-execution.sse")
    kinds = [next(iter(k for k in part if k != "thoughtSignature")) for part in rec.choices[0].extras["server_tools"]]
    assert "executableCode" in kinds and "codeExecutionResult" in kinds


def test_gemini_thought_signatures_are_kept_on_their_parts() -> None:
    rec = reconstruct(CORPUS / "google__gemini__gemini3-tool-call.sse")
    (part,) = [p for p in rec.to_native()["candidates"][0]["content"]["parts"] if "functionCall" in p]
    assert part["thoughtSignature"].startswith("EpEgCo4gAb4")


@pytest.mark.parametrize("path", ANTHROPIC + RESPONSES + GEMINI, ids=lambda p: p.stem)
def test_every_protocol_stream_is_timed_and_explained(path: Path) -> None:
    rec = reconstruct(path)
    assert rec.chunks
    assert (rec.marks.get("first_token") is not None) != (rec.error is not None)  # text, or an error instead
    assert not rec.has("bad_chunk") and not rec.has("unknown_event"), [str(w) for w in rec.warnings]
