"""Timing from the best source an exchange has, each figure labelled with where it came from.

Vocabulary (DESIGN.md): TTFB = request sent → first response byte; TTFT = → first chunk
with generated text of any kind; time to answer = → first chunk of content; decode
rate = completion tokens / (last token time − first token time).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from analyzer.model import Exchange, Reconstruction, created_unit_ms

STALL_MS = 1000.0  # an inter-chunk gap this long or longer counts as a stall


@dataclass(slots=True)
class Timing:
    # "chunks": per-read arrival times (sub-ms); "har": HAR timings (ms, no per-chunk data);
    # "mitmproxy": a flow file's timestamps (likewise per phase only);
    # "created": the chunks' `created` field (1 s); "none".
    source: str = "none"
    resolution_ms: float | None = None
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    time_to_answer_ms: float | None = None
    # Reasoning models: → first chunk of reasoning, and from there to the first of the answer.
    time_to_reasoning_ms: float | None = None
    thinking_ms: float | None = None
    duration_ms: float | None = None
    decode_tokens_per_s: float | None = None
    gap_p50_ms: float | None = None
    gap_p95_ms: float | None = None
    gap_p99_ms: float | None = None
    gap_max_ms: float | None = None
    stalls: int | None = None
    created_first: int | float | None = None
    created_last: int | float | None = None
    created_max: int | float | None = None
    # What is only an estimate or was left out, in words.
    notes: list[str] = field(default_factory=list)


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = (len(sorted_values) - 1) * q
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def timing(exchange: Exchange, rec: Reconstruction) -> Timing:
    """The timing figures of one reconstructed exchange."""
    result = Timing()
    if rec.created_range:
        result.created_first, result.created_last, result.created_max = rec.created_range
    har = exchange.timings or {}
    reads = exchange.response.chunks if exchange.response else None
    # Reads come in order, so when the last chunk has an arrival time they all do.
    if rec.chunks and rec.chunks[-1].t_ms is not None:
        result.source, result.resolution_ms = "chunks", 0.001
        _from_arrivals(exchange, rec, result, reads)
    elif reads and not rec.streamed:
        # Not streamed, but the capture timed each read: the answer arrives whole at the end.
        result.source, result.resolution_ms = "chunks", 0.001
        wait = har.get("wait")
        result.ttfb_ms = wait if wait is not None and wait >= 0 else reads[0][0]
        result.duration_ms = reads[-1][0]
        if any(choice.content or choice.tool_calls for choice in rec.choices):
            result.ttft_ms = result.time_to_answer_ms = reads[-1][0]
            result.notes.append("not streamed: the whole answer arrived with the last read")
    elif har.get("wait") is not None and har.get("wait", -1) >= 0:
        result.source, result.resolution_ms = exchange.timings_source, 1.0
        result.ttfb_ms = har["wait"]
        receive = har.get("receive") if har.get("receive", -1) >= 0 else None
        if receive is not None:
            send = har.get("send") if (har.get("send") or 0) > 0 else 0.0
            result.duration_ms = send + har["wait"] + receive  # request start → last byte
            tokens = rec.usage.completion_tokens if rec.usage else None
            if tokens and receive > 0:
                result.decode_tokens_per_s = tokens / (receive / 1000)
                result.notes.append("decode rate over the whole receive phase (HAR has no per-chunk times)")
    elif rec.created_range:
        _from_created(exchange, rec, result)
    return result


def _from_created(exchange: Exchange, rec: Reconstruction, result: Timing) -> None:
    """Dates from the chunks' `created` (and the response's Date header): seconds, at best."""
    first, last, latest = rec.created_range
    unit = created_unit_ms(first)
    result.source, result.resolution_ms = "created", unit
    resolution = "1 s" if unit == 1000.0 else "1 ms (created is in milliseconds)"
    if latest == first and len(rec.chunks) > 1:
        result.notes.append(
            "every chunk has the same created (set once per response): it dates the request, not the stream; "
            "no duration or TTFT"
        )
        return
    start = first
    date = _date_header(exchange) if unit == 1000.0 else None
    if date is not None and abs(date - first) <= 60:
        # The server dated the response head; chunks are dated as they are made.
        start = min(date, first)
        token = rec.marks.get("first_token")
        created = rec.chunks[token].created if token is not None else None
        if created is not None and created >= start:
            result.ttft_ms = (created - start) * unit
        result.notes.append(f"estimated from the Date header and the chunks' created field ({resolution} resolution)")
    else:
        result.notes.append(f"only the chunks' created field dates the stream: {resolution} resolution, no TTFT")
        if date is not None:
            result.notes.append(f"the Date header is {date - first:+.0f} s from the first created: not combined")
    result.duration_ms = (latest - start) * unit
    if last < latest:
        result.notes.append("created is not monotonic: the span uses the latest value, not the last")


def _date_header(exchange: Exchange) -> float | None:
    value = exchange.response.header("date") if exchange.response else None
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def _from_arrivals(
    exchange: Exchange, rec: Reconstruction, result: Timing, reads: list[tuple[float, int]] | None
) -> None:
    chunks = rec.chunks
    marks = rec.marks
    wait = (exchange.timings or {}).get("wait")
    result.ttfb_ms = wait if wait is not None and wait >= 0 else chunks[0].t_ms
    if marks.get("first_token") is not None:
        result.ttft_ms = chunks[marks["first_token"]].t_ms
    if marks.get("first_answer") is not None:
        result.time_to_answer_ms = chunks[marks["first_answer"]].t_ms
    # Generated text before the answer, and reasoning in the reply: that text was reasoning.
    reasoned = any(choice.reasoning or choice.think for choice in rec.choices)
    if result.ttft_ms is not None and marks.get("first_token") != marks.get("first_answer") and reasoned:
        result.time_to_reasoning_ms = result.ttft_ms
        if result.time_to_answer_ms is not None:
            result.thinking_ms = result.time_to_answer_ms - result.ttft_ms
    result.duration_ms = reads[-1][0] if reads else chunks[-1].t_ms  # request → last byte ([DONE] included)
    first, last = marks.get("first_token"), marks.get("last_token")
    tokens = rec.usage.completion_tokens if rec.usage else None
    if tokens and first is not None and last is not None:
        span = chunks[last].t_ms - chunks[first].t_ms
        if span > 0:
            result.decode_tokens_per_s = tokens / (span / 1000)
    gaps = sorted(b.t_ms - a.t_ms for a, b in itertools.pairwise(chunks))
    if gaps:
        result.gap_p50_ms = _quantile(gaps, 0.5)
        result.gap_p95_ms = _quantile(gaps, 0.95)
        result.gap_p99_ms = _quantile(gaps, 0.99)
        result.gap_max_ms = gaps[-1]
        result.stalls = sum(1 for gap in gaps if gap >= STALL_MS)


def format_ms(value: float | None, resolution_ms: float | None = None) -> str:
    """A duration for people: whole seconds with a ~ when the source has 1 s resolution."""
    if value is None:
        return "—"
    if resolution_ms is not None and resolution_ms >= 1000:
        return "<1 s" if value < 1000 else f"~{value / 1000:.0f} s"
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def reported_cost(rec: Reconstruction) -> float | None:
    """A cost in USD the provider itself reported: in usage (OpenRouter), a top-level
    field, or a payload after [DONE] (seed 001's gateway)."""
    places: list[object] = [rec.usage.raw.get("cost") if rec.usage else None, rec.extras.get("cost")]
    places += [payload.get("cost") for payload in rec.after_done if isinstance(payload, dict)]
    for value in places:
        cost = _number(value)
        if cost is not None:
            return cost
    return None
