"""Byte- and text-level repairs shared by the readers: mojibake, content encodings, chunked framing."""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable

from analyzer.model import Notice

# ftfy with only its encoding fixes: never width, quote, ligature or line-break
# normalisation (which would turn a full-width `！` into `!` or rewrite CR LF).
_FTFY_CONFIG = None


def _ftfy_config():
    global _FTFY_CONFIG
    if _FTFY_CONFIG is None:
        import ftfy
        import ftfy.bad_codecs

        _FTFY_CONFIG = ftfy.TextFixerConfig(
            unescape_html=False,
            remove_terminal_escapes=False,
            fix_encoding=True,
            restore_byte_a0=False,
            replace_lossy_sequences=False,
            decode_inconsistent_utf8=False,
            fix_c1_controls=False,
            fix_latin_ligatures=False,
            fix_character_width=False,
            uncurl_quotes=False,
            fix_line_breaks=False,
            fix_surrogates=False,
            remove_control_chars=False,
            normalization=None,
            explain=True,
        )
    return _FTFY_CONFIG


def _undo(fixed: str, steps: list[tuple[str, str]]) -> str | None:
    """Apply ftfy's steps backwards; None when a step has no exact inverse."""
    value: str | bytes = fixed
    for op, codec in reversed(steps):
        try:
            if op == "decode" and isinstance(value, str):
                value = value.encode(codec)
            elif op == "encode" and isinstance(value, bytes):
                value = value.decode(codec)
            else:
                return None
        except (UnicodeError, LookupError):
            return None
    return value if isinstance(value, str) else None


_LINES = re.compile(r"[^\n]*\n|[^\n]+")


def _pair_pattern() -> re.Pattern[str]:
    """UTF-8 misread through a legacy code page leaves a lead-byte character directly
    followed by a continuation-byte character of that code page. Text without such a
    pair cannot be this kind of mojibake, and this check is far cheaper than ftfy's.
    (One class pair over the union of the code pages: a few more false alarms, which
    ftfy then dismisses, and none missed.)"""

    def chars(low: int, high: int) -> str:
        found = {
            bytes([b]).decode(c, "ignore") for c in ("cp1252", "latin-1", "mac_roman") for b in range(low, high + 1)
        }
        return re.escape("".join(sorted(found - {""})))

    return re.compile(f"[{chars(0xC2, 0xF4)}][{chars(0x80, 0xBF)}]")


_MOJIBAKE_PAIR = _pair_pattern()


# ftfy's badness patterns span two or three characters: mojibake shows one overlapping the
# pair of code-page characters its bytes left.
_NEAR = 3


def _mangled_near_a_pair(text: str) -> bool:
    """ftfy's badness check, run only around the lead/continuation pairs that mojibake must
    have: ordinary accented text (l’été, "—…") has such pairs but no badness beside them,
    and is then cleared without ftfy reading all of it (it reads 5-14 MB/s). Prose repeats
    its words, so each distinct stretch is judged once."""
    from ftfy.badness import BADNESS_RE

    judged: set[str] = set()
    for pair in _MOJIBAKE_PAIR.finditer(text):
        near = text[max(pair.start() - _NEAR, 0) : pair.end() + _NEAR]
        if near not in judged:
            if BADNESS_RE.search(near):
                return True
            judged.add(near)
    return False


def repair_mojibake(text: str) -> tuple[str, list[str]]:
    """Undo UTF-8 that was decoded with a legacy code page (Mac Roman, Windows-1252, ...).

    ftfy judges the whole text first; when only part of it is mangled, it judges line by
    line, and the code page it found is then tried on the lines too short for it to
    judge alone (a lone emoji). A repair is kept only when it is exactly reversible, so
    text that is not mojibake comes back unchanged. Returns the text and the code pages
    that were undone.
    """
    if text.isascii() or not _mangled_near_a_pair(text):
        return text, []
    return _repair(text)


def _repair(text: str) -> tuple[str, list[str]]:
    import ftfy
    from ftfy.badness import is_bad

    config = _ftfy_config()
    if len(text) <= config.max_decode_length:
        fixed, steps = ftfy.fix_and_explain(text, config=config)
        if _is_repair(text, fixed, steps):
            return fixed, _codecs(steps)
    lines = _LINES.findall(text)
    codecs: list[str] = []
    fixed_lines: dict[int, str] = {}
    for n, line in enumerate(lines):
        if line.isascii() or not is_bad(line):
            continue
        fixed, steps = ftfy.fix_and_explain(line, config=config)
        if _is_repair(line, fixed, steps):
            fixed_lines[n] = fixed
            codecs.extend(c for c in _codecs(steps) if c not in codecs)
    for n, line in enumerate(lines):
        if n in fixed_lines or line.isascii():
            continue
        for codec in codecs:
            try:
                fixed_lines[n] = line.encode(codec).decode("utf-8")
                break
            except UnicodeError:
                continue
    return "".join(fixed_lines.get(n, line) for n, line in enumerate(lines)), codecs


def _is_repair(text: str, fixed: str, steps: list[tuple[str, str]]) -> bool:
    """Mojibake is UTF-8 read through a legacy code page: the fix must end by decoding
    UTF-8 (a lone C1 control "fixed" into Windows-1252 punctuation is not mojibake) and
    must undo exactly."""
    return (
        fixed != text
        and bool(steps)
        and steps[-1][0] == "decode"
        and steps[-1][1].startswith("utf-8")
        and _undo(fixed, steps) == text
    )


def _codecs(steps: list[tuple[str, str]]) -> list[str]:
    return [codec for op, codec in steps if op == "encode"]


def mojibake_notice(codecs: list[str]) -> Notice:
    names = {"macroman": "Mac Roman", "sloppy-windows-1252": "Windows-1252", "latin-1": "Latin-1"}
    read_as = ", ".join(names.get(c, c) for c in codecs)
    return Notice("mojibake_repaired", f"mojibake repaired: UTF-8 text had been read as {read_as}")


# -- UTF-8 bodies a producer stored decoded from a legacy code page -------------------------
#
# An event stream is always UTF-8 (the SSE spec) and so is JSON (RFC 8259), but a producer that
# meets a body served without `charset` may decode it by another rule and store that text:
# Chromium's HAR (DevTools, Playwright's record_har) by windows-1252 as the WHATWG Encoding
# Standard defines it (its five undefined bytes 81 8D 8F 90 9D as U+0081 ...), mitmproxy's
# `hardump` by Latin-1. Either is undone exactly: the text encoded back to the bytes it came
# from, kept only when those bytes are valid UTF-8 and decode back to the same text.

_TO_WINDOWS_1252 = {
    ord(bytes([byte]).decode("cp1252")): byte
    for byte in range(0x80, 0xA0)
    if byte not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}
_FROM_WINDOWS_1252 = {byte: char for char, byte in _TO_WINDOWS_1252.items()}
# The characters WHATWG's windows-1252 gives its five undefined bytes, which Python's cp1252 lacks.
_WHATWG_ONLY = "\x81\x8d\x8f\x90\x9d"


def undo_legacy_decode(text: str) -> tuple[bytes, str] | None:
    """The UTF-8 bytes behind `text` when a producer decoded them as Latin-1 or windows-1252
    (WHATWG), with that code page's name; None when `text` is not such a decode."""
    if text.isascii():
        return None
    for name, table in (("Latin-1", None), ("windows-1252", _TO_WINDOWS_1252)):
        if table and not _could_be_windows_1252(text):
            continue
        try:
            raw = (text.translate(table) if table else text).encode("latin-1")
            raw.decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        back = raw.decode("latin-1")
        if table and back.translate(_FROM_WINDOWS_1252) != text:
            continue  # a C1 character windows-1252 would have shown as another one: not its decode
        return raw, name
    return None


def _could_be_windows_1252(text: str) -> bool:
    """False when `text` has a character no windows-1252 byte decodes to, found at C speed by
    Python's cp1252 codec; the table lookup above takes ~50 ns a character (1.6 ms for a 30 kB
    request of CJK prose, which cannot be such a decode). A pure filter: True sends the text to
    the exact check."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError as exc:
        return text[exc.start] in _WHATWG_ONLY
    return True


# The most bytes one decoded body may take: the addon's default `chatcap_max_body`. A body that
# decodes to more (a decompression bomb: a few kB of brotli can ask for gigabytes) keeps this much.
BODY_CAP = 64 * 1024 * 1024
_OUTPUT_STEP = 1 << 20  # output asked of a zlib decoder at a time
_INPUT_STEP = 1 << 16  # input given to a zlib decoder at a time
# Input given to decoders that cannot cap their output (brotli 1.1, zstandard's decompressobj) at a
# time: few enough bytes that one step cannot write much. A brotli meta-block holds at most 16 MiB
# and takes about ten bytes at the least; a zstd block holds 128 KiB and takes four.
_BROTLI_STEP = 16
_ZSTD_STEP = 256


class _Decoded:
    """What a decoder made of a body: the bytes (at most the limit), and how it ended."""

    __slots__ = ("capped", "cut_short", "data", "rest")

    def __init__(self, data: bytes, *, capped: bool = False, cut_short: bool = False, rest: bool = False) -> None:
        self.data = data
        self.capped = capped  # the body decodes to more than the limit: `data` is its first `limit` bytes
        self.cut_short = cut_short  # the stream ends before its end marker: `data` is what arrived
        self.rest = rest  # bytes follow the stream that are not another stream of the same coding


class _Sink:
    """Decoded output, gathered up to `limit` bytes (a BytesIO: its value is taken without a copy)."""

    def __init__(self, limit: int) -> None:
        self.buffer = io.BytesIO()
        self.room = limit

    def add(self, data: bytes) -> bool:
        """Keep what fits; False once more arrived than fits."""
        if len(data) > self.room:
            self.buffer.write(memoryview(data)[: self.room])
            self.room = 0
            return False
        self.buffer.write(data)
        self.room -= len(data)
        return True

    def result(self, **how: bool) -> _Decoded:
        return _Decoded(self.buffer.getvalue(), **how)


def decode_content(body: bytes, content_encoding: str | None, limit: int = BODY_CAP) -> tuple[bytes, Notice | None]:
    """Undo `Content-Encoding` (gzip, deflate, br, zstd) when the body is still encoded.

    Producers disagree on whether a dump holds the body before or after decoding, so the
    bytes decide: a body that does not decode is kept as is, with a notice. Each declared
    coding is undone once (a gzip stream inside the gzip stream is not unpacked again), a
    stream cut short keeps what arrived, and no body decodes to more than `limit` bytes.
    """
    if not body or not content_encoding:
        return body, None
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    notice: Notice | None = None
    for coding in reversed(codings):
        if coding == "identity":
            continue
        decoder = _DECODERS.get(coding)
        if decoder is None:
            return body, Notice("unknown_content_encoding", f"unknown Content-Encoding {coding!r}: body kept as is")
        try:
            decoded = decoder(body, limit)
        except Exception:  # each library has its own error (zlib.error, brotli.error, ZstdError, ...)
            if coding in ("gzip", "x-gzip") and body[:2] == b"\x1f\x8b":
                return body, Notice("content_decoding_failed", f"body declared {coding} is corrupt: kept as is")
            return body, None
        body = decoded.data
        if decoded.capped:
            return body, Notice(
                "body_capped",
                f"body declared {coding} decodes to more than {limit:,} bytes (a decompression bomb?): "
                f"kept its first {limit:,} bytes",
            )
        if decoded.cut_short:
            notice = Notice(
                "content_cut_short", f"body declared {coding} is cut short: kept the {len(body):,} bytes it decodes to"
            )
        elif decoded.rest:
            notice = Notice("content_trailing_bytes", f"body declared {coding} has bytes after its end: left out")
    if body[:2] == b"\x1f\x8b" and notice is None and any(c in ("gzip", "x-gzip") for c in codings):
        notice = Notice("nested_compression", "body declared gzip holds another gzip stream: not unpacked again")
    return body, notice


def _zlib(body: bytes, limit: int, wbits: int, *, members: bool) -> _Decoded:
    """A zlib, raw deflate or gzip stream (`members`: gzip's concatenated members too), decoded at
    most `limit` bytes far, the input fed and the output taken a step at a time."""
    sink = _Sink(limit)
    decoder = zlib.decompressobj(wbits)
    view = memoryview(body)
    pos = 0
    while True:
        if decoder.unconsumed_tail:
            piece = decoder.unconsumed_tail
        elif pos < len(body):
            piece, pos = view[pos : pos + _INPUT_STEP], pos + _INPUT_STEP
        else:
            break
        if not sink.add(decoder.decompress(piece, min(_OUTPUT_STEP, sink.room + 1))):
            return sink.result(capped=True)
        if decoder.eof:
            pos = min(pos, len(body)) - len(decoder.unused_data)  # where this stream ended
            if members and view[pos : pos + 2] == b"\x1f\x8b":
                decoder = zlib.decompressobj(wbits)
                continue
            return sink.result(rest=bool(bytes(view[pos:]).strip(b"\0")))
    if not sink.add(decoder.flush()):
        return sink.result(capped=True)
    return sink.result(cut_short=True)


def _gunzip(body: bytes, limit: int) -> _Decoded:
    if body[:2] != b"\x1f\x8b":
        raise ValueError("not gzip")
    return _zlib(body, limit, 16 + zlib.MAX_WBITS, members=True)


def _inflate(body: bytes, limit: int) -> _Decoded:
    try:
        return _zlib(body, limit, zlib.MAX_WBITS, members=False)
    except zlib.error:
        return _zlib(body, limit, -zlib.MAX_WBITS, members=False)  # raw deflate, as some servers send


def _unbrotli(body: bytes, limit: int) -> _Decoded:
    import brotli  # mitmproxy depends on it; an ImportError keeps the body as is

    # brotli 1.1 (the newest mitmproxy 11 takes) cannot cap what one call writes: feed it a few bytes at a time.
    sink = _Sink(limit)
    decoder = brotli.Decompressor()
    view = memoryview(body)
    for pos in range(0, len(body), _BROTLI_STEP):
        if not sink.add(decoder.process(view[pos : pos + _BROTLI_STEP])):
            return sink.result(capped=True)
        if decoder.is_finished():
            return sink.result(rest=pos + _BROTLI_STEP < len(body))
    return sink.result(cut_short=not decoder.is_finished())


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _unzstd(body: bytes, limit: int) -> _Decoded:
    if body[:4] != _ZSTD_MAGIC:
        raise ValueError("not zstd")
    import zstandard

    # A frame may ask for a window of up to 2 GiB; one past the body cap is refused (kept as is).
    context = zstandard.ZstdDecompressor(max_window_size=BODY_CAP)
    sink = _Sink(limit)
    decoder = context.decompressobj()
    view = memoryview(body)
    pos = 0
    while pos < len(view):
        piece, pos = view[pos : pos + _ZSTD_STEP], pos + _ZSTD_STEP
        if not sink.add(decoder.decompress(piece)):
            return sink.result(capped=True)
        if decoder.eof:
            pos = min(pos, len(view)) - len(decoder.unused_data)  # where this frame ended
            if view[pos : pos + 4] != _ZSTD_MAGIC:
                return sink.result(rest=pos < len(view))
            decoder = context.decompressobj()
    return sink.result(cut_short=not decoder.eof)


_DECODERS: dict[str, Callable[[bytes, int], _Decoded]] = {
    "gzip": _gunzip,
    "x-gzip": _gunzip,
    "deflate": _inflate,
    "br": _unbrotli,
    "zstd": _unzstd,
}

_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")


def dechunk(body: bytes) -> bytes | None:
    """Remove `Transfer-Encoding: chunked` framing; None when the body is not framed.

    A dump may hold the body framed or already de-chunked; only a body that parses as
    framing from its first byte is treated as framed. A body cut short mid-chunk keeps
    what arrived.
    """
    pos = 0
    out: list[bytes] = []
    while pos < len(body):
        match = _CHUNK_SIZE.match(body, pos)
        if match is None:
            return None if pos == 0 else b"".join(out) + body[pos:]
        size = int(match.group(1), 16)
        start = match.end()
        if size == 0:
            return b"".join(out)
        out.append(body[start : start + size])
        pos = start + size
        if body[pos : pos + 2] == b"\r\n":
            pos += 2
        elif body[pos : pos + 1] == b"\n":
            pos += 1
        elif pos < len(body):
            return None if len(out) == 1 else b"".join(out) + body[pos:]
    return b"".join(out)
