"""mitmproxy flow files (`mitmdump -w`, the console's save): read with mitmproxy's own
`FlowReader`, one flow at a time, when mitmproxy is installed (`chatcap[capture]`).

Timing comes from the flow's timestamps (sub-ms clock, but one figure per phase: no
per-read times). A flow recorded while mitmproxy streamed the response (`stream_large_bodies`,
or an addon's `stream`) has no body: that is said in a warning, never read as an empty answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urlsplit

from analyzer.errors import LoadError
from analyzer.ingest.pairs import checked_url, status_code
from analyzer.ingest.text import decode_content
from analyzer.llmcalls import is_chat_stream, is_llm_request
from analyzer.model import Exchange, Notice, Request, Response

# A tnetstring: `<length>:<payload><type>`; a flow's state is a dict, type `}`.
_TNETSTRING = re.compile(rb"(\d{1,12}):")
_FIRST_KEY = re.compile(rb"(\d{1,2}):([a-z_]{1,40});")
NEEDS_MITMPROXY = (
    "a mitmproxy flow file: reading it needs mitmproxy (pip install 'chatcap[capture]', or make demo/test)"
)


def looks_like_flows(head: bytes) -> bool:
    """Whether `head` starts a mitmproxy flow file (a tnetstring dict)."""
    match = _TNETSTRING.match(head)
    if not match:
        return False
    end = match.end() + int(match.group(1))
    if end < len(head):
        return head[end : end + 1] == b"}"
    # A flow larger than the head: its dict opens with a key (`9:websocket;`, `2:id;`) and
    # names `type` and `version` somewhere, often after a body longer than the head.
    key = _FIRST_KEY.match(head, match.end())
    if key is not None and int(key.group(1)) == len(key.group(2)):
        return True
    return b"4:type;" in head or b"7:version;" in head


def _headers(headers: Any) -> list[tuple[str, str]]:
    return [(str(name), str(value)) for name, value in headers.items(multi=True)]


def _ms(later: float | None, earlier: float | None) -> float:
    if not isinstance(later, (int, float)) or not isinstance(earlier, (int, float)):
        return -1.0
    ms = (later - earlier) * 1000
    return round(max(ms, 0.0), 3) if math.isfinite(ms) else -1.0


def _started(timestamp: Any) -> datetime | None:
    """A flow's start, when its timestamp is a time a datetime can hold."""
    if not isinstance(timestamp, (int, float)) or not timestamp:
        return None
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _exchange(flow: Any, *, id: str, source: str, position: str) -> Exchange:
    from mitmproxy.io import tnetstring

    warnings: list[Notice] = []
    req = flow.request
    if req.raw_content is None:
        warnings.append(
            Notice(
                "request_body_not_recorded",
                "the flow has no request body: mitmproxy streamed it (stream_large_bodies) and kept nothing",
            )
        )
    request = Request(
        method=req.method,
        url=checked_url(req.pretty_url, warnings),
        http_version=req.http_version,
        headers=_headers(req.headers),
        body=_decoded(req.raw_content, req.headers.get("content-encoding"), warnings),
    )
    response = None
    timings: dict[str, float] = {"send": _ms(req.timestamp_end, req.timestamp_start)}
    if flow.response is not None:
        resp = flow.response
        body = resp.raw_content
        if body is None:
            warnings.append(
                Notice(
                    "body_not_recorded",
                    "the flow has no response body: mitmproxy streamed it (stream_large_bodies or an addon's "
                    "stream) and kept nothing; record with chatcap's addon to keep streamed bodies",
                )
            )
        response = Response(
            status=status_code(resp.status_code, warnings),
            reason=resp.reason,
            http_version=resp.http_version,
            headers=_headers(resp.headers),
            body=_decoded(body, resp.headers.get("content-encoding"), warnings) or b"",
        )
        timings["wait"] = _ms(resp.timestamp_start, req.timestamp_end)
        timings["receive"] = _ms(resp.timestamp_end, resp.timestamp_start)
    return Exchange(
        id=id,
        source=source,
        position=position,
        format="mitmproxy-flows",
        request=request,
        response=response,
        raw=tnetstring.dumps(flow.get_state()),
        started_at=_started(req.timestamp_start),
        timings=timings,
        timings_source="mitmproxy",
        error=flow.error.msg if flow.error else None,
        complete=flow.error is None and flow.response is not None,
        warnings=warnings,
    )


def _decoded(raw: bytes | None, encoding: str | None, warnings: list[Notice]) -> bytes | None:
    if raw is None:
        return None
    body, notice = decode_content(raw, encoding)
    if notice:
        warnings.append(notice)
    return body


def _is_llm(flow: Any) -> bool:
    req = flow.request
    url = checked_url(req.pretty_url, [])
    path = urlsplit(url).path if url else ""
    if is_llm_request(req.method, path, req.headers.get("content-type", ""), req.raw_content):
        return True
    resp = flow.response
    if resp is None:
        return False
    head, _ = decode_content((resp.raw_content or b"")[:65536], resp.headers.get("content-encoding"), limit=65536)
    return is_chat_stream(resp.headers.get("content-type", ""), head)


class _BoundedReads:
    """A flow file whose single reads are at most `limit` bytes: a damaged length prefix cannot make
    mitmproxy's reader ask for gigabytes (from a gzip stream, which would make them). mitmproxy
    reads a flow with one read; a longer one is refused as damage (a ValueError, which it reports)."""

    def __init__(self, handle: IO[bytes], limit: int) -> None:
        self.handle = handle
        self.limit = limit

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self.limit:
            raise ValueError(f"a flow longer than {self.limit:,} bytes")
        return self.handle.read(size)

    def tell(self) -> int:
        return self.handle.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.handle.seek(offset, whence)


def read(
    handle: IO[bytes],
    source: str,
    label: str,
    skipped: list[int],
    tick: Callable[[], None] = lambda: None,
    bad: Callable[[str, str], None] | None = None,
    limit: int = 128 * 1024 * 1024,  # analyzer.ingest.RECORD_CAP
) -> Iterator[Exchange]:
    """LLM API calls among the HTTP flows in `handle`; `skipped` gets [other flows, non-HTTP flows].

    A flow whose state mitmproxy cannot load (a damaged field: its loader raises KeyError,
    TypeError, ...) or that cannot be made an exchange goes to `bad(position, reason)` and the
    reading goes on after it; damage to the file's framing ends it (LoadError, after the calls read).
    """
    try:
        from mitmproxy import exceptions, http
        from mitmproxy.io import FlowReader
    except ImportError:
        raise LoadError(source, NEEDS_MITMPROXY) from None
    bounded = _BoundedReads(handle, limit)
    count = number = 0
    other = non_http = 0
    try:
        stream = iter(FlowReader(bounded).stream())
        while True:
            at = bounded.tell()
            try:
                flow = next(stream)
            except StopIteration:
                break
            except exceptions.FlowReadException as exc:
                raise LoadError(source, f"mitmproxy flow file is damaged after {count} LLM call(s): {exc}") from None
            except Exception as exc:  # the flow's framing held, its state did not: skip it, read on
                number += 1
                reason = f"flow could not be loaded ({type(exc).__name__}: {str(exc)[:200]}); flow skipped"
                if bad is None or bounded.tell() <= at:
                    raise LoadError(
                        source, f"mitmproxy flow file is damaged after {count} LLM call(s): {reason}"
                    ) from None
                bad(f"flow {number}", reason)
                stream = iter(FlowReader(bounded).stream())
                continue
            number += 1
            tick()
            try:
                if not isinstance(flow, http.HTTPFlow):
                    non_http += 1
                    continue
                if flow.websocket is not None or not _is_llm(flow):
                    other += 1
                    continue
                exchange = _exchange(flow, id=f"{label}#{count + 1}", source=source, position=f"flow {number}")
            except Exception as exc:  # a value no check foresaw: this flow is lost, not the file
                if bad is None:
                    raise
                bad(f"flow {number}", f"flow could not be read ({type(exc).__name__}: {str(exc)[:200]}); flow skipped")
                continue
            count += 1
            yield exchange
    finally:
        skipped[:] = [other, non_http]
