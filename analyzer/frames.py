"""Tidy pandas DataFrames over exchanges, for filtering, grouping and charting in Jupyter.

    import analyzer
    xs = analyzer.load("captures/")
    analyzer.frames.exchanges(xs)     # one row per exchange: models, tokens, cost, timing, thread
    analyzer.frames.chunks(xs)        # one row per stream event
    analyzer.frames.messages(xs)      # the conversations as the model saw them
    analyzer.frames.tool_calls(xs)    # one row per tool call, with the result that answered it
    analyzer.frames.to_parquet(xs, "out/frames/")

Dtypes are pandas' nullable ones (Int64, Float64, boolean, string), categoricals for
repeated names (model, host, provider, protocol, sources), UTC datetimes; durations are
floats in ms. Columns are built as lists and turned into a frame once, never row by row.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from analyzer import anomalies, protocols, threads, tokens
from analyzer.conversations import Turn, turns
from analyzer.cost import Prices, cost_of
from analyzer.cost import notice as cost_notice
from analyzer.metrics import Timing
from analyzer.model import Exchange, Reconstruction, as_utc, dumps_exact, url_parts
from analyzer.protocols.events import error_text, shown

__all__ = ["all_frames", "chunks", "exchanges", "messages", "provider_of", "to_parquet", "tool_calls"]

# Host (or its end) → provider, for the API hosts people meet; anything else is its host.
PROVIDERS = {
    "api.openai.com": "openai", "openai.azure.com": "azure", "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "google", "aiplatform.googleapis.com": "google-vertex",
    "openrouter.ai": "openrouter", "api.deepseek.com": "deepseek", "api.groq.com": "groq",
    "api.mistral.ai": "mistral", "api.together.xyz": "together", "api.together.ai": "together",
    "api.x.ai": "xai", "api.perplexity.ai": "perplexity", "api.fireworks.ai": "fireworks",
    "dashscope.aliyuncs.com": "alibaba", "dashscope-intl.aliyuncs.com": "alibaba", "open.bigmodel.cn": "zhipu",
    "api.moonshot.cn": "moonshot", "api.cerebras.ai": "cerebras", "router.huggingface.co": "huggingface",
    "api.cohere.com": "cohere", "api.novita.ai": "novita", "api.sambanova.ai": "sambanova",
}  # fmt: skip
_TIMING = ("ttfb_ms", "ttft_ms", "time_to_reasoning_ms", "thinking_ms", "time_to_answer_ms", "duration_ms",
           "decode_tokens_per_s", "gap_p50_ms", "gap_p95_ms", "gap_p99_ms", "gap_max_ms")  # fmt: skip


def provider_of(host: str | None) -> str | None:
    """The provider an API host belongs to (`api.openai.com` → openai), else the host itself."""
    if not host:
        return None
    host = host.lower()
    for known, name in PROVIDERS.items():
        if host == known or host.endswith("." + known):
            return name
    return host


def _where(exchange: Exchange) -> tuple[str | None, str | None]:
    parts = url_parts(exchange.request.url if exchange.request else None)
    return (parts.hostname, parts.path or None) if parts else (None, None)


def _request_body(exchange: Exchange) -> dict[str, Any]:
    body = exchange.request.json() if exchange.request else None
    return body if isinstance(body, dict) else {}


def _finish(rec: Reconstruction) -> str | None:
    reasons = sorted({c.finish_reason for c in rec.choices if c.finish_reason})
    return ",".join(reasons) or None


def _frame(columns: dict[str, list[Any]], dtypes: dict[str, str]) -> pd.DataFrame:
    for name, dtype in dtypes.items():
        values = columns[name]
        if dtype in ("string", "category") and not all(value is None or type(value) is str for value in values):
            # A wire value of another type (a role that is a number, a name that is a list): as JSON text.
            columns[name] = [value if value is None or type(value) is str else dumps_exact(value) for value in values]
    frame = pd.DataFrame(columns)
    for name, dtype in dtypes.items():
        if dtype == "datetime":
            frame[name] = pd.to_datetime(frame[name], utc=True)
        else:
            frame[name] = frame[name].astype(dtype)
    return frame


def exchanges(xs: Iterable[Exchange], *, prices: Prices | None = None) -> pd.DataFrame:
    """One row per exchange (see the module docstring for the dtypes).

    Tokens are the reported usage, or an estimate from the text when the stream reported
    none (`tokens_source` says which); cost is the provider's own figure, else a price
    from genai-prices or your TOML file (`cost_source`), else missing with a warning.
    `n_messages`, `n_tools` and the sampling parameters (`temperature`, `top_p`,
    `max_tokens`, `reasoning`) are read from the request in whatever protocol it speaks.
    """
    xs = list(xs)
    cols: dict[str, list[Any]] = {name: [] for name in _EXCHANGE_DTYPES}
    walk = threads.Walk()
    order = threads.ordered(xs)  # the threads' order: each request is parsed once, for both
    for exchange in order:
        rec = exchange.reconstruct()
        body = _request_body(exchange)
        messages = protocols.request_messages(exchange, body)
        thread, notices, _ = walk.add(exchange, messages)
        tools = protocols.request_tools(exchange, body) or None
        params = protocols.request_params(exchange, body)
        usage = tokens.usage_or_estimate(rec, messages, tools)
        cost = cost_of(exchange, rec, usage, prices)
        host, path = _where(exchange)
        timing = rec.timing or _NO_TIMING
        codes = [notice.code for notice in rec.warnings]
        codes += [notice.code for notice in notices]
        codes += [notice.code for notice in anomalies.found(exchange, rec)]
        priced = cost_notice(cost)  # no price known, or counts that do not add up
        if priced is not None:
            codes.append(priced.code)

        cols["id"].append(exchange.id)
        cols["source"].append(exchange.source)
        cols["position"].append(exchange.position or None)
        cols["format"].append(exchange.format)
        cols["started_at"].append(exchange.started_at)
        cols["host"].append(host)
        cols["path"].append(path)
        cols["provider"].append(provider_of(host))
        cols["protocol"].append(rec.protocol)
        cols["requested_model"].append(rec.requested_model)
        cols["served_model"].append(rec.served_model)
        cols["status"].append(exchange.response.status if exchange.response else None)
        cols["streamed"].append(rec.streamed)
        cols["n_messages"].append(len(messages))
        cols["n_tools"].append(len(tools) if tools else 0)
        cols["n_tool_calls"].append(sum(len(c.tool_calls) + (c.function_call is not None) for c in rec.choices))
        cols["n_choices"].append(len(rec.choices))
        for name in _PARAMS:
            cols[name].append(params.get(name))
        cols["finish_reason"].append(_finish(rec))
        cols["truncated"].append(rec.truncated)
        cols["error"].append(error_text(rec.error) if rec.error else (exchange.error or None))
        cols["prompt_tokens"].append(usage.prompt_tokens if usage else None)
        cols["completion_tokens"].append(usage.completion_tokens if usage else None)
        cols["reasoning_tokens"].append(usage.reasoning_tokens if usage else None)
        cols["cached_tokens"].append(usage.cached_prompt_tokens if usage else None)
        cols["total_tokens"].append(usage.total_tokens if usage else None)
        cols["tokens_source"].append(usage.source if usage else None)
        cols["cost_usd"].append(cost.usd)
        cols["cost_source"].append(cost.source)
        for name in _TIMING:
            cols[name].append(getattr(timing, name))
        cols["stalls"].append(timing.stalls)
        cols["timing_source"].append(timing.source)
        cols["timing_resolution_ms"].append(timing.resolution_ms)
        cols["conversation"].append(thread.conversation)
        cols["turn"].append(thread.turn)
        cols["parent"].append(thread.parent)
        cols["branch"].append(thread.branch)
        cols["warnings"].append(codes)

    for name, dtype in _EXCHANGE_DTYPES.items():
        # A wire value the column cannot hold (a status of 99999, a temperature of "hot"): left empty, with a warning.
        values = cols[name]
        for row in _unrepresentable(values, dtype):
            values[row] = None
            cols["warnings"][row].append("unrepresentable")
    cols["n_warnings"] = [len(codes) for codes in cols["warnings"]]
    frame = _frame(cols, _EXCHANGE_DTYPES)
    if any(taken is not given for taken, given in zip(order, xs, strict=True)):  # rows in the order given
        at = {id(exchange): row for row, exchange in enumerate(order)}
        frame = frame.take([at[id(exchange)] for exchange in xs]).reset_index(drop=True)
    return frame


_NO_TIMING = Timing()
# The range of each integer dtype, and the largest magnitude a float holds.
_INT_RANGES = {"Int16": 2**15, "Int32": 2**31, "Int64": 2**63}
_FLOAT_MAX = 1.7976931348623157e308


def _unrepresentable(values: list[Any], dtype: str) -> list[int]:
    """The rows of a column whose value `dtype` cannot hold: a wire value can be a number too
    large for it (a status of 99999, a token count past 2**63) or of another type (a temperature
    of "hot"). The whole column is judged at once where its values are all of the right type."""
    kinds = set(map(type, values))
    if dtype in _INT_RANGES:
        if kinds <= {int, type(None)}:
            numbers = [value for value in values if value is not None]
            if not numbers or (-_INT_RANGES[dtype] <= min(numbers) and max(numbers) < _INT_RANGES[dtype]):
                return []
    elif dtype == "Float64":
        if kinds <= {float, type(None)}:
            return []
    elif dtype != "datetime":
        return []
    return [row for row, value in enumerate(values) if value is not None and not _fits(value, dtype)]


def _fits(value: Any, dtype: str) -> bool:
    """Whether a cell's value is one `dtype` holds."""
    if dtype in _INT_RANGES:
        return type(value) is int and -_INT_RANGES[dtype] <= value < _INT_RANGES[dtype]
    if dtype == "Float64":
        return type(value) is float or (type(value) is int and -_FLOAT_MAX <= value <= _FLOAT_MAX)
    if dtype == "datetime":  # in UTC, within the years a datetime holds (pandas' own go further)
        return as_utc(value) is not None
    return True


# The sampling parameters a request set (analyzer.protocols.request_params), one name for every protocol.
_PARAMS = ("temperature", "top_p", "max_tokens", "reasoning")
_EXCHANGE_DTYPES: dict[str, str] = {
    "id": "string", "source": "string", "position": "string", "format": "category", "started_at": "datetime",
    "host": "category", "path": "string", "provider": "category", "protocol": "category",
    "requested_model": "category", "served_model": "category", "status": "Int16", "streamed": "boolean",
    "n_messages": "Int32", "n_tools": "Int32", "n_tool_calls": "Int32", "n_choices": "Int16",
    "temperature": "Float64", "top_p": "Float64", "max_tokens": "Int64", "reasoning": "category",
    "finish_reason": "category", "truncated": "boolean", "error": "string",
    "prompt_tokens": "Int64", "completion_tokens": "Int64", "reasoning_tokens": "Int64", "cached_tokens": "Int64",
    "total_tokens": "Int64", "tokens_source": "category", "cost_usd": "Float64", "cost_source": "category",
    **dict.fromkeys(_TIMING, "Float64"), "stalls": "Int32", "timing_source": "category",
    "timing_resolution_ms": "Float64", "conversation": "category", "turn": "Int32", "parent": "string",
    "branch": "category", "n_warnings": "Int32", "warnings": "object",
}  # fmt: skip


def chunks(xs: Iterable[Exchange]) -> pd.DataFrame:
    """One row per piece of a stream event: exchange, seq, arrival, kind (role, reasoning,
    content, tool_call, refusal, usage, extra, error), choice, text, its length and tokens.
    A chunk carrying two things (a role and the first content) gives two rows, same seq."""
    cols: dict[str, list[Any]] = {name: [] for name in _CHUNK_DTYPES}
    for exchange in xs:
        rec = exchange.reconstruct()
        for chunk in rec.chunks:
            try:
                parts = protocols.chunk_parts(rec, chunk)
            except AttributeError:  # a payload only the lenient path could read
                continue
            for part in parts:
                cols["exchange"].append(exchange.id)
                cols["seq"].append(chunk.seq)
                cols["t_ms"].append(chunk.t_ms)
                cols["kind"].append(part.kind)
                cols["choice"].append(part.choice)
                cols["text"].append(part.text)
                cols["chars"].append(len(part.text))
                cols["est_tokens"].append(tokens.estimate(part.text) if part.generated else None)
    return _frame(cols, _CHUNK_DTYPES)


_CHUNK_DTYPES = {"exchange": "string", "seq": "Int32", "t_ms": "Float64", "kind": "category", "choice": "Int16",
                 "text": "string", "chars": "Int32", "est_tokens": "Int32"}  # fmt: skip


def _content_text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(shown(p.get("text") or "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return shown(content)


def messages(xs: Iterable[Exchange], *, new_only: bool = True) -> pd.DataFrame:
    """The conversations as the model saw them: each request's history and then the reply,
    one row per message, in order. Chat apps resend the whole history every turn, so by
    default a message appears once, at the exchange that first sent it (`first_sent_by`), and
    a reply sent back in the next request is not repeated (messages compare as the threads
    compare them, so a client's re-serialising does not make them new); `new_only=False`
    repeats every history in full."""
    cols: dict[str, list[Any]] = {name: [] for name in _MESSAGE_DTYPES}

    def add(turn: Turn, position: int, message: dict[str, Any], origin: str, first: str) -> None:
        thread = turn.thread
        calls = message.get("tool_calls") if isinstance(message.get("tool_calls"), list) else None
        cols["exchange"].append(turn.exchange.id)
        cols["conversation"].append(thread.conversation if thread else None)
        cols["turn"].append(thread.turn if thread else None)
        cols["position"].append(position)
        cols["origin"].append(origin)
        cols["role"].append(message.get("role"))
        cols["name"].append(message.get("name"))
        cols["content"].append(_content_text(message.get("content")))
        cols["reasoning"].append(message.get("reasoning_content") or message.get("reasoning"))
        cols["tool_calls"].append(calls)
        cols["tool_call_id"].append(message.get("tool_call_id"))
        cols["first_sent_by"].append(first)

    for turn in turns(xs):
        for position, (message, sender) in enumerate(zip(turn.history, turn.sent_by, strict=True)):
            if not new_only or sender == turn.exchange.id:
                add(turn, position, message, "request", sender)
        if turn.reply is not None:
            add(turn, len(turn.history), turn.reply, "reply", turn.exchange.id)
    return _frame(cols, _MESSAGE_DTYPES)


_MESSAGE_DTYPES = {"exchange": "string", "conversation": "category", "turn": "Int32", "position": "Int32",
                   "origin": "category", "role": "category", "name": "string", "content": "string",
                   "reasoning": "string", "tool_calls": "object", "tool_call_id": "string",
                   "first_sent_by": "string"}  # fmt: skip


def tool_calls(xs: Iterable[Exchange]) -> pd.DataFrame:
    """One row per tool call a reply made: name, id, arguments (as streamed), parsed
    arguments or the parse error, and the tool result a later request sent back for it: by
    the call's id, or for a call without one (Gemini's) by its name and order among the
    results the next requests send back first."""
    xs = list(xs)
    position: dict[str, int] = {}
    results: dict[str, tuple[str, str | None]] = {}  # tool_call_id → (exchange that sent it, content)
    # Results first sent, by their tool_call_id (Gemini's: the call's name), in order: [position, exchange, content].
    fresh: dict[str, list[tuple[int, str, str | None]]] = {}
    for n, exchange in enumerate(threads.ordered(xs)):
        position[exchange.id] = n
        messages = protocols.request_messages(exchange)
        last_reply = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
        for i, message in enumerate(messages):
            call_id = message.get("tool_call_id")
            if message.get("role") != "tool" or not isinstance(call_id, str):
                continue
            content = _content_text(message.get("content"))
            results.setdefault(call_id, (exchange.id, content))
            if i > last_reply:
                fresh.setdefault(call_id, []).append((n, exchange.id, content))
    claimed: set[tuple[str, int]] = set()
    cols: dict[str, list[Any]] = {name: [] for name in _TOOL_DTYPES}
    for exchange in xs:
        rec = exchange.reconstruct()
        for choice in rec.choices:
            calls = list(choice.tool_calls) + ([choice.function_call] if choice.function_call else [])
            for call in calls:
                call.parse()
                answered = (call.id and results.get(call.id)) or _by_name(
                    fresh, claimed, position[exchange.id], call.name
                )
                cols["exchange"].append(exchange.id)
                cols["choice"].append(choice.index)
                cols["index"].append(call.index)
                cols["id"].append(call.id)
                cols["name"].append(call.name)
                cols["arguments"].append(call.arguments)
                cols["parsed_arguments"].append(call.parsed_arguments)
                cols["parse_error"].append(call.parse_error)
                cols["result"].append(answered[1] if answered else None)
                cols["result_exchange"].append(answered[0] if answered else None)
    return _frame(cols, _TOOL_DTYPES)


def _by_name(
    fresh: dict[str, list[tuple[int, str, str | None]]], claimed: set[tuple[str, int]], after: int, name: str | None
) -> tuple[str, str | None] | None:
    """The first result not yet claimed that a later request (after position `after`) sent back under `name`."""
    sent = fresh.get(name) if isinstance(name, str) else None
    if not sent:
        return None
    for number in range(bisect.bisect_right(sent, after, key=lambda result: result[0]), len(sent)):
        if (name, number) not in claimed:
            claimed.add((name, number))
            return sent[number][1:]
    return None


_TOOL_DTYPES = {"exchange": "string", "choice": "Int16", "index": "Int16", "id": "string", "name": "category",
                "arguments": "string", "parsed_arguments": "object", "parse_error": "string", "result": "string",
                "result_exchange": "string"}  # fmt: skip


def all_frames(xs: Iterable[Exchange], **options: Any) -> dict[str, pd.DataFrame]:
    """The four frames by name: exchanges (given `options`, e.g. prices), chunks, messages, tool_calls."""
    xs = list(xs)
    return {
        "exchanges": exchanges(xs, **options),
        "chunks": chunks(xs),
        "messages": messages(xs),
        "tool_calls": tool_calls(xs),
    }


def to_parquet(xs: Iterable[Exchange], directory: str | os.PathLike[str], **options: Any) -> list[Path]:
    """Write the four frames as `exchanges.parquet`, `chunks.parquet`, `messages.parquet`
    and `tool_calls.parquet` (pyarrow; DuckDB, Spark and polars read them)."""
    from analyzer.files import open_private, private_dir

    out = private_dir(directory)
    written = []
    for name, frame in all_frames(xs, **options).items():
        for column in [name for name, dtype in frame.dtypes.items() if dtype == "object"]:
            # Lists and parsed JSON as JSON text: one type per column, whatever the calls held.
            frame[column] = frame[column].map(lambda v: None if v is None else dumps_exact(v))
        path = out / f"{name}.parquet"
        with open_private(path) as handle:
            frame.to_parquet(handle, index=False)
        written.append(path)
    return written
