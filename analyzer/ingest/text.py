"""Byte- and text-level repairs shared by the readers: mojibake, content encodings, chunked framing."""

from __future__ import annotations

import gzip
import re
import zlib

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


def repair_mojibake(text: str) -> tuple[str, list[str]]:
    """Undo UTF-8 that was decoded with a legacy code page (Mac Roman, Windows-1252, ...).

    ftfy judges the whole text first; when only part of it is mangled, it judges line by
    line, and the code page it found is then tried on the lines too short for it to
    judge alone (a lone emoji). A repair is kept only when it is exactly reversible, so
    text that is not mojibake comes back unchanged. Returns the text and the code pages
    that were undone.
    """
    import ftfy
    from ftfy.badness import is_bad

    if text.isascii() or not _MOJIBAKE_PAIR.search(text) or not is_bad(text):
        return text, []
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


def decode_content(body: bytes, content_encoding: str | None) -> tuple[bytes, Notice | None]:
    """Undo `Content-Encoding` (gzip, deflate, br, zstd) when the body is still encoded.

    Producers disagree on whether a dump holds the body before or after decoding, so the
    bytes decide: a body that does not decode is kept as is, with a notice.
    """
    if not body or not content_encoding:
        return body, None
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
        if coding in ("identity", ""):
            continue
        try:
            body = _DECODERS[coding](body)
        except KeyError:
            return body, Notice("unknown_content_encoding", f"unknown Content-Encoding {coding!r}: body kept as is")
        except Exception:
            if coding in ("gzip", "x-gzip") and body[:2] == b"\x1f\x8b":
                return body, Notice("content_decoding_failed", f"body declared {coding} is corrupt: kept as is")
            return body, None
    return body, None


def _gunzip(body: bytes) -> bytes:
    if body[:2] != b"\x1f\x8b":
        raise ValueError("not gzip")
    return gzip.decompress(body)


def _inflate(body: bytes) -> bytes:
    try:
        return zlib.decompress(body)
    except zlib.error:
        return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send


def _unbrotli(body: bytes) -> bytes:
    import brotli  # mitmproxy depends on it; an ImportError keeps the body as is

    return brotli.decompress(body)


def _unzstd(body: bytes) -> bytes:
    if body[:4] != b"\x28\xb5\x2f\xfd":
        raise ValueError("not zstd")
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj().decompress(body)


_DECODERS = {
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
