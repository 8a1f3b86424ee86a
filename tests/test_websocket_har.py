"""A chat streamed over a WebSocket, as Chrome's HAR export keeps it (`_webSocketMessages`)."""

from __future__ import annotations

import orjson

import analyzer

STARTED = 1_763_000_000.0  # 2025-11-13T02:13:20Z


def _chunk(delta: dict[str, object], finish: str | None = None) -> str:
    return orjson.dumps(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    ).decode()


def _entry(messages: list[dict[str, object]]) -> dict[str, object]:
    return {
        "startedDateTime": "2025-11-13T02:13:20.000Z",
        "time": 5,
        "_resourceType": "websocket",
        "request": {
            "method": "GET",
            "url": "wss://chat.example.test/ws",
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": "Upgrade", "value": "websocket"}],
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": 101,
            "statusText": "Switching Protocols",
            "httpVersion": "HTTP/1.1",
            "headers": [],
            "cookies": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": 0,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 4, "receive": 1},
        "_webSocketMessages": messages,
    }


def _har(*entries: dict[str, object]) -> bytes:
    return orjson.dumps(
        {"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "entries": list(entries)}}
    )


def test_a_chat_over_a_websocket_is_reconstructed_with_each_message_timed() -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    messages = [
        {"type": "send", "time": STARTED + 0.010, "opcode": 1, "data": orjson.dumps(request).decode()},
        {
            "type": "receive",
            "time": STARTED + 0.400,
            "opcode": 1,
            "data": _chunk({"role": "assistant", "content": "Hel"}),
        },
        {"type": "receive", "time": STARTED + 0.450, "opcode": 1, "data": _chunk({"content": "lo"})},
        {"type": "receive", "time": STARTED + 2.500, "opcode": 1, "data": _chunk({}, "stop")},
        {"type": "receive", "time": STARTED + 2.510, "opcode": 1, "data": "[DONE]"},
    ]
    chat = _entry(messages)
    other = _entry([{"type": "receive", "time": STARTED, "opcode": 1, "data": '{"presence": "online"}'}])
    loaded = analyzer.parse(_har(other, chat), "ws.har")
    (exchange,) = loaded
    assert [str(p) for p in loaded.problems] == ["ws.har: 1 of 2 entries are not LLM API calls: left out"]
    rec = exchange.reconstruct()
    assert rec.choices[0].content == "Hello" and rec.choices[0].finish_reason == "stop" and rec.done
    assert exchange.request.json() == request
    assert [w.code for w in rec.warnings] == ["websocket_messages"]
    timing = rec.timing
    assert timing.source == "chunks" and timing.ttft_ms == 400.0 and timing.gap_max_ms == 2050.0
    assert timing.stalls == 1


def test_binary_or_untimed_websocket_messages_do_not_break_it() -> None:
    messages = [
        {"type": "receive", "opcode": 2, "data": "AAEC"},  # binary frame: not an event
        {"type": "receive", "opcode": 1, "data": _chunk({"content": "x"}, "stop")},  # no time
    ]
    (exchange,) = analyzer.parse(_har(_entry(messages)))
    rec = exchange.reconstruct()
    assert rec.choices[0].content == "x" and exchange.response.chunks is None
    assert rec.timing.source == "har"
