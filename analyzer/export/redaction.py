"""Exports redact again, whatever the input says about itself: each exchange is copied with
every credential out of its URL, headers, bodies (stream payloads and the reads' offsets
included), error and warnings, before anything is reconstructed from it, so the transcripts, tables,
JSON lines and HAR files are all made from the same redacted bytes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from analyzer.model import Exchange, Notice, Request, Response
from analyzer.redact import is_secret_header, redact_body, redact_headers, redact_prose, redact_text


def redacted(exchange: Exchange) -> Exchange:
    """`exchange` with its credentials replaced (the same object when it holds none)."""
    request, response = exchange.request, exchange.response
    new_request = _request(request) if request is not None else None
    new_response = _response(response) if response is not None else None
    error = redact_prose(exchange.error) if exchange.error else exchange.error
    warnings = [Notice(w.code, redact_prose(w.message)) for w in exchange.warnings]
    unchanged = (
        new_request is request
        and new_response is response
        and error == exchange.error
        and all(a.message == b.message for a, b in zip(warnings, exchange.warnings, strict=True))
    )
    if unchanged:
        return exchange
    names = {name for name, value in [*(request.headers if request else []), *(response.headers if response else [])]
             if value and is_secret_header(name)}  # fmt: skip
    return dataclasses.replace(
        exchange,
        request=new_request,
        response=new_response,
        error=error,
        warnings=warnings,
        redacted=sorted(set(exchange.redacted) | names),
        _reconstruction=None,
    )


def redacted_all(exchanges: Iterable[Exchange]) -> list[Exchange]:
    """Each exchange redacted (see `redacted`)."""
    return [redacted(exchange) for exchange in exchanges]


def _request(request: Request) -> Request:
    url = redact_text(request.url) if request.url else request.url
    headers = redact_headers(request.headers)
    body = redact_body(request.body)[0] if request.body else request.body
    if url == request.url and headers == request.headers and body == request.body:
        return request
    return dataclasses.replace(request, url=url, headers=headers, body=body)


def _response(response: Response) -> Response:
    headers = redact_headers(response.headers)
    ends = [end for _, end in response.chunks] if response.chunks else None
    body, moved = redact_body(response.body, ends)
    if headers == response.headers and body == response.body:
        return response
    chunks = response.chunks
    if chunks and moved is not None:
        chunks = [(t, end) for (t, _), end in zip(chunks, moved, strict=True)]
    return dataclasses.replace(response, headers=headers, body=body, chunks=chunks)
