"""Every chat/completions stream recorded from a real provider (tests/data/real)
reconstructs, and agrees with the official SDK's accumulation wherever the SDK is right.

Each quirk also has a fixture of its own in tests/data/quirks.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from bundled import REAL_CORPUS as CORPUS

from analyzer.model import Exchange, Reconstruction, Request, Response

CHAT = sorted(CORPUS.glob("*__openai_chat__*.sse"))

# Where the SDK's generic concatenation is wrong and what the stream really says (checked by
# reading the stream): OpenRouter→Novita resends the whole tool call in every delta.
SDK_WRONG_TOOL_CALLS = {
    "openrouter__openai_chat__llm-tools-a": [("0", "llm_version", "{}")],
}
# The SDK keeps the last chunk's `usage: null` after the usage chunk; chatcap keeps what was reported.
SDK_DROPS_USAGE = {"openai__openai_chat__gpt5-moderation"}
# The SDK's lenient path drops Mistral's `thinking` content parts; read from the stream:
SDK_DROPS_REASONING = {
    "mistral__openai_chat__magistral-thinking": "Okay, the user is asking how to cross the street.",
}


def reconstruct(path: Path) -> Reconstruction:
    request_file = path.with_suffix(".request.json")
    request = None
    if request_file.exists():
        request = Request(method="POST", url="https://provider/v1/chat/completions", body=request_file.read_bytes())
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=path.read_bytes())
    return Exchange(id=path.stem, source=str(path), format="sse-text", request=request, response=response).reconstruct()


def oracle(path: Path) -> dict[str, Any] | None:
    """The SDK's final completion, or its lenient snapshot where its typed path raised."""
    ok = path.with_suffix(".oracle.json")
    if ok.exists():
        return json.loads(ok.read_text())
    failed = path.with_suffix(".oracle_error.json")
    if failed.exists():
        data = json.loads(failed.read_text())
        return data.get("lenient_snapshot") or None
    return None


def sdk_reasoning(message: dict[str, Any]) -> str:
    """Reasoning wherever the SDK's snapshot keeps it (it has no field of its own for it)."""
    for field in ("reasoning_content", "reasoning"):
        if message.get(field):
            return message[field]
    details = message.get("reasoning_details") or []
    return "".join(str(d.get("text") or d.get("summary") or "") for d in details if isinstance(d, dict))


def sdk_role(role: str | None) -> str | None:
    """The SDK concatenates a role repeated in every delta ("assistantassistant…")."""
    if role and len(role) > len("assistant") and role.replace("assistant", "") == "":
        return "assistant"
    return role


def test_the_corpus_is_there() -> None:
    assert len(CHAT) == 59


def test_every_stream_is_the_recorded_bytes_its_manifest_names() -> None:
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    assert sorted(entry["file"] for entry in manifest) == sorted(p.name for p in CORPUS.glob("*.sse"))
    for entry in manifest:
        assert entry["repo"] and len(entry["commit"]) == 40, entry["file"]
        assert hashlib.sha256((CORPUS / entry["file"]).read_bytes()).hexdigest() == entry["sha256"], entry["file"]


@pytest.mark.parametrize("path", CHAT, ids=lambda p: p.stem)
def test_chat_stream_agrees_with_the_sdk_where_it_is_right(path: Path) -> None:
    rec = reconstruct(path)
    assert rec.protocol == "openai_chat"
    expected = oracle(path)
    if expected is None:
        pytest.skip("the SDK gave no answer for this stream: its expected result is stated in a test of its own below")
    got = rec.to_openai()
    by_index = {choice["index"]: choice for choice in got["choices"]}
    for choice in expected["choices"]:
        mine = by_index[choice["index"]]
        message, ours = choice["message"], mine["message"]
        assert (ours["content"] or "") == (message.get("content") or ""), "content"
        if path.stem in SDK_DROPS_REASONING:
            assert (ours.get("reasoning_content") or "").startswith(SDK_DROPS_REASONING[path.stem]), "reasoning"
        else:
            assert (ours.get("reasoning_content") or "") == sdk_reasoning(message), "reasoning"
        assert (ours.get("refusal") or None) == (message.get("refusal") or None), "refusal"
        assert ours["role"] == (sdk_role(message.get("role")) or "assistant"), "role"
        calls = [(c["id"], c["function"]["name"], c["function"]["arguments"] or "") for c in ours.get("tool_calls", [])]
        theirs = [
            (c.get("id"), c["function"]["name"], c["function"].get("arguments") or "")
            for c in message.get("tool_calls") or []
        ]
        assert calls == SDK_WRONG_TOOL_CALLS.get(path.stem, theirs), "tool calls"
        assert mine["finish_reason"] == choice.get("finish_reason"), "finish reason"
    if path.stem.startswith("groq__") and expected.get("usage") is None:
        # Older Groq streams report usage only in the last chunk's `x_groq`, which the SDK ignores.
        assert got["usage"] == groq_usage(path), "usage from x_groq"
    elif path.stem not in SDK_DROPS_USAGE:
        assert got["usage"] == expected.get("usage"), "usage"


def groq_usage(path: Path) -> dict[str, Any] | None:
    """The last `x_groq.usage` in the stream, read line by line with the standard library."""
    found = None
    for line in path.read_text().splitlines():
        if line.startswith("data: {"):
            usage = (json.loads(line[6:]).get("x_groq") or {}).get("usage")
            found = usage if isinstance(usage, dict) else found
    return found


@pytest.mark.parametrize("path", CHAT, ids=lambda p: p.stem)
def test_chat_stream_keeps_raw_bytes_and_explains_oddities(path: Path) -> None:
    rec = reconstruct(path)
    assert rec.chunks, "no chunk decoded"
    assert all(w.message for w in rec.warnings)
    assert not rec.has("bad_chunk"), [str(w) for w in rec.warnings]


# Streams the SDK produced nothing for: the expected result, read from the stream.


def corpus(stem: str) -> Reconstruction:
    return reconstruct(CORPUS / f"{stem}.sse")


def test_groq_in_band_tool_use_failed_error_keeps_the_reasoning_before_it() -> None:
    rec = corpus("groq__openai_chat__gptoss-tool-use-failed-error")
    assert rec.error["message"].startswith("Tool call validation failed")
    assert rec.choices[0].reasoning.startswith("We need to call the tool with invalid pa")
    assert rec.has("stream_error") and rec.truncated and "x_groq" in rec.extras


def test_openrouter_mid_stream_error_with_choices_ends_by_the_error() -> None:
    rec = corpus("openrouter__openai_chat__minimax-stream-error")
    assert rec.error == {"code": 400, "message": "Token limit reached"}
    assert rec.choices[0].reasoning.startswith("We need to respond to a greeting")
    assert rec.choices[0].finish_reason == "length" and rec.has("stream_error")


def test_openrouter_url_citations_without_index_are_the_messages_annotations() -> None:
    rec = corpus("openrouter__openai_chat__web-search-annotations")
    assert rec.choices[0].content.startswith("The URL for Pydantic AI's GitHub repository is:")
    (citation,) = [a for a in rec.choices[0].annotations if a["type"] == "url_citation"][:1]
    assert citation["url_citation"]["url"] == "https://github.com/pydantic/pydantic-ai"
    assert rec.to_openai()["choices"][0]["message"]["annotations"][0]["type"] == "url_citation"


def test_mistral_tool_call_without_index_arrives_whole() -> None:
    rec = corpus("mistral__openai_chat__tool-call")
    (call,) = rec.choices[0].tool_calls
    assert (call.id, call.name, call.parsed_arguments) == ("gSIMJiOkT", "weather", {"location": "San Francisco"})
    assert rec.choices[0].finish_reason == "tool_calls"


def test_mistral_thinking_parts_are_reasoning_text_parts_are_content() -> None:
    rec = corpus("mistral__openai_chat__reasoning")
    assert rec.choices[0].content == "2 + 2 = 4"
    assert rec.choices[0].reasoning.startswith("The user is asking for 2+2.")
    assert rec.choices[0].reasoning_source == "content[].thinking"


def test_writer_seven_parallel_tool_calls_and_no_done_after_the_finish() -> None:
    rec = corpus("writer__openai_chat__palmyra-multi-tool")
    calls = rec.choices[0].tool_calls
    assert [c.parsed_arguments["location"] for c in calls] == [
        "Zakopane", "Warsaw", "Lodz", "Katowice", "Krakow", "Poznan", "Lublin",
    ]  # fmt: skip
    assert all(c.name == "get_weather" and c.id.startswith("chatcmpl-tool-") for c in calls)
    assert not rec.truncated and rec.has("no_done")  # a proper finish without [DONE] is not a cut
    assert rec.usage.completion_tokens == 153


def test_deepseek_r1_think_block_from_together_is_split_out() -> None:
    choice = corpus("together__openai_chat__hf-router-thinking").choices[0]
    assert choice.content.startswith("<think>\nOkay, the user asked")
    assert choice.think.startswith("Okay, the user asked") and "</think>" not in choice.think
    assert choice.answer and not choice.answer.startswith("<think>") and choice.answer in choice.content


def test_a_local_server_sending_created_in_milliseconds_is_flagged() -> None:
    rec = corpus("localmock__openai_chat__local5002-repeated-role")
    assert rec.has("created_in_ms") and rec.choices[0].role == "assistant"
    assert rec.timing.resolution_ms == 1.0
    # One created for all 195 chunks: it dates the request, so no duration is made up from it.
    assert rec.created_range[0] == rec.created_range[2] and rec.timing.duration_ms is None
    assert "same created" in rec.timing.notes[0]
