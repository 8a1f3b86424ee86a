"""Fake credentials planted in every place an LLM exchange can carry one, for the redaction
tests: headers, URL userinfo and query, request JSON (messages, nested JSON strings, tool
arguments and results), a request body that is not UTF-8, and model output in each
protocol's stream, whole and spelled across several chunks.

The shapes are in tests/data/secrets/shapes.json; `SENSITIVE` names, for each, the part
that must never survive (for a webhook URL or a connection string, the secret inside it).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

SHAPES: dict[str, str] = {
    name: value
    for name, value in json.loads((Path(__file__).parent / "data" / "secrets" / "shapes.json").read_text()).items()
    if not name.startswith("_")
}


def sensitive(name: str) -> str:
    """The part of shape `name` that must never be seen again."""
    value = SHAPES[name]
    if name == "slack_webhook":
        return value.rsplit("/", 1)[1]
    if name == "azure_connection":
        return value.split("AccountKey=", 1)[1].split(";", 1)[0]
    if name == "private_key":
        return value.splitlines()[1]
    return value


SENSITIVE = {name: sensitive(name) for name in SHAPES}

# Values that only their names make secret: they look like anything.
NAMED = {
    "api_key": "plain-words-key",
    "password": "hunter2",
    "client_secret": "cs-777",
    "access_token": "tok-9",
    "x-portkey-api-key": "pk-portkey-1",
}
HEADERS = {
    "Authorization": "Bearer hdr-bearer-4242",
    "X-Auth-Token": "hdr-auth-token-1",
    "Ocp-Apim-Subscription-Key": "hdr-apim-key-2",
    "x-portkey-api-key": "hdr-portkey-3",
    "anthropic-api-key": "hdr-anthropic-4",
    "x-goog-api-key": "hdr-goog-5",
    "Cookie": "session=hdr-cookie-6; theme=dark",
}
USERINFO_PASSWORD = "url-pass-7"
QUERY_SECRET = "query-key-8"

SECRETS = [*SENSITIVE.values(), *NAMED.values(), *HEADERS.values(), "hdr-cookie-6", USERINFO_PASSWORD, QUERY_SECRET]
# Cookie values are judged as one header: "session=hdr-cookie-6; theme=dark" goes whole.
SECRETS.remove("session=hdr-cookie-6; theme=dark")


def places(secret: str) -> dict[str, str]:
    """One text per place a secret can hide in, each holding `secret`."""
    escaped = "".join(f"\\u{ord(c):04x}" for c in secret)
    return {
        "prose": f"my key is {secret} ok",
        "json value": json.dumps({"note": secret}),
        "json after a newline escape": json.dumps({"note": "line\n" + secret}),
        "json ascii-escaped": json.dumps({"note": "é " + secret}, ensure_ascii=True),
        "json every character escaped": '{"note": "' + escaped + '"}',
        "json inside a json string": json.dumps({"arguments": json.dumps({"text": secret})}),
        "json inside json inside json": json.dumps({"a": json.dumps({"b": json.dumps({"c": secret})})}),
        "url query percent-encoded": f"https://example.test/v1?q={quote(chr(34) + secret + chr(34))}",
        "stream payload": "data: " + json.dumps({"choices": [{"delta": {"content": f"key: {secret}."}}]}) + "\n\n",
        "python snippet": f'client = OpenAI(api_key="{secret}")',
        "env file": f"OPENAI_API_KEY={secret}\nDEBUG=1",
    }


def split(text: str, parts: int) -> list[str]:
    """`text` cut into `parts` pieces of about equal length."""
    size = -(-len(text) // parts)
    return [text[n : n + size] for n in range(0, len(text), size)]


def chat_stream(pieces: list[str]) -> bytes:
    """An OpenAI chat/completions stream whose content arrives as `pieces`."""
    events = [{"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": {"content": piece}}]}
              for piece in pieces]  # fmt: skip
    events.append({"id": "c1", "object": "chat.completion.chunk", "model": "m",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})  # fmt: skip
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def anthropic_stream(pieces: list[str]) -> bytes:
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                           "model": "claude-x", "content": [], "usage": {"input_tokens": 3, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        *[("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "text_delta", "text": piece}}) for piece in pieces],
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


def responses_stream(pieces: list[str]) -> bytes:
    text = "".join(pieces)
    item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}  # fmt: skip
    events = [
        {"type": "response.created", "response": {"id": "resp_1", "object": "response", "model": "gpt-x",
                                                   "status": "in_progress", "output": []}},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {**item, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", "output_index": 0, "content_index": 0, "item_id": "msg_1",
         "part": {"type": "output_text", "text": "", "annotations": []}},
        *[{"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "item_id": "msg_1",
           "delta": piece} for piece in pieces],
        {"type": "response.output_text.done", "output_index": 0, "content_index": 0, "item_id": "msg_1", "text": text},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": {"id": "resp_1", "object": "response", "model": "gpt-x",
                                                     "status": "completed", "output": [item]}},
    ]  # fmt: skip
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def gemini_stream(pieces: list[str]) -> bytes:
    events = [{"candidates": [{"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0}],
               "modelVersion": "gemini-x"} for piece in pieces]  # fmt: skip
    events[-1]["candidates"][0]["finishReason"] = "STOP"
    return b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)


STREAMS = {
    "openai-chat": ("/v1/chat/completions", chat_stream),
    "anthropic": ("/v1/messages", anthropic_stream),
    "openai-responses": ("/v1/responses", responses_stream),
    "gemini": ("/v1beta/models/gemini-x:streamGenerateContent?alt=sse", gemini_stream),
}


def model_output() -> str:
    """A reply that repeats every shape (the model echoing what it was given)."""
    return "Here are the keys you pasted: " + " ; ".join(SHAPES.values()) + " — keep them safe."


def request_body(protocol: str) -> dict:
    """A request carrying every shape in its history, a tool call's arguments and a tool result."""
    arguments = json.dumps({"url": f"https://h.test/?key={SHAPES['google_api_key']}", "auth": NAMED["api_key"],
                            "config": json.dumps({"password": NAMED["password"], "token": SHAPES["github_token"]})})  # fmt: skip
    history = [
        {"role": "system", "content": f"Use {SHAPES['openai_project_key']} for calls."},
        {"role": "user", "content": " ".join(SHAPES.values())},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "fetch", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"client_secret": NAMED["client_secret"],
                                                                           "jwt": SHAPES["jwt"]})},
    ]  # fmt: skip
    body: dict = {"model": "m", "stream": True, "messages": history, "metadata": {**NAMED}}
    if protocol == "gemini":
        body = {"contents": [{"role": "user", "parts": [{"text": " ".join(SHAPES.values())}]}], "metadata": {**NAMED}}
    return body
