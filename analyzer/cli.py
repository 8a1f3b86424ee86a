"""`chatcap` — a thin command line over the library. Errors are one readable line."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from functools import wraps
from itertools import chain
from pathlib import Path
from typing import Any

import click

from analyzer.errors import LoadError
from analyzer.ingest import Exchanges, ExchangeStream, Problem, load, status, stream
from analyzer.metrics import format_ms
from analyzer.model import Exchange, Reconstruction


def _friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any failure into one line on stderr and exit status 1: never a traceback."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            with _notes():
                return command(*args, **kwargs)
        except click.ClickException as exc:
            exc.message = visible(exc.message)  # it may quote captured text
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except LoadError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as exc:
            raise click.ClickException(f"internal error: {type(exc).__name__}: {exc}") from None

    return run


@contextmanager
def _notes() -> Iterator[None]:
    """Warnings that are notes for the user (`spill.Unspilled`: memory used where a temporary
    file could not be written) as one line each on stderr, `note: ...`."""
    from analyzer.spill import Unspilled

    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *where: Any, **more: Any) -> None:
        if issubclass(category, Unspilled):
            click.echo(visible(f"note: {message}"), err=True)
        else:
            shown(message, category, *where, **more)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def _load(paths: tuple[str, ...], *, progress: bool | None = None) -> Exchanges:
    exchanges = load(paths[0] if len(paths) == 1 else list(paths), progress=progress)
    _say_problems(exchanges.problems)
    if not exchanges:
        raise click.ClickException("no exchanges found in " + ", ".join(paths))
    return exchanges


_WORKERS = click.option(
    "--workers", type=click.IntRange(min=1), default=None,
    help="Processes reading the captures, one file each  [default: every core]",
)  # fmt: skip


def _say_problems(problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(visible(f"skipped {problem}"), err=True)


def _reconstruct(exchange: Exchange) -> Reconstruction | None:
    try:
        return exchange.reconstruct()
    except Exception as exc:
        click.echo(visible(f"{exchange.id}: could not reconstruct: {type(exc).__name__}: {exc}"), err=True)
        return None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chatcap")
def main() -> None:
    """See what LLM chat apps actually sent and received."""
    # Arrow's buffers from the C library's allocator, not the mimalloc pyarrow brings (read once,
    # when pyarrow is imported: no command has imported it yet). The tables are built a batch at
    # a time; mimalloc kept the freed batches' pages, 35-50 MB more at the peak of an export
    # (benchmarks/README.md, "Scale"). A choice of the user's own is kept.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


# C0 control characters but tab and newline, DEL, and C1: a terminal acts on them (ESC
# starts sequences that set the title, write the clipboard, make links or clear the screen).
# Bidirectional overrides and isolates reorder what a terminal shows ("Trojan Source"): shown too.
_BIDI = "\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_CELL_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟ (ESC is ␛), the Unicode control pictures
    if code > 0xFF:
        return f"\\u{code:04x}"  # a bidi control as \u202e
    return "\u2421" if code == 0x7F else f"\\x{code:02x}"  # ␡, or C1 as \x9b


def visible(text: str, *, lines: bool = True) -> str:
    """Captured text as a terminal may print it: control characters as visible stand-ins
    (ESC as ␛, C1 as `\\x9b`); newline and tab kept when `lines`, else shown too (table cells)."""
    return (_CONTROL if lines else _CELL_CONTROL).sub(_shown, text)


def _cell(value: Any) -> Any:
    """A table cell from captured text: control characters visible, Rich markup inert."""
    from rich.text import Text

    return Text(visible(str(value), lines=False))


def _print(renderable: Any, *, err: bool = False) -> None:
    """Print to the terminal (stderr with `err`) as Rich lays it out; piped, without the padding
    Rich adds to the width (a log or an editor gets the lines as they end)."""
    stream = sys.stderr if err else sys.stdout
    console = _console(stream)
    if stream.isatty():
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    click.echo("\n".join(line.rstrip() for line in captured.get().split("\n")), nl=False, err=err)


def _console(stream: Any = None) -> Any:
    from rich.console import Console

    stream = stream or sys.stdout
    # Off a terminal rich assumes 80 columns; a piped table is read in an editor or a log, as
    # wide as COLUMNS says (else 200, so rows stay whole).
    if stream.isatty():
        return Console(file=stream, soft_wrap=False)
    columns = os.environ.get("COLUMNS", "")
    return Console(file=stream, width=int(columns) if columns.isdigit() and int(columns) > 0 else 200)


# `summary` shows every exchange up to this many; past it, totals per group, then the last this many.
SUMMARY_LAST = 50
# The totals show at most this many groups (the largest; by day, the latest).
SUMMARY_GROUPS = 50


def _group_by(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    from analyzer.overview import GROUP_KEYS

    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(","))
    unknown = [name for name in names if name not in GROUP_KEYS]
    if unknown or not names:
        raise click.BadParameter(f"{unknown[0] if unknown else value!r} is not one of {', '.join(GROUP_KEYS)}")
    return names


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--last", type=click.IntRange(min=0), help=f"Rows in the table: every exchange up to N, else the "
              f"totals and then the last N (default {SUMMARY_LAST}; 0: the totals alone).")  # fmt: skip
@click.option("--all", "every", is_flag=True, help="Every exchange, one line each as it is read, in fixed-width "
              "columns (no totals): for large captures and pipes.")  # fmt: skip
@click.option("--group-by", callback=_group_by, metavar="KEY[,KEY]", help="What the totals are per: model, host, "
              "day (UTC), conversation, or several joined by commas (default model,host). conversation reads "
              "the whole input before it prints, keeping what threading needs of each exchange: "
              "conversations are found across it.")  # fmt: skip
@_friendly
def summary(paths: tuple[str, ...], last: int | None, every: bool, group_by: tuple[str, ...] | None) -> None:
    """A table per exchange: model, status, TTFB/TTFT, tokens, tok/s, cost (~ estimated, ≈ priced).

    Past --last exchanges (50), totals per served model and host come first (exchanges, errors,
    tokens, cost, TTFT p50/p95, decode rate), then the last 50. Exchanges are read one at a
    time, so memory stays small however large the capture.
    """
    from analyzer.overview import Totals

    if every:
        if last is not None or group_by is not None:
            raise click.UsageError("--all prints every exchange and no totals: it takes no --last or --group-by")
        _summary_lines(paths)
        return
    last = SUMMARY_LAST if last is None else last
    totals = Totals(group_by or ("model", "host"))
    kept: deque[Any] = deque(maxlen=last)
    for found in _summary_rows(paths, conversations="conversation" in totals.by):
        totals.add(found)
        kept.append(found)
    count = totals.all.exchanges
    if count <= last:
        _print(_rows_table(kept, f"{count} exchange(s)"))
        return
    _print(_totals_table(totals))
    if kept:
        _print(_rows_table(kept, f"the last {len(kept)} of {count:,} exchanges"))


def _summary_rows(
    paths: tuple[str, ...], *, conversations: bool = False, progress: bool | None = None
) -> Iterator[Any]:
    """The summary's row of each exchange, read one at a time; each file or record skipped, and
    each exchange that could not be reconstructed, is a line on stderr. `conversations`: each
    row with its conversation, which takes every exchange: kept as the threads need it
    (`threads.Deferred`: a few hundred bytes a message, not the histories' text)."""
    from analyzer import threads
    from analyzer.overview import row

    found = stream(paths[0] if len(paths) == 1 else list(paths), progress=progress)
    count = 0
    rows, later = [], threads.Deferred()
    for exchange in found:
        count += 1
        made = _said(row(exchange))
        if not conversations:
            yield made
            continue
        rows.append(made)
        if made.failure is None:
            later.add(exchange)
    _say_problems(found.problems)
    if not count:
        raise click.ClickException("no exchanges found in " + ", ".join(paths))
    if conversations:
        with status(f"threading {len(later):,} exchange(s) into conversations", progress):
            conversation_of = {exchange_id: step.thread.conversation for exchange_id, step in later.steps()}
        for made in rows:
            yield replace(made, conversation=conversation_of.get(made.id))


def _said(found: Any) -> Any:
    if found.failure:
        click.echo(visible(f"{found.id}: could not reconstruct: {found.failure}"), err=True)
    return found


def _summary_table(
    exchanges: list[Exchange], title: str, *, columns: tuple[str, ...] | None = None, legend: bool = True
) -> Any:
    """The `summary` table of `exchanges`, with only `columns` if given (`legend`: with the
    caption saying what the marks mean)."""
    from analyzer.overview import row

    return _rows_table([_said(row(exchange)) for exchange in exchanges], title, columns=columns, legend=legend)


# The summary's columns: name, and whether its cells are right-aligned.
_TABLE_COLUMNS = (
    ("exchange", False), ("protocol", False), ("model", False), ("status", True), ("ends", False), ("TTFB", True),
    ("TTFT", True), ("duration", True), ("tokens in→out", True), ("tok/s", True), ("timed by", False),
    ("cost", True), ("warnings", True),
)  # fmt: skip
_LEGEND = (
    "protocol: chat = OpenAI chat/completions, responses = OpenAI Responses, messages = Anthropic "
    "Messages · ~ tokens estimated from the text · ≈ cost priced by chatcap (genai-prices or CHATCAP_PRICES) · "
    "$ as reported by the provider · no price: the model is in neither · ~ s: 1 s resolution"
)


def _rows_table(rows: Iterable[Any], title: str, *, columns: tuple[str, ...] | None = None, legend: bool = True) -> Any:
    """The summary's table of rows (`analyzer.overview.Row`)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", caption=_LEGEND if legend else None, caption_justify="left")
    shown = [n for n, (name, _) in enumerate(_TABLE_COLUMNS) if columns is None or name in columns]
    for name, right in (_TABLE_COLUMNS[n] for n in shown):
        table.add_column(
            name,
            justify="right" if right else "left",
            no_wrap=name in ("exchange", "model", "TTFB", "TTFT", "duration", "timed by", "cost"),
            max_width=32 if name == "ends" else None,
        )
    for found in rows:
        cells = _row_cells(found)
        table.add_row(*(_cell(cells[n]) for n in shown))
    return table


def _row_cells(found: Any) -> list[str]:
    """A row's cells as text, in the order of `_TABLE_COLUMNS` (captured text not yet made visible)."""
    if found.protocol is None:
        return [found.id, "—", "—", "—", "failed", *["—"] * 8]
    resolution = found.resolution_ms
    tokens = (
        f"{'~' if found.tokens_estimated else ''}{_count(found.prompt_tokens)}→{found.completion_tokens}"
        if found.has_tokens
        else "—"
    )
    return [
        found.id,
        PROTOCOL_NAMES.get(found.protocol, found.protocol),
        found.model or "—",
        str(found.status) if found.status else "—",
        found.ends,
        format_ms(found.ttfb_ms, resolution),
        format_ms(found.ttft_ms, resolution),
        format_ms(found.duration_ms, resolution),
        tokens,
        f"{found.decode_tokens_per_s:.1f}" if found.decode_tokens_per_s else "—",
        TIMED_BY.get(found.timing_source, found.timing_source) if found.timing_source else "—",
        _dollars(found.cost),
        str(found.warnings) if found.warnings else "",
    ]


_TOTALS_LEGEND = (
    "errors: an HTTP error status or an error in the stream · ~ some tokens estimated from the text · "
    "≈ some of the cost priced by chatcap, the rest as reported · no price: exchanges whose model is in no "
    "price list (not in cost) · TTFT p50/p95, tok/s p50: nearest-rank percentiles over the exchanges that have one · ~ s: 1 s resolution"
)


def _totals_table(totals: Any) -> Any:
    """Totals per group (the largest `SUMMARY_GROUPS`; by day, the latest), and over all when several."""
    from rich.table import Table

    groups = totals.groups()
    shown = groups[-SUMMARY_GROUPS:] if totals.by == ("day",) else groups[:SUMMARY_GROUPS]
    keys = len(totals.by)
    rows = [[*group.key, *_group_cells(group)] for group in shown]
    if len(shown) < len(groups):
        rows.append([f"… {len(groups) - len(shown):,} more", *[""] * (keys - 1 + len(_TOTALS_COLUMNS))])
    if len(groups) > 1:
        rows.append(["all", *[""] * (keys - 1), *_group_cells(totals.all)])
    # "no price" only when some exchange has none; the figures whole, the keys folded into the room left
    # (Rich would cut every column alike).
    columns = [n for n, name in enumerate(_TOTALS_COLUMNS, keys) if name != "no\nprice" or totals.all.unpriced]
    header = [max(map(len, name.split("\n"))) for name in _TOTALS_COLUMNS]
    figures = sum(max(header[n - keys], *(len(row[n]) for row in rows)) + 3 for n in columns)
    room = max(8, (_console().width - figures - 1) // keys - 3)
    title = f"{totals.all.exchanges:,} exchanges by {' and '.join(totals.by)}"
    table = Table(title=title, title_justify="left", caption=_TOTALS_LEGEND, caption_justify="left")
    for n, name in enumerate(totals.by):
        table.add_column(name, overflow="fold", width=min(room, max(len(name), *(len(row[n]) for row in rows))))
    for n in columns:
        table.add_column(_TOTALS_COLUMNS[n - keys], justify="right", no_wrap=True)
    for number, row in enumerate(rows):
        if number == len(rows) - 1 and len(groups) > 1:
            table.add_section()
        table.add_row(*(_cell(cell) for cell in row[:keys]), *(row[n] for n in columns))
    return table


# Headers on two lines, for the figures' sake: the table is wide.
_TOTALS_COLUMNS = ("exchanges", "errors", "tokens\nin", "tokens\nout", "cost", "no\nprice", "TTFT\np50", "TTFT\np95",
                   "tok/s\np50")  # fmt: skip


def _group_cells(group: Any) -> list[str]:
    """A group's cells, in the order of `_TOTALS_COLUMNS`."""

    def tokens(count: int) -> str:
        return f"{'~' if group.tokens_estimated else ''}{count:,}" if group.counted else "—"

    def ttft(percentile: int) -> str:
        found = group.ttft_ms(percentile)
        return format_ms(*found) if found else "—"

    rate = group.decode_tokens_per_s()
    return [
        f"{group.exchanges:,}",
        f"{group.errors:,}",
        tokens(group.prompt_tokens),
        tokens(group.completion_tokens),
        _total_dollars(group),
        f"{group.unpriced:,}" if group.unpriced else "",
        ttft(50),
        ttft(95),
        f"{rate:.1f}" if rate else "—",
    ]


def _total_dollars(group: Any) -> str:
    """The sum of a group's known costs: ≈ when chatcap priced some, ~≈ some from estimated tokens."""
    if not group.costed:
        return "—"
    mark = "~≈" if group.cost_estimated else ("≈" if group.cost_priced else "")
    usd = group.cost_usd
    return f"{mark}${usd:,.2f}" if usd >= 1 else f"{mark}${usd:.6f}".rstrip("0").rstrip(".") if usd else f"{mark}$0"


# --all: a line per exchange, printed as it is read. Columns are as wide as below, or as the widest
# value so far (a longer id pushes that line's other columns right, and widens the ones after it);
# `ends` comes last, as long as it is.
_LINE_WIDTHS = {"exchange": 32, "protocol": 9, "model": 24, "status": 6, "TTFB": 8, "TTFT": 8, "duration": 9,
                "tokens in→out": 14, "tok/s": 6, "timed by": 8, "cost": 10, "warnings": 8, "ends": 0}  # fmt: skip
_LINE_ORDER = [name for name, _ in _TABLE_COLUMNS if name != "ends"] + ["ends"]


def _summary_lines(paths: tuple[str, ...]) -> None:
    """Every exchange as a fixed-width line, as it is read (a progress bar only when the lines go
    elsewhere than the terminal)."""
    right = dict(_TABLE_COLUMNS)
    widths = dict(_LINE_WIDTHS)
    index = {name: n for n, (name, _) in enumerate(_TABLE_COLUMNS)}

    def line(cells: dict[str, str]) -> str:
        parts = []
        for name in _LINE_ORDER:
            text = cells[name]
            widths[name] = max(widths[name], len(text))
            parts.append(text.rjust(widths[name]) if right[name] else text.ljust(widths[name]))
        return "  ".join(parts).rstrip()

    out = sys.stdout  # written as is: buffered when piped, a line at a time on a terminal
    try:
        out.write(line({name: name for name in _LINE_ORDER}) + "\n")
        for found in _summary_rows(paths, progress=False if out.isatty() else None):
            cells = _row_cells(found)
            out.write(line({name: visible(cells[index[name]], lines=False) for name in _LINE_ORDER}) + "\n")
        out.flush()
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# The protocol column: short names for the four wire protocols.
PROTOCOL_NAMES = {
    "openai_chat": "chat",
    "openai_responses": "responses",
    "anthropic_messages": "messages",
    "gemini": "gemini",
    "unknown": "?",
}


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _dollars(cost: Any) -> str:
    """The provider's own figure as is; a price chatcap worked out with ≈ (from estimated tokens:
    ~≈); "no price" when the model's price is not known (nothing generated: —)."""
    from analyzer.cost import notice

    if cost.usd is None:
        missing = notice(cost)
        return "no price" if missing is not None and missing.code == "unknown_price" else "—"
    mark = "" if cost.source == "reported" else ("~≈" if cost.estimated_tokens else "≈")
    return f"{mark}${cost.usd:.6f}".rstrip("0").rstrip(".") if cost.usd else f"{mark}$0"


# Where an exchange's timing came from, in the summary's words (DESIGN.md, "Timing vocabulary").
# reads: each network read's arrival (sub-ms); HAR / flow: one figure per phase (ms);
# created: the chunks' created field (1 s, shown with ~).
TIMED_BY = {"chunks": "reads", "har": "HAR", "mitmproxy": "flow", "created": "created", "none": "—"}


@main.command()
@click.argument("path", type=click.Path())
@click.option("--id", "exchange_id", help="Exchange id (as `summary` lists them); default: the first.")
@click.option("--render", is_flag=True, help="Render the replies' Markdown (default: every text exactly as received).")
@_friendly
def show(path: str, exchange_id: str | None, render: bool) -> None:
    """One reconstructed exchange, every text exactly as it was received."""
    from rich.markdown import Markdown

    from analyzer.export import markdown_text, plain_text

    found = stream(path)  # read up to the exchange shown, one at a time
    chosen, first = None, []
    for exchange in found:
        if not exchange_id or exchange.id == exchange_id or exchange.id.endswith(exchange_id):
            chosen = exchange
            break
        if len(first) < 10:
            first.append(exchange.id)
    _say_problems(found.problems)
    if chosen is None:
        if not first:
            raise click.ClickException(f"no exchanges found in {path}")
        raise click.ClickException(f"no exchange {exchange_id!r}; there are: " + ", ".join(first))
    if not render:  # `__init__` stays `__init__`, a leading `+` stays a `+`: what came over the wire
        click.echo(visible(plain_text(chosen)), nl=False)
        return
    # Links as text with their address beside it: a terminal link can hide where it goes.
    _print(Markdown(visible(markdown_text(chosen, collapsible=False)), hyperlinks=False))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "html", "jsonl", "parquet", "csv"]),
    default="markdown",
    show_default=True,
    help="markdown / html: one transcript per conversation (html adds index.html); jsonl: one "
    "conversation per line in OpenAI's chat format; parquet / csv: the four analysis frames.",
)
@click.option("--out", "out_dir", type=click.Path(), default="out", show_default=True)
@click.option(
    "--reasoning/--no-reasoning", default=None, help="Include the reasoning (default: yes in transcripts, no in jsonl)."
)
@click.option("--conversation", help="Only this conversation: its id (c3) or one of its exchanges' ids.")
@click.option("--model", help="Only exchanges whose requested or served model matches (a shell pattern: 'gpt-4o*').")
@click.option("--host", help="Only exchanges to matching hosts (a shell pattern: '*.openai.com').")
@click.option("--since", type=click.DateTime(), help="Only exchanges started at or after this time (UTC).")
@click.option("--until", type=click.DateTime(), help="Only exchanges started before this time (UTC).")
@_WORKERS
@_friendly
def export(
    paths: tuple[str, ...],
    fmt: str,
    out_dir: str,
    reasoning: bool | None,
    conversation: str | None,
    model: str | None,
    host: str | None,
    since: datetime | None,
    until: datetime | None,
    workers: int | None,
) -> None:
    """Write reconstructed transcripts or tables (credentials always redacted).

    parquet writes a dataset partitioned by date (docs/schema.md) that a later run on more
    captures only adds to: files already read are not read again."""
    from analyzer import export as exporters

    utc = {name: value.replace(tzinfo=UTC) for name, value in (("since", since), ("until", until)) if value}
    if fmt in ("parquet", "csv"):
        if conversation:
            raise click.UsageError("--conversation is for transcripts (markdown, html, jsonl), not tables")
        with _refusals():
            _export_tables(paths, fmt, Path(out_dir), {"model": model, "host": host, **utc}, workers)
        return
    # An exchange at a time, twice: what the open conversations keep, not the input, stays in memory.
    given = paths[0] if len(paths) == 1 else list(paths)
    found = stream(given)
    first = next(found, None)  # nothing is written until there is something to write
    if first is None:
        _say_problems(found.problems)
        raise click.ClickException("no exchanges found in " + ", ".join(paths))
    # Threaded among all of them, so conversation ids never depend on a filter.
    select = {name: value for name, value in (("model", model), ("host", host), *utc.items()) if value}
    with _refusals():
        _export(exporters, _Reread(given, found, first), fmt, Path(out_dir), reasoning, conversation, select or None)


class _Reread:
    """The exchanges of `given`, from the files read again each time this is iterated (the
    transcript exports read their input twice: `export._chats`); `found`: the first reading,
    begun at `first`, which passes over what does not reconstruct and says so, with what could
    not be read, after it (before what was written). The export takes from a second reading
    only the exchanges it threaded in the first."""

    def __init__(self, given: str | list[str], found: ExchangeStream, first: Exchange) -> None:
        self._given, self._found, self._first = given, found, first

    def __iter__(self) -> Iterator[Exchange]:
        found, self._found = self._found, None
        if found is None:  # again, quietly: what it meets was said, and the export knows which exchanges to take
            yield from stream(self._given, progress=False)
            return
        for exchange in chain([self._first], found):
            if _reconstruct(exchange) is not None:
                yield exchange
        _say_problems(found.problems)


def _export_tables(paths: tuple[str, ...], fmt: str, out: Path, select: dict[str, Any], workers: int | None) -> None:
    """`export --format parquet|csv`: the tables, built by `workers` processes."""
    from analyzer import dataset

    given = paths[0] if len(paths) == 1 else list(paths)
    select = {name: value for name, value in select.items() if value is not None}
    try:
        if fmt == "parquet":
            built = dataset.build(given, out, workers=workers, select=select or None)
            _say_problems(built.problems)
            if built.up_to_date:
                click.echo(f"{out} is up to date: {built.exchanges:,} exchange(s), no new or changed capture file")
            elif not built.exchanges:
                raise click.ClickException("no exchanges found in " + ", ".join(paths))
            else:
                click.echo(
                    f"wrote {built.exchanges:,} exchange(s) to {out}: {len(built.written)} of {built.partitions} "
                    f"table file(s) changed; {built.read} capture file(s) read, {built.reused} unchanged since the last run"
                )
            return
        built = dataset.write_csv(given, out, workers=workers, select=select or None)
        _say_problems(built.problems)
        if not built.exchanges:
            raise click.ClickException("no exchanges found in " + ", ".join(paths))
        click.echo(f"wrote {', '.join(p.name for p in built.written)} to {out}")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(_os_error(exc)) from None


def _export(
    exporters: Any,
    exchanges: Iterable[Exchange],
    fmt: str,
    out: Path,
    reasoning: bool | None,
    conversation: str | None,
    select: dict[str, Any] | None,
) -> None:
    try:
        if fmt in ("markdown", "html"):
            write = exporters.markdown if fmt == "markdown" else exporters.html
            written = write(exchanges, out, reasoning=reasoning is not False, conversation=conversation, select=select)
            click.echo(
                f"wrote {len(written)} file(s) to {out}" + (f" (open {out / 'index.html'})" if fmt == "html" else "")
            )
        elif fmt == "jsonl":
            target = exporters.jsonl(exchanges, out / "conversations.jsonl", reasoning=bool(reasoning),
                                     conversation=conversation, select=select)  # fmt: skip
            with target.open("rb") as written:  # counted a block at a time: the file can be larger than memory
                lines = sum(block.count(b"\n") for block in iter(lambda: written.read(1 << 20), b""))
            click.echo(f"wrote {lines} conversation(s) to {target}")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(_os_error(exc)) from None


@contextmanager
def _refusals() -> Iterator[None]:
    """Files a many-file export refused (analyzer.files.RefusedPath): one line each on
    stderr after the export, and exit status 1."""
    from analyzer.files import RefusedPath

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RefusedPath)
        yield
    for other in caught:  # shown as they would have been (`_notes`)
        if not issubclass(other.category, RefusedPath):
            warnings.showwarning(other.message, other.category, other.filename, other.lineno)
    lines = [str(w.message) for w in caught if issubclass(w.category, RefusedPath)]
    for line in lines[:-1]:
        click.echo(f"Error: {line}", err=True)
    if lines:
        raise click.ClickException(lines[-1])


def _os_error(exc: OSError) -> str:
    return f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)


# `sql`'s table shows this many rows unless told (--limit); csv, json and parquet have them all.
SQL_LIMIT = 100


@main.command()
@click.argument("query")
@click.argument("path", default="captures/", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True, help="table: a terminal table (--limit rows); csv, json (an array of objects): "
              "every row, to stdout or --out; parquet: every row, to --out.")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (needed for parquet).")
@click.option("--limit", type=click.IntRange(min=0), default=SQL_LIMIT, show_default=True,
              help="Rows the table shows (0: all); the rows left out are counted.")  # fmt: skip
@click.option("--tables", type=click.Path(file_okay=False), help="When PATH holds captures: build the tables "
              "into this directory and keep them (default: a temporary directory, removed after).")  # fmt: skip
@_WORKERS
@_friendly
def sql(query: str, path: str, fmt: str, out: str | None, limit: int, tables: str | None, workers: int | None) -> None:
    """Run a DuckDB SQL QUERY over the tables exchanges, chunks, messages and tool_calls.

    PATH (default captures/) is a directory of tables, as `export --format parquet` writes
    them, or captures, from which the tables are built first.
    """
    import duckdb

    from analyzer import query as queries

    if fmt == "parquet" and out is None:
        raise click.UsageError("--format parquet needs --out FILE")
    if out is not None and fmt == "table":
        raise click.UsageError("--out is for --format csv, json or parquet")
    try:
        with queries.dataset(path, tables=tables, workers=workers) as found:
            for problem in found.problems:
                click.echo(visible(f"skipped {problem}"), err=True)
            if found.built_from is not None:
                where = f"into {found.directory}" if found.kept else "(temporary: --tables DIR keeps them)"
                click.echo(f"built the tables from {found.built_from:,} exchange(s) in {path} {where}", err=True)
            connection = queries.connect(found.directory, progress=fmt == "table" and sys.stdout.isatty())
            try:
                _sql(queries, connection, query, fmt, out, limit)
            except duckdb.Error as exc:
                raise click.ClickException(queries.one_line(exc, found.directory)) from None
            finally:
                connection.close()
    except duckdb.Error as exc:  # a table file DuckDB cannot read
        raise click.ClickException(queries.one_line(exc)) from None
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(_os_error(exc)) from None


def _sql(queries: Any, connection: Any, query: str, fmt: str, out: str | None, limit: int) -> None:
    """Run `query` and show or write its result as `chatcap sql` was asked."""
    if fmt == "parquet":
        rows = queries.write_parquet(connection, query, out)
        click.echo(f"wrote {rows:,} row(s) to {out}")
        return
    result = connection.execute(query)
    if not result.description:  # a statement with no result (SET, CREATE …)
        return
    if fmt == "table":
        _print(_sql_table(queries, result, limit))
    elif out is None:
        (queries.write_csv if fmt == "csv" else queries.write_json)(result, sys.stdout)
    else:
        from io import TextIOWrapper

        from analyzer.files import open_private, private_dir

        private_dir(Path(out).parent)
        with TextIOWrapper(open_private(out), encoding="utf-8", newline="") as stream:
            rows = (queries.write_csv if fmt == "csv" else queries.write_json)(result, stream)
        click.echo(f"wrote {rows:,} row(s) to {out}")


def _sql_table(queries: Any, result: Any, limit: int) -> Any:
    """A result's first `limit` rows (0: all) as a table, then how many rows there are in all."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    rows = result.fetchmany(limit) if limit else result.fetchall()
    total = len(rows)
    if limit and total == limit:  # count the rest without keeping them
        while len(chunk := result.fetch_df_chunk(64)):
            total += len(chunk)
    if total > len(rows):
        said = f"the first {len(rows):,} of {total:,} rows (--limit 0 shows all; --format csv or json has every row)"
    else:
        said = f"{total:,} row" + ("" if total == 1 else "s")
    table = Table()
    for name, kind, *_ in result.description:
        table.add_column(_cell(name), justify="right" if queries.is_numeric(kind) else "left")
    for row in rows:
        table.add_row(
            *[Text("NULL", style="dim") if value is None else _cell(queries.cell_text(value)) for value in row]
        )
    return Group(table, Text(said, style="dim"))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--to", "to", type=click.Choice(["har", "jsonl"]), required=True, help="har: one HAR 1.2 file; "
              "jsonl: chatcap/1 capture lines (what the addon writes).")  # fmt: skip
@click.option("--out", type=click.Path(), help="File to write; default: out/chatcap.har or out/chatcap.jsonl.")
@_friendly
def convert(paths: tuple[str, ...], to: str, out: str | None) -> None:
    """Turn captures or any loadable file into a HAR file or capture lines (credentials always redacted),
    an exchange at a time: memory holds one, however large the input."""
    from analyzer.export import har

    found = stream(paths[0] if len(paths) == 1 else list(paths))
    target = Path(out or f"out/chatcap.{to}")
    if any(_same_file(target, file) for file in found.files):  # it would be emptied before it is read
        raise click.ClickException(f"{target}: is one of the inputs; write the conversion to another file")
    first = next(found, None)  # nothing is written until there is something to write
    if first is None:
        _say_problems(found.problems)
        raise click.ClickException("no exchanges found in " + ", ".join(paths))
    count = 0

    def counted() -> Iterator[Exchange]:
        nonlocal count
        for exchange in chain([first], found):
            count += 1
            yield exchange

    try:
        written = har.har(counted(), target) if to == "har" else har.jsonl(counted(), target)
    except ValueError as exc:  # analyzer.files.UnsafePath
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(_os_error(exc)) from None
    _say_problems(found.problems)
    click.echo(f"wrote {count} exchange(s) to {written}")


def _same_file(path: Path, other: Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except OSError:  # one of them does not exist (yet)
        return False


@main.command(context_settings={"allow_interspersed_args": False})
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on; 0 picks a free one (printed). "
              "Default: 8080, or a free one when running a COMMAND.")  # fmt: skip
@click.option("--out", "out_dir", default="captures/live", show_default=True, type=click.Path())
@click.option("--browser", is_flag=True, help="Also open Chromium routed through the proxy (throw-away profile).")
@click.option("--url", default="about:blank", show_default=True, help="Page the browser opens.")
@click.option("--headless/--no-headless", default=None, help="Default: headless when there is no display.")
@click.option("--no-redact", is_flag=True, help="Keep credentials in the capture (they are redacted by default).")
@click.option("--filter", "flow_filter", help="mitmproxy filter expression choosing what to record.")
@click.option("--listen-host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback lets other machines use the proxy.")  # fmt: skip
@click.option("--mode", "modes", multiple=True, metavar="MODE",
              help="mitmproxy's proxy mode (repeatable): upstream:http://corp-proxy:3128 (chain to a proxy), "
              "reverse:https://api.openai.com (for clients that cannot use a proxy: set their base URL to it).")  # fmt: skip
@click.option("--set", "options", multiple=True, metavar="KEY=VALUE", callback=lambda ctx, param, values: _options(values),
              help="A mitmproxy option (repeatable), as mitmdump --set takes it.")  # fmt: skip
@click.option("--no-proxy", "no_proxy", default="", metavar="HOSTS",
              help="Hosts the COMMAND reaches without the proxy (its NO_PROXY; default none: a local model "
              "server on localhost is captured too).")  # fmt: skip
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@_friendly
def capture(
    port: int | None,
    out_dir: str,
    browser: bool,
    url: str,
    headless: bool | None,
    no_redact: bool,
    flow_filter: str | None,
    listen_host: str,
    modes: tuple[str, ...],
    options: tuple[str, ...],
    no_proxy: str,
    command: tuple[str, ...],
) -> None:
    """Record LLM traffic live: mitmdump with the chatcap addon (+ a browser routed through it).

    With a COMMAND (`chatcap capture -- COMMAND [ARGS]...`), runs it with the proxy and mitmproxy's
    CA in its environment, stops when it exits, and exits with its status."""
    from analyzer.capture import CaptureError, CommandError, run, start

    # With a program, chatcap's own words go to stderr: the program's stdout stays its own.
    say = (lambda text: click.echo(f"chatcap: {text}", err=True)) if command else click.echo
    if port is None:
        port = 0 if command else 8080
    try:
        running = start(
            port, out_dir, browser=browser, url=url, headless=headless, redact=not no_redact,
            flow_filter=flow_filter, listen_host=listen_host, modes=modes, options=options,
        )  # fmt: skip
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        for warning in _exposure_warnings(running, options):
            click.echo(f"warning: {warning}", err=True)
        if not modes and (upstream := _users_proxy()):
            say(f"your environment names a proxy ({upstream}) that mitmproxy does not use by itself: "
                f"--mode upstream:{upstream} sends the traffic on through it")  # fmt: skip
        if command:
            say(f"capturing {Path(command[0]).name} through {_where(running)} → {running.out}/")
            status = run(running, command, no_proxy=no_proxy)
            if running.proxy.poll() is not None:
                say(f"mitmproxy exited ({running.proxy.returncode}) while the program ran: later calls went nowhere")
        else:
            stopped = _stop_on_interrupt()  # before the instructions: a client may be quick to stop it
            click.echo(running.instructions())
            if running.browser is not None:
                click.echo(f"browser: {url} (profile {running.profile}, mitmproxy's CA trusted for it only)")
            click.echo("Ctrl-C stops.")
            status = _wait_for_interrupt(running, stopped)
    except CommandError as exc:
        click.echo(f"chatcap: {exc}", err=True)
        status = exc.status
    except CaptureError as exc:
        running.stop()
        raise click.ClickException(str(exc)) from None
    finally:
        running.stop()
    _report(running, out_dir, say, full=not command)
    if status:
        raise click.exceptions.Exit(status)


def _options(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if "=" not in value or not value.partition("=")[0].strip():
            raise click.BadParameter(f"{value!r}: give KEY=VALUE, like --set ssl_insecure=true")
    return values


def _where(running: Any) -> str:
    return ", ".join(dict.fromkeys(
        server.url + (f" (reverse proxy to {server.target})" if server.kind == "reverse" else "")
        for server in running.servers
    ))  # fmt: skip


def _users_proxy() -> str | None:
    """The proxy the user's environment already names (a company's), if any."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        if value := os.environ.get(name):
            return value
    return None


def _exposure_warnings(running: Any, options: tuple[str, ...]) -> list[str]:
    """What a listener off loopback exposes, given mitmproxy's block_global and proxyauth."""
    from analyzer.capture import option_value

    exposed = running.exposed()
    if not exposed:
        return []
    where = ", ".join(dict.fromkeys(f"{server.host}:{server.port}" for server in exposed))
    if option_value(options, "block_global") in ("false", "False", "0"):
        who = "every address (block_global=false)"
    else:
        who = "private-network addresses (10.x, 172.16-31.x, 192.168.x, …: mitmproxy's block_global refuses the rest)"
    guard = (
        "a password is required (proxyauth)"
        if option_value(options, "proxyauth")
        else "--set proxyauth=USER:PASSWORD requires a password"
    )
    return [
        f"listening on {where}, not only on this machine: anyone who can reach it from {who} can send "
        f"traffic through this machine, and it is recorded; {guard}"
    ]


def _stop_on_interrupt() -> threading.Event:
    """An event set by Ctrl-C (SIGINT) or SIGTERM, from now on.

    SIGINT gets a handler of its own: a shell without job control starts `chatcap capture &` with
    SIGINT ignored, Python then leaves it ignored, and `kill -INT` would never stop the capture."""
    import signal as signals

    stopped = threading.Event()
    for signum in (signals.SIGINT, signals.SIGTERM):
        signals.signal(signum, lambda *_: stopped.set())
    return stopped


def _wait_for_interrupt(running: Any, stopped: threading.Event) -> int:
    """Until `stopped` is set (0), or mitmdump ends on its own (1)."""
    while not stopped.is_set() and running.proxy.poll() is None:
        time.sleep(0.2)
    if running.proxy.poll() is not None and not stopped.is_set():
        click.echo(f"mitmproxy exited ({running.proxy.returncode}): the capture ends", err=True)
        return 1
    return 0


# The summary table after a program's capture: its last rows and the columns that fit a terminal
# (all of them: `chatcap summary`).
SUMMARY_ROWS = 20
SUMMARY_COLUMNS = ("exchange", "protocol", "model", "status", "TTFT", "duration", "tokens in→out", "tok/s", "cost")


def _report(running: Any, out_dir: str, say: Callable[[str], None], *, full: bool) -> None:
    """How many exchanges the capture recorded and where; after a program, also their summary rows."""
    files = running.new_files()
    count = running.recorded()  # what can be read back: a line a full disk cut short does not count
    say(f"captured {count} exchange(s)" + (f" in {', '.join(map(str, files))}" if files else ""))
    if not count:
        if not full:
            say("nothing recorded: the program must use HTTPS_PROXY (Node's fetch: Node ≥ 22.21 / 24.5), "
                "or run it with --mode reverse:URL and its base URL set to the proxy")  # fmt: skip
        return
    if full:
        click.echo(f"  chatcap summary {out_dir}")
        return
    try:
        read, last = 0, deque(maxlen=SUMMARY_ROWS)  # one exchange at a time: a long session's files can be large
        for exchange in stream(files):
            read += 1
            last.append(exchange)
        shown = list(last)
        title = f"the last {len(shown)} of {read}" if len(shown) < read else ""
        _print(_summary_table(shown, title, columns=SUMMARY_COLUMNS, legend=False), err=True)
    except Exception as exc:  # the program's exit status still goes through
        say(visible(f"could not summarise them: {type(exc).__name__}: {exc}"))
    say(f"every column, and what the marks mean: chatcap summary {out_dir}")


@main.command("addon-path")
def addon_path() -> None:
    """Print the path of the mitmproxy addon, for `mitmdump -s "$(chatcap addon-path)"`."""
    from analyzer.capture import ADDON

    click.echo(str(ADDON))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--speed", default=1.0, show_default=True, type=float, help="Timing scale: 2 plays twice as fast, 0 at once."
)
@click.option("--cert", type=click.Path(exists=True), help="PEM certificate (with --key) to serve HTTPS.")
@click.option("--key", type=click.Path(exists=True), help="PEM private key for --cert.")
@click.option(
    "--cors",
    multiple=True,
    callback=lambda ctx, param, values: _origins(values),
    help="A browser origin allowed to call it, like http://localhost:3000 (repeatable; none by default).",
)
@_friendly
def replay(
    paths: tuple[str, ...], host: str, port: int, speed: float, cert: str | None, key: str | None, cors: tuple[str, ...]
) -> None:
    """Serve recorded streams as an OpenAI-compatible endpoint, with their original timing."""
    from analyzer.replay import is_loopback, serve

    if bool(cert) != bool(key):
        raise click.UsageError("--cert and --key go together")
    exchanges = _load(paths)
    if not is_loopback(host):
        click.echo(
            f"warning: listening on {host}:{port}, not loopback: anyone who can reach this machine can read "
            "every recorded reply",
            err=True,
        )
    try:
        server = serve(exchanges, host, port, speed, (cert, key) if cert and key else None, cors)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except ValueError as exc:  # nothing to replay
        raise click.ClickException(str(exc)) from None
    if cors:
        click.echo(f"browser pages of {', '.join(cors)} may call it")
    click.echo(f"replaying {len(server.matcher.exchanges)} exchange(s) on {server.url}  (Ctrl-C stops)")
    click.echo(f"  OPENAI_BASE_URL={server.url}/v1 OPENAI_API_KEY=replay")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo(f"served {server.served} request(s)")
    finally:
        server.server_close()


def _origins(values: tuple[str, ...]) -> tuple[str, ...]:
    from analyzer.replay import origin

    try:
        return tuple(origin(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--cors'") from None


@main.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--captures",
    type=click.Path(),
    help="Capture file or directory the notebooks read (their CAPTURES); default: what an earlier run set in "
    "DIR, else captures/ in the current directory (where `chatcap capture` records, in captures/live/).",
)
@click.option("--port", type=int, help="Port to serve on; default: JupyterLab's (8888, or the next free one).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[DIR] [JUPYTER_ARGS]...")
@_friendly
def lab(captures: str | None, port: int | None, no_browser: bool, args: tuple[str, ...]) -> None:
    """JupyterLab on chatcap's notebooks, copied into DIR (default: chatcap-lab/ in the current directory).

    The first run copies the notebooks into DIR with CAPTURES set; later runs copy only the
    missing ones and never overwrite a notebook you changed (one you left alone is brought up
    to date). DIR as chatcap's own notebooks/ in a checkout (`make lab`) opens them as they are.
    Arguments after DIR go to `jupyter lab`.
    """
    from analyzer.lab import DEFAULT_DIRECTORY, is_shipped, prepare

    try:
        from jupyterlab.labapp import LabApp
    except ImportError:
        raise click.ClickException("JupyterLab is not installed: pip install 'chatcap[lab]'") from None
    directory, jupyter_args = (args[0], args[1:]) if args and not args[0].startswith("-") else (DEFAULT_DIRECTORY, args)
    try:
        if is_shipped(directory):
            if captures is not None:
                raise click.ClickException(f"{directory} holds chatcap's own notebooks: --captures needs another DIR")
            click.echo(f"{directory}: chatcap's own notebooks, opened as they are", err=True)
        else:
            for line in prepare(directory, captures).report():
                click.echo(line, err=True)
    except ValueError as exc:  # analyzer.files.UnsafePath
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # a file that cannot be written, or the package's notebooks missing
        raise click.ClickException(_os_error(exc)) from None
    options = [f"--ServerApp.root_dir={Path(directory).resolve()}"]
    options += [f"--ServerApp.port={port}"] if port is not None else []
    options += ["--ServerApp.open_browser=False"] if no_browser else []
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in jupyter_args:
        # Containers and CI machines often run as root, which Jupyter refuses unless told.
        click.echo("running as root: starting JupyterLab with --allow-root", err=True)
        options.append("--allow-root")
    LabApp.launch_instance(argv=[*options, *jupyter_args])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
