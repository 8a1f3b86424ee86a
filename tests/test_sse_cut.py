"""The fast path's cut of a stream body (`analyzer.sse.cut`) gives the same payloads, times
and notes in C (`analyzer._sse.cut`) and in Python (from `SSEDecoder`'s events), and both
exactly the events the general SSE decoder reads (the event-stream grammar's oracle in this
project): https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

Bodies come from the fast-path fuzz test's generator (well-formed events of every
protocol, broken the ways a line-based shortcut could miss), from fragments of SSE syntax
thrown together at random (short bodies where every edge of the C code is near), and from
every recorded body in tests/data/real. tests/test_sse_framing.py holds the C events to the
Python decoder's one by one.
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

from analyzer import sse
from analyzer.sse import Cut, decode

_sse = pytest.importorskip("analyzer._sse", reason="the C cut was not built (no compiler)")
_decode_lines = msgspec.json.Decoder().decode_lines


def test_the_c_cut_is_built_where_there_is_a_compiler() -> None:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None or not Path(sysconfig.get_paths()["include"], "Python.h").is_file():
        pytest.skip(f"no {compiler} or no Python headers here: the Python cut runs")
    assert sse._IN_C is _sse  # built, and the version sse.py was written for


def cut_in_python(body: bytes, reads: Any, done: bool) -> Cut | None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sse, "IN_C", False)
        return sse.cut(body, reads, done)


def assert_same_cut(body: bytes, done: bool, reads: Any = None) -> None:
    in_c, in_python = sse.cut(body, reads, done), cut_in_python(body, reads, done)
    assert in_c == in_python, f"body={body!r} reads={reads!r}"
    if in_c is None:
        return
    # Exactly the decoder's events: their data one after the other, with an LF between.
    data = [event.data for event in decode(body, reads)[0]]
    if in_c.done:
        assert data[-1] == b"[DONE]"
        data = data[:-1]
    assert in_c.payloads == b"\n".join(data)
    assert in_c.count == len(data)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), done=st.booleans())
def test_the_c_and_python_cuts_agree_with_each_other_and_the_sse_decoder(
    protocol: str, data: st.DataObject, done: bool
) -> None:
    body, reads = data.draw(bodies(protocol))
    assert_same_cut(body, done)
    assert_same_cut(body, done, reads)


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
    b"retry: 5",
    b"error: x",
    b" ",
    b"\t",
    b"\xff",
    b"\xef\xbb\xbf",
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
        (b'data: {"a":1}\r\rdata:{"b":2}\n\n', False, [b'{"a":1}', b'{"b":2}']),
        (b'event: x\ndata: {"a":1}\n\nevent: \ndata: {}\n\n', False, [b'{"a":1}', b"{}"]),
        (b"data: {}\n\ndata: [DONE]\n\n", True, [b"{}"]),
        (b"data: {}\r\n\r\ndata: [DONE]\r\n\r\n", True, [b"{}"]),
        (b": hi\ndata: {}\n\n: bye\n\n", False, [b"{}"]),
        (b"data: {\ndata: }\n\n", False, [b"{\n}"]),  # two data lines, joined with an LF
        (b"data: {}\ndata: {}\n\n", False, [b"{}\n{}"]),  # one event of two values: decode_lines counts them
        (b"data: {}\n\ndata: {}", False, [b"{}", b"{}"]),  # the last event unterminated
    ],
)
def test_the_framings_give_their_payloads(body: bytes, done: bool, payloads: list[bytes]) -> None:
    cut = sse.cut(body, None, done)
    assert cut is not None
    assert (cut.payloads, cut.count, cut.done, cut.times) == (b"\n".join(payloads), len(payloads), done, [None] * len(payloads))  # fmt: skip
    assert_same_cut(body, done)


def test_the_cut_keeps_names_ids_comments_fields_and_the_unterminated_end() -> None:
    body = b": keep-alive\nid: 1\nevent: a\ndata: {}\n\nerror: {}\ndata: {}"
    cut = sse.cut(body)
    assert cut is not None
    assert (cut.names, cut.ids, cut.comments, cut.fields, cut.unterminated) == (
        {"a"},
        ["1", "1"],
        ["keep-alive"],
        [("error", "{}")],
        True,
    )
    assert_same_cut(body, False)


@pytest.mark.parametrize(
    "body, done",
    [
        (b"", False),
        (b": only a comment\n\n", False),
        (b"data: {}\n\ndata: [DONE]\n\n", False),  # [DONE] not allowed
        (b"data: [DONE]\n\ndata: {}\n\n", True),  # an event after [DONE]
        (b"data: [DONE]\n\n", True),  # nothing but [DONE]
        (b"data: [1]\n\n", False),  # not an object
        (b"data: {\n\n", False),  # a lone brace
        (b"data:  { \n\n", False),  # a lone brace, in spaces
        (b"data:   \n\n", False),  # spaces alone
        (b"data: {}\n\ndata\n\n", False),  # an empty event
    ],
)
def test_other_shapes_are_left_to_the_sse_decoder(body: bytes, done: bool) -> None:
    assert sse.cut(body, None, done) is None
    assert cut_in_python(body, None, done) is None


@pytest.mark.parametrize(
    "body",
    [
        b"data:  {}\n\n",  # a space before the brace besides the field's one
        b"data:\t{} \t\n\n",
        b'data: {}\n\ndata:   {"a": 1}  \n\n',
        b"data: \ndata: {}\ndata: \n\n",  # blank data lines around it: LFs in the data
    ],
)
def test_an_object_in_json_whitespace_is_cut_with_its_whitespace(body: bytes) -> None:
    """JSON whitespace around an event's object (`data:  {…}`, which some servers write: the
    spec takes one space off, the rest is data) keeps the stream on the cut: the payloads
    are the events' data as the decoder gives it, whitespace and all."""
    cut = sse.cut(body)
    assert cut is not None
    assert cut.count == body.count(b"\n\n")
    assert_same_cut(body, False)


def test_a_buffer_that_is_not_bytes_is_read_as_bytes() -> None:
    body = b'data: {"a":1}\n\n'
    assert _sse.cut(memoryview(body), False) == _sse.cut(bytearray(body), False) == _sse.cut(body, False)
    with pytest.raises(TypeError):
        _sse.cut("data: {}\n\n", False)
    with pytest.raises(TypeError):
        _sse.cut(body)
    with pytest.raises(TypeError):
        _sse.cut(body, False, 5)  # reads that are no sequence


@pytest.mark.parametrize("in_c", [True, False], ids=["C", "Python"])
def test_each_event_arrives_with_its_blank_line(in_c: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "IN_C", in_c)
    body = b'event: a\r\ndata: {"n":1}\r\n\r\nevent: b\r\ndata: {"n":2}\r\n\r\nevent: c\r\ndata: {"n":3}\r\n\r\n'
    first_end = body.index(b"\r\n\r\n") + 3  # the blank line's CR completes the event
    cut = sse.cut(body, [(5.0, first_end), (9.0, len(body) - 10)])
    assert cut is not None
    assert _decode_lines(cut.payloads) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert cut.times == [5.0, 9.0, None]  # None: past the last read


def test_the_c_cut_times_events_from_the_reads() -> None:
    body = b'data: {"n":1}\n\ndata: {"n":2}\n\ndata: {"n":3}\n\ndata: [DONE]\n\n'
    second_done = body.index(b"\n\n", body.index(b'{"n":2}')) + 2
    # A read ending between the two LFs of a blank line leaves its event to the next read.
    reads = [(1.0, 0), (2.0, second_done - 1), [3.5, second_done], (4.0, len(body) + 100)]
    assert _sse.cut(body, True, reads)[2] == [2.0, 3.5, 4.0]
    assert _sse.cut(body, True, reads[:2])[2] == [2.0, None, None]  # past the last read
    assert _sse.cut(body, True, [])[2] == [None, None, None]  # no reads: no times


@pytest.mark.parametrize(
    "reads",
    [
        [(1.0, 30), (2.0, 10)],  # out of order
        [(1.0, -1)],  # a negative end
        [(1.0, 5.0)],  # not an int
        [(1.0, True)],
        [(1.0, 10**30)],  # past any offset C holds
        [(1.0,)],  # not a pair
        [{"t": 1.0, "end": 5}],
    ],
)
def test_odd_reads_are_timed_alike_or_refused_alike(reads: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    body = b'data: {"n":1}\n\ndata: {"n":2}\n\n'
    results = {}
    for in_c in (True, False):
        monkeypatch.setattr(sse, "IN_C", in_c)
        try:
            cut = sse.cut(body, reads)
            results[in_c] = ("times", None if cut is None else cut.times)
        except (TypeError, ValueError) as exc:  # reads that neither can read
            results[in_c] = ("raises", type(exc))
    assert results[True] == results[False]


def test_every_recorded_body_is_cut_alike() -> None:
    paths = sorted(REAL.glob("*.sse"))  # the response bodies (the .json files are the SDKs' answers)
    assert paths
    taken = 0
    for path in paths:
        body = path.read_bytes()
        for done in (False, True):
            assert_same_cut(body, done)
        taken += sse.cut(body, None, True) is not None
    assert taken > len(paths) * 3 // 4  # nearly every recorded stream holds only JSON objects
