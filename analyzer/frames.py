"""Tidy pandas DataFrames over exchanges, for filtering, grouping and charting in Jupyter.

    import analyzer
    xs = analyzer.load("captures/")
    analyzer.frames.exchanges(xs)     # one row per exchange: models, tokens, cost, timing, thread
    analyzer.frames.chunks(xs)        # one row per stream event
    analyzer.frames.messages(xs)      # the conversations as the model saw them
    analyzer.frames.tool_calls(xs)    # one row per tool call, with the result that answered it
    analyzer.frames.to_parquet(xs, "out/frames/")

    # the same frames from batches made apart (worker processes, Spark executors)
    analyzer.frames.assemble([analyzer.frames.parts(batch) for batch in batches])

Dtypes are pandas' nullable ones (Int64, Float64, boolean, string), categoricals for
repeated names (model, host, provider, protocol, sources), UTC datetimes; durations are
floats in ms. Columns are built as lists and turned into a frame once, never row by row.
"""

from __future__ import annotations

import bisect
import itertools
import os
import sys
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from analyzer import anomalies, protocols, threads, tokens
from analyzer.cost import Prices, cost_of
from analyzer.cost import notice as cost_notice
from analyzer.metrics import Timing
from analyzer.model import Exchange, Reconstruction, as_utc, dumps_exact, url_parts
from analyzer.protocols.events import error_text, shown

__all__ = [
    "TABLES",
    "Parts",
    "all_frames",
    "assemble",
    "chunks",
    "exchanges",
    "messages",
    "parts",
    "provider_of",
    "to_parquet",
    "tool_calls",
]

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
    return assemble([parts(xs, prices=prices, tables=("exchanges",))], tables=("exchanges",))["exchanges"]


# -- parts and assembly -------------------------------------------------------------------
#
# The frames are built in two steps, so the work can be spread: `parts` does what each
# exchange decides alone (reconstruction, tokens, cost, timing, chunks, its tool calls) for
# one batch of exchanges, wherever they were loaded (this process, a worker, a Spark
# executor), and returns plain values; `assemble` then threads the exchanges of every batch
# together (`threads.Walk`), which needs them all, and finishes the rows the threads decide:
# the conversation columns, the history notices, which messages are new, and which later
# request answered each tool call.


class _Sent(NamedTuple):
    """One exchange as the threads, the messages and the tool calls see it."""

    item: threads.Threadable
    started_at: datetime | None
    history: list[int]  # the request's messages, as entries of `Parts.messages`
    reply: int | None  # the first choice as a chat message, an entry of `Parts.messages`
    # The tool results the request sent: (tool_call_id, content, sent after its last assistant message).
    results: list[tuple[str, str | None, bool]]


@dataclass(slots=True)
class Parts:
    """The four frames' rows as far as each exchange of one batch decides them alone, in the
    order given, as plain values (picklable, small beside the exchanges): see `parts`."""

    tables: tuple[str, ...]
    # Columns of the exchanges frame but those the threads decide; with each row's warning
    # codes before (the reconstruction's) and after (anomalies, cost) the threads' notices.
    exchanges: dict[str, list[Any]]
    sent: list[_Sent]
    # Each distinct message of the batch once (plain role-and-text ones by value) as the walk
    # knows it: its `threads.key_of` and role; the assistant ones also normalised, by entry
    # (the only ones the walk reads); and (with the messages table) what it gives its rows
    # (`message_values`; table cells once a dataset build's worker made them so).
    messages: list[tuple[bytes, str]]
    assistant: dict[int, threads.Message]
    message_values: list[dict[str, Any]]
    chunks: dict[str, list[Any]]
    # Columns of the tool_calls frame but the result's, and each call's exchange as its row in the batch.
    tool_calls: dict[str, list[Any]]

    def renamed(self, names: dict[str, str]) -> Parts:
        """The same parts with the exchanges' ids changed as `names` says (old id → new id;
        ids not in it kept): a file read in pieces numbers its exchanges within each piece."""

        def new(ids: list[Any]) -> list[Any]:
            return [names.get(found, found) for found in ids]

        return Parts(
            self.tables,
            {**self.exchanges, "id": new(self.exchanges["id"])},
            [sent._replace(item=sent.item._replace(id=names.get(sent.item.id, sent.item.id))) for sent in self.sent],
            self.messages,
            self.assistant,
            self.message_values,
            {**self.chunks, "exchange": new(self.chunks["exchange"])},
            {**self.tool_calls, "exchange": new(self.tool_calls["exchange"])},
        )


TABLES = ("exchanges", "chunks", "messages", "tool_calls")
_THREAD_COLUMNS = ("conversation", "turn", "parent", "branch", "warnings")
_RESULT_COLUMNS = ("result", "result_exchange")


class _Messages:
    """A batch's distinct messages, each normalised and keyed (and, with `values`, its row
    values made) once however often it is resent."""

    def __init__(self, values: bool) -> None:
        self.keys: list[tuple[bytes, str]] = []
        self.assistant: dict[int, threads.Message] = {}
        self.values: list[dict[str, Any]] = []
        self._with_values = values
        self._plain: dict[tuple[str, str], int] = {}

    def entry(self, wire: dict[str, Any]) -> int:
        role, content = wire.get("role"), wire.get("content")
        if len(wire) == 2 and type(role) is str and type(content) is str:  # most messages: role and text
            found = self._plain.get((role, content))
            if found is None:
                found = self._plain[role, content] = self._add(wire)
            return found
        return self._add(wire)

    def _add(self, wire: dict[str, Any]) -> int:
        normal = threads.normalised(wire)
        if normal.role == "assistant":
            self.assistant[len(self.keys)] = normal
        self.keys.append((threads.key_of(normal), sys.intern(normal.role)))  # a few roles, pickled once each
        if self._with_values:
            self.values.append(message_values(wire))
        return len(self.keys) - 1


def parts(xs: Iterable[Exchange], *, prices: Prices | None = None, tables: Collection[str] = TABLES) -> Parts:
    """What each exchange of `xs` decides alone of the frames in `tables`: reconstructs each
    exchange once. `assemble` makes the frames of one or many such batches."""
    tables = tuple(name for name in TABLES if name in tables)
    threaded = {"exchanges", "messages", "tool_calls"} & set(tables)
    walked = {"exchanges", "messages"} & set(tables)  # the tool calls need the threads' order only
    cols: dict[str, list[Any]] = {name: [] for name in _EXCHANGE_DTYPES if name not in _THREAD_COLUMNS}
    cols["_before"], cols["_after"] = [], []
    chunk_cols: dict[str, list[Any]] = {name: [] for name in _CHUNK_DTYPES}
    call_cols: dict[str, list[Any]] = {name: [] for name in _TOOL_DTYPES if name not in _RESULT_COLUMNS}
    call_cols["_row"] = []
    sent: list[_Sent] = []
    table = _Messages(values="messages" in tables)
    for row, exchange in enumerate(xs):
        rec = exchange.reconstruct()
        if threaded:
            body = _request_body(exchange)
            messages = protocols.request_messages(exchange, body)
            results = _results(messages) if "tool_calls" in tables else []
            if walked:
                wires = rec.to_openai()["choices"] if rec.choices else []
                sent.append(_Sent(
                    threads.threadable(exchange, wires),
                    exchange.started_at,
                    [table.entry(wire) for wire in messages],
                    table.entry(wires[0]["message"]) if wires and "messages" in tables else None,
                    results,
                ))  # fmt: skip
            else:
                sent.append(_Sent(threads.Threadable(exchange.id, (None, ()), []), exchange.started_at, [], None, results))  # fmt: skip
            if "exchanges" in tables:
                _exchange_row(cols, exchange, rec, body, messages, prices)
        if "chunks" in tables:
            _chunk_rows(chunk_cols, exchange, rec)
        if "tool_calls" in tables:
            _call_rows(call_cols, row, exchange, rec)
    return Parts(tables, cols, sent, table.keys, table.assistant, table.values, chunk_cols, call_cols)


def _results(messages: list[dict[str, Any]]) -> list[tuple[str, str | None, bool]]:
    """The tool results a request sent: (tool_call_id, content, sent after its last assistant message)."""
    last_reply = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
    found = []
    for i, message in enumerate(messages):
        call_id = message.get("tool_call_id")
        if message.get("role") == "tool" and isinstance(call_id, str):
            found.append((call_id, _content_text(message.get("content")), i > last_reply))
    return found


def _exchange_row(
    cols: dict[str, list[Any]],
    exchange: Exchange,
    rec: Reconstruction,
    body: dict[str, Any],
    messages: list[dict[str, Any]],
    prices: Prices | None,
) -> None:
    tools = protocols.request_tools(exchange, body) or None
    params = protocols.request_params(exchange, body)
    usage = tokens.usage_or_estimate(rec, messages, tools)
    cost = cost_of(exchange, rec, usage, prices)
    host, path = _where(exchange)
    timing = rec.timing or _NO_TIMING
    after = [notice.code for notice in anomalies.found(exchange, rec)]
    priced = cost_notice(cost)  # no price known, or counts that do not add up
    if priced is not None:
        after.append(priced.code)

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
    cols["_before"].append([notice.code for notice in rec.warnings])
    cols["_after"].append(after)


def assemble(
    batches: Iterable[Parts], *, tables: Collection[str] = TABLES, new_only: bool = True, consume: bool = False
) -> dict[str, pd.DataFrame]:
    """The frames in `tables` of every exchange of `batches` (from `parts`, each with those
    tables), threaded together: rows in the order of the batches and, within each, the order
    given (messages: in the threads' order, as `messages` says); `new_only` as for `messages`.
    `consume`: the batches' chunks and messages' values are let go as their frames are made
    (the frames hold their text in Arrow buffers of their own), for a caller that keeps
    nothing of the batches."""
    batches = list(batches)
    tables = tuple(name for name in TABLES if name in tables)
    sent = [item for batch in batches for item in batch.sent]
    order = threads.order_of([item.started_at for item in sent]) if sent else []
    found: dict[str, pd.DataFrame] = {}
    if "chunks" in tables:
        columns = _joined([batch.chunks for batch in batches], _CHUNK_DTYPES)
        if consume:
            for batch in batches:
                batch.chunks = {}
        found["chunks"] = _frame(columns, _CHUNK_DTYPES)
        del columns
    if "exchanges" in tables or "messages" in tables:
        found.update(_threaded(batches, sent, order, tables, new_only, consume))
    if "tool_calls" in tables:
        found["tool_calls"] = _answered(batches, sent, order)
    return {name: found[name] for name in tables}


def _joined(columns: list[dict[str, list[Any]]], names: Iterable[str]) -> dict[str, list[Any]]:
    """The columns `names` of batches one after another."""
    return {name: list(itertools.chain.from_iterable(batch[name] for batch in columns)) for name in names}


def _threaded(
    batches: list[Parts], sent: list[_Sent], order: list[int], tables: tuple[str, ...], new_only: bool, consume: bool
) -> dict[str, pd.DataFrame]:
    """The exchanges and messages frames: one walk of the threads over every batch (`consume`
    as for `assemble`)."""
    walk = threads.Walk(notices="exchanges" in tables)  # the notices are the exchanges frame's only
    # Each exchange's messages as the walk numbers them, and as sent.
    numbers: list[list[int]] = []
    values: list[list[dict[str, Any]]] = []  # each exchange's messages' values (`message_values`)
    assistant: list[dict[int, threads.Message]] = []  # each exchange's batch's assistant messages, by number
    for batch in batches:
        numbered = [walk.intern_key(key, role) for key, role in batch.messages]
        said = {numbered[entry]: normal for entry, normal in batch.assistant.items()}
        numbers += [numbered] * len(batch.sent)
        values += [batch.message_values] * len(batch.sent)
        assistant += [said] * len(batch.sent)
    steps: list[threads.Step | None] = [None] * len(sent)
    message_cols: dict[str, list[Any]] = {name: [] for name in _MESSAGE_DTYPES}
    first: dict[tuple[str, int, int], str] = {}  # (conversation, position, message number) → first sender
    for at in order:
        item, number_of = sent[at], numbers[at]
        steps[at] = step = walk.add_numbered(item.item, [number_of[entry] for entry in item.history], assistant[at])
        if "messages" in tables:
            _message_rows(message_cols, item, step, values[at], number_of, first, new_only)
    if consume:  # the rows hold what they show; the values of messages resent are let go
        del values
        for batch in batches:
            batch.message_values = []
    found = {}
    if "exchanges" in tables:
        names = [name for name in _EXCHANGE_DTYPES if name not in _THREAD_COLUMNS]
        cols = _joined([batch.exchanges for batch in batches], [*names, "_before", "_after"])
        for name in _THREAD_COLUMNS:
            cols[name] = []
        for step, before, after in zip(steps, cols.pop("_before"), cols.pop("_after"), strict=True):
            assert step is not None
            thread = step.thread
            cols["conversation"].append(thread.conversation)
            cols["turn"].append(thread.turn)
            cols["parent"].append(thread.parent)
            cols["branch"].append(thread.branch)
            cols["warnings"].append([*before, *(notice.code for notice in step.notices), *after])
        found["exchanges"] = _exchange_frame(cols)
    if "messages" in tables:
        found["messages"] = _frame(message_cols, _MESSAGE_DTYPES)
    return found


def _exchange_frame(cols: dict[str, list[Any]]) -> pd.DataFrame:
    for name, dtype in _EXCHANGE_DTYPES.items():
        if name == "n_warnings":
            continue
        # A wire value the column cannot hold (a status of 99999, a temperature of "hot"): left empty, with a warning.
        values = cols[name]
        for row in _unrepresentable(values, dtype):
            values[row] = None
            cols["warnings"][row].append("unrepresentable")
    cols["n_warnings"] = [len(codes) for codes in cols["warnings"]]
    return _frame({name: cols[name] for name in _EXCHANGE_DTYPES}, _EXCHANGE_DTYPES)


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
    return assemble([parts(xs, tables=("chunks",))], tables=("chunks",))["chunks"]


def _chunk_rows(cols: dict[str, list[Any]], exchange: Exchange, rec: Reconstruction) -> None:
    for chunk in rec.chunks:
        try:
            pieces = protocols.chunk_parts(rec, chunk)
        except AttributeError:  # a payload only the lenient path could read
            continue
        for part in pieces:
            cols["exchange"].append(exchange.id)
            cols["seq"].append(chunk.seq)
            cols["t_ms"].append(chunk.t_ms)
            cols["kind"].append(part.kind)
            cols["choice"].append(part.choice)
            cols["text"].append(part.text)
            cols["chars"].append(len(part.text))
            cols["est_tokens"].append(tokens.estimate(part.text) if part.generated else None)


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
    return assemble([parts(xs, tables=("messages",))], tables=("messages",), new_only=new_only)["messages"]


def message_values(message: dict[str, Any]) -> dict[str, Any]:
    """The messages frame's columns that a message decides alone, from it as sent."""
    calls = message.get("tool_calls")
    return {
        "role": message.get("role"),
        "name": message.get("name"),
        "content": _content_text(message.get("content")),
        "reasoning": message.get("reasoning_content") or message.get("reasoning"),
        "tool_calls": calls if isinstance(calls, list) else None,
        "tool_call_id": message.get("tool_call_id"),
    }


def _message_rows(
    cols: dict[str, list[Any]],
    sent: _Sent,
    step: threads.Step,
    values: list[dict[str, Any]],
    number_of: list[int],
    first: dict[tuple[str, int, int], str],
    new_only: bool,
) -> None:
    """The messages frame's rows of one exchange, in the threads' order (as `conversations.turns`
    makes its turns): `first` is who sent each message first, by conversation and position."""
    thread, exchange = step.thread, sent.item.id

    def add(position: int, message: dict[str, Any], origin: str, first_sender: str) -> None:
        cols["exchange"].append(exchange)
        cols["conversation"].append(thread.conversation)
        cols["turn"].append(thread.turn)
        cols["position"].append(position)
        cols["origin"].append(origin)
        for name, value in message.items():
            cols[name].append(value)
        cols["first_sent_by"].append(first_sender)

    key = thread.conversation
    for position, (entry, number) in enumerate(zip(sent.history, step.numbers, strict=True)):
        sender = first.setdefault((key, position, number), exchange)
        if not new_only or sender == exchange:
            add(position, values[entry], "request", sender)
    if sent.reply is not None:  # a reply the client sends back is not new in the next request
        first.setdefault((key, len(sent.history), number_of[sent.reply]), exchange)
        add(len(sent.history), values[sent.reply], "reply", exchange)


_MESSAGE_DTYPES = {"exchange": "string", "conversation": "category", "turn": "Int32", "position": "Int32",
                   "origin": "category", "role": "category", "name": "string", "content": "string",
                   "reasoning": "string", "tool_calls": "object", "tool_call_id": "string",
                   "first_sent_by": "string"}  # fmt: skip


def tool_calls(xs: Iterable[Exchange]) -> pd.DataFrame:
    """One row per tool call a reply made: name, id, arguments (as streamed), parsed
    arguments or the parse error, and the tool result a later request sent back for it: by
    the call's id, or for a call without one (Gemini's) by its name and order among the
    results the next requests send back first."""
    return assemble([parts(xs, tables=("tool_calls",))], tables=("tool_calls",))["tool_calls"]


def _call_rows(cols: dict[str, list[Any]], row: int, exchange: Exchange, rec: Reconstruction) -> None:
    for choice in rec.choices:
        calls = list(choice.tool_calls) + ([choice.function_call] if choice.function_call else [])
        for call in calls:
            call.parse()
            cols["_row"].append(row)
            cols["exchange"].append(exchange.id)
            cols["choice"].append(choice.index)
            cols["index"].append(call.index)
            cols["id"].append(call.id)
            cols["name"].append(call.name)
            cols["arguments"].append(call.arguments)
            cols["parsed_arguments"].append(call.parsed_arguments)
            cols["parse_error"].append(call.parse_error)


def _answered(batches: list[Parts], sent: list[_Sent], order: list[int]) -> pd.DataFrame:
    """The tool_calls frame: each call with the result a later request sent back for it."""
    position = {at: n for n, at in enumerate(order)}  # an exchange's place in the threads' order
    results: dict[str, tuple[str, str | None]] = {}  # tool_call_id → (exchange that sent it, content)
    # Results first sent, by their tool_call_id (Gemini's: the call's name), in order: [position, exchange, content].
    fresh: dict[str, list[tuple[int, str, str | None]]] = {}
    for n, at in enumerate(order):
        exchange = sent[at].item.id
        for call_id, content, after_last_reply in sent[at].results:
            results.setdefault(call_id, (exchange, content))
            if after_last_reply:
                fresh.setdefault(call_id, []).append((n, exchange, content))
    cols = _joined(
        [batch.tool_calls for batch in batches], [*(name for name in _TOOL_DTYPES if name not in _RESULT_COLUMNS)]
    )
    offsets = list(itertools.accumulate((len(batch.sent) for batch in batches), initial=0))
    rows = [offset + row for batch, offset in zip(batches, offsets, strict=False) for row in batch.tool_calls["_row"]]
    claimed: set[tuple[str, int]] = set()
    cols["result"], cols["result_exchange"] = [], []
    for at, call_id, name in zip(rows, cols["id"], cols["name"], strict=True):
        answered = (call_id and results.get(call_id)) or _by_name(fresh, claimed, position[at], name)
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
    return assemble([parts(xs, **options)])


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
