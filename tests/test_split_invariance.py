"""Network reads may end anywhere: inside a UTF-8 character, between CR and LF, inside
`data:`. However a body is cut, the events and the reconstruction must be the ones the
whole body gives, and those must be what was sent.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

import itertools
import json
import random
import re
from typing import Any

import streamgen
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.model import Exchange, Reconstruction, Response
from analyzer.sse import Event, SSEDecoder, decode

# Pieces of event streams, valid and not: field names with and without the colon and
# space, every line end, a BOM, multi-byte characters, and the characters that
# str.splitlines() (but not the event-stream grammar) treats as line ends.
SSE_PIECES: tuple[bytes, ...] = (
    b"data", b":", b": ", b" ", b"data:", b"data: ", b"event:", b"event: ", b"id:", b"id: ", b"retry:", b"retry: ",
    b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n", b"\r\r",
    b"x", b"{}", b"[DONE]", b"1", b"42", b"\x00", b"\t", b"\xef\xbb\xbf", b"\xff",
    "é".encode(), "你好".encode(), "😀".encode(), "\u2028".encode(), "\u2029".encode(), "\u0085".encode(),
    b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e",
)  # fmt: skip
SSE_SOUP = st.lists(st.sampled_from(SSE_PIECES), max_size=60).map(b"".join)
# Characters str.splitlines() breaks on but the event-stream grammar does not.
NOT_LINE_ENDS = "\u2028\u2029\u0085\x0b\x0c\x1c\x1d\x1e"
_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"\r\n|\r|\n")


def cuts(body: bytes) -> st.SearchStrategy[list[int]]:
    """Byte offsets into `body`, often inside multi-byte characters or next to line ends."""
    positions = st.integers(0, len(body))
    interesting = streamgen.interesting_offsets(body)
    if interesting:
        positions = st.one_of(
            positions, st.sampled_from(interesting), st.sampled_from(interesting).map(lambda n: n + 1)
        )
    return st.lists(positions, max_size=50).map(lambda found: sorted(set(found)))


def pieces(body: bytes, offsets: list[int]) -> list[bytes]:
    bounds = [0, *(n for n in offsets if 0 < n < len(body)), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


def fields(events: list[Event]) -> list[tuple[bytes, str | None, str | None, int | None, bool]]:
    """Everything about an event except its arrival time."""
    return [(e.data, e.event, e.id, e.retry, e.unterminated) for e in events]


def decode_pieces(body_pieces: list[bytes]) -> tuple[list[Event], list[str]]:
    decoder = SSEDecoder()
    events = [event for piece in body_pieces for event in decoder.decode(piece)]
    events += decoder.flush()
    return events, [text for _, text in decoder.comments]


def reconstruct(body: bytes, reads: list[tuple[float, int]] | None) -> Reconstruction:
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=body, chunks=reads)
    return Exchange(id="t#1", source="<streamgen>", format="sse-text", request=None, response=response).reconstruct()


def reference_events(body: bytes) -> tuple[list[tuple[bytes, str | None, str | None, int | None, bool]], list[str]]:
    """The spec's interpretation of a whole body, line by line, written from the spec text
    (plus chatcap's documented leniency: a last event without its blank line is kept,
    marked unterminated)."""
    if body.startswith(_BOM):
        body = body[3:]
    lines = _LINE_END.split(body)
    last = lines.pop()  # text after the last line end: a line only because the stream ended
    if last:
        lines.append(last)
    events: list[tuple[bytes, str | None, str | None, int | None, bool]] = []
    comments: list[str] = []
    data: bytes | None = None
    event_type: str | None = None
    last_id: str | None = None
    retry: int | None = None
    for line in lines:
        if line == b"":
            if data is not None:
                events.append((data[:-1], event_type, last_id, retry, False))
            data, event_type = None, None
            continue
        if line.startswith(b":"):
            comments.append(line[1:].strip().decode("utf-8", "replace"))
            continue
        name, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data = (data or b"") + value + b"\n"
        elif name == b"event":
            event_type = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\x00" not in value:
                last_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value and all(0x30 <= byte <= 0x39 for byte in value):
            retry = int(value)
    if data is not None:
        events.append((data[:-1], event_type, last_id, retry, True))
    return events, comments


# (a) the reconstruction does not depend on where reads end


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_reconstruction_is_the_same_however_the_body_is_split(seed: int, data: st.DataObject) -> None:
    stream = streamgen.generate(seed, provider_quirks=seed % 3 == 0)
    offsets = data.draw(cuts(stream.body), label="cuts")
    reads = streamgen.network_reads(stream.body, offsets, random.Random(seed))
    if data.draw(st.booleans(), label="last read missing"):
        reads = reads[:-1]  # bytes after the last recorded read are still decoded, untimed
    whole, split = reconstruct(stream.body, None), reconstruct(stream.body, reads)
    assert split.to_openai() == whole.to_openai()
    assert [chunk.payload for chunk in split.chunks] == [chunk.payload for chunk in whole.chunks]
    assert (split.done, split.truncated, split.warnings, split.comments) == (
        whole.done,
        whole.truncated,
        whole.warnings,
        whole.comments,
    )
    events_whole, _ = decode(stream.body)
    events_split, _ = decode(stream.body, reads)
    assert [e.data for e in events_split] == [e.data for e in events_whole] == stream.events


@settings(max_examples=250, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    texts=st.lists(st.text(st.characters(codec="utf-8"), min_size=1, max_size=12), min_size=1, max_size=6),
    data=st.data(),
)
def test_any_text_survives_any_split(seed: int, texts: list[str], data: st.DataObject) -> None:
    stream = streamgen.generate(seed, texts=texts)
    reads = streamgen.network_reads(stream.body, data.draw(cuts(stream.body), label="cuts"), random.Random(seed))
    rec = reconstruct(stream.body, reads)
    assert rec.to_openai() == reconstruct(stream.body, None).to_openai()
    for choice, expected in zip(rec.choices, stream.choices, strict=True):
        assert (choice.content, choice.reasoning, choice.refusal) == (
            expected.content,
            expected.reasoning,
            expected.refusal,
        )
        assert [(c.id, c.name, c.arguments) for c in choice.tool_calls] == [
            (c.id, c.name, c.arguments) for c in expected.tool_calls
        ]
        if expected.function_call is not None:
            assert choice.function_call is not None
            assert (choice.function_call.name, choice.function_call.arguments) == expected.function_call


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_event_arrival_time_is_the_read_that_completed_it(seed: int, data: st.DataObject) -> None:
    stream = streamgen.generate(seed)
    reads = streamgen.network_reads(stream.body, data.draw(cuts(stream.body), label="cuts"), random.Random(seed))
    expected: list[float | None] = []
    for end in stream.event_ends[:-1]:  # the last event is [DONE], not a chunk
        expected.append(next(t_ms for t_ms, read_end in reads if read_end >= end))
    assert [chunk.t_ms for chunk in reconstruct(stream.body, reads).chunks] == expected


# (b) the decoder fed piece by piece yields what it yields fed the whole body


@settings(max_examples=1000, deadline=None)
@given(body=SSE_SOUP, data=st.data())
def test_decoder_fed_piece_by_piece_matches_whole(body: bytes, data: st.DataObject) -> None:
    events_whole, comments_whole = decode_pieces([body])
    events_split, comments_split = decode_pieces(pieces(body, data.draw(cuts(body), label="cuts")))
    assert fields(events_split) == fields(events_whole)
    assert comments_split == comments_whole


@settings(max_examples=600, deadline=None)
@given(body=SSE_SOUP)
def test_decoder_fed_one_byte_at_a_time_matches_whole(body: bytes) -> None:
    events_whole, comments_whole = decode_pieces([body])
    events_bytewise, comments_bytewise = decode_pieces([body[n : n + 1] for n in range(len(body))])
    assert fields(events_bytewise) == fields(events_whole)
    assert comments_bytewise == comments_whole


@settings(max_examples=1000, deadline=None)
@given(body=SSE_SOUP)
def test_decoder_agrees_with_the_spec_line_by_line(body: bytes) -> None:
    events, comments = decode_pieces([body])
    assert (fields(events), comments) == reference_events(body)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_generated_stream_decodes_the_same_one_byte_at_a_time(seed: int) -> None:
    stream = streamgen.generate(seed)
    events, comments = decode_pieces([stream.body[n : n + 1] for n in range(len(stream.body))])
    assert [e.data for e in events] == stream.events
    assert comments == stream.comments


# (c) only CR LF, CR and LF end a line


@settings(max_examples=400, deadline=None)
@given(
    values=st.lists(st.text(st.sampled_from(NOT_LINE_ENDS + "ab é😀:"), max_size=20), min_size=1, max_size=5),
    line_end=st.sampled_from(("\n", "\r\n", "\r")),
    data=st.data(),
)
def test_unicode_line_breaks_inside_a_data_line_are_not_line_ends(
    values: list[str], line_end: str, data: st.DataObject
) -> None:
    body = "".join(f"data: {value}{line_end}{line_end}" for value in values).encode("utf-8")
    expected = [value.encode("utf-8") for value in values]
    whole, _ = decode(body)
    split, _ = decode_pieces(pieces(body, data.draw(cuts(body), label="cuts")))
    assert [e.data for e in whole] == [e.data for e in split] == expected


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(st.sampled_from("\u2028\u2029\u0085ab"), min_size=1, max_size=30),
    line_end=st.sampled_from(("\n", "\r\n", "\r")),
    data=st.data(),
)
def test_unicode_line_breaks_inside_json_strings_reach_the_content(
    text: str, line_end: str, data: st.DataObject
) -> None:
    # JSON allows U+2028, U+2029 and U+0085 unescaped inside strings; \x0b and \x0c it does not.
    chunk: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    first = {
        **chunk,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    body = f"data: {json.dumps(first, ensure_ascii=False)}{line_end}{line_end}data: [DONE]{line_end}{line_end}".encode()
    reads = streamgen.network_reads(body, data.draw(cuts(body), label="cuts"))
    rec = reconstruct(body, reads)
    assert rec.choices[0].content == text
    assert rec.warnings == []


# A stream cut short (the connection dropped) reconstructs as far as it got.


def _is_prefix(part: str | None, whole: str | None) -> bool:
    return part is None or (whole is not None and whole.startswith(part))


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_stream_cut_anywhere_reconstructs_a_prefix_of_every_text(seed: int, data: st.DataObject) -> None:
    stream = streamgen.generate(seed)
    end = data.draw(
        st.one_of(st.integers(0, len(stream.body)), st.sampled_from(streamgen.interesting_offsets(stream.body) or [0]))
    )
    rec = reconstruct(stream.body[:end], streamgen.network_reads(stream.body[:end], data.draw(cuts(stream.body[:end]))))
    rec.to_openai()
    assert rec.done or rec.truncated or all(choice.finish_reason for choice in rec.choices)
    assert len(rec.choices) <= len(stream.choices)
    for choice, expected in zip(rec.choices, stream.choices, strict=False):
        assert choice.index == expected.index
        assert _is_prefix(choice.content, expected.content)
        assert _is_prefix(choice.reasoning, expected.reasoning)
        assert _is_prefix(choice.refusal, expected.refusal)
        assert len(choice.tool_calls) <= len(expected.tool_calls)
        for call, truth in zip(choice.tool_calls, expected.tool_calls, strict=False):
            assert (call.id, call.name) == (truth.id, truth.name)
            assert truth.arguments.startswith(call.arguments)
