"""The SSE decoder against the WHATWG event-stream rules, and its lenient mode."""

from __future__ import annotations

import pytest

from analyzer.sse import SSEDecoder, decode, lenient_events


def datas(body: bytes) -> list[bytes]:
    events, _ = decode(body)
    return [event.data for event in events]


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"])
def test_every_spec_line_end_ends_a_line(line_end: bytes) -> None:
    body = line_end.join([b"data: one", b"", b"data: two", b"", b""])
    assert datas(body) == [b"one", b"two"]


def test_mixed_line_ends_in_one_stream() -> None:
    assert datas(b"data: a\r\n\ndata: b\r\rdata: c\n\r\n") == [b"a", b"b", b"c"]


def test_data_with_and_without_the_space() -> None:
    # Only one leading space is removed: the second is content.
    assert datas(b"data:x\n\ndata: y\n\ndata:  z\n\n") == [b"x", b"y", b" z"]


def test_multi_line_data_joined_with_newline() -> None:
    assert datas(b'data: {"a":\ndata: 1}\n\n') == [b'{"a":\n1}']


def test_comments_are_not_events_but_are_kept() -> None:
    events, decoder = decode(b": keep-alive\n\n: OPENROUTER PROCESSING\n\ndata: x\n\n")
    assert [e.data for e in events] == [b"x"]
    assert [text for _, text in decoder.comments] == ["keep-alive", "OPENROUTER PROCESSING"]


def test_event_id_and_retry_fields() -> None:
    events, _ = decode(b"event: message_start\nid: 7\nretry: 1500\ndata: {}\n\ndata: next\n\n")
    assert (events[0].event, events[0].id, events[0].retry) == ("message_start", "7", 1500)
    # The event type resets after dispatch; the last event id persists.
    assert (events[1].event, events[1].id) == (None, "7")


def test_retry_that_is_not_digits_is_ignored() -> None:
    events, _ = decode(b"retry: soon\ndata: x\n\n")
    assert events[0].retry is None


def test_id_containing_nul_is_ignored() -> None:
    events, _ = decode(b"id: a\0b\ndata: x\n\n")
    assert events[0].id is None


def test_unknown_fields_and_blank_events_are_ignored() -> None:
    assert datas(b"foo: bar\n\n\n\nevent: only\n\ndata: x\n\n") == [b"x"]


def test_empty_data_line_dispatches_an_empty_event() -> None:
    assert datas(b"data:\n\ndata\n\n") == [b"", b""]


def test_leading_bom_is_stripped_once() -> None:
    assert datas(b"\xef\xbb\xbfdata: x\n\n") == [b"x"]


@pytest.mark.parametrize(
    "separator",
    ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"],
    ids=["LS", "PS", "NEL", "VT", "FF", "FS", "GS", "RS"],
)
def test_unicode_separators_are_not_line_ends(separator: str) -> None:
    payload = f'{{"content":"a{separator}b"}}'.encode()
    assert datas(b"data: " + payload + b"\n\n") == [payload]


def test_utf8_character_split_across_reads() -> None:
    body = "data: 你好😊\n\n".encode()
    decoder = SSEDecoder()
    events = []
    for i in range(len(body)):
        events += decoder.decode(body[i : i + 1])
    events += decoder.flush()
    assert [e.data.decode() for e in events] == ["你好😊"]


def test_crlf_split_between_reads_is_one_line_end() -> None:
    decoder = SSEDecoder()
    events = decoder.decode(b"data: a\r") + decoder.decode(b"\n\r") + decoder.decode(b"\ndata: b\r\n\r\n")
    assert [e.data for e in events] == [b"a", b"b"]


def test_arrival_time_is_the_read_that_completed_the_event() -> None:
    body = b"data: a\n\ndata: b\n\n"
    # Read 1 ends inside event b; read 2 completes it.
    events, _ = decode(body, chunks=[(10.0, 12), (25.5, len(body))])
    assert [(e.data, e.t_ms) for e in events] == [(b"a", 10.0), (b"b", 25.5)]


def test_unterminated_last_event_is_kept_and_marked() -> None:
    events, _ = decode(b"data: a\n\ndata: [DONE]")
    assert [(e.data, e.unterminated) for e in events] == [(b"a", False), (b"[DONE]", True)]


def test_lenient_rejoins_pretty_printed_payloads() -> None:
    body = b'data: {\n"a": 1,\n"b": [\n2\n]\n}\ndata: {\n"a": 2\n}\ndata: [DONE\n]'
    events = lenient_events(body)
    assert [e.data for e in events] == [b'{\n"a": 1,\n"b": [\n2\n]\n}', b'{\n"a": 2\n}', b"[DONE]"]


def test_lenient_keeps_event_names() -> None:
    events = lenient_events(b'event: ping\ndata: {\n}\n\nevent: delta\ndata: {\n"x": 1}\n')
    assert [(e.event, e.data) for e in events] == [("ping", b"{\n}"), ("delta", b'{\n"x": 1}')]


def test_blank_line_alone_in_a_read_after_a_cr_line_end_ends_the_event() -> None:
    # Found by the split-invariance property: "data: a\r" in one read, "\n\n" in the next
    # (the first LF is the CR's partner, the second the blank line).
    decoder = SSEDecoder()
    events = decoder.decode(b"data: a\r") + decoder.decode(b"\n\n") + decoder.decode(b"data: b\n\n")
    assert [e.data for e in events] == [b"a", b"b"]
