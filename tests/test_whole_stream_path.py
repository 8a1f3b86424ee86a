"""The whole-stream fast path gives exactly what the general SSE decoder gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundled import BUNDLED_CAPTURES, CAPTURES
from bundled import REAL_CORPUS as CORPUS
from typed_path import takes_typed_path

import analyzer
from analyzer.model import Exchange, Response
from analyzer.protocols import events, openai_chat

ROOT = Path(__file__).resolve().parent.parent
INPUTS = sorted(
    [p for p in BUNDLED_CAPTURES if p.parent == CAPTURES]
    + [
        p
        for p in (ROOT / "tests" / "data").rglob("*")
        if p.suffix in (".sse", ".txt", ".json", ".jsonl", ".har")
        and p.parent.name not in ("seeds", "injection", "secrets")  # payload and key lists, no captures
        and "golden" not in p.parts  # exports, not inputs
        and p.parent.name != "real"  # recorded bodies beside the SDKs' answers: the corpus test below
        and p.name != "expected.json"
    ]
)


def snapshot(exchange: Exchange) -> tuple:
    exchange._reconstruction = None
    rec = exchange.reconstruct()
    return (
        rec.to_openai(),
        rec.to_native(),
        [(c.seq, c.t_ms, c.created) for c in rec.chunks],
        rec.done,
        rec.truncated,
        rec.marks,
        [w.code for w in rec.warnings],
        rec.after_done,
        rec.extras,
        [choice.extras for choice in rec.choices],
        [chunk.extras for chunk in rec.chunks],
    )


def both_paths(exchange: Exchange, monkeypatch: pytest.MonkeyPatch) -> tuple[tuple, tuple]:
    fast = snapshot(exchange)
    monkeypatch.setattr(openai_chat, "WHOLE_STREAM", False)
    monkeypatch.setattr(events, "WHOLE_STREAM", False)  # the other protocols' fast path
    general = snapshot(exchange)
    monkeypatch.setattr(openai_chat, "WHOLE_STREAM", True)
    monkeypatch.setattr(events, "WHOLE_STREAM", True)
    return fast, general


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_fast_path_matches_general_decoder_on_every_fixture(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for exchange in analyzer.load(path):
        fast, general = both_paths(exchange, monkeypatch)
        assert fast == general


def test_fast_path_is_taken_for_the_common_shape() -> None:
    body = (
        b'data: {"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi","refusal":null}}]}\n\n'
        b'data: {"id":"a","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )
    whole = openai_chat._whole_stream(body, [(5.0, 40), (9.5, len(body))])
    assert whole is not None
    decoded, cut = whole
    assert (len(decoded), cut.done, cut.times) == (2, True, [9.5, 9.5])


@pytest.mark.parametrize(
    "body",
    [
        b'data: {"choices":[]}\r\n\r\ndata: [DONE]\r\n\r\n',  # CRLF
        b'data: {"choices":[]}\r\rdata: [DONE]\r\r',  # CR
        b': keep-alive\n\ndata: {"choices":[]}\n\n',  # comment first
        b'data: {"choices":[]}\n\n: ping\n\ndata: {"choices":[]}\n\n',  # comment between
        b'data:{"choices":[]}\n\n',  # data: without its space
        b'data: {"choices":\ndata: []}\n\n',  # data over two lines
        b'event: x\nid: 1\nretry: 10\ndata: {"choices":[]}\n\n',  # named event, id, retry
        b'\xef\xbb\xbfdata: {"choices":[]}\n\n',  # BOM
        b'data: {"choices":[]}',  # no blank line after the last event
    ],
    ids=["crlf", "cr", "comment-first", "comment-between", "no-space", "multi-line", "fields", "bom", "unterminated"],
)
def test_fast_path_takes_every_framing(body: bytes) -> None:
    assert openai_chat._whole_stream(body, None) is not None


@pytest.mark.parametrize(
    "body",
    [
        b'event: error\ndata: {"error":{"message":"overloaded"}}\n\n',  # an error event
        b'data: {"choices":[]}\n\ndata: [DONE]\n\ndata: {"cost":"0"}\n\n',  # data after [DONE]
        b'data: {"choices":[],"vendor_trace":{"id":"q"}}\n\n',  # a field no table knows
        b'data: {"choices":[]}\n\ndata: {"choices":[',  # cut off inside a value
        b'data: {"choices":[]}\n\ndata:\n\n',  # an empty event
    ],
    ids=["error-event", "after-done", "unknown-field", "cut-off", "empty-event"],
)
def test_fast_path_declines_anything_else(body: bytes) -> None:
    assert openai_chat._whole_stream(body, None) is None


def test_fast_path_matches_general_decoder_on_the_real_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    checked = 0
    for path in sorted(CORPUS.glob("*__openai_chat__*.sse")):
        body = path.read_bytes()
        # Untimed, and timed with network reads every 97 bytes (splitting events anywhere).
        for reads in (None, [(end / 10, end) for end in [*range(97, len(body), 97), len(body)]]):
            response = Response(status=200, headers=[("content-type", "text/event-stream")], body=body, chunks=reads)
            exchange = Exchange(id=path.stem, source=str(path), format="sse-text", request=None, response=response)
            fast, general = both_paths(exchange, monkeypatch)
            assert fast == general, path.name
        checked += 1
    assert checked >= 50


def test_known_provider_extensions_stay_on_the_fast_path() -> None:
    body = (
        b'data: {"id":"g","choices":[{"index":0,"delta":{"content":"hi","channel":"final"}}],"x_groq":{"id":"req_1"}}\n\n'
        b'data: {"id":"g","choices":[{"index":0,"delta":{},"finish_reason":"stop","native_finish_reason":"stop"}]}\n\n'
    )
    whole = openai_chat._whole_stream(body, None)
    assert whole is not None and whole[0][0].x_groq == {"id": "req_1"}


# The recorded streams the typed paths leave to the general decoder: each holds an `error`
# event, whose payload is the error, not a chunk (by design, see `openai_chat._whole_stream`).
WITH_AN_ERROR_EVENT = {"groq__openai_chat__gptoss-tool-use-failed-error.sse", "openai__openai_responses__error-insufficient-quota.sse"}  # fmt: skip


def test_every_recorded_stream_takes_its_protocols_typed_path_but_those_with_an_error_event() -> None:
    """What real providers send (every event type and field of the 99 recorded streams) is known
    to the typed paths users run, so the corpus tests hold those paths to the SDKs."""
    paths = sorted(CORPUS.glob("*.sse"))
    general = {path.name for path in paths if not takes_typed_path(path.name.split("__")[1], path.read_bytes())}
    assert (len(paths), general) == (99, WITH_AN_ERROR_EVENT)
