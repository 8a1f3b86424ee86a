"""mitmproxy flow files (`mitmdump -w`, the console's save): read with mitmproxy's own
`FlowReader`, one flow at a time, when mitmproxy is installed (`chatcap[capture]`).

Timing comes from the flow's timestamps (sub-ms clock, but one figure per phase: no
per-read times). A flow recorded while mitmproxy streamed the response (`stream_large_bodies`,
or an addon's `stream`) has no body: that is said in a warning, never read as an empty answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urlsplit

from analyzer.errors import LoadError
from analyzer.ingest.text import decode_content
from analyzer.llmcalls import is_chat_stream, is_llm_request
from analyzer.model import Exchange, Notice, Request, Response

# A tnetstring: `<length>:<payload><type>`; a flow's state is a dict, type `}`.
_TNETSTRING = re.compile(rb"(\d{1,12}):")
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
    return b"4:type;" in head or b"7:version;" in head


def _headers(headers: Any) -> list[tuple[str, str]]:
    return [(str(name), str(value)) for name, value in headers.items(multi=True)]


def _ms(later: float | None, earlier: float | None) -> float:
    if later is None or earlier is None:
        return -1.0
    return round(max(later - earlier, 0.0) * 1000, 3)


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
        url=req.pretty_url,
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
            status=resp.status_code,
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
        started_at=datetime.fromtimestamp(req.timestamp_start, tz=UTC) if req.timestamp_start else None,
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
    if is_llm_request(req.method, urlsplit(req.pretty_url).path, req.headers.get("content-type", ""), req.raw_content):
        return True
    resp = flow.response
    if resp is None:
        return False
    head, _ = decode_content((resp.raw_content or b"")[:65536], resp.headers.get("content-encoding"))
    return is_chat_stream(resp.headers.get("content-type", ""), head)


def read(
    handle: IO[bytes], source: str, label: str, skipped: list[int], tick: Callable[[], None] = lambda: None
) -> Iterator[Exchange]:
    """LLM API calls among the HTTP flows in `handle`; `skipped` gets [other flows, non-HTTP flows]."""
    try:
        from mitmproxy import exceptions, http
        from mitmproxy.io import FlowReader
    except ImportError:
        raise LoadError(source, NEEDS_MITMPROXY) from None
    count = 0
    other = non_http = 0
    try:
        for number, flow in enumerate(FlowReader(handle).stream(), 1):
            tick()
            if not isinstance(flow, http.HTTPFlow):
                non_http += 1
                continue
            if flow.websocket is not None or not _is_llm(flow):
                other += 1
                continue
            count += 1
            yield _exchange(flow, id=f"{label}#{count}", source=source, position=f"flow {number}")
    except exceptions.FlowReadException as exc:
        raise LoadError(source, f"mitmproxy flow file is damaged after {count} LLM call(s): {exc}") from None
    finally:
        skipped[:] = [other, non_http]
