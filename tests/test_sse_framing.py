"""Every framing real servers use reads alike in C and in Python, and takes the one fast path.

The C interpretation of a body (`analyzer._sse`, what `analyzer.sse.read` and `analyzer.sse.cut`
run where it was built) gives exactly the events `analyzer.sse.SSEDecoder` gives: data, event
name, last event id, retry, arrival time and whether the stream ended inside the event, and the
same comments and unknown fields, on streams built from every part of the grammar
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation) and
read at any split into network reads. And a stream recorded from a real provider, framed again
the way many servers frame theirs (CRLF or CR line ends, comments, `data:` without its space,
data over two lines, `id:` and `retry:` lines, a BOM), reconstructs exactly as it does as
recorded, on the same path, and as the provider's official SDK read it.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from bundled import REAL_CORPUS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_real_corpus import SDK_DROPS_REASONING, SDK_DROPS_USAGE, SDK_WRONG_TOOL_CALLS, oracle, sdk_reasoning, sdk_role

from analyzer import sse
from analyzer.model import Exchange, Reconstruction, Request, Response
from analyzer.sse import Event, decode

_sse = pytest.importorskip("analyzer._sse", reason="the C code was not built (no compiler)")

# The parts of an event stream, each a line (or a line's start) or a line end.
LINE_ENDS = [b"\n", b"\r", b"\r\n"]
LINES = [
    b"data: {}",
    b'data:{"a":1}',
    b"data:  two spaces",
    b"data",
    b"data:",
    b"data: [DONE]",
    b"event: delta",
    b"event:",
    b"event",
    b"id: 7",
    b"id:8",
    b"id: a\x00b",  # a NUL: the id is ignored
    b"id",
    b"retry: 3000",
    b"retry: 30x",  # not only digits: ignored
    b"retry: 18446744073709551615",  # 2**64 - 1
    b"retry: 18446744073709551616",  # past 64 bits: ignored
    b"retry: 000000000000000000000000042",
    b"retry:",
    b": keep-alive",
    b": OPENROUTER PROCESSING",
    b":",
    b":\t spaced \x0b",
    b"error: {}",
    b"x-debug: shard 7",
    b"datum: 1",
    b"",
    b"\xef\xbb\xbf",  # a BOM: ignored at the start only
    b"\xff\xfe not UTF-8",
    "data: wörld \u2028 😀".encode(),
]


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """A body of lines drawn from every part of the grammar, each ended any way (or not, last)."""
    parts = []
    if draw(st.booleans()):
        parts.append(b"\xef\xbb\xbf")
    for _ in range(draw(st.integers(0, 16))):
        parts.append(draw(st.sampled_from(LINES)))
        parts.append(draw(st.sampled_from([*LINE_ENDS, *LINE_ENDS, b""])))
    return b"".join(parts)


@st.composite
def network_reads(draw: st.DrawFn, body: bytes) -> list[tuple[float, int]] | None:
    """None, or reads ending anywhere (between the CR and LF of a CRLF too), in order or not, past the end."""
    if draw(st.booleans()):
        return None
    ends = draw(st.lists(st.integers(-2, len(body) + 2), max_size=8))
    if draw(st.booleans()):
        ends.sort()
    return [(float(at), end) for at, end in enumerate(ends, 1)]


def in_python(body: bytes, reads: list[tuple[float, int]] | None) -> tuple[list[Event], list[str], list[Any]]:
    events, decoder = decode(body, reads)
    return events, [text for _, text in decoder.comments], [(name, value) for _, name, value in decoder.fields]


def in_c(body: bytes, reads: list[tuple[float, int]] | None) -> tuple[list[Event], list[str], list[Any]]:
    events, comments, fields = _sse.events(body, reads)
    return [Event(*event) for event in events], comments, fields


def assert_same_events(body: bytes, reads: list[tuple[float, int]] | None) -> None:
    assert in_c(body, reads) == in_python(body, reads), f"body={body!r} reads={reads!r}"


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_c_code_gives_the_python_decoders_events_on_any_framing_and_any_reads(data: st.DataObject) -> None:
    body = data.draw(streams())
    assert_same_events(body, data.draw(network_reads(body)))


@settings(max_examples=1000, deadline=None)
@given(body=st.binary(max_size=80), data=st.data())
def test_the_c_code_gives_the_python_decoders_events_on_arbitrary_bytes(body: bytes, data: st.DataObject) -> None:
    assert_same_events(body, data.draw(network_reads(body)))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), done=st.booleans())
def test_the_c_and_python_cuts_give_the_same_payloads_and_notes(data: st.DataObject, done: bool) -> None:
    body = data.draw(streams())
    reads = data.draw(network_reads(body))
    in_c = sse.cut(body, reads, done)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sse, "IN_C", False)
        in_python = sse.cut(body, reads, done)
    assert in_c == in_python, f"body={body!r} reads={reads!r}"


@pytest.mark.parametrize(
    ("body", "events"),
    [
        (b"data: {}\r\n\r\n", [Event(b"{}")]),
        (b"data: {}\r\rdata: {}\n\n", [Event(b"{}"), Event(b"{}")]),  # lone CRs end lines too
        (b": keep-alive\n\ndata:{}\n\n", [Event(b"{}")]),  # a comment, data: without its space
        (b"data: {\ndata: }\n\n", [Event(b"{\n}")]),  # data lines joined with an LF
        (b"event: a\nid: 1\nretry: 5\ndata: x\n\ndata: y\n\n", [Event(b"x", "a", "1", 5), Event(b"y", None, "1", 5)]),
        (b"id: a\x00b\ndata: x\n\n", [Event(b"x")]),  # an id holding a NUL is ignored
        (b"retry: 5s\ndata: x\n\n", [Event(b"x")]),  # a retry that is not only digits too
        (b"\xef\xbb\xbfdata: x\n\n\xef\xbb\xbfdata: y\n\n", [Event(b"x")]),  # a BOM at the start only
        (b"data\n\n", [Event(b"")]),  # a field without a colon
        (b"data: x", [Event(b"x", unterminated=True)]),  # the stream ended inside the event
    ],
)
def test_each_framing_feature_gives_its_events(body: bytes, events: list[Event]) -> None:
    assert in_c(body, None)[0] == events
    assert in_python(body, None)[0] == events


def test_a_crlf_split_between_two_reads_is_one_line_end() -> None:
    body = b"data: {}\r\n\r\ndata: {}\r\n\r\n"
    reads = [(1.0, body.index(b"\r") + 1), (2.0, 12), (3.0, len(body))]  # CR | LF CR | LF ...
    assert in_c(body, reads) == in_python(body, reads)
    assert [event.t_ms for event in in_c(body, reads)[0]] == [2.0, 3.0]  # each arrived with its blank line's CR


def test_comments_and_unknown_fields_are_kept_as_the_python_decoder_keeps_them() -> None:
    body = b': keep-alive \r\nerror: {"message":"overloaded"}\r\nx-debug\r\ndata: {}\r\n\r\n'
    _, comments, fields = in_c(body, None)
    assert comments == ["keep-alive"]
    assert fields == [("error", '{"message":"overloaded"}'), ("x-debug", "")]
    assert in_c(body, None) == in_python(body, None)


def test_reads_whose_ends_are_not_ints_are_read_in_python() -> None:
    body = b"data: {}\n\n"
    with pytest.raises(TypeError):
        _sse.events(body, [(1.0, 5.0)])
    with pytest.raises(TypeError):
        sse.decode(body, [(1.0, 5.0)])  # what the Python decoder does with them too
    assert sse.read(body, [(1.0, -5.0)]) == sse.read_in_python(body, [(1.0, -5.0)])


# Streams recorded from real providers, framed again as other servers frame theirs.

PATHS = {
    "openai_chat": "/v1/chat/completions",
    "anthropic_messages": "/v1/messages",
    "openai_responses": "/v1/responses",
    "gemini": "/v1beta/models/m:streamGenerateContent?alt=sse",
}
RECORDED = sorted(
    path for path in REAL_CORPUS.glob("*.sse") if path.name.split("__")[1] in PATHS
)  # `<provider>__<protocol>__<name>.sse`
_LINE = re.compile(rb"(.*?)(\r\n|\r|\n|\Z)", re.S)
ADDED_COMMENTS = ("OPENROUTER PROCESSING", "keep-alive")


def reframed(body: bytes, seed: int) -> tuple[bytes, list[str]]:
    """`body`'s lines framed again (every line kept, in order, so every event, comment and field
    is the same): one line end chosen for the whole stream, a BOM, a comment and a `retry:` line
    first, `data:` and `event:` without their space, a keep-alive comment before some lines,
    some `{…` data lines as two data lines (after the `{`: the two join with an LF, JSON
    whitespace), and an `id:` after each blank line when the stream had none. Returns the
    body and the comments added."""
    rng = random.Random(seed)
    newline = rng.choice(LINE_ENDS)
    out = [b"\xef\xbb\xbf: OPENROUTER PROCESSING", newline, b"retry: 3000", newline]
    added = [ADDED_COMMENTS[0]]
    ids = not re.search(rb"(^|[\r\n])id", body)
    number = 0
    for match in _LINE.finditer(body):
        line, end = match.group(1), match.group(2)
        if not line and not end:
            break
        if rng.random() < 0.1:
            out += [b": keep-alive", newline]
            added.append(ADDED_COMMENTS[1])
        for field in (b"data", b"event"):
            if line.startswith(field + b": ") and line[len(field) + 2 : len(field) + 3] != b" ":
                line = field + b":" + line[len(field) + 2 :]
        if line.startswith(b"data:{") and len(line) > 7 and line[6:7] != b" " and rng.random() < 0.3:
            line = b"data:{" + newline + b"data:" + line[6:]
        out += [line, newline if end else b""]
        if not line and ids:
            number += 1
            out += [b"id: " + str(number).encode(), newline]
    return b"".join(out), added


def reconstruct(path: Path, body: bytes) -> Reconstruction:
    protocol = path.name.split("__")[1]
    request_file = path.with_suffix(".request.json")
    request = Request(
        method="POST",
        url="https://provider" + PATHS[protocol],
        body=request_file.read_bytes() if request_file.exists() else None,
    )
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=body)
    return Exchange(id=path.stem, source=str(path), format="sse-text", request=request, response=response).reconstruct()


def everything(rec: Reconstruction) -> dict[str, Any]:
    """All a reconstruction says, comments aside."""
    return {
        "openai": rec.to_openai(),
        "native": rec.to_native(),
        "chunks": [(c.seq, c.t_ms, c.created, c.extras) for c in rec.chunks],
        "state": (rec.done, rec.truncated, rec.marks, rec.after_done, rec.error),
        "warnings": [(w.code, w.message) for w in rec.warnings],
        "extras": rec.extras,
        "choices": [choice.extras for choice in rec.choices],
    }


def test_every_recorded_stream_is_framed_again() -> None:
    assert RECORDED and len(RECORDED) == len(list(REAL_CORPUS.glob("*.sse")))  # all of one of the four protocols


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_a_recorded_stream_framed_again_reconstructs_as_recorded_on_the_same_path(path: Path) -> None:
    clean = path.read_bytes()
    body, added = reframed(clean, seed=len(clean))
    assert len(sse.read(body).events) == len(sse.read(clean).events)
    assert (sse.cut(body, done=True) is None) == (sse.cut(clean, done=True) is None), "the same path"
    as_recorded, framed = reconstruct(path, clean), reconstruct(path, body)
    assert everything(framed) == everything(as_recorded)
    assert Counter(framed.comments) == Counter(as_recorded.comments) + Counter(added)


def test_most_recorded_streams_take_the_fast_path_however_framed() -> None:
    taken = sum(sse.cut(reframed(path.read_bytes(), seed=1)[0], done=True) is not None for path in RECORDED)
    assert taken > len(RECORDED) * 3 // 4


CHAT_ANSWERED = [path for path in RECORDED if "__openai_chat__" in path.name and oracle(path) is not None]


@pytest.mark.parametrize("path", CHAT_ANSWERED, ids=lambda p: p.stem)
def test_a_recorded_chat_stream_framed_again_agrees_with_the_sdks_answer(path: Path) -> None:
    """What tests/test_real_corpus.py holds the recorded stream to, on the stream framed again."""
    got = reconstruct(path, reframed(path.read_bytes(), seed=7)[0]).to_openai()
    expected = oracle(path)
    assert expected is not None
    by_index = {choice["index"]: choice for choice in got["choices"]}
    for choice in expected["choices"]:
        message, ours = choice["message"], by_index[choice["index"]]["message"]
        assert (ours["content"] or "") == (message.get("content") or ""), "content"
        if path.stem in SDK_DROPS_REASONING:
            assert (ours.get("reasoning_content") or "").startswith(SDK_DROPS_REASONING[path.stem]), "reasoning"
        else:
            assert (ours.get("reasoning_content") or "") == sdk_reasoning(message), "reasoning"
        assert ours["role"] == (sdk_role(message.get("role")) or "assistant"), "role"
        calls = [(c["id"], c["function"]["name"], c["function"]["arguments"] or "") for c in ours.get("tool_calls", [])]
        theirs = [(c.get("id"), c["function"]["name"], c["function"].get("arguments") or "") for c in message.get("tool_calls") or []]  # fmt: skip
        assert calls == SDK_WRONG_TOOL_CALLS.get(path.stem, theirs), "tool calls"
        assert by_index[choice["index"]]["finish_reason"] == choice.get("finish_reason"), "finish reason"
    if path.stem not in SDK_DROPS_USAGE and not (path.stem.startswith("groq__") and expected.get("usage") is None):
        assert got["usage"] == expected.get("usage"), "usage"
