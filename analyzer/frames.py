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
import functools
import itertools
import os
import pickle
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from analyzer import anomalies, protocols, threads, tokens
from analyzer.cost import Prices, cost_of
from analyzer.cost import notice as cost_notice
from analyzer.metrics import Timing
from analyzer.model import Exchange, Reconstruction, as_utc, dumps_exact, url_parts
from analyzer.protocols.events import error_text, shown
from analyzer.spill import Spill

if TYPE_CHECKING:
    import pandas as pd

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
    # pandas only here, where a frame is made: a process that makes none (the dataset's
    # workers) does without its import, about 45 MB.
    import pandas as pd

    for name, dtype in dtypes.items():
        values = columns[name]
        if dtype in ("string", "category") and not all(value is None or type(value) is str for value in values):
            # A wire value of another type (a role that is a number, a name that is a list): as JSON text.
            columns[name] = [value if value is None or type(value) is str else dumps_exact(value) for value in values]
        elif dtype == "object":  # as they are: pandas would make a column of 0 and None floats (0.0 and NaN)
            columns[name] = pd.Series(values, dtype=object)
        elif dtype == "Int64" and _past_a_float(values):
            # Straight to the dtype: a column of integers and None goes through floats otherwise, where
            # one past 2**53 would change (or not convert at all). Slower: only where it matters.
            columns[name] = pd.array(values, dtype=dtype)
    frame = pd.DataFrame(columns)
    for name, dtype in dtypes.items():
        if dtype == "datetime":
            frame[name] = pd.to_datetime(frame[name], utc=True)
        else:
            frame[name] = frame[name].astype(dtype)
    return frame


def _past_a_float(values: list[Any]) -> bool:
    """Whether an integer column holds a value a float does not hold exactly (past 2**53)."""
    numbers = [value for value in values if type(value) is int]
    return bool(numbers) and (max(numbers) > 2**53 or min(numbers) < -(2**53))


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
    `consume`: each batch is let go as its rows are made (the frames hold their text in Arrow
    buffers of their own), for a caller that keeps nothing of the batches."""
    batches = list(batches)
    assembly = Assembly(tables, new_only=new_only, packed=False)  # the batches are held here anyway
    for rank, batch in enumerate(batches):
        assembly.add(rank, batch)
    found: dict[str, pd.DataFrame] = {}
    if "messages" in assembly.tables:
        found["messages"] = _frame(_joined([rows for rows, _ in assembly.walk()], _MESSAGE_DTYPES), _MESSAGE_DTYPES)
    else:
        for _ in assembly.walk():
            pass
    made: dict[str, list[dict[str, list[Any]]]] = {name: [] for name in assembly.tables if name != "messages"}
    for rank in range(len(batches)):
        for name, rows in assembly.rows(rank, batches[rank]).items():
            made[name].append(rows)
        if consume:
            batches[rank] = None  # type: ignore[call-overload]
    for name, pieces in made.items():
        found[name] = _frame(_joined(pieces, _DTYPES[name]), _DTYPES[name])
    return {name: found[name] for name in assembly.tables}


def _joined(columns: list[dict[str, list[Any]]], names: Iterable[str]) -> dict[str, list[Any]]:
    """The columns `names` of batches one after another."""
    return {name: list(itertools.chain.from_iterable(batch[name] for batch in columns)) for name in names}


@dataclass(slots=True)
class _Batch:
    """What the walk and the finished rows need of a batch once its parts are let go."""

    # Its exchanges as the walk sees them (`_Sent`, with the tool results' contents kept
    # apart), each pickled, and its messages (`Parts.messages`), pickled until the walk numbers
    # them (`Assembly.packed`): small objects by the hundred thousand, alive among the freed
    # parts, would keep the memory of the parts; and the walk reads one exchange at a time.
    sent: list[Any]
    messages: Any
    ids: list[str]
    started: list[datetime | None]
    assistant: list[int]  # the entries of its assistant messages (kept apart, normalised)
    chosen: list[bool] | None
    names: dict[str, str] | None = None  # its exchanges' ids changed (`Assembly.rename`)
    # After the walk, each exchange's place in the threads' order and its thread columns.
    places: list[int] = field(default_factory=list)
    threads: list[tuple[str, int, str | None, str | None, list[str]]] = field(default_factory=list)


class Assembly:
    """The four frames' rows of batches (`parts`) threaded together, in memory bounded by
    what the walk keeps, not by the batches: what `assemble` does, for a caller that writes
    the rows as they come (`dataset.build`).

        assembly = Assembly(keep=spill.Spill())
        for rank, batch in enumerate(batches):          # in any order, each ranked
            assembly.add(rank, batch)                    # the batch may then be let go
        for rows, started in assembly.walk():            # the messages table, in the threads' order
            ...
        for rank, batch in enumerate(batches):           # by rank, each batch again
            assembly.rows(rank, batch)                   # its exchanges, chunks and tool_calls rows

    A batch's messages' values, assistant messages and tool results wait in `keep` (a
    `spill.Spill`; by default one in memory) until the walk or its rows read them. `chosen`
    (per exchange of a batch): only those exchanges' rows are given, threaded among all.
    `packed`: what the walk needs of each exchange is kept pickled, for a caller that lets the
    batches go (in memory that their freed parts would otherwise keep); one that holds them
    anyway (`assemble`) saves the pickling."""

    def __init__(
        self,
        tables: Collection[str] = TABLES,
        *,
        new_only: bool = True,
        keep: Spill | None = None,
        packed: bool = True,
    ) -> None:
        self.tables = tuple(name for name in TABLES if name in tables)
        self.new_only = new_only
        self.packed = packed
        self._keep = Spill(file=False) if keep is None else keep
        self._batches: dict[Any, _Batch] = {}
        # tool_call_id → (exchange that first sent it, where its content is); by name, results first sent after
        # the last reply: [(place, exchange, where)]; results claimed by name.
        self._results: dict[str, tuple[str, tuple[Any, ...]]] = {}
        self._fresh: dict[str, list[tuple[int, str, tuple[Any, ...]]]] = {}
        self._claimed: set[tuple[str, int]] = set()
        self.chosen = 0  # exchanges added whose rows are given
        # How far the walk is: each exchange counts once threaded, once its message rows made.
        self.walked = 0

    def add(self, rank: Any, batch: Parts, chosen: list[bool] | None = None) -> None:
        """Keep what the walk and the rows need of `batch` (ranks order the batches: ties
        in start time are taken in their order)."""
        sent, results = [], []
        for item in batch.sent:
            results.append([content for _, content, _ in item.results] if item.results else None)
            if item.results:
                item = item._replace(results=[(call_id, None, after) for call_id, _, after in item.results])
            sent.append(self._pack(item))
        self._keep.extend(("r", rank), results)
        if "messages" in self.tables:
            self._keep.extend(("v", rank), batch.message_values)
        self._keep.extend(("a", rank), list(batch.assistant.values()))
        messages = self._pack(batch.messages)
        ids = [item.item.id for item in batch.sent]
        started = [item.started_at for item in batch.sent]
        self._batches[rank] = _Batch(sent, messages, ids, started, list(batch.assistant), chosen)
        self.chosen += len(sent) if chosen is None else sum(chosen)

    def _pack(self, value: Any) -> Any:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL) if self.packed else value

    def _unpack(self, value: Any) -> Any:
        return pickle.loads(value) if self.packed else value  # made by `_pack`

    def drop(self, rank: Any) -> None:
        """A batch added as `rank` taken out again (before the walk)."""
        batch = self._batches.pop(rank)
        self.chosen -= len(batch.sent) if batch.chosen is None else sum(batch.chosen)

    def rename(self, rank: Any, new: Callable[[str], str]) -> None:
        """Each id of a batch's exchanges changed to `new(id)` (its rows too), before the walk."""
        batch = self._batches[rank]
        batch.names = names = {found: new(found) for found in batch.ids}
        batch.ids = [names[found] for found in batch.ids]
        for row, packed in enumerate(batch.sent):
            item = self._unpack(packed)
            item = item._replace(item=item.item._replace(id=names[item.item.id]))
            batch.sent[row] = self._pack(item)

    def walk(
        self, rows: int = 4096, progress: Callable[[int], None] | None = None
    ) -> Iterator[tuple[dict[str, list[Any]], list[datetime | None]]]:
        """Thread every exchange added, in the threads' order; then yield the messages table's
        rows (when it is asked for) about `rows` at a time (fewer when their contents are
        long), each with its exchange's start. Two passes, so that what the walk keeps is let
        go before the rows are made (the peak of a big export holds one or the other).
        `walked` says how far: each exchange counts once threaded, once its rows made;
        `progress`, if given, is told it now and then while the exchanges are threaded."""
        ranks = sorted(self._batches)
        everyone = [(rank, row) for rank in ranks for row in range(len(self._batches[rank].sent))]
        order = [everyone[at] for at in threads.order_of([self._batches[rank].started[row] for rank, row in everyone])]
        with Spill(file=self._keep.in_file) as past:  # what the exchanges walked received
            numbered = self._threaded(ranks, order, past, progress)
        if "messages" in self.tables:
            yield from self._messages(rows, order, numbered)
        self.walked = 2 * len(order)
        for batch in self._batches.values():  # the rows need only the walk's findings now
            batch.sent, batch.started = [], []

    def _threaded(
        self, ranks: list[Any], order: list[tuple[Any, int]], past: Spill, progress: Callable[[int], None] | None
    ) -> dict[Any, list[int]]:
        """Each exchange (`order`: by rank and row, in the threads' order) threaded: its place,
        thread and tool results noted in its batch. Returns each batch's messages' numbers."""
        walk = threads.Walk(notices="exchanges" in self.tables, past=past)  # the notices are the exchanges frame's only
        numbered: dict[Any, list[int]] = {}
        assistant: dict[int, tuple[Any, int]] = {}  # message number → where it waits, normalised
        for rank in ranks:
            batch = self._batches[rank]
            numbered[rank] = numbers = [walk.intern_key(key, role) for key, role in self._unpack(batch.messages)]
            batch.messages = None
            for at, entry in enumerate(batch.assistant):
                assistant.setdefault(numbers[entry], (("a", rank), at))
            batch.places = [0] * len(batch.sent)
            batch.threads = [None] * len(batch.sent)  # type: ignore[list-item]
        normals = _Waiting(self._keep, assistant)
        for place, (rank, row) in enumerate(order):
            self.walked = place
            if progress is not None and not place % 512:
                progress(place)
            batch, number_of = self._batches[rank], numbered[rank]
            item: _Sent = self._unpack(batch.sent[row])
            step = walk.add_numbered(item.item, [number_of[entry] for entry in item.history], normals)
            thread = step.thread
            batch.places[row] = place
            batch.threads[row] = (thread.conversation, thread.turn, thread.parent, thread.branch, [n.code for n in step.notices])  # fmt: skip
            for n, (call_id, _, after_last_reply) in enumerate(item.results):
                where = (("r", rank), row, n)
                self._results.setdefault(call_id, (item.item.id, where))
                if after_last_reply:
                    self._fresh.setdefault(call_id, []).append((place, item.item.id, where))
        self.walked = len(order)
        return numbered

    def _messages(
        self, rows: int, order: list[tuple[Any, int]], numbered: dict[Any, list[int]]
    ) -> Iterator[tuple[dict[str, list[Any]], list[datetime | None]]]:
        """The messages table's rows of the exchanges threaded (`order`, as `_threaded` took them)."""
        cols: dict[str, list[Any]] = {name: [] for name in _MESSAGE_DTYPES}
        started: list[datetime | None] = []
        text = 0  # the characters of the rows' contents
        first: dict[tuple[str, int, int], str] = {}  # (conversation, position, message number) → first sender
        for place, (rank, row) in enumerate(order):
            self.walked = len(order) + place
            batch = self._batches[rank]
            if batch.chosen is None or batch.chosen[row]:
                item: _Sent = self._unpack(batch.sent[row])
                before = len(cols["exchange"])
                values = functools.partial(self._value, rank)
                conversation, turn = batch.threads[row][:2]
                _message_rows(cols, item, conversation, turn, numbered[rank], values, first, self.new_only)
                started += [item.started_at] * (len(cols["exchange"]) - before)
                text += sum(len(content) for content in cols["content"][before:] if content)
                if len(started) >= rows or text >= _TEXT_AT_ONCE:
                    yield cols, started
                    cols, started, text = {name: [] for name in _MESSAGE_DTYPES}, [], 0
        if started:
            yield cols, started

    def _value(self, rank: Any, entry: int) -> dict[str, Any]:
        return self._keep.item(("v", rank), entry)

    def rows(self, rank: Any, batch: Parts) -> dict[str, dict[str, list[Any]]]:
        """The rows of `batch` (added as `rank`, the walk done) in the exchanges, chunks and
        tool_calls tables, as columns; the batches in the order of their ranks (the tool
        calls answered by name are claimed in that order)."""
        light = self._batches[rank]
        if light.names is not None:
            batch = batch.renamed(light.names)
        found = {}
        if "exchanges" in self.tables:
            names = [name for name in _EXCHANGE_DTYPES if name not in _THREAD_COLUMNS]
            cols = {name: batch.exchanges[name] for name in [*names, "_before", "_after"]}
            for name in _THREAD_COLUMNS:
                cols[name] = []
            for (conversation, turn, parent, branch, notices), before, after in zip(
                light.threads, cols.pop("_before"), cols.pop("_after"), strict=True
            ):
                cols["conversation"].append(conversation)
                cols["turn"].append(turn)
                cols["parent"].append(parent)
                cols["branch"].append(branch)
                cols["warnings"].append([*before, *notices, *after])
            found["exchanges"] = _exchange_columns(cols)
        if "chunks" in self.tables:
            found["chunks"] = batch.chunks
        if "tool_calls" in self.tables:
            found["tool_calls"] = self._answered(light, batch.tool_calls)
        if light.chosen is not None:
            ids = {found for found, chosen in zip(light.ids, light.chosen, strict=True) if chosen}
            found = {
                name: _only(cols, "id" if name == "exchanges" else "exchange", ids) for name, cols in found.items()
            }
        return found

    def _answered(self, light: _Batch, calls: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """A batch's tool calls, each with the result a later request sent back for it."""
        cols = {name: calls[name] for name in _TOOL_DTYPES if name not in _RESULT_COLUMNS}
        cols["result"], cols["result_exchange"] = [], []
        for row, call_id, name in zip(calls["_row"], cols["id"], cols["name"], strict=True):
            answered = (call_id and self._results.get(call_id)) or _by_name(self._fresh, self._claimed, light.places[row], name)  # fmt: skip
            if answered:
                exchange, (key, sent_by, n) = answered  # the result's exchange, as its batch's row
                cols["result"].append(self._keep.item(key, sent_by)[n])
                cols["result_exchange"].append(exchange)
            else:
                cols["result"].append(None)
                cols["result_exchange"].append(None)
        return cols


_TEXT_AT_ONCE = 4_000_000  # characters of message contents `Assembly.walk` gives at most at once (about)


class _Waiting(Mapping[int, threads.Message]):
    """Assistant messages by number, read from where they wait when the walk asks for one."""

    def __init__(self, keep: Spill, where: dict[int, tuple[Any, int]]) -> None:
        self._keep, self._where = keep, where

    def __getitem__(self, number: int) -> threads.Message:
        return self._keep.item(*self._where[number])

    def __iter__(self) -> Iterator[int]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


def _only(cols: dict[str, list[Any]], key: str, ids: set[str]) -> dict[str, list[Any]]:
    """The rows of `cols` whose `key` is one of `ids`."""
    keep = [at for at, found in enumerate(cols[key]) if found in ids]
    return {name: [values[at] for at in keep] for name, values in cols.items()}


def _exchange_columns(cols: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The exchanges table's columns, in order, from a batch's: a wire value a column cannot
    hold (a status of 99999, a temperature of "hot") left empty, with a warning."""
    for name, dtype in _EXCHANGE_DTYPES.items():
        if name == "n_warnings":
            continue
        values = cols[name]
        for row in _unrepresentable(values, dtype):
            values[row] = None
            cols["warnings"][row].append("unrepresentable")
    cols["n_warnings"] = [len(codes) for codes in cols["warnings"]]
    return {name: cols[name] for name in _EXCHANGE_DTYPES}


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
    conversation: str,
    turn: int,
    number_of: list[int],
    values: Callable[[int], dict[str, Any]],
    first: dict[tuple[str, int, int], str],
    new_only: bool,
) -> None:
    """The messages frame's rows of one exchange (of `conversation`, at `turn`), in the threads'
    order (as `conversations.turns` makes its turns): `number_of` numbers its batch's messages,
    `first` is who sent each message first, by conversation and position."""
    exchange = sent.item.id

    def add(position: int, message: dict[str, Any], origin: str, first_sender: str) -> None:
        cols["exchange"].append(exchange)
        cols["conversation"].append(conversation)
        cols["turn"].append(turn)
        cols["position"].append(position)
        cols["origin"].append(origin)
        for name, value in message.items():
            cols[name].append(value)
        cols["first_sent_by"].append(first_sender)

    for position, entry in enumerate(sent.history):
        sender = first.setdefault((conversation, position, number_of[entry]), exchange)
        if not new_only or sender == exchange:
            add(position, values(entry), "request", sender)
    if sent.reply is not None:  # a reply the client sends back is not new in the next request
        first.setdefault((conversation, len(sent.history), number_of[sent.reply]), exchange)
        add(len(sent.history), values(sent.reply), "reply", exchange)


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


_DTYPES = {
    "exchanges": _EXCHANGE_DTYPES,
    "chunks": _CHUNK_DTYPES,
    "messages": _MESSAGE_DTYPES,
    "tool_calls": _TOOL_DTYPES,
}


def dtypes_of(name: str) -> dict[str, str]:
    """The table `name`'s columns and their frame's dtypes, in order."""
    return _DTYPES[name]


def frame_of(name: str, columns: dict[str, list[Any]] | None) -> pd.DataFrame:
    """The frame of the table `name` from its columns (`Assembly`'s; None: no rows)."""
    dtypes = _DTYPES[name]
    return _frame({column: (columns or {}).get(column, []) for column in dtypes}, dtypes)


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
