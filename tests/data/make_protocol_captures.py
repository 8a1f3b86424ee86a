"""Write the scripted upstream streams for `tests/e2e/test_protocols_live.py`:
`tests/data/protocols/*.jsonl` (schema `chatcap/1`) and `expected.json`.

One exchange per protocol, each built by that protocol's streaming docs and made up for
chatcap's tests (not real traffic): a reasoning part, an answer whose text has a
multi-byte character that one network read splits, a tool call whose JSON arguments
arrive cut mid-string, mid-escape and mid-`\\u` escape, and usage. Every read has a
scheduled arrival time (`response._chunks`), which the replay server keeps when it plays
the stream to a client. `expected.json` names, per file, the scheduled arrival times of
the first generated text (TTFT) and of the first answer text, and the texts streamed.

- Anthropic Messages: https://docs.anthropic.com/en/docs/build-with-claude/streaming
- OpenAI Responses: https://platform.openai.com/docs/api-reference/responses-streaming
- Gemini: https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
  (thought parts: https://ai.google.dev/gemini-api/docs/thinking, signatures:
  https://ai.google.dev/gemini-api/docs/thought-signatures)

Run from the repository root: `python tests/data/make_protocol_captures.py`. The output
is deterministic; review the diff after changing this file.
"""

from __future__ import annotations

import base64
import json
from itertools import count
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "protocols"
STARTED = "2026-05-04T09:30:00.000Z"
COMMENT = "synthetic stream written by tests/data/make_protocol_captures.py for chatcap's tests; not real traffic"
# A redacted credential, as the addon stores one (the placeholder of a made-up key).
REDACTED = "<redacted:5e2e0c1a>"

PROMPT = "Weather in Zürich?"
REASONING = ["The user wants the weather", " in Zürich; the weather tool", " answers that."]
ANSWER = ["Let me check the ", "weather in Zürich ☀", " for you."]
SPLIT_CHARACTER = "☀"  # one read ends after this character's first byte
# Tool arguments cut mid-string, mid-escape (`\` | `n`) and mid `\u` escape.
TOOL_ARGUMENTS = ['{"city": "Zür', 'ich", "note": "line one\\', 'nline \\"two\\" \\u00', 'e9t\\u00e9"}']
TOOL = {"name": "get_weather", "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "note": {"type": "string"}}}}  # fmt: skip
SPLIT_DELAY_MS = 15.0
# Thought signatures are opaque base64 (Gemini's SDK decodes them); this one encodes made-up bytes.
SIGNATURE = base64.b64encode(b"synthetic thought signature for chatcap e2e").decode()


class Stream:
    """A response body built event by event, each event one read at a scheduled time."""

    def __init__(self, framing: str) -> None:
        self.framing = framing  # "typed": `event:` + `data:` lines, LF; "data": `data:` line, CRLF CRLF
        self.body = bytearray()
        self.reads: list[list[float]] = []
        self.marks: dict[str, float] = {}

    def send(self, at_ms: float, payload: dict[str, Any], *, mark: str | None = None) -> float:
        """One event arriving at `at_ms` (its text split in two reads when it holds
        SPLIT_CHARACTER); returns when its last byte arrives."""
        data = json.dumps(payload, ensure_ascii=False)
        if self.framing == "typed":
            raw = f"event: {payload['type']}\ndata: {data}\n\n".encode()
        else:
            raw = f"data: {data}\r\n\r\n".encode()
        assert not self.reads or at_ms > self.reads[-1][0], at_ms
        if SPLIT_CHARACTER.encode() in raw:
            cut = raw.index(SPLIT_CHARACTER.encode()) + 1
            self._read(at_ms, raw[:cut])
            at_ms += SPLIT_DELAY_MS
            raw = raw[cut:]
        self._read(at_ms, raw)
        if mark is not None:
            self.marks.setdefault(mark, at_ms)
        return at_ms

    def _read(self, at_ms: float, raw: bytes) -> None:
        self.body += raw
        self.reads.append([at_ms, len(self.body)])


def entry(url: str, key_header: str, request: dict[str, Any], stream: Stream) -> dict[str, Any]:
    """One capture line: a HAR 1.2 entry as addons/chatcap.py writes it."""
    request_text = json.dumps(request, ensure_ascii=False, separators=(",", ":"))
    wait = 2.0
    receive = stream.reads[-1][0] - wait
    return {
        "startedDateTime": STARTED,
        "time": wait + receive,
        "request": {
            "method": "POST",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": "content-type", "value": "application/json"}, {"name": key_header, "value": REDACTED}],
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": len(request_text.encode()),
            "postData": {"mimeType": "application/json", "text": request_text},
        },
        "response": {
            "status": 200,
            "statusText": "OK",
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": "content-type", "value": "text/event-stream"}],
            "cookies": [],
            "content": {"size": len(stream.body), "mimeType": "text/event-stream", "text": stream.body.decode()},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(stream.body),
            "_chunks": stream.reads,
        },
        "cache": {},
        "timings": {"send": 0.0, "wait": wait, "receive": receive},
        "comment": COMMENT,
        "_chatcap": {"schema": "chatcap/1", "version": "0.1.0", "redacted": [key_header], "complete": True},
    }


# -- Anthropic Messages -----------------------------------------------------------------------


def anthropic_messages() -> dict[str, Any]:
    """message_start, a thinking block with its signature (and a ping), a text block, a
    tool_use block, message_delta with usage, message_stop."""
    stream = Stream("typed")
    message = {
        "id": "msg_e2e01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 472, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 128,
                  "output_tokens": 2},
    }  # fmt: skip
    at = stream.send(150, {"type": "message_start", "message": message})
    block = {"type": "thinking", "thinking": "", "signature": ""}
    at = stream.send(at + 20, {"type": "content_block_start", "index": 0, "content_block": block})
    at = stream.send(at + 10, {"type": "ping"})
    for piece in REASONING:
        delta = {"type": "thinking_delta", "thinking": piece}
        at = stream.send(at + 40, {"type": "content_block_delta", "index": 0, "delta": delta}, mark="first_token")
    signature = {"type": "signature_delta", "signature": "EqQBCkgIBxABGAIiQE2eSyntheticSignatureOfTheThinking=="}
    at = stream.send(at + 30, {"type": "content_block_delta", "index": 0, "delta": signature})
    at = stream.send(at + 5, {"type": "content_block_stop", "index": 0})
    block = {"type": "text", "text": ""}
    at = stream.send(at + 30, {"type": "content_block_start", "index": 1, "content_block": block})
    for piece in ANSWER:
        delta = {"type": "text_delta", "text": piece}
        at = stream.send(at + 40, {"type": "content_block_delta", "index": 1, "delta": delta}, mark="first_answer")
    at = stream.send(at + 30, {"type": "content_block_stop", "index": 1})
    block = {"type": "tool_use", "id": "toolu_e2e01", "name": TOOL["name"], "input": {}}
    at = stream.send(at + 30, {"type": "content_block_start", "index": 2, "content_block": block})
    for piece in ["", *TOOL_ARGUMENTS]:  # the API's first input_json_delta is empty
        delta = {"type": "input_json_delta", "partial_json": piece}
        at = stream.send(at + 30, {"type": "content_block_delta", "index": 2, "delta": delta})
    at = stream.send(at + 20, {"type": "content_block_stop", "index": 2})
    # The docs' example: the final usage gives output_tokens; the prompt's figures stand.
    delta = {"stop_reason": "tool_use", "stop_sequence": None}
    at = stream.send(at + 20, {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 156}})
    stream.send(at + 10, {"type": "message_stop"})
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 2048,
        "messages": [{"role": "user", "content": PROMPT}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{"name": TOOL["name"], "description": TOOL["description"], "input_schema": TOOL["parameters"]}],
        "stream": True,
    }
    return entry("https://api.anthropic.com/v1/messages", "x-api-key", request, stream) | {"_marks": stream.marks}


# -- OpenAI Responses -------------------------------------------------------------------------


def openai_responses() -> dict[str, Any]:
    """A reasoning item with a summary, a message streamed as output_text deltas, a
    function_call whose arguments arrive in pieces, response.completed with usage."""
    stream = Stream("typed")
    sequence = count()
    tool = {"type": "function", **TOOL, "strict": False}
    response = {
        "id": "resp_e2e01", "object": "response", "created_at": 1_777_887_000, "status": "in_progress",
        "model": "gpt-5-2025-08-07", "output": [], "usage": None, "error": None, "incomplete_details": None,
        "instructions": None, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [tool],
        "reasoning": {"effort": "medium", "summary": "auto"}, "text": {"format": {"type": "text"}},
        "metadata": {}, "service_tier": "auto", "temperature": 1.0, "top_p": 1.0,
    }  # fmt: skip

    def send(at_ms: float, payload: dict[str, Any], mark: str | None = None) -> float:
        return stream.send(
            at_ms, {"type": payload.pop("type"), "sequence_number": next(sequence), **payload}, mark=mark
        )

    at = send(120, {"type": "response.created", "response": response})
    at = send(at + 10, {"type": "response.in_progress", "response": response})
    reasoning = {"id": "rs_e2e01", "type": "reasoning", "summary": []}
    at = send(at + 30, {"type": "response.output_item.added", "output_index": 0, "item": reasoning})
    where = {"item_id": "rs_e2e01", "output_index": 0, "summary_index": 0}
    part = {"type": "summary_text", "text": ""}
    at = send(at + 10, {"type": "response.reasoning_summary_part.added", **where, "part": part})
    for piece in REASONING:
        at = send(at + 40, {"type": "response.reasoning_summary_text.delta", **where, "delta": piece}, "first_token")
    summary = "".join(REASONING)
    at = send(at + 20, {"type": "response.reasoning_summary_text.done", **where, "text": summary})
    at = send(at + 5, {"type": "response.reasoning_summary_part.done", **where, "part": {**part, "text": summary}})
    reasoning = {**reasoning, "summary": [{"type": "summary_text", "text": summary}]}
    at = send(at + 5, {"type": "response.output_item.done", "output_index": 0, "item": reasoning})

    message = {"id": "msg_e2e01", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    at = send(at + 30, {"type": "response.output_item.added", "output_index": 1, "item": message})
    where = {"item_id": "msg_e2e01", "output_index": 1, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    at = send(at + 10, {"type": "response.content_part.added", **where, "part": part})
    for piece in ANSWER:
        delta = {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
        at = send(at + 40, delta, "first_answer")
    answer = "".join(ANSWER)
    at = send(at + 20, {"type": "response.output_text.done", **where, "text": answer, "logprobs": []})
    part = {**part, "text": answer}
    at = send(at + 5, {"type": "response.content_part.done", **where, "part": part})
    message = {**message, "status": "completed", "content": [part]}
    at = send(at + 5, {"type": "response.output_item.done", "output_index": 1, "item": message})

    call = {"id": "fc_e2e01", "type": "function_call", "status": "in_progress", "arguments": "",
            "call_id": "call_e2e01", "name": TOOL["name"]}  # fmt: skip
    at = send(at + 30, {"type": "response.output_item.added", "output_index": 2, "item": call})
    where = {"item_id": "fc_e2e01", "output_index": 2}
    for piece in TOOL_ARGUMENTS:
        at = send(at + 30, {"type": "response.function_call_arguments.delta", **where, "delta": piece})
    arguments = "".join(TOOL_ARGUMENTS)
    at = send(at + 20, {"type": "response.function_call_arguments.done", **where, "arguments": arguments})
    call = {**call, "status": "completed", "arguments": arguments}
    at = send(at + 5, {"type": "response.output_item.done", "output_index": 2, "item": call})

    usage = {"input_tokens": 312, "input_tokens_details": {"cached_tokens": 256}, "output_tokens": 190,
             "output_tokens_details": {"reasoning_tokens": 128}, "total_tokens": 502}  # fmt: skip
    completed = {**response, "status": "completed", "output": [reasoning, message, call], "usage": usage}
    send(at + 20, {"type": "response.completed", "response": completed})
    request = {
        "model": "gpt-5",
        "input": [{"role": "user", "content": PROMPT}],
        "reasoning": {"effort": "medium", "summary": "auto"},
        "tools": [tool],
        "stream": True,
    }
    return entry("https://api.openai.com/v1/responses", "Authorization", request, stream) | {"_marks": stream.marks}


# -- Gemini -----------------------------------------------------------------------------------


def gemini() -> dict[str, Any]:
    """Thought parts, answer text parts, a functionCall part carrying the thought signature,
    then a last response with finishReason and the final (cumulative) usageMetadata."""
    stream = Stream("data")
    usage = {"promptTokenCount": 24, "thoughtsTokenCount": 36}

    def send(at_ms: float, parts: list[dict[str, Any]], mark: str | None = None, **candidate: Any) -> float:
        total = {**usage, "totalTokenCount": sum(usage.values())}
        payload = {
            "candidates": [{"content": {"parts": parts, "role": "model"}, **candidate, "index": 0}],
            "usageMetadata": total,
            "modelVersion": "gemini-2.5-flash",
            "responseId": "e2eGeminiResponse01",
        }
        return stream.send(at_ms, payload, mark=mark)

    at = send(180, [{"text": REASONING[0], "thought": True}], "first_token")
    for piece in REASONING[1:]:
        at = send(at + 40, [{"text": piece, "thought": True}])
    for n, piece in enumerate(ANSWER):
        usage["candidatesTokenCount"] = 4 * (n + 1)
        at = send(at + 40, [{"text": piece}], "first_answer")
    arguments = json.loads("".join(TOOL_ARGUMENTS))
    call = {"functionCall": {"name": TOOL["name"], "args": arguments}, "thoughtSignature": SIGNATURE}
    usage["candidatesTokenCount"] = 31
    at = send(at + 40, [call])
    send(at + 30, [{"text": ""}], finishReason="STOP")
    request = {
        "contents": [{"parts": [{"text": PROMPT}], "role": "user"}],
        "tools": [{"functionDeclarations": [TOOL]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
    }
    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    return entry(url, "x-goog-api-key", request, stream) | {"_marks": stream.marks}


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    expected: dict[str, Any] = {}
    for name, build in (
        ("anthropic-messages", anthropic_messages),
        ("openai-responses", openai_responses),
        ("gemini", gemini),
    ):
        line = build()
        marks = line.pop("_marks")
        (out / f"{name}.jsonl").write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
        expected[name] = {
            "first_token_ms": marks["first_token"],
            "first_answer_ms": marks["first_answer"],
            "reasoning": "".join(REASONING),
            "content": "".join(ANSWER),
            "tool_name": TOOL["name"],
            "tool_arguments": json.loads("".join(TOOL_ARGUMENTS)),
        }
    (out / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
