"""Write `captures/four_protocols.jsonl`: one session speaking all four wire protocols (schema `chatcap/1`).

A coding agent plans a trip and asks several providers, as such tools do:

    line  protocol            what
    1     anthropic_messages  streamed: thinking (with its signature), text, then a tool_use whose
                              input arrives in pieces split mid-string; pings; cache-read usage
    2     anthropic_messages  streamed: the tool_result goes back (history as content blocks); the answer
    3     openai_responses    streamed: a reasoning summary, then output_text; response.completed with usage
    4     gemini              streamed with alt=sse (CRLF framing): thought parts, then text; usageMetadata
    5     gemini              streamed without alt=sse: one JSON array, element by element; a functionCall
    6     openai_chat         streamed chat/completions, for comparison
    7     anthropic_messages  HTTP 529 overloaded_error (not streamed)
    8     openai_responses    not streamed: the response object

Everything in it was made up for chatcap's tests: prompts, answers, ids, credentials
(stored already redacted) and timing (multiples of 1/8 ms, so every sum is exact). The
shapes follow each API's reference (links in analyzer/protocols/<protocol>.py).

Run from the repository root: `python tests/data/make_mixed_capture.py [OUT_DIR]` (default
`captures/`). The output is deterministic; review the diff after changing this file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_captures as base

NAME = "four_protocols.jsonl"
COMMENT = "synthetic exchange written by tests/data/make_mixed_capture.py for chatcap's tests; not real traffic"
ANTHROPIC_KEY = base.Secret("sk-ant-api03-SYNTHETIC0chatcap0fixture0key0not0real000000000000000000000000")
OPENAI_KEY = base.Secret(base.OPENAI_KEY)
GOOGLE_KEY = base.Secret("AIzaSyD-SYNTHETIC0chatcap0fixture0key00")
STARTED = (
    "2025-10-02T08:30:01.125Z",
    "2025-10-02T08:30:09.500Z",
    "2025-10-02T08:30:15.250Z",
    "2025-10-02T08:30:22.875Z",
    "2025-10-02T08:30:30.000Z",
    "2025-10-02T08:30:36.625Z",
    "2025-10-02T08:30:41.750Z",
    "2025-10-02T08:30:44.375Z",
)
SYSTEM = "You plan short trips. Use tools for live data. (Synthetic session for chatcap's tests.)"
QUESTION = "Is it warm enough in Lisbon this weekend for the beach?"
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_forecast",
    "description": "Weather forecast for a city and a date range.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}
THINKING = ["The user", " wants Lisbon's", " weekend weather;", " I should", " look up the", " forecast."]
SIGNATURE = "EsYBCkYIBxgCKkBSYW50aGV0aWMgc2lnbmF0dXJlIGZvciBjaGF0Y2FwIHRlc3Rz"
LEAD_IN = ["I'll", " check", " the forecast", " for Lisbon."]
TOOL_ID = "toolu_01SYNTHETICchatcapFixture01"
TOOL_INPUT_PIECES = ['{"city": "Lis', 'bon", "da', 'ys": 2}']
FORECAST = {"saturday": {"high_c": 24, "sky": "sunny"}, "sunday": {"high_c": 22, "sky": "light cloud"}}
ANSWER = ["Yes", " — Saturday", " reaches 24 °C", " with sun", " and Sunday", " 22 °C:", " good beach", " weather."]


def sse(name: str, payload: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {base.compact(payload)}\n\n"


def reads(body: base.Body, t_first: float, pieces: list[str], gaps: tuple[float, ...]) -> None:
    for t_ms, piece in zip(base.cadence(t_first, len(pieces), gaps), pieces, strict=True):
        body.read(t_ms, piece)


def line(**fields: Any) -> dict[str, Any]:
    entry = base.entry(**fields)
    entry["comment"] = COMMENT
    return entry


# -- Anthropic Messages ---------------------------------------------------------------------------


def anthropic_headers(host: str) -> list[tuple[str, str]]:
    return [
        ("host", host),
        ("content-type", "application/json"),
        ("accept", "text/event-stream"),
        ("anthropic-version", "2023-06-01"),
        ("x-api-key", ANTHROPIC_KEY),
        ("user-agent", "Anthropic/Python 0.69.0"),
    ]


def anthropic_response_headers(date: str, request_id: str) -> list[tuple[str, str]]:
    return [
        ("date", date),
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "no-cache"),
        ("request-id", request_id),
        ("anthropic-ratelimit-tokens-remaining", "447000"),
    ]


def anthropic_message_start(message_id: str, usage: dict[str, Any]) -> str:
    message = {"id": message_id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
               "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}  # fmt: skip
    return sse("message_start", {"type": "message_start", "message": message})


def delta(index: int, kind: str, field: str, value: str) -> str:
    return sse(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": kind, field: value}}
    )


def anthropic_first() -> dict[str, Any]:
    pieces = [anthropic_message_start("msg_01SYNTHETICchatcapMixed001",
                                      {"input_tokens": 212, "cache_creation_input_tokens": 0,
                                       "cache_read_input_tokens": 1536, "output_tokens": 3})]  # fmt: skip
    pieces.append(sse("content_block_start", {"type": "content_block_start", "index": 0,
                                              "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))  # fmt: skip
    pieces += [delta(0, "thinking_delta", "thinking", text) for text in THINKING]
    pieces.append(delta(0, "signature_delta", "signature", SIGNATURE))
    pieces.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    pieces.append(sse("ping", {"type": "ping"}))
    pieces.append(sse("content_block_start", {"type": "content_block_start", "index": 1,
                                              "content_block": {"type": "text", "text": ""}}))  # fmt: skip
    pieces += [delta(1, "text_delta", "text", text) for text in LEAD_IN]
    pieces.append(sse("content_block_stop", {"type": "content_block_stop", "index": 1}))
    pieces.append(sse("content_block_start", {"type": "content_block_start", "index": 2, "content_block":
                                              {"type": "tool_use", "id": TOOL_ID, "name": "get_forecast", "input": {}}}))  # fmt: skip
    pieces += [delta(2, "input_json_delta", "partial_json", text) for text in ["", *TOOL_INPUT_PIECES]]
    pieces.append(sse("content_block_stop", {"type": "content_block_stop", "index": 2}))
    pieces.append(sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                                        "usage": {"output_tokens": 87}}))  # fmt: skip
    pieces.append(sse("message_stop", {"type": "message_stop"}))
    body = base.Body()
    reads(body, 611.5, pieces, (21.25, 18.75, 23.5, 19.875))
    return line(
        started=STARTED[0],
        url="https://api.anthropic.com/v1/messages",
        http_version="HTTP/2.0",
        request_headers=anthropic_headers("api.anthropic.com"),
        request_body=anthropic_request([{"role": "user", "content": QUESTION}]),
        status=200,
        reason="OK",
        response_headers=anthropic_response_headers("Thu, 02 Oct 2025 08:30:01 GMT", "req_011SYNTHETICmixed01"),
        body=body,
        send=0.875,
        wait=598.25,
    )


def anthropic_request(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 2048, "stream": True,
            "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "tools": [WEATHER_TOOL_ANTHROPIC], "messages": messages}  # fmt: skip


def anthropic_second() -> dict[str, Any]:
    history = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "".join(THINKING), "signature": SIGNATURE},
            {"type": "text", "text": "".join(LEAD_IN)},
            {"type": "tool_use", "id": TOOL_ID, "name": "get_forecast", "input": {"city": "Lisbon", "days": 2}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": TOOL_ID, "content": json.dumps(FORECAST)}]},
    ]  # fmt: skip
    pieces = [anthropic_message_start("msg_01SYNTHETICchatcapMixed002",
                                      {"input_tokens": 64, "cache_creation_input_tokens": 301,
                                       "cache_read_input_tokens": 1536, "output_tokens": 1})]  # fmt: skip
    pieces.append(sse("content_block_start", {"type": "content_block_start", "index": 0,
                                              "content_block": {"type": "text", "text": ""}}))  # fmt: skip
    pieces += [delta(0, "text_delta", "text", text) for text in ANSWER]
    pieces.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    pieces.append(sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                        "usage": {"output_tokens": 24}}))  # fmt: skip
    pieces.append(sse("message_stop", {"type": "message_stop"}))
    body = base.Body()
    reads(body, 702.25, pieces, (24.5, 20.125, 22.75))
    return line(
        started=STARTED[1],
        url="https://api.anthropic.com/v1/messages",
        http_version="HTTP/2.0",
        request_headers=anthropic_headers("api.anthropic.com"),
        request_body=anthropic_request(history),
        status=200,
        reason="OK",
        response_headers=anthropic_response_headers("Thu, 02 Oct 2025 08:30:09 GMT", "req_011SYNTHETICmixed02"),
        body=body,
        send=1.125,
        wait=689.5,
    )


def anthropic_overloaded() -> dict[str, Any]:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded (synthetic)"},
             "request_id": "req_011SYNTHETICmixed07"}  # fmt: skip
    body = base.Body()
    body.read(402.75, base.compact(error))
    headers = [
        ("date", "Thu, 02 Oct 2025 08:30:42 GMT"),
        ("content-type", "application/json"),
        ("x-should-retry", "true"),
    ]
    request = anthropic_request([{"role": "user", "content": "And in Porto?"}])
    request["stream"] = False
    return line(
        started=STARTED[6],
        url="https://api.anthropic.com/v1/messages",
        http_version="HTTP/2.0",
        request_headers=anthropic_headers("api.anthropic.com"),
        request_body=request,
        status=529,
        reason="",
        response_headers=headers,
        body=body,
        send=0.75,
        wait=401.25,
    )


# -- OpenAI Responses -----------------------------------------------------------------------------

RESPONSE_ID = "resp_0SYNTHETICchatcapMixed0000000000000000000003"
SUMMARY = ["**Checking", " beach", " weather**\n\n", "Lisbon in October:", " warm days,", " cool sea."]
RESPONSES_ANSWER = ["The sea", " is about", " 19 °C", " — bracing", " but", " swimmable."]


def responses_request(stream: bool) -> dict[str, Any]:
    return {"model": "gpt-5-mini", "instructions": SYSTEM, "stream": stream, "reasoning": {"summary": "auto"},
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "How warm is the sea there?"}]}]}  # fmt: skip


def response_object(status: str, output: list[Any], usage: dict[str, Any] | None, created_at: int) -> dict[str, Any]:
    return {"id": RESPONSE_ID, "object": "response", "created_at": created_at, "status": status, "error": None,
            "incomplete_details": None, "instructions": SYSTEM, "model": "gpt-5-mini-2025-08-07", "output": output,
            "service_tier": "default", "usage": usage}  # fmt: skip


def responses_stream() -> dict[str, Any]:
    created = base.epoch(STARTED[2])
    reasoning = {"id": "rs_0SYNTHETICchatcap03", "type": "reasoning", "summary": []}
    message = {"id": "msg_0SYNTHETICchatcap03", "type": "message", "status": "in_progress", "role": "assistant",
               "content": []}  # fmt: skip
    summary_text = "".join(SUMMARY)
    answer = "".join(RESPONSES_ANSWER)
    done_reasoning = dict(reasoning, summary=[{"type": "summary_text", "text": summary_text}])
    done_message = dict(message, status="completed",
                        content=[{"type": "output_text", "annotations": [], "logprobs": [], "text": answer}])  # fmt: skip
    usage = {"input_tokens": 58, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 142,
             "output_tokens_details": {"reasoning_tokens": 96}, "total_tokens": 200}  # fmt: skip
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response_object("in_progress", [], None, created)},
        {"type": "response.in_progress", "response": response_object("in_progress", [], None, created)},
        {"type": "response.output_item.added", "output_index": 0, "item": reasoning},
        {"type": "response.reasoning_summary_part.added", "item_id": reasoning["id"], "output_index": 0,
         "summary_index": 0, "part": {"type": "summary_text", "text": ""}},
        *({"type": "response.reasoning_summary_text.delta", "item_id": reasoning["id"], "output_index": 0,
           "summary_index": 0, "delta": text} for text in SUMMARY),
        {"type": "response.reasoning_summary_text.done", "item_id": reasoning["id"], "output_index": 0,
         "summary_index": 0, "text": summary_text},
        {"type": "response.output_item.done", "output_index": 0, "item": done_reasoning},
        {"type": "response.output_item.added", "output_index": 1, "item": message},
        {"type": "response.content_part.added", "item_id": message["id"], "output_index": 1, "content_index": 0,
         "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}},
        *({"type": "response.output_text.delta", "item_id": message["id"], "output_index": 1, "content_index": 0,
           "delta": text, "logprobs": []} for text in RESPONSES_ANSWER),
        {"type": "response.output_text.done", "item_id": message["id"], "output_index": 1, "content_index": 0,
         "text": answer, "logprobs": []},
        {"type": "response.output_item.done", "output_index": 1, "item": done_message},
        {"type": "response.completed",
         "response": response_object("completed", [done_reasoning, done_message], usage, created)},
    ]  # fmt: skip
    pieces = [sse(event["type"], dict(event, sequence_number=n)) for n, event in enumerate(events)]
    body = base.Body()
    reads(body, 388.125, pieces, (31.5, 27.25, 29.875, 33.0))
    return line(
        started=STARTED[2],
        url="https://api.openai.com/v1/responses",
        http_version="HTTP/2.0",
        request_headers=base.openai_sdk_headers("api.openai.com", OPENAI_KEY),
        request_body=responses_request(True),
        status=200,
        reason="OK",
        response_headers=base.openai_response_headers(
            "Thu, 02 Oct 2025 08:30:15 GMT",
            "text/event-stream; charset=utf-8",
            "req_0SYNTHETICmixed03",
            "98a0c0f1d2e3f4a5-LIS",
        ),
        body=body,
        send=0.625,
        wait=377.5,
    )


def responses_json() -> dict[str, Any]:
    text = "Pack a light jacket for the evenings."
    output = [{"id": "msg_0SYNTHETICchatcap08", "type": "message", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]}]  # fmt: skip
    usage = {"input_tokens": 31, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 9,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 40}  # fmt: skip
    response = response_object("completed", output, usage, base.epoch(STARTED[7]))
    body = base.Body()
    body.read(905.5, base.compact(response))
    request = responses_request(False)
    request["input"] = "Anything to pack?"
    return line(
        started=STARTED[7],
        url="https://api.openai.com/v1/responses",
        http_version="HTTP/2.0",
        request_headers=base.openai_sdk_headers("api.openai.com", OPENAI_KEY),
        request_body=request,
        status=200,
        reason="OK",
        response_headers=base.openai_response_headers(
            "Thu, 02 Oct 2025 08:30:45 GMT", "application/json", "req_0SYNTHETICmixed08", "98a0c0f1d2e3f4b6-LIS"
        ),
        body=body,
        send=0.5,
        wait=904.25,
    )


# -- Gemini ---------------------------------------------------------------------------------------

GEMINI_THOUGHT = ["**Considering", " the sunset**\n\nLisbon", " faces west", " over the Tagus."]
GEMINI_ANSWER = ["Sunset on", " Saturday is", " at 19:12;", " Miradouro da", " Senhora do Monte", " is the spot."]


def gemini_headers() -> list[tuple[str, str]]:
    return [
        ("host", "generativelanguage.googleapis.com"),
        ("content-type", "application/json"),
        ("x-goog-api-key", GOOGLE_KEY),
        ("x-goog-api-client", "google-genai-sdk/1.38.0 gl-python/3.12.4"),
        ("user-agent", "google-genai-sdk/1.38.0 gl-python/3.12.4"),
    ]


def gemini_response(parts: list[dict[str, Any]], usage: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash",
            "responseId": "SYNTHETICchatcapGemini04"}  # fmt: skip


def gemini_sse() -> dict[str, Any]:
    events = []
    thoughts = 0
    for text in GEMINI_THOUGHT:
        thoughts += 9
        events.append(gemini_response([{"text": text, "thought": True}],
                                      {"promptTokenCount": 41, "totalTokenCount": 41 + thoughts, "thoughtsTokenCount": thoughts}))  # fmt: skip
    for n, text in enumerate(GEMINI_ANSWER):
        last = n == len(GEMINI_ANSWER) - 1
        usage = {"promptTokenCount": 41, "candidatesTokenCount": 4 * (n + 1), "thoughtsTokenCount": thoughts,
                 "totalTokenCount": 41 + thoughts + 4 * (n + 1)}  # fmt: skip
        events.append(gemini_response([{"text": text}], usage, "STOP" if last else None))
    pieces = [f"data: {base.compact(event)}\r\n\r\n" for event in events]
    body = base.Body()
    reads(body, 1204.375, pieces, (88.5, 61.25, 74.125))
    request = {"systemInstruction": {"parts": [{"text": SYSTEM}]},
               "contents": [{"role": "user", "parts": [{"text": "When is sunset on Saturday, and where to watch it?"}]}],
               "generationConfig": {"thinkingConfig": {"includeThoughts": True}, "temperature": 0.7}}  # fmt: skip
    return line(
        started=STARTED[3],
        url="https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        http_version="HTTP/2.0",
        request_headers=gemini_headers(),
        request_body=request,
        status=200,
        reason="OK",
        response_headers=[
            ("date", "Thu, 02 Oct 2025 08:30:24 GMT"),
            ("content-type", "text/event-stream"),
            ("server", "scaffolding on HTTPServer2"),
        ],
        body=body,
        send=0.5,
        wait=1190.0,
    )


def gemini_array() -> dict[str, Any]:
    call = {"name": "find_restaurants", "args": {"city": "Lisbon", "cuisine": "seafood", "max_results": 3}}
    elements = [
        gemini_response([{"text": "Let me find"}], {"promptTokenCount": 57, "totalTokenCount": 60}),
        gemini_response([{"text": " a few places."}], {"promptTokenCount": 57, "totalTokenCount": 63}),
        gemini_response([{"functionCall": call}],
                        {"promptTokenCount": 57, "candidatesTokenCount": 19, "totalTokenCount": 76}, "STOP"),
    ]  # fmt: skip
    texts = [base.compact(element) for element in elements]
    pieces = ["[" + texts[0], "\n,\r\n" + texts[1], "\n,\r\n" + texts[2] + "\n]"]
    body = base.Body()
    reads(body, 842.625, pieces, (57.5, 112.25))
    request = {"contents": [{"role": "user", "parts": [{"text": "Seafood for dinner near the river?"}]}],
               "tools": [{"functionDeclarations": [{"name": "find_restaurants", "description": "Restaurant search.",
                                                    "parameters": {"type": "object", "properties": {
                                                        "city": {"type": "string"}, "cuisine": {"type": "string"},
                                                        "max_results": {"type": "integer"}}}}]}]}  # fmt: skip
    return line(
        started=STARTED[4],
        url="https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        http_version="HTTP/2.0",
        request_headers=gemini_headers(),
        request_body=request,
        status=200,
        reason="OK",
        response_headers=[
            ("date", "Thu, 02 Oct 2025 08:30:31 GMT"),
            ("content-type", "application/json; charset=UTF-8"),
        ],
        body=body,
        send=0.375,
        wait=830.0,
    )


# -- OpenAI chat/completions ----------------------------------------------------------------------

CHAT_ANSWER = ["Take", " tram", " 28", " from", " Martim", " Moniz", " early", " to", " beat", " the", " queue", "."]


def chat_stream() -> dict[str, Any]:
    chunk_id, created = "chatcmpl-CHsynthetic0mixed0chatcap06", base.epoch(STARTED[5])

    def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) -> str:
        choices = [] if usage else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        payload = {"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                   "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_0synthetic", "choices": choices}  # fmt: skip
        if usage:
            payload["usage"] = usage
        return base.event(payload)

    pieces = [chunk({"role": "assistant", "content": "", "refusal": None})]
    pieces += [chunk({"content": word}) for word in CHAT_ANSWER]
    pieces += [chunk({}, "stop"), chunk({}, usage={"prompt_tokens": 35, "completion_tokens": 12, "total_tokens": 47}),
               base.DONE]  # fmt: skip
    body = base.Body()
    reads(body, 301.875, pieces, (14.5, 12.25, 16.75))
    request = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
               "messages": [{"role": "system", "content": SYSTEM},
                            {"role": "user", "content": "Best way up to the castle?"}]}  # fmt: skip
    return line(
        started=STARTED[5],
        url="https://api.openai.com/v1/chat/completions",
        http_version="HTTP/2.0",
        request_headers=base.openai_sdk_headers("api.openai.com", OPENAI_KEY),
        request_body=request,
        status=200,
        reason="OK",
        response_headers=base.openai_response_headers(
            "Thu, 02 Oct 2025 08:30:37 GMT",
            "text/event-stream; charset=utf-8",
            "req_0SYNTHETICmixed06",
            "98a0c0f1d2e3f4a9-LIS",
        ),
        body=body,
        send=0.5,
        wait=290.625,
    )


def main(out: Path) -> None:
    entries = [anthropic_first(), anthropic_second(), responses_stream(), gemini_sse(), gemini_array(),
               chat_stream(), anthropic_overloaded(), responses_json()]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    target = out / NAME
    target.write_text("".join(base.compact(entry) + "\n" for entry in entries), encoding="utf-8")
    print(f"wrote {target} ({len(entries)} exchanges)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else base.OUT)
