"""Anomalies that need more than one stream to see: checks across the request, the response
headers and the reply, added to the reconstruction's own warnings by `analyzer.frames`.

The reconstruction already warns about what a stream alone shows (truncation, no [DONE],
data after [DONE], non-monotonic `created`, a blank model, mojibake, lenient parsing, errors).
"""

from __future__ import annotations

import re

from analyzer.model import Exchange, Notice, Reconstruction

# Usage that disagrees with the streamed text this much is flagged (estimate ÷ reported);
# the estimate itself is good to about ±25 % on ordinary text (docs/tokens.md).
MISMATCH_LOW, MISMATCH_HIGH = 0.4, 2.5
MISMATCH_MIN_TOKENS = 20
_DATE_SUFFIX = re.compile(r"[-@](?:\d{4}-?\d{2}-?\d{2}|\d{4}|latest|preview)$")


def _bare(model: str) -> str:
    """A model name without its vendor prefix and date or version suffix, for comparing."""
    name = model.rsplit("/", 1)[-1].lower()
    while (stripped := _DATE_SUFFIX.sub("", name)) != name:
        name = stripped
    return name


def model_alias(rec: Reconstruction) -> Notice | None:
    """Served under another name than the one asked for (`ds-v3` → `deepseek-v3`); a dated
    snapshot of the requested model (`gpt-4o-mini` → `gpt-4o-mini-2024-07-18`) is not one."""
    asked, served = rec.requested_model, rec.served_model
    if not asked or not served or asked == served or _bare(asked) == _bare(served):
        return None
    if rec.has("blank_model"):
        return None  # the served name was filled in from the request: nothing to compare
    return Notice("model_alias", f"asked for {asked!r}, served by {served!r}")


def usage_mismatch(rec: Reconstruction, estimated_completion: int) -> Notice | None:
    """Reported completion tokens far from what the streamed text suggests."""
    usage = rec.usage
    reported = usage.completion_tokens if usage else None
    if not reported or reported < MISMATCH_MIN_TOKENS or not estimated_completion:
        return None
    if usage and usage.reasoning_tokens and not any(c.reasoning for c in rec.choices):
        reported -= usage.reasoning_tokens  # reasoning counted but not sent (OpenAI's o-series)
        if reported < MISMATCH_MIN_TOKENS:
            return None
    ratio = estimated_completion / reported
    if MISMATCH_LOW <= ratio <= MISMATCH_HIGH:
        return None
    return Notice(
        "usage_mismatch",
        f"{reported} completion tokens reported, but the streamed text looks like ~{estimated_completion}",
    )


def rate_limited(exchange: Exchange) -> Notice | None:
    """HTTP 429, with how long the server asked the client to wait."""
    response = exchange.response
    if response is None or response.status != 429:
        return None
    wait = response.header("retry-after") or response.header("retry-after-ms")
    unit = " ms" if response.header("retry-after") is None and wait else (" s" if wait and wait.isdigit() else "")
    return Notice(
        "rate_limited", f"HTTP 429 rate limited; Retry-After: {wait}{unit}" if wait else "HTTP 429 rate limited"
    )


def found(exchange: Exchange, rec: Reconstruction, estimated_completion: int) -> list[Notice]:
    """The cross-cutting anomalies of one exchange (see the module docstring)."""
    notices = [model_alias(rec), usage_mismatch(rec, estimated_completion), rate_limited(exchange)]
    return [notice for notice in notices if notice is not None]
