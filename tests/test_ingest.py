"""Every input format sniffed and read: fixtures in tests/data/ingest (make_ingest_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundled import captures_as_cloned
from hypothesis import given, settings
from hypothesis import strategies as st

import analyzer
from analyzer.ingest import sniff
from analyzer.ingest.text import dechunk, decode_content, repair_mojibake

DATA = Path(__file__).resolve().parent / "data" / "ingest"
ANSWER = "Hi there — 你好!"


def only(path: Path) -> analyzer.Exchange:
    exchanges = analyzer.load(path)
    assert len(exchanges) == 1
    return exchanges[0]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("raw_http_chunked_framed.txt", "raw-http"),
        ("dump_variant_shapes.json", "json"),
        ("gzip_body.har", "json"),
        ("error_body.json", "json"),
        ("stream_one_bad_chunk.txt", "sse-text"),
        ("torn_last_line.jsonl", "chatcap-jsonl"),
    ],
)
def test_format_is_sniffed_from_the_bytes(name: str, fmt: str) -> None:
    assert sniff((DATA / name).read_bytes()) == fmt


def test_sniffing_ignores_the_file_name(tmp_path: Path) -> None:
    misleading = tmp_path / "capture.har"
    misleading.write_bytes((DATA / "raw_http_chunked_framed.txt").read_bytes())
    assert only(misleading).format == "raw-http"


def test_raw_http_with_chunked_framing_still_in_the_body() -> None:
    exchange = only(DATA / "raw_http_chunked_framed.txt")
    rec = exchange.reconstruct()
    assert exchange.request.url == "https://api.example.test/v1/chat/completions"
    assert rec.choices[0].content == ANSWER
    assert rec.done and not rec.truncated
    assert rec.usage.total_tokens == 15


def test_raw_http_with_several_exchanges() -> None:
    exchanges = analyzer.load(DATA / "raw_http_two_exchanges.txt")
    assert [x.reconstruct().choices[0].content for x in exchanges] == [ANSWER, "Hi again."]
    assert [x.reconstruct().streamed for x in exchanges] == [True, False]
    assert exchanges[1].request.json()["messages"][0]["content"] == "Again"


def test_json_dump_in_variant_shapes() -> None:
    exchange = only(DATA / "dump_variant_shapes.json")
    assert exchange.format == "json-dump"
    assert exchange.response.status == 200
    assert exchange.request.json()["model"] == "gpt-4o-mini"
    assert exchange.reconstruct().choices[0].content == ANSWER


def test_har_with_a_still_compressed_base64_body() -> None:
    exchange = only(DATA / "gzip_body.har")
    assert exchange.format == "har"
    assert exchange.started_at is not None and exchange.started_at.year == 2025
    rec = exchange.reconstruct()
    assert rec.choices[0].content == ANSWER
    assert rec.timing.source == "har"
    assert rec.timing.ttfb_ms == 420.0


def test_bare_error_body_is_a_reconstruction_with_the_error() -> None:
    rec = only(DATA / "error_body.json").reconstruct()
    assert rec.error["code"] == "rate_limit_exceeded"
    assert rec.choices == []
    assert rec.has("error_response")


def test_bare_non_streaming_completion() -> None:
    rec = only(DATA / "completion_body.json").reconstruct()
    assert not rec.streamed
    assert rec.to_openai()["choices"][0]["message"]["content"] == "Hi again."
    assert rec.usage.completion_tokens == 3


def test_parse_from_memory_takes_text_or_bytes() -> None:
    body = (DATA / "raw_http_two_exchanges.txt").read_bytes()
    assert analyzer.parse(body)[0].reconstruct().choices[0].content == ANSWER
    assert analyzer.parse(body.decode())[0].reconstruct().choices[0].content == ANSWER


def test_bare_sse_has_no_request() -> None:
    exchange = analyzer.parse(b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\ndata: [DONE]\n\n')[0]
    assert exchange.request is None
    assert exchange.reconstruct().choices[0].content == "x"


def test_directory_loads_every_file_recursively_and_names_them() -> None:
    exchanges = analyzer.load(captures_as_cloned())
    ids = [x.id for x in exchanges]
    assert "000_d638e083d5fc0320.txt#1" in ids
    assert len(ids) == len(set(ids))


def test_gzip_compressed_capture_file(tmp_path: Path) -> None:
    import gzip

    packed = tmp_path / "stream.gz"
    packed.write_bytes(gzip.compress((DATA / "raw_http_chunked_framed.txt").read_bytes()))
    assert only(packed).reconstruct().choices[0].content == ANSWER


def test_dechunk_leaves_an_unframed_body_alone() -> None:
    assert dechunk(b"data: x\n\n") is None
    assert dechunk(b"5\r\nhello\r\n0\r\n\r\n") == b"hello"
    assert dechunk(b"5;ext=1\r\nhello\r\n3\r\nabc") == b"helloabc"  # cut short: keeps what arrived


def test_content_decoding_only_when_the_bytes_are_encoded() -> None:
    import gzip
    import zlib

    assert decode_content(gzip.compress(b"abc"), "gzip") == (b"abc", None)
    assert decode_content(zlib.compress(b"abc"), "deflate") == (b"abc", None)
    assert decode_content(b"abc", "gzip") == (b"abc", None)  # already decoded by the producer
    body, notice = decode_content(b"abc", "compress")
    assert body == b"abc" and notice.code == "unknown_content_encoding"


@pytest.mark.parametrize(
    "text",
    ["naïve café — Größe ‰ ！", "你好，世界 😊", "Ã©tÃ© and été together cannot be undone losslessly", "5€ • ok"],
)
def test_text_that_is_not_mojibake_is_never_touched(text: str) -> None:
    assert repair_mojibake(text) == (text, [])


def test_mojibake_full_width_punctuation_is_not_normalised() -> None:
    original = "你好！有什么我可以帮你的吗？"
    mangled = original.encode("utf-8").decode("mac_roman")
    assert repair_mojibake(mangled) == (original, ["macroman"])


def test_mojibake_from_windows_1252() -> None:
    original = "Größe: 5 € — ok"
    mangled = original.encode("utf-8").decode("windows-1252")
    fixed, codecs = repair_mojibake(mangled)
    assert fixed == original and codecs


def test_mojibake_repair_is_reverted_when_it_breaks_content_length() -> None:
    # Legit text that happens to look mangled: Content-Length agrees with it as written.
    body = '{"model":"m","messages":[{"role":"user","content":"Ã©tÃ©"}]}'.encode()
    dump = (
        b"POST /v1/chat/completions HTTP/1.1\nHost: h\nContent-Length: " + str(len(body)).encode() + b"\n\n" + body +
        b"\n\nHTTP/1.1 200 OK\nContent-Type: application/json\n\n{\"choices\":[]}\n"
    )  # fmt: skip
    exchange = analyzer.parse(dump)[0]
    assert exchange.request.body == body
    assert not any(w.code == "mojibake_repaired" for w in exchange.warnings)


def test_a_capture_file_with_a_single_line_is_a_capture(tmp_path: Path) -> None:
    line = (DATA / "torn_last_line.jsonl").read_text(encoding="utf-8").splitlines()[0]
    single = tmp_path / "one.jsonl"
    single.write_text(line + "\n", encoding="utf-8")
    assert only(single).format == "chatcap-jsonl"


def test_har_keeps_llm_calls_and_says_how_many_entries_it_left_out() -> None:
    exchanges = analyzer.load(DATA / "browser_mixed.har")
    assert [x.request.url for x in exchanges] == [
        "https://api.example.test/v1/chat/completions",  # by its path
        "https://chat.example.test/api/conversation",  # an event stream carrying choices
    ]
    assert [x.id for x in exchanges] == ["browser_mixed.har#1", "browser_mixed.har#2"]
    assert [p.reason for p in exchanges.problems] == ["4 of 6 entries are not LLM API calls: left out"]
    assert all(x.reconstruct().choices[0].content == ANSWER for x in exchanges)


def test_har_post_data_in_base64_is_decoded_and_its_messages_read() -> None:
    """HAR's `postData.encoding: base64` (a body that is not UTF-8, as the addon stores one)."""
    import base64
    import json

    body = b'{"model": "m", "messages": [{"role": "user", "content": "caf\xe9 \xff"}]}'
    entry = {
        "request": {"method": "POST", "url": "https://h/v1/chat/completions", "headers": [],
                    "postData": {"mimeType": "application/json", "text": base64.b64encode(body).decode(),
                                 "encoding": "base64"}},
        "response": {"status": 200, "headers": [], "content": {"text": '{"choices": []}'}},
    }  # fmt: skip
    [exchange] = analyzer.parse(json.dumps(entry))
    assert exchange.request is not None and exchange.request.body == body
    from analyzer.protocols import request_messages

    assert [m["role"] for m in request_messages(exchange)] == ["user"]


def test_raw_http_whose_response_body_is_still_compressed_loads() -> None:
    """Copied from a debugger before the body was decoded: gzip bytes after the headers are a
    body, not a sign the file is no capture (the same bytes load from HAR)."""
    import gzip

    answer = "Hello from a gzipped body"
    body = gzip.compress(('{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":'
                          '{"role":"assistant","content":"' + answer + '"},"finish_reason":"stop"}]}').encode())  # fmt: skip
    raw = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\n"
           b"Content-Length: 2\r\n\r\n{}\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
           b"Content-Encoding: gzip\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
    assert b"\0" in raw
    [exchange] = analyzer.parse(raw, "compressed.txt")
    assert exchange.format == "raw-http" and exchange.reconstruct().choices[0].content == answer


def test_raw_http_cut_inside_the_next_request_line_says_so() -> None:
    """A paste of two exchanges cut after the first: the start of the second request line is
    not part of the first response's body, and the loss is a warning (found by make fuzz)."""
    data = (DATA / "raw_http_two_exchanges.txt").read_bytes()
    second = data.index(b"POST", 10)
    for cut in (4, 6, 20, 30, 31, 33):  # "POST", "POST /", ..., "… HTTP", "… HTTP/", "… HTTP/1."
        [exchange] = analyzer.parse(data[: second + cut], "cut.txt")
        assert [w.code for w in exchange.warnings] == ["cut_off"], cut
        assert exchange.response is not None and exchange.response.body.endswith(b"data: [DONE]\n\n")
    assert len(analyzer.parse(data, "whole.txt")) == 2


def test_stream_yields_what_load_returns_as_it_reads_and_the_same_problems(tmp_path: Path) -> None:
    """`analyzer.stream` is `load` one exchange at a time: the same exchanges, ids and problems,
    each file read only when the iteration reaches it."""
    for name in ("torn_last_line.jsonl", "browser_mixed.har", "raw_http_two_exchanges.txt"):
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    (tmp_path / "empty.txt").write_bytes(b"")
    paths = [tmp_path, tmp_path / "missing.har"]
    found = analyzer.stream(paths, progress=False)
    assert [str(p) for p in found.problems] == [f"{tmp_path / 'missing.har'}: no such file or directory"]
    first = next(found)
    assert first.id == "browser_mixed.har#1"
    assert not any("empty.txt" in str(p) or "torn" in str(p) for p in found.problems)  # not read yet
    streamed = [first, *found]
    loaded = analyzer.load(paths, progress=False)
    assert [(x.id, x.raw) for x in streamed] == [(x.id, x.raw) for x in loaded]
    assert [str(p) for p in found.problems] == [str(p) for p in loaded.problems] and len(loaded.problems) >= 3


def test_stream_of_a_single_file_raises_what_stops_it_and_a_missing_path_at_once(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    found = analyzer.stream(tmp_path / "empty.txt")
    with pytest.raises(analyzer.LoadError, match="empty input"):
        next(found)
    with pytest.raises(analyzer.LoadError, match="no such file or directory"):
        analyzer.stream(tmp_path / "missing.jsonl")


_CODE_PAGES = ("mac_roman", "windows-1252", "latin-1")


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=60),
    prose=st.sampled_from(["", "L’été dernier — c’était très agréable… ", "Größe: 5 € — ok, naïve café "]),
    code_page=st.sampled_from(_CODE_PAGES),
)
def test_text_the_quick_mojibake_gate_turns_away_is_text_ftfy_would_not_repair(
    text: str, prose: str, code_page: str
) -> None:
    """The gate looks for ftfy's badness only beside the code-page pairs mojibake leaves, no
    longer in the whole text: whatever it turns away that the whole-text check let through,
    the full repair leaves unchanged. (Text with no such pair was never repaired: mojibake of
    mojibake through a C1 control, like '\\x9bß', is a known gap of the pair check.)"""
    from ftfy.badness import is_bad

    from analyzer.ingest.text import _MOJIBAKE_PAIR, _mangled_near_a_pair, _repair

    try:
        mangled = text.encode("utf-8").decode(code_page)
    except UnicodeDecodeError:
        mangled = text
    for candidate in (text, mangled, prose + mangled, mangled + prose, prose * 3 + text):
        whole_text_check = bool(_MOJIBAKE_PAIR.search(candidate)) and is_bad(candidate)
        if whole_text_check and not _mangled_near_a_pair(candidate):
            assert _repair(candidate) == (candidate, [])
