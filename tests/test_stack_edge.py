"""JSON nested past Python's recursion limit is read as "too deep" by decoders that recurse
until Python stops them. The garbage collector must not start a collection there: it would
run other objects' finalizers (a generator's close, a file's ResourceWarning) with no stack
left, they would fail, and Python would print "Exception ignored in …" on the user's stderr
(under pytest, a "Failed to process unraisable exception" error in whichever test was running).

A collection is made to start at nearly every allocation, and each one checks that it has
stack left for a finalizer: 50 frames."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from analyzer.model import Exchange, Request, Response, dumps_exact, loads_exact
from analyzer.redact import redact_text

FINALIZER_FRAMES = 50
DEEP = b"[" * 1000 + b"]" * 1000  # within orjson's 1,024 levels, past Python's recursion limit
DEEP_VALUE = orjson.loads(DEEP)


def _frames(n: int) -> int:
    return 0 if n == 0 else _frames(n - 1) + 1


@pytest.fixture
def edges() -> Iterator[list[str]]:
    """Where a collection started without FINALIZER_FRAMES of stack left: the innermost
    function of analyzer/ on the stack, once each."""
    found: list[str] = []

    def probe(phase: str, info: dict[str, Any]) -> None:
        if phase != "start":
            return
        try:
            _frames(FINALIZER_FRAMES)
        except RecursionError:
            frame = sys._getframe(1)
            while frame is not None and "/analyzer/" not in frame.f_code.co_filename:
                frame = frame.f_back
            where = f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}" if frame else "?"
            if where not in found:
                found.append(where)

    def unraisable(args: Any) -> None:  # the probe itself called with no stack left
        found.append(f"unraisable: {args.exc_type.__name__}")

    thresholds, hook = gc.get_threshold(), sys.unraisablehook
    gc.callbacks.append(probe)
    sys.unraisablehook = unraisable
    gc.set_threshold(1, 1, 1)
    try:
        yield found
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(probe)
        sys.unraisablehook = hook


STREAMS = {
    "https://api.openai.com/v1/chat/completions": b'{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":{"nested":%s}}',
    "https://api.anthropic.com/v1/messages": b'{"type":"message_start","message":{"id":"m","type":"message",'
    b'"role":"assistant","model":"m","content":[],"usage":{"input_tokens":1,"nested":%s}}}',
    "https://api.openai.com/v1/responses": b'{"type":"response.created","response":{"id":"r","object":"response",'
    b'"model":"m","output":[],"metadata":{"nested":%s}}}',
    "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent?alt=sse": b'{"candidates":'
    b'[{"content":{"role":"model","parts":[{"text":"hi"}]}}],"usageMetadata":{"nested":%s}}',
}


def _exchange(url: str, payload: bytes) -> Exchange:
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=b"data: " + payload + b"\n\n")
    return Exchange(
        id="x", source="<test>", format="sse-text", request=Request(method="POST", url=url), response=response
    )


@pytest.mark.parametrize("url", list(STREAMS), ids=lambda url: url.split("/")[-1].split("?")[0])
def test_no_collection_starts_at_the_stack_edge_while_a_stream_with_a_payload_nested_1000_deep_is_reconstructed(
    url: str, edges: list[str]
) -> None:
    rec = _exchange(url, STREAMS[url] % DEEP).reconstruct()
    assert "reconstruction_failed" not in [notice.code for notice in rec.warnings]
    assert edges == []


def _long_integer_refused() -> None:
    with pytest.raises(ValueError, match="integer past 64 bits"):
        loads_exact(b"[" * 1000 + b"2" * 20 + b"]" * 1000)


WRITERS: dict[str, Callable[[], object]] = {
    "loads_exact": lambda: loads_exact(DEEP),
    "loads_exact with a long integer": _long_integer_refused,
    "dumps_exact, indented": lambda: dumps_exact({"a": DEEP_VALUE, "big": 2**70}, indent=True),
    "redaction of a string holding the JSON": lambda: redact_text(
        '{"text": "' + DEEP.decode() + ' sk-proj-Zk3mQ9vT2xLp8RwN5bYc"}'
    ),
}


@pytest.mark.parametrize("step", list(WRITERS))
def test_no_collection_starts_at_the_stack_edge_while_json_nested_1000_deep_is_read_written_or_redacted(
    step: str, edges: list[str]
) -> None:
    WRITERS[step]()
    assert edges == []


def test_the_probe_finds_a_collection_started_at_the_stack_edge(edges: list[str]) -> None:
    """The check above can fail: the standard library's decoder, unguarded, meets it."""
    import json

    with pytest.raises(RecursionError):
        json.loads(DEEP)
    assert edges
