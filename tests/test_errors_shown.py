"""Every recorded error reaches the user with its message: the server's error in a stream
(`event: error`, or an `error:` line, a field the SSE spec does not know), and the proxy's
reason when no reply came at all (an upstream TLS failure). "Truncated" is said only when
nothing explains the end. Fixtures: tests/data/errors/ (see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import analyzer
from analyzer import frames
from analyzer.sse import decode

ERRORS = Path(__file__).resolve().parent / "data" / "errors"
STREAM_ERRORS = {
    "chat-error-line.sse": "upstream connection lost",
    "chat-event-error.sse": "Overloaded",
    "anthropic-error-line.sse": "Overloaded",
}


def test_a_field_the_spec_does_not_know_is_kept_beside_the_events() -> None:
    events, decoder = decode((ERRORS / "chat-unknown-field.sse").read_bytes())
    assert [e.data[:8] for e in events] == [b'{"id":"c', b"[DONE]"]
    assert [(name, value) for _, name, value in decoder.fields] == [("x-debug", "shard 7")]


def test_an_unknown_field_in_a_healthy_stream_is_ignored_as_the_spec_says() -> None:
    [exchange] = analyzer.load(ERRORS / "chat-unknown-field.sse")
    rec = exchange.reconstruct()
    assert rec.error is None and not rec.truncated and rec.choices[0].content == "Hi"
    assert rec.warnings == [] and b"x-debug: shard 7" in exchange.response.body  # kept in the raw body


@pytest.mark.parametrize(("name", "message"), list(STREAM_ERRORS.items()))
def test_a_servers_error_in_the_stream_is_the_reconstructions_error(name: str, message: str) -> None:
    [exchange] = analyzer.load(ERRORS / name)
    rec = exchange.reconstruct()
    assert rec.error is not None and rec.error["message"] == message
    assert [w.code for w in rec.warnings if w.code in ("stream_error", "truncated")] == ["stream_error"]
    assert rec.choices[0].content in ("Hel", "Hi")  # what came before the error is kept
    assert frames.exchanges([exchange])["error"].tolist() == [message]


def _no_reply(tmp_path: Path) -> Path:
    """What the addon records when the upstream's certificate does not verify (a line as
    tests/e2e/test_errors_shown.py records it live)."""
    entry = {
        "startedDateTime": "2026-12-01T10:00:00.000Z", "time": 12.5,
        "request": {"method": "POST", "url": "https://127.0.0.1:8443/v1/chat/completions", "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "content-type", "value": "application/json"}], "queryString": [],
                    "cookies": [], "headersSize": -1, "bodySize": 60,
                    "postData": {"mimeType": "application/json",
                                 "text": '{"model":"gpt-e2e","messages":[{"role":"user","content":"hi"}]}'}},
        "response": {"status": 0, "statusText": "", "httpVersion": "", "headers": [], "cookies": [],
                     "content": {"size": 0, "mimeType": ""}, "redirectURL": "", "headersSize": -1, "bodySize": -1},
        "cache": {}, "timings": {"send": -1, "wait": -1, "receive": -1},
        "_error": "Certificate verify failed: self-signed certificate",
        "_chatcap": {"schema": "chatcap/1", "version": "0.1.0", "redacted": [], "complete": False},
    }  # fmt: skip
    path = tmp_path / "no-reply.jsonl"
    path.write_text(json.dumps(entry) + "\n")
    return path


def test_no_reply_because_of_the_proxy_is_an_error_with_the_proxys_reason(tmp_path: Path) -> None:
    [exchange] = analyzer.load(_no_reply(tmp_path))
    rec = exchange.reconstruct()
    assert rec.error == {"message": "Certificate verify failed: self-signed certificate", "type": "no_response"}
    assert not rec.truncated
    assert frames.exchanges([exchange])["error"].tolist() == ["Certificate verify failed: self-signed certificate"]


# nginx's own 502 page (ngx_http_special_response.c) and Python's http.server error page,
# as each server writes it: what a gateway in front of an LLM API answers when it fails.
NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def _python_error_page() -> bytes:
    from http.server import BaseHTTPRequestHandler

    page = BaseHTTPRequestHandler.error_message_format % {
        "code": 501,
        "message": "Unsupported method ('POST')",
        "explain": "Server does not support this operation",
    }
    return page.encode()


@pytest.mark.parametrize(
    ("status", "content_type", "page", "message"),
    [
        (502, "text/html", NGINX_502, "HTML page: 502 Bad Gateway: nginx"),
        (501, "text/html;charset=utf-8", _python_error_page(),
         "HTML page: Error response: Error code: 501 Message: Unsupported method ('POST'). "
         "Error code explanation: 501 - Server does not support this operation."),
    ],
)  # fmt: skip
def test_an_html_error_page_is_shown_as_its_title_and_text_not_its_markup(
    status: int, content_type: str, page: bytes, message: str
) -> None:
    dump = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.com\r\ncontent-type: application/json\r\n\r\n"
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
        + f"\r\n\r\nHTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {len(page)}\r\n\r\n".encode()
        + page
    )
    [exchange] = analyzer.parse(dump)
    rec = exchange.reconstruct()
    assert rec.error == {"message": message, "status": status}
    assert "<" not in rec.warnings[-1].message and exchange.response.body == page  # the page itself is kept
