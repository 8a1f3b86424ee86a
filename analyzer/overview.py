"""What `chatcap summary` shows, built one exchange at a time: a row of facts per exchange
and totals per group, so a capture of any size is summed up in the memory of one exchange
plus the totals.

    from analyzer import overview
    totals = overview.Totals(by=("model", "host"))
    for exchange in analyzer.stream("big.jsonl"):
        totals.add(overview.row(exchange))     # the exchange (and its reconstruction) can go
    for group in totals.groups():
        group.key, group.exchanges, group.errors, group.ttft_ms(95), group.decode_tokens_per_s()

A row's figures are the summary table's: tokens as reported or estimated from the text
(`tokens.usage_or_estimate`), cost as reported or priced (`cost.cost_of`), timing from the
reconstruction, the warnings counted as the frames' `warnings` column lists them. A group
keeps its exchanges' TTFTs and decode rates (two floats each: 37,000 exchanges take under
2 MB) and gives exact nearest-rank percentiles of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from analyzer.cost import Cost, cost_of
from analyzer.cost import notice as cost_notice
from analyzer.model import Exchange, Notice, Reconstruction, as_utc, url_parts

# What the totals can be grouped by; `conversation` needs the row's conversation set (threads
# are found across the whole input: `analyzer.threads`).
GROUP_KEYS = ("model", "host", "day", "conversation")


@dataclass(slots=True, frozen=True, kw_only=True)
class Row:
    """One exchange as the summary shows it."""

    id: str
    # The wire protocol (`Reconstruction.protocol`); None when it could not be reconstructed.
    protocol: str | None
    # The served model, else the requested one.
    model: str | None
    host: str | None
    started_at: datetime | None
    status: int | None
    # How the reply ended, in words ("stop", "error: Overloaded", "ended early: client
    # disconnected", "truncated", "failed" when it could not be reconstructed).
    ends: str
    # The server answered with an error (an HTTP error status or an error in the stream), or
    # the exchange could not be reconstructed.
    error: bool
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    duration_ms: float | None = None
    # The resolution of the times: 1,000 when they come from the chunks' `created` seconds.
    resolution_ms: float | None = None
    # Where the times came from (`Timing.source`: chunks, har, mitmproxy, created, none).
    timing_source: str | None = None
    decode_tokens_per_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # False when there is no usage at all: nothing was generated (an error before the first token, a 429).
    has_tokens: bool = False
    tokens_estimated: bool = False
    cost: Cost | None = None
    warnings: int = 0
    # Why it could not be reconstructed (an exception, in one line), else None.
    failure: str | None = None
    # Its conversation (`analyzer.threads`), when the caller found them: they take every exchange at once.
    conversation: str | None = None


def row(exchange: Exchange) -> Row:
    """The summary's row for one exchange (reconstructing it: a failure is a row that says so)."""
    from analyzer.protocols import request_messages
    from analyzer.tokens import usage_or_estimate

    host = _host(exchange)
    status = exchange.response.status if exchange.response else None
    try:
        rec = exchange.reconstruct()
    except Exception as exc:  # a bug met by odd input: this row says so, the others go on
        return Row(
            id=exchange.id, protocol=None, model=None, host=host, started_at=exchange.started_at, status=status,
            ends="failed", error=True, failure=f"{type(exc).__name__}: {exc}",
        )  # fmt: skip
    timing = rec.timing
    # The request's messages are read only when the stream reported no usage (to estimate the prompt).
    usage = rec.usage if rec.usage is not None else usage_or_estimate(rec, request_messages(exchange), None)
    cost = cost_of(exchange, rec, usage)
    return Row(
        id=exchange.id,
        protocol=rec.protocol,
        model=rec.served_model or rec.requested_model,
        host=host,
        started_at=exchange.started_at,
        status=status,
        ends=ending(exchange, rec),
        error=rec.error is not None or (status is not None and status >= 400),
        ttfb_ms=timing.ttfb_ms if timing else None,
        ttft_ms=timing.ttft_ms if timing else None,
        duration_ms=timing.duration_ms if timing else None,
        resolution_ms=timing.resolution_ms if timing else None,
        timing_source=timing.source if timing else None,
        decode_tokens_per_s=timing.decode_tokens_per_s if timing else None,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        has_tokens=usage is not None,
        tokens_estimated=usage is not None and usage.source == "estimated",
        cost=cost,
        warnings=len(notices(exchange, rec, cost)),
    )


def notices(exchange: Exchange, rec: Reconstruction, cost: Cost) -> list[Notice]:
    """Everything odd about one exchange, as the frames' `warnings` column lists it: the
    reconstruction's warnings, the cross-cutting anomalies, an unknown price."""
    from analyzer.anomalies import found

    return [*rec.warnings, *found(exchange, rec), *([missing] if (missing := cost_notice(cost)) else [])]


def ending(exchange: Exchange, rec: Reconstruction) -> str:
    """How the reply ended: the server's error or the proxy's reason with its message,
    "truncated" only when nothing explains a cut, else the finish reasons."""
    from analyzer.export.transcript import end_reason

    if rec.has("body_not_recorded"):
        return "no body kept"
    end = end_reason(exchange, rec)
    if end and end != "cut off" and not end.startswith("ended: "):
        return end if len(end) <= 60 else end[:59] + "…"
    if rec.truncated:
        return "truncated"
    reasons = sorted({c.finish_reason for c in rec.choices if c.finish_reason})
    return ",".join(reasons) or ("done" if rec.done else "—")


def _host(exchange: Exchange) -> str | None:
    parts = url_parts(exchange.request.url if exchange.request else None)
    return parts.hostname if parts else None


def group_key(found: Row, by: Iterable[str]) -> tuple[str, ...]:
    """The row's key for a grouping (names from `GROUP_KEYS`); "—" where the row has no value."""
    return tuple(_key_part(found, name) or "—" for name in by)


def _key_part(found: Row, name: str) -> str | None:
    if name == "model":
        return found.model
    if name == "host":
        return found.host
    if name == "day":
        moment = as_utc(found.started_at) if found.started_at else None
        return moment.date().isoformat() if moment else None
    if name == "conversation":
        return found.conversation
    raise ValueError(f"cannot group by {name!r}: one of {', '.join(GROUP_KEYS)}")


@dataclass(slots=True)
class Group:
    """The totals of the exchanges that share a key."""

    key: tuple[str, ...]
    exchanges: int = 0
    errors: int = 0
    # Token counts summed over the exchanges that have them (`counted`: how many do).
    prompt_tokens: int = 0
    completion_tokens: int = 0
    counted: int = 0
    # Some of the token counts are estimates (from the text), not what the provider reported.
    tokens_estimated: bool = False
    # The sum of the costs known, and how many exchanges have one.
    cost_usd: float = 0.0
    costed: int = 0
    # Some of the cost was priced by chatcap (from estimated tokens: `cost_estimated` too).
    cost_priced: bool = False
    cost_estimated: bool = False
    # Exchanges that generated tokens but whose model has no price.
    unpriced: int = 0
    # (TTFT in ms, its resolution) per exchange that has one, and the decode rates.
    ttfts: list[tuple[float, float | None]] = field(default_factory=list)
    decode_rates: list[float] = field(default_factory=list)

    def add(self, found: Row) -> None:
        self.exchanges += 1
        self.errors += found.error
        self.prompt_tokens += found.prompt_tokens or 0
        self.completion_tokens += found.completion_tokens or 0
        self.counted += found.has_tokens
        self.tokens_estimated |= found.tokens_estimated
        cost = found.cost
        if cost is not None and cost.usd is not None:
            self.cost_usd += cost.usd
            self.costed += 1
            self.cost_priced |= cost.source == "priced"
            self.cost_estimated |= cost.source == "priced" and cost.estimated_tokens
        elif cost is not None and (missing := cost_notice(cost)) is not None and missing.code == "unknown_price":
            self.unpriced += 1
        if found.ttft_ms is not None:
            self.ttfts.append((found.ttft_ms, found.resolution_ms))
        if found.decode_tokens_per_s:
            self.decode_rates.append(found.decode_tokens_per_s)

    def ttft_ms(self, percentile: int) -> tuple[float, float | None] | None:
        """The nearest-rank `percentile` (50, 95) of the TTFTs, with that exchange's resolution."""
        return _nearest_rank(self.ttfts, percentile)

    def decode_tokens_per_s(self, percentile: int = 50) -> float | None:
        """The nearest-rank `percentile` of the decode rates (default the median)."""
        return _nearest_rank(self.decode_rates, percentile)


def _nearest_rank(values: list[Any], percentile: int) -> Any:
    """The value at rank ⌈percentile × n / 100⌉ of `values` in order (sorted in place, pairs by
    their first), in integers: 0.95 × 20 is 19.000000000000004 in floats."""
    if not values:
        return None
    values.sort(key=lambda value: value[0] if isinstance(value, tuple) else value)
    return values[max(0, -(-percentile * len(values) // 100) - 1)]


class Totals:
    """Totals per group of exchanges, and over all of them, added a row at a time."""

    def __init__(self, by: Iterable[str] = ("model", "host")) -> None:
        self.by = tuple(by)
        unknown = [name for name in self.by if name not in GROUP_KEYS]
        if unknown:
            raise ValueError(f"cannot group by {unknown[0]!r}: one of {', '.join(GROUP_KEYS)}")
        self.all = Group(key=())
        self._groups: dict[tuple[str, ...], Group] = {}

    def add(self, found: Row) -> None:
        key = group_key(found, self.by)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = Group(key=key)
        group.add(found)
        self.all.add(found)

    def groups(self) -> list[Group]:
        """The groups: by day in date order, else the most exchanges first (ties by key)."""
        if self.by == ("day",):
            return sorted(self._groups.values(), key=lambda g: g.key)
        return sorted(self._groups.values(), key=lambda g: (-g.exchanges, g.key))
