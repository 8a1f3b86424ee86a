"""The C cut of a stream body (`analyzer._sse.cut`) and the Python one (`events.cut_lines`)
take the same bodies and give the same payloads, and both give exactly the payloads the
general SSE decoder reads (the event-stream grammar's oracle in this project):
https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream

Bodies come from the fast-path fuzz test's generator (well-formed events of every
protocol, broken the ways a line-based shortcut could miss), from fragments of SSE syntax
thrown together at random (short bodies where every edge of the C code is near), and from
every recorded body in tests/data/real.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path
from typing import Any

import msgspec
import pytest
from bundled import REAL_CORPUS as REAL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fast_path_fuzz import PROTOCOLS, bodies

from analyzer.protocols import events
from analyzer.sse import decode

_sse = pytest.importorskip("analyzer._sse", reason="the C cut was not built (no compiler)")
_decode_lines = msgspec.json.Decoder().decode_lines


def test_the_c_cut_is_built_where_there_is_a_compiler() -> None:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None or not Path(sysconfig.get_paths()["include"], "Python.h").is_file():
        pytest.skip(f"no {compiler} or no Python headers here: the Python cut runs")
    assert events._cut_c is _sse.cut  # built, and the version events.py was written for


def payload_lines(text: bytes | memoryview) -> list[bytes]:
    """The C cut's payloads, one per line (no JSON text holds a raw LF)."""
    return bytes(text).split(b"\n")


def general(body: bytes) -> list[bytes]:
    """What the SSE decoder reads as each event's data."""
    found, _ = decode(body)
    return [event.data for event in found]


def decoded(text: bytes | memoryview) -> Any:
    try:
        return ("values", _decode_lines(text))
    except (ValueError, RecursionError) as exc:
        return ("error", type(exc).__name__)


def assert_same_cut(body: bytes, done: bool) -> None:
    in_c = _sse.cut(body, done)
    in_python = events.cut_lines(body, done)
    assert (in_c is None) == (in_python is None), f"C took it: {in_c is not None}; body={body!r}"
    if in_c is None:
        return
    (c_text, c_events, c_done, c_times), (py_text, py_events, py_done) = in_c, in_python  # type: ignore[misc]
    assert (c_events, c_done, c_times) == (py_events, py_done, None)
    assert decoded(c_text) == decoded(py_text)
    # Exactly the decoder's events: each one's data is one payload, in order.
    data = general(body)
    if c_done:
        assert data[-1] == b"[DONE]"
        data = data[:-1]
    assert payload_lines(c_text) == data
    assert len(data) == c_events


def assert_same_times(body: bytes, reads: Any, done: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """`whole_lines` with either cut: the same events, arriving at the same times."""
    with monkeypatch.context() as patch:
        patch.setattr(events, "CUT_IN_C", True)
        in_c = events.whole_lines(body, reads, done)
        patch.setattr(events, "CUT_IN_C", False)
        in_python = events.whole_lines(body, reads, done)
    assert (in_c is None) == (in_python is None), f"C took it: {in_c is not None}; body={body!r} reads={reads!r}"
    if in_c is not None and in_python is not None:
        assert (in_c.events, in_c.times, in_c.done) == (in_python.events, in_python.times, in_python.done)
        assert decoded(in_c.lines) == decoded(in_python.lines)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), done=st.booleans())
def test_the_c_and_python_cuts_agree_with_each_other_and_the_sse_decoder(
    protocol: str, data: st.DataObject, done: bool
) -> None:
    body, reads = data.draw(bodies(protocol))
    assert_same_cut(body, done)
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert_same_times(body, reads, done, monkeypatch)


FRAGMENTS = [
    b"data: ",
    b"data:",
    b"event: ",
    b"event: x",
    b"{",
    b"}",
    b"{}",
    b'{"a":1}',
    b'"',
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\r\n\r\n",
    b"[DONE]",
    b"data: [DONE]",
    b": comment",
    b"id: 1",
    b" ",
    b"\t",
    b"\xff",
]


@settings(max_examples=3000, deadline=None)
@given(pieces=st.lists(st.sampled_from(FRAGMENTS), max_size=24), done=st.booleans())
def test_any_mix_of_sse_syntax_is_cut_alike_or_refused_alike(pieces: list[bytes], done: bool) -> None:
    assert_same_cut(b"".join(pieces), done)


@settings(max_examples=500, deadline=None)
@given(body=st.binary(max_size=64), done=st.booleans())
def test_arbitrary_bytes_are_cut_alike_or_refused_alike(body: bytes, done: bool) -> None:
    assert_same_cut(body, done)


@pytest.mark.parametrize(
    "body, done, payloads",
    [
        (b"data: {}\n\n", False, [b"{}"]),
        (b'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\n', False, [b'{"a":1}', b'{"b":2}']),
        (b'event: x\ndata: {"a":1}\n\nevent: \ndata: {}\n\n', False, [b'{"a":1}', b"{}"]),
        (b"data: {}\n\ndata: [DONE]\n\n", True, [b"{}"]),
        (b"data: {}\r\n\r\ndata: [DONE]\r\n\r\n", True, [b"{}"]),
    ],
)
def test_the_common_shapes_give_their_payloads(body: bytes, done: bool, payloads: list[bytes]) -> None:
    text, count, ended, times = _sse.cut(body, done)
    assert payload_lines(text) == payloads
    assert (count, ended, times) == (len(payloads), done, None)
    assert_same_cut(body, done)


@pytest.mark.parametrize(
    "body, done",
    [
        (b"", False),
        (b"data: {}\n", False),  # no blank line after the event
        (b"data: {}\n\ndata: [DONE]\n\n", False),  # [DONE] not allowed
        (b"event: x\ndata: {}\n\ndata: [DONE]\n\n", True),  # [DONE] only without event: lines
        (b"data: {}\n\nevent: x\ndata: {}\n\n", False),  # events framed two ways
        (b"data: {}\r\n\r\ndata: {}\n\n", False),  # line ends two ways
        (b"data: {\r}\r\n\r\n", False),  # a lone CR inside the payload ends a line
        (b"event: a\rb\r\ndata: {}\r\n\r\n", False),  # and inside an event name
        (b"data: {}\ndata: {}\n\n", False),  # two data lines in one event
        (b": hi\ndata: {}\n\n", False),  # a comment
        (b"data: [1]\n\n", False),  # not an object
        (b"data: {\n\n", False),  # a lone brace
        (b"data:{}\n\n", False),  # no space after the colon
        (b"data: [DONE]\n\n", True),  # nothing but [DONE]
    ],
)
def test_other_shapes_are_left_to_the_sse_decoder(body: bytes, done: bool) -> None:
    assert _sse.cut(body, done) is None
    assert events.cut_lines(body, done) is None


def test_a_buffer_that_is_not_bytes_is_read_as_bytes() -> None:
    body = b'data: {"a":1}\n\n'
    assert _sse.cut(memoryview(body), False) == _sse.cut(bytearray(body), False) == _sse.cut(body, False)
    with pytest.raises(TypeError):
        _sse.cut("data: {}\n\n", False)
    with pytest.raises(TypeError):
        _sse.cut(body)
    with pytest.raises(TypeError):
        _sse.cut(body, False, 5)  # reads that are no sequence


@pytest.mark.parametrize("cut_in_c", [True, False], ids=["C", "Python"])
def test_whole_lines_times_each_event_alike_with_either_cut(cut_in_c: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "CUT_IN_C", cut_in_c)
    body = b'event: a\r\ndata: {"n":1}\r\n\r\nevent: b\r\ndata: {"n":2}\r\n\r\nevent: c\r\ndata: {"n":3}\r\n\r\n'
    first_end = body.index(b"\r\n\r\n") + 3  # the blank line's CR completes the event
    whole = events.whole_lines(body, [(5.0, first_end), (9.0, len(body) - 10)])
    assert whole is not None
    assert _decode_lines(whole.lines) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert whole.times == [5.0, 9.0, None]


def test_the_c_cut_times_events_from_reads_in_order() -> None:
    body = b'data: {"n":1}\n\ndata: {"n":2}\n\ndata: {"n":3}\n\ndata: [DONE]\n\n'
    second_done = body.index(b"\n\n", body.index(b'{"n":2}')) + 2
    # A read ending between the two LFs of a blank line leaves its event to the next read.
    reads = [(1.0, 0), (2.0, second_done - 1), [3.5, second_done], (4.0, len(body) + 100)]
    assert _sse.cut(body, True, reads)[3] == [2.0, 3.5, 4.0]
    assert _sse.cut(body, True, reads[:2])[3] == [2.0, None, None]  # past the last read
    assert _sse.cut(body, True, [])[3] is None  # no reads: no times


@pytest.mark.parametrize(
    "reads",
    [
        [(1.0, 30), (2.0, 10)],  # out of order
        [(1.0, -1)],  # a negative end, which Python's slicing counts from the end
        [(1.0, 5.0)],  # not an int
        [(1.0, True)],
        [(1.0, 10**30)],  # past any offset C holds
        [(1.0,)],  # not a pair
        [{"t": 1.0, "end": 5}],
    ],
)
def test_reads_the_c_cut_does_not_take_are_timed_in_python(reads: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    body = b'data: {"n":1}\n\ndata: {"n":2}\n\n'
    assert _sse.cut(body, False, reads)[3] is None  # left to the Python count
    assert events.cut_lines(body, False) is not None
    results = {}
    for cut_in_c in (True, False):
        monkeypatch.setattr(events, "CUT_IN_C", cut_in_c)
        try:
            whole = events.whole_lines(body, reads)
            results[cut_in_c] = ("times", None if whole is None else whole.times)
        except (TypeError, ValueError) as exc:  # reads that neither can read
            results[cut_in_c] = ("raises", type(exc))
    assert results[True] == results[False]


def test_every_recorded_body_is_cut_alike() -> None:
    paths = sorted(REAL.glob("*.sse"))  # the response bodies (the .json files are the SDKs' answers)
    assert paths
    taken = 0
    for path in paths:
        body = path.read_bytes()
        for done in (False, True):
            assert_same_cut(body, done)
        taken += _sse.cut(body, True) is not None
    assert taken > len(paths) // 2  # most recorded streams have a common shape
