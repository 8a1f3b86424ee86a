"""Exchanges as HAR 1.2 entries: one HAR file (Chrome DevTools and other viewers import it)
or chatcap/1 JSON lines (one entry per line, what the addon writes).

What HAR has no field for stays under `_` names, as HAR allows: per-read arrival times
(`response._chunks`), the proxy's error (`_error`) and chatcap's record (`_chatcap`: schema,
completeness, what was redacted, where the exchange came from). Bodies are written decoded
(HAR's `content.text`), as UTF-8 text or base64. Credentials are always redacted.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from analyzer import __version__
from analyzer.export.redaction import redacted
from analyzer.files import open_private, private_dir
from analyzer.model import Exchange, as_utc, dumps_exact, url_parts

SCHEMA = "chatcap/1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _text(body: bytes) -> dict[str, str]:
    try:
        return {"text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(body).decode("ascii"), "encoding": "base64"}


def _headers(headers: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers]


def _iso(moment: datetime) -> str:
    utc = as_utc(moment)  # None: in UTC it would fall before year 1: written with its own offset
    return (utc or moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _started(exchange: Exchange) -> tuple[datetime, str | None]:
    """When the exchange started, and how we know when it is not the producer's own figure."""
    if exchange.started_at is not None:
        return exchange.started_at, None
    date = exchange.response.header("date") if exchange.response else None
    if date:
        try:
            return parsedate_to_datetime(date), "the response Date header (1 s)"
        except (TypeError, ValueError):
            pass
    return _EPOCH, "unknown (1970-01-01 stands in)"


def entry(exchange: Exchange) -> dict[str, Any]:
    """One exchange as a HAR 1.2 entry, redacted."""
    exchange = redacted(exchange)
    request, response = exchange.request, exchange.response
    url = (request.url if request else None) or ""
    parts = url_parts(url)
    query = [{"name": k, "value": v} for k, v in parse_qsl(parts.query if parts else "", keep_blank_values=True)]
    har_request: dict[str, Any] = {
        "method": (request.method if request else None) or "",
        "url": url,
        "httpVersion": (request.http_version if request else None) or "",
        "cookies": [],
        "headers": _headers(request.headers) if request else [],
        "queryString": query,
        "headersSize": -1,
        "bodySize": len(request.body) if request and request.body is not None else -1,
    }
    if request and request.body is not None:
        har_request["postData"] = {"mimeType": request.header("content-type") or "", **_text(request.body)}
    if response is not None:
        har_response: dict[str, Any] = {
            "status": response.status or 0,
            "statusText": response.reason or "",
            "httpVersion": response.http_version or "",
            "cookies": [],
            "headers": _headers(response.headers),
            "content": {
                "size": len(response.body),
                "mimeType": response.header("content-type") or "",
                **_text(response.body),
            },
            "redirectURL": response.header("location") or "",
            "headersSize": -1,
            "bodySize": -1,
        }
        if response.chunks:
            har_response["_chunks"] = [[t, end] for t, end in response.chunks]
    else:
        har_response = {"status": 0, "statusText": "", "httpVersion": "", "cookies": [], "headers": [],
                        "content": {"size": 0, "mimeType": ""}, "redirectURL": "", "headersSize": -1,
                        "bodySize": -1}  # fmt: skip
    timings = {"blocked": -1, "dns": -1, "connect": -1, "ssl": -1, "send": 0, "wait": -1, "receive": -1}
    timings.update(exchange.timings or {})
    started, started_from = _started(exchange)
    out: dict[str, Any] = {
        "startedDateTime": _iso(started),
        "time": round(sum(timings[k] for k in ("send", "wait", "receive") if timings[k] > 0), 3),
        "request": har_request,
        "response": har_response,
        "cache": {},
        "timings": timings,
    }
    if exchange.error:
        out["_error"] = exchange.error
    meta: dict[str, Any] = {
        "schema": SCHEMA,
        "version": __version__,
        "redacted": exchange.redacted,
        "from": {"file": Path(exchange.source).name, "position": exchange.position, "format": exchange.format},
    }
    if exchange.complete is not None:
        meta["complete"] = exchange.complete
    if exchange.timings_source != "har":
        meta["timings_source"] = exchange.timings_source
    if started_from:
        meta["startedDateTime_from"] = started_from
    if exchange.warnings:
        meta["warnings"] = [{"code": w.code, "message": w.message} for w in exchange.warnings]
    out["_chatcap"] = meta
    return out


def har(exchanges: Iterable[Exchange], path: str | Path) -> Path:
    """Write one HAR 1.2 file holding `exchanges`, an entry at a time as they come (an iterator
    is read once, nothing is held): the same text as the whole document written at once."""
    log = {"log": {"version": "1.2", "creator": {"name": "chatcap", "version": __version__}, "pages": [],
                   "entries": []}}  # fmt: skip
    opening, closing = dumps_exact(log, indent=True).split('"entries": []')
    path = Path(path)
    private_dir(path.parent)
    with open_private(path) as handle:
        handle.write(f'{opening}"entries": ['.encode())
        written = 0
        for exchange in exchanges:  # indented as it sits in the document, three levels in
            text = dumps_exact(entry(exchange), indent=True).replace("\n", "\n      ")
            handle.write(f"{',' if written else ''}\n      {text}".encode())
            written += 1
        end = "\n    ]" if written else "]"
        handle.write(f"{end}{closing}".encode())
    return path


def jsonl(exchanges: Iterable[Exchange], path: str | Path) -> Path:
    """Write chatcap/1 JSON lines (what the addon records): one HAR entry per line."""
    path = Path(path)
    private_dir(path.parent)
    with open_private(path) as handle:
        for exchange in exchanges:
            handle.write(dumps_exact(entry(exchange)).encode() + b"\n")
    return path
