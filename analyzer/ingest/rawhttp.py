"""Raw HTTP/1.x text as people paste it: request line, headers, body, then anything
(a separator such as `返回` / "response"), then the status line, headers and body.
Several exchanges may follow one another. Line ends may be CR LF or LF.

RFC 9112 (HTTP/1.1 message syntax): https://www.rfc-editor.org/rfc/rfc9112
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from analyzer.ingest.pairs import checked_url, status_code
from analyzer.ingest.text import dechunk, decode_content
from analyzer.model import Notice, Request, Response

METHODS = rb"GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS"
REQUEST_LINE = re.compile(rb"^(" + METHODS + rb") (\S+) (HTTP/\d(?:\.\d)?)\r?$", re.M)
STATUS_LINE = re.compile(rb"^(HTTP/\d(?:\.\d)?) (\d{3})(?:[ \t]+([^\r\n]*))?\r?$", re.M)
_HEADERS_END = re.compile(rb"\r?\n\r?\n")
# The start of a request line with nothing after it: a paste cut off inside the next exchange.
_CUT_REQUEST = re.compile(rb"(?:\A|\n)(?:" + METHODS + rb")(?: \S*){0,2}\r?\n?\Z")
_HEADER = re.compile(rb"^([^:\s][^:]*):[ \t]*(.*?)[ \t]*\r?$")


def looks_like_http(data: bytes) -> bool:
    return bool(REQUEST_LINE.match(data) or STATUS_LINE.match(data))


@dataclass(slots=True)
class RawExchange:
    request: Request | None
    response: Response | None
    offset: int
    # False when a declared Content-Length disagrees with the body found.
    length_ok: bool
    warnings: list[Notice]


_SPACE = re.compile(rb"\s*")


class _Next:
    """Where a pattern next matches in `data` at or after a position, remembered. The reader asks
    from positions that only grow, so each byte is searched about once: a search that ran to the
    end for every exchange made 20,000 exchanges take half a minute."""

    def __init__(self, pattern: re.Pattern[bytes], data: bytes) -> None:
        self.pattern = pattern
        self.data = data
        self.origin = -1
        self.match: re.Match[bytes] | None = None

    def search(self, pos: int) -> re.Match[bytes] | None:
        # The first match at or after `origin` is the first at or after `pos` too, when it starts
        # there or later (or there is none): `^` and the rest look only at the bytes they match.
        if not (0 <= self.origin <= pos and (self.match is None or self.match.start() >= pos)):
            self.origin = pos
            self.match = self.pattern.search(self.data, pos)
        return self.match


def _head(data: bytes, start: int, ends: _Next) -> tuple[list[tuple[str, str]], int]:
    """Header lines from `start` to the blank line; returns them and where the body starts."""
    end = ends.search(start)
    block = data[start : end.start() if end else len(data)]
    headers = []
    for line in block.split(b"\n"):
        match = _HEADER.match(line)
        if match:
            headers.append((match.group(1).decode("latin-1"), match.group(2).decode("utf-8", "replace")))
    return headers, end.end() if end else len(data)


def read(data: bytes) -> list[RawExchange]:
    """Every request/response pair in `data`, in order (in time linear in its length)."""
    out: list[RawExchange] = []
    header_ends = _Next(_HEADERS_END, data)
    status_lines = _Next(STATUS_LINE, data)
    request_lines = _Next(REQUEST_LINE, data)
    pos = _SPACE.match(data).end()
    while pos < len(data):
        req_match = REQUEST_LINE.match(data, pos)
        request = None
        length_ok = True
        warnings: list[Notice] = []
        start = pos
        if req_match:
            headers, body_start = _head(data, req_match.end(), header_ends)
            request = Request(
                method=req_match.group(1).decode(),
                url=req_match.group(2).decode("utf-8", "replace"),
                http_version=req_match.group(3).decode(),
                headers=headers,
            )
            status = status_lines.search(body_start)
            body_end = status.start() if status else len(data)
            request.body, gap, length_ok = _request_body(request, data[body_start:body_end])
            if gap:
                warnings.append(
                    Notice(
                        "separator_skipped",
                        f"skipped {gap[:40].decode('utf-8', 'replace')!r} between request and response",
                    )
                )
            _fill_url(request)
            request.url = checked_url(request.url, warnings, "the request target")
            pos = body_end
        status = STATUS_LINE.match(data, pos)
        response = None
        if status:
            headers, body_start = _head(data, status.end(), header_ends)
            following = request_lines.search(body_start)
            body_end = following.start() if following else len(data)
            if following is None and (cut := _CUT_REQUEST.search(data, body_start)):
                body_end = cut.start() + (data[cut.start() : cut.start() + 1] == b"\n")
                line = data[body_end:].strip().decode("utf-8", "replace")
                warnings.append(
                    Notice("cut_off", f"the text ends with the start of another request, cut off: {line!r}")
                )
            response = Response(
                status=status_code(int(status.group(2)), warnings, "the status line's code"),
                reason=(status.group(3) or b"").decode("utf-8", "replace") or None,
                http_version=status.group(1).decode(),
                headers=headers,
                body=data[body_start:body_end],
            )
            _undo_framing(response, warnings)
            pos = body_end
        elif request is None:
            break
        out.append(RawExchange(request, response, start, length_ok, warnings))
        if pos == start:
            break
        pos = _SPACE.match(data, pos).end()
    return out


def _request_body(request: Request, between: bytes) -> tuple[bytes, bytes, bool]:
    """Split what lies between the request head and the status line into body and separator.

    Content-Length decides when it fits (the body then ends at a line end); otherwise a
    trailing line that stops the rest parsing as JSON is the separator.
    Returns body, separator, and whether a declared length was honoured.
    """
    declared = request.header("content-length")
    if declared and declared.isascii() and declared.isdigit():  # "²" is a digit to isdigit, not to int
        length = int(declared)
        body, rest = between[:length], between[length:]
        if len(body) == length and rest[:1] in (b"", b"\r", b"\n"):
            return body, rest.strip(), True
    stripped = between.strip()
    head, _, last = stripped.rpartition(b"\n")
    if head and not _is_json(stripped) and _is_json(head):
        return head.rstrip(b"\r"), last.strip(), not declared
    return stripped, b"", not declared


def _is_json(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


def _fill_url(request: Request) -> None:
    """Make an absolute URL from the request target and Host (the scheme is not in the dump: https)."""
    if request.url and request.url.startswith("/"):
        host = request.header("host") or request.header(":authority")
        if host:
            request.url = f"https://{host}{request.url}"


def _undo_framing(response: Response, warnings: list[Notice]) -> None:
    te = (response.header("transfer-encoding") or "").lower()
    if "chunked" in te:
        unframed = dechunk(response.body)
        if unframed is not None:
            response.body = unframed
    body, notice = decode_content(response.body, response.header("content-encoding"))
    response.body = body
    if notice:
        warnings.append(notice)
