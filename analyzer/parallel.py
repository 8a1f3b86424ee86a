"""The four frames of many captures on every core: `analyzer.parallel.frames_of(paths)`.

    built = analyzer.parallel.frames_of("captures/", workers=None)   # None: every core
    built.frames["exchanges"], built.problems, built.exchanges

Each file is one task (a large JSON-lines file, a few: pieces of whole lines): a worker process
loads it, reconstructs its exchanges and returns only their `frames.parts` (plain values,
small beside the exchanges); the parent threads the parts of every file together
(`frames.assemble`, a walk in time order that needs them all). Tasks are handed out
largest first, so one big file does not finish last alone; the frames
are the same whatever the number of workers, and the same as `frames.all_frames` of
`analyzer.load(paths)`. A file that cannot be read is a problem, as in `load`; a worker
that dies (killed, out of memory, a crash in a library) costs the file it was reading
only: the files it took down with it are read again, and a file that kills its worker when
read alone is reported and skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import multiprocessing
import os
import pickle
import re
import sys
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from analyzer import frames, ingest
from analyzer.cost import Prices
from analyzer.errors import LoadError, NoExchangesFound
from analyzer.files import append_private, open_private, sha256_of
from analyzer.ingest import (
    PROBLEMS_PER_FILE,
    Paths,
    Problem,
    byte_bar,
    end_bar,
    file_exchanges,
    har_pieces,
    line_pieces,
    piece_exchanges,
    sources,
)
from analyzer.ingest import _size as file_size
from analyzer.model import Exchange

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Built", "Done", "collector_paused", "context", "cores", "frames_of", "read", "read_file"]


def cores() -> int:
    """The cores this process may run on (what `workers=None` uses)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class Built:
    """What `frames_of` made: the frames, what could not be loaded, and from how many exchanges."""

    frames: dict[str, pd.DataFrame]
    problems: list[Problem] = field(default_factory=list)
    exchanges: int = 0


@dataclass
class Done:
    """One file's share: its parts (one batch, or one per piece of a file read in pieces;
    none when nothing of it could be read), its problems and how many exchanges they hold."""

    parts: list[frames.Parts]
    problems: list[Problem]
    exchanges: int
    failure: Problem | None = None  # what stopped the reading (`read_file`), if anything did
    sha256: str | None = None  # of the file's bytes, when `read(digest=True)` read it whole


class _Task(NamedTuple):
    """A file to read, or a piece of one (`ingest.line_pieces`, `ingest.har_pieces`: start, end,
    number of its first line or entry)."""

    file: Path
    label: str
    piece: tuple[int, int, int] | None = None
    spool: Path | None = None  # the file its batches are pickled into (`read(spools=...)`)


class Spooled(NamedTuple):
    """A batch of parts a worker pickled into a file (`read(spools=...)`), in its share's place."""

    name: str  # the file's
    offset: int  # where the batch starts in it
    exchanges: int

    def renamed(self, names: dict[str, str]) -> Spooled:
        return self  # the batch is in the file as made: its reader renumbers it


def load_spooled(path: Path, offset: int) -> frames.Parts:
    """A batch a worker pickled into `path` (`Spooled`), read back."""
    with path.open("rb") as handle:
        handle.seek(offset)
        batch = pickle.load(handle)  # our own file (the caller's directory, which only it can write)
    if not isinstance(batch, frames.Parts):
        raise ValueError(f"{path}: not a batch of parts")
    return batch


class _Spool:
    """A task's batches pickled into its file as they are made, in a worker: `Spooled` returned."""

    def __init__(self, path: Path) -> None:
        self.path = path
        open_private(path).close()  # a file an earlier attempt wrote starts again, empty

    def __call__(self, batch: frames.Parts, exchanges: int) -> Spooled:
        with append_private(self.path) as handle:
            offset = handle.seek(0, os.SEEK_END)
            pickle.dump(batch, handle, protocol=pickle.HIGHEST_PROTOCOL)
        return Spooled(self.path.name, offset, exchanges)


def frames_of(
    paths: Paths,
    *,
    workers: int | None = None,
    redact: bool = False,
    prices: Prices | None = None,
    tables: Collection[str] = frames.TABLES,
    progress: bool | None = None,
) -> Built:
    """The frames in `tables` of the exchanges in `paths` (as `load` finds them), each file
    read by one of `workers` processes (None: every core; 1: in this process), a large
    JSON-lines file in pieces by several. `redact`: credentials replaced first, as exports
    do. A single file given alone that cannot be read raises `LoadError`, as `load` does;
    anything else is in `problems`."""
    files, alone, problems = sources(paths)
    with collector_paused():
        done = read(files, alone=alone, workers=workers, redact=redact, prices=prices, tables=tables, progress=progress)
        for result in done:
            problems += result.problems
        batches = [parts for result in done for parts in result.parts]
        return Built(frames.assemble(batches, tables=tables, consume=True), problems, sum(result.exchanges for result in done))  # fmt: skip


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (and on again after, if it was on), workers
    forked meanwhile included. Reading captures into tables makes next to no reference cycles
    (a few hundred objects in 32 MB of captures; reference counting frees everything else),
    while each full pass of the collector walks every part and frame held: a dozen passes
    over gigabytes, about 10 s of a 2 GB build (benchmarks/README.md, "Scale")."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def read(
    files: list[tuple[Path, str]],
    *,
    alone: bool = False,
    workers: int | None = None,
    redact: bool = False,
    prices: Prices | None = None,
    tables: Collection[str] = frames.TABLES,
    progress: bool | None = None,
    cells: bool = False,
    digest: bool = False,
    spools: list[Path] | None = None,
    hold: Callable[[int, int, Done], list[Any]] | None = None,
) -> list[Done]:
    """Each file's share (`Done`), in the order of `files`: (path, label) pairs as
    `ingest.sources` gives them; `alone`: a single file given alone, whose failure raises (in
    a worker of its own when it is as large as a piece, so this process keeps nothing of the
    reading; else here).
    A JSON-lines file of two `ingest.PIECE_BYTES` or more is cut at line ends into pieces read
    apart (on as many workers as there are); its exchanges are numbered and its problems said as if
    it were read whole. `cells`: the columns `CELLS` names (the chunks' and messages' text)
    made table cells (`export.table_cell`: redacted) by the workers, the bulk of what writing
    the tables costs.
    `digest`: each file read whole also hashed by its worker (`Done.sha256`). `spools`: for each
    file, the stem of the files its tasks' batches are pickled into as they are made
    (`{stem}-{piece}.pickle`), `Done.parts` holding each as `Spooled`.
    `hold(file, piece, share)`: called in this process with each task's share as it comes (the
    file's and the piece's place), it returns what `Done.parts` keeps instead of the parts
    (things with the `Parts.renamed` method), so a caller can let them go at once."""
    workers = cores() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    tables = tuple(tables)
    tasks: list[_Task] = []
    of_file: list[list[int]] = []  # each file's tasks
    of_task: list[tuple[int, int]] = []  # each task's file and piece
    total = sum(file_size(file) for file, _ in files)
    for file, label in files:
        # Pieces of PIECE_BYTES or more, read apart (a worker makes its parts a batch at a time).
        # A HAR file's cuts cost a read of its structure, so it is cut only where that gains time:
        # when it is more than a worker's share of the input (alone, or beside smaller files).
        pieces = line_pieces(file, file_size(file) // ingest.PIECE_BYTES)
        if pieces is None and workers > 1 and file_size(file) * workers > total:
            pieces = har_pieces(file, file_size(file) // ingest.PIECE_BYTES, progress)
        of_file.append(list(range(len(tasks), len(tasks) + len(pieces or [None]))))
        of_task += [(len(of_file) - 1, piece) for piece in range(len(pieces or [None]))]
        spool = spools[len(of_file) - 1] if spools is not None else None
        tasks += [
            _Task(file, label, piece, spool and spool.with_name(f"{spool.name}-{n}.pickle"))
            for n, piece in enumerate(pieces or [None])
        ]
    done: list[Done | None] = [None] * len(tasks)
    # A lone task is read here unless it is as large as a piece: read in a worker, what its
    # reading leaves allocated is given back when the worker ends, not kept by this process.
    here = workers == 1 or not tasks or (len(tasks) == 1 and _task_size(tasks[0]) < ingest.PIECE_BYTES)
    with _Progress(tasks, progress) as bar:
        if here:
            for at, task in enumerate(tasks):
                share = _read(task, alone, redact, prices, tables, cells, digest, reading=bar.reading(at))
                done[at] = _held(share, at, of_task, hold)
                bar.finished(at)
        else:
            pool = _pooled(tasks, min(workers, len(tasks)), bar, alone, redact, prices, tables, cells, digest)
            for at, result in pool:
                done[at] = _held(result, at, of_task, hold)
                bar.finished(at)
    found = []
    for (file, label), at in zip(files, of_file, strict=True):
        shares = [done[n] for n in at]
        assert all(share is not None for share in shares)
        found.append(shares[0] if len(at) == 1 else _whole(file, label, shares, alone))  # type: ignore[arg-type]
    return found


def _held(
    done: Done, at: int, of_task: list[tuple[int, int]], hold: Callable[[int, int, Done], list[Any]] | None
) -> Done:
    if hold is not None:
        done.parts = hold(*of_task[at], done)
    return done


def _read(
    task: _Task,
    alone: bool,
    redact: bool,
    prices: Prices | None,
    tables: tuple[str, ...],
    cells: bool = False,
    digest: bool = False,
    reading: Callable[[int], None] | None = None,
) -> Done:
    """A task's share (in a worker, or in this process): `read_file`, what stopped the reading
    (if anything did) raised for a file given alone, else one more problem."""
    done = read_file(task.file, task.label, piece=task.piece, alone=alone, redact=redact, prices=prices,
                     tables=tables, cells=cells, keep=_Spool(task.spool) if task.spool else None,
                     reading=reading)  # fmt: skip
    if done.failure is not None:
        done.problems.append(done.failure)
        done.failure = None
    if digest and task.piece is None:
        done.sha256 = sha256_of(task.file)
    return done


# In a worker: the parent's `_Progress.slots` (shared memory, given to the worker as it starts),
# where the worker says how far into its task's file it has read.
_slots: Any = None


def _share(slots: Any) -> None:
    global _slots
    _slots = slots


def _read_pickled(task: _Task, at: int, *args: Any) -> bytes:
    """`_read` in a worker, its share pickled there; how far it has read in `_slots[at]`."""
    reading = None if _slots is None else functools.partial(_slots.__setitem__, at)
    return pickle.dumps(_read(task, *args, reading=reading), protocol=pickle.HIGHEST_PROTOCOL)


def read_file(
    path: Path,
    label: str,
    *,
    source: str | None = None,
    piece: tuple[int, int, int] | None = None,
    alone: bool = False,
    redact: bool = False,
    prices: Prices | None = None,
    tables: Collection[str] = frames.TABLES,
    cells: bool = False,
    keep: Callable[[frames.Parts, int], Any] | None = None,
    reading: Callable[[int], None] | None = None,
) -> Done:
    """One file's share, or one piece's (`ingest.line_pieces`, `ingest.har_pieces`), read as
    `load` reads a file of a directory: each exchange named `label#n` (its `source` set to
    `source` when given: a file read from a copy), redacted when asked, and reconstructed, one
    at a time. An exchange that does not reconstruct costs itself only; what stops the reading
    (a read error, a bug met by odd input) is `Done.failure`, the exchanges before it kept, or
    raised when `alone`. Problems naming `path` name `source`. The parts are made a batch at a
    time (`BATCH_BYTES`, `BATCH_EXCHANGES`); `keep(parts, exchanges)`: what `Done.parts` holds
    of each instead (a worker writes them into a file, so that neither it nor its parent holds
    them all).
    `reading(offset)`: told now and then how far into the file (or the piece) the reading is."""
    named = source or str(path)
    problems: list[Problem] = []
    failure: Problem | None = None
    count = 0
    if piece is None:
        exchanges = file_exchanges(path, label, problems, reading)
    else:
        exchanges = piece_exchanges(path, label, *piece, problems, reading)

    def reconstructed() -> Iterator[Exchange]:
        nonlocal count, failure
        try:
            for exchange in exchanges:
                if source is not None:
                    exchange.source = source
                if redact:
                    from analyzer.export.redaction import redacted

                    exchange = redacted(exchange)
                try:
                    exchange.reconstruct()
                except Exception as exc:  # a bug for one exchange must not cost the others
                    problems.append(Problem(exchange.id, f"could not reconstruct: {type(exc).__name__}: {exc}"))
                    continue
                count += 1
                yield exchange
        except LoadError as exc:  # the exchanges read before it stay, as `load` keeps them
            if alone:
                raise
            failure = Problem(named, exc.reason, exc.position)

    stream = reconstructed()
    more = True

    def batch() -> Iterator[Exchange]:
        """The next exchanges of `stream`, up to `BATCH_BYTES` of records or `BATCH_EXCHANGES`."""
        nonlocal more
        size = taken = 0
        for exchange in stream:
            yield exchange
            size, taken = size + len(exchange.raw), taken + 1
            if size >= BATCH_BYTES or taken >= BATCH_EXCHANGES:
                return
        more = False

    batches: list[Any] = []
    try:
        while more:
            before = count
            parts = frames.parts(batch(), prices=prices, tables=tables)
            if count > before:
                if cells:
                    _made_cells(parts)
                batches.append(parts if keep is None else keep(parts, count - before))
    except LoadError:
        raise
    except Exception as exc:  # a bug met by one file costs that file, not the batch
        if alone:
            raise LoadError(named, f"could not be read: {type(exc).__name__}: {exc}") from None
        batches, count = [], 0
        failure = Problem(named, f"could not be read: {type(exc).__name__}: {exc}")
    problems = [dataclasses.replace(p, source=named) if p.source == str(path) else p for p in problems]
    return Done(batches, problems, count, failure)


# A file's exchanges are made into parts a batch at a time (`read_file`): what a worker, and the
# process it hands the batch to, hold at once.
BATCH_BYTES = 16 * 1024 * 1024  # of the exchanges' records as read
BATCH_EXCHANGES = 2000


def _made_cells(parts: frames.Parts) -> None:
    """The columns `CELLS` names made table cells (`export.table_cell`: redacted), each distinct
    text of a column once a batch (a stream's pieces repeat: ` the`, `,`, the chunk kinds)."""
    from analyzer.export import column_cells, each_text_once

    for name in CELLS["chunks"]:
        parts.chunks[name] = column_cells(parts.chunks[name], frames._CHUNK_DTYPES[name])
    cells = {name: each_text_once() for name in CELLS["messages"]}
    parts.message_values = [
        {name: None if value is None else cells[name](value) for name, value in values.items()}
        for values in parts.message_values
    ]


# The columns `read(cells=True)` makes table cells, by table: the chunks' columns of text (as
# `export.table_values` finds them: string and category dtypes) but the exchange's id, which
# stays the key its rows are dated and chosen by until they are written, and the messages' own.
CELLS = {
    "chunks": [
        name
        for name, dtype in frames._CHUNK_DTYPES.items()
        if dtype in ("string", "category", "object") and name != "exchange"
    ],
    "messages": list(frames.message_values({})),
}


def _whole(file: Path, label: str, pieces: list[Done], alone: bool) -> Done:
    """A file read in pieces as if read whole: exchanges numbered on from piece to piece, bad
    lines or entries named up to `PROBLEMS_PER_FILE` and the rest counted, the entries left out
    added up, no exchange at all a problem."""
    parts, problems, bad, more, offset = [], [], [], 0, 0
    unit = "line"
    left_out = entries = 0
    for piece in pieces:
        names = {f"{label}#{n}": f"{label}#{n + offset}" for n in range(1, piece.exchanges + 1)}
        parts += [batch.renamed(names) for batch in piece.parts]
        for problem in piece.problems:
            ours = problem.source == str(file)
            if ours and (at := _BAD_AT.match(problem.position)):
                bad.append(problem)
                unit = at.group(1)
            elif ours and (counted := _MORE.match(problem.reason)):
                more += int(counted.group(1).replace(",", ""))
                unit = "line" if counted.group(2).startswith("line") else "entry"
            elif ours and (counted := _LEFT_OUT.match(problem.reason)):
                left_out += int(counted.group(1))
                entries += int(counted.group(2))
            else:
                problems.append(dataclasses.replace(problem, source=names.get(problem.source, problem.source)))
        offset += piece.exchanges
    more += max(0, len(bad) - PROBLEMS_PER_FILE)
    problems = bad[:PROBLEMS_PER_FILE] + problems
    if more:
        units = "entries" if unit == "entry" else "lines"
        problems.append(Problem(str(file), f"... and {more:,} more bad {units if more > 1 else unit}"))
    if left_out:
        problems.append(Problem(str(file), f"{left_out} of {entries} entries are not LLM API calls: left out"))
    if not offset:
        if bad:  # as the readers say it: a capture's last bad line, a HAR file's last bad entry
            reason = bad[-1].reason if unit == "line" else f"no exchanges found: {bad[-1].reason}"
        elif entries:
            reason = f"no exchanges found: none of its {entries} entries is an LLM API call"
        else:
            reason = "no exchanges found"
        if alone:
            raise NoExchangesFound(str(file), reason)
        problems.append(Problem(str(file), reason))
    return Done(parts, problems, offset)


# What a piece says of its file (`_whole`): a bad line or entry, how many more there were, how
# many of its entries were left out.
_BAD_AT = re.compile(r"(line|entry) \d+$")
_MORE = re.compile(r"\.\.\. and ([\d,]+) more bad (lines?|entry|entries)$")
_LEFT_OUT = re.compile(r"(\d+) of (\d+) entries are not LLM API calls: left out$")


def _pooled(
    tasks: list[_Task],
    workers: int,
    bar: _Progress,
    alone: bool,
    redact: bool,
    prices: Prices | None,
    tables: tuple[str, ...],
    cells: bool,
    digest: bool,
) -> Iterator[tuple[int, Done]]:
    """Each task's share as workers finish it (in any order), by its position in `tasks`.

    A worker that dies breaks the whole pool, and every task it had not finished fails with
    it: those are read again in a new pool, and if that breaks too, each alone, so only a
    file (or piece) that kills its worker by itself is lost. `alone`: what would be lost (or
    could not be read, as in `_read`) raises `LoadError` instead. `bar` is shown how far the
    workers have read while they read."""
    by_size = sorted(range(len(tasks)), key=lambda at: -_task_size(tasks[at]))
    pending = by_size
    for attempt in ("together", "again", "alone"):
        broken: list[int] = []
        groups = [[at] for at in pending] if attempt == "alone" else [pending]
        for group in groups:
            with ProcessPoolExecutor(
                min(workers, len(group)), mp_context=context(), initializer=_share, initargs=(bar.slots,)
            ) as pool:
                futures: dict[Future[bytes], int] = {
                    pool.submit(_read_pickled, tasks[at], at, alone, redact, prices, tables, cells, digest): at
                    for at in group
                }
                try:
                    yield from _as_read(futures, bar, broken, tasks, alone)
                except LoadError:  # a file given alone could not be read: what is queued is not read
                    pool.shutdown(cancel_futures=True)
                    raise
        if not broken:
            return
        pending = sorted(broken, key=by_size.index)
    died = "the worker process reading it died (killed, or out of memory)"
    for at in pending:
        yield at, _lost(tasks[at].file, died if alone else f"{died}; file skipped", alone)


def _as_read(
    futures: dict[Future[bytes], int], bar: _Progress, broken: list[int], tasks: list[_Task], alone: bool
) -> Iterator[tuple[int, Done]]:
    """Each task's share as its worker finishes (`futures`: the tasks' places), the bar moved
    meanwhile; the places of those a broken pool took down go to `broken`."""
    waiting: set[Future[bytes]] = set(futures)
    while waiting:
        finished, waiting = wait(waiting, timeout=_POLL_S, return_when=FIRST_COMPLETED)
        bar.poll()
        while finished:
            future = finished.pop()
            at = futures.pop(future)  # its share let go once taken
            try:
                share = future.result()
            except BrokenProcessPool:
                broken.append(at)
            except LoadError:  # raised by `_read` for a file given alone
                raise
            except Exception as exc:  # pickling a value the parts hold, say: that task only
                yield at, _lost(tasks[at].file, f"could not be read: {type(exc).__name__}: {exc}", alone)
            else:
                yield at, pickle.loads(share)  # made by our own worker, a moment ago


# How often the parent looks at how far the workers have read, while it waits for them.
_POLL_S = 0.2


def _lost(file: Path, reason: str, alone: bool) -> Done:
    if alone:
        raise LoadError(str(file), reason)
    return Done([], [Problem(str(file), reason)], 0)


def context() -> Any:
    """Worker processes are forks of this one where the platform forks (Linux; Python 3.11's
    default there): a fork imports nothing again, so a script without an `if __name__ ==
    "__main__"` guard, or one read from stdin, works too. A worker only reads its file and
    returns: it takes no lock a thread of this process (a progress bar's) may hold."""
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _task_size(task: _Task) -> int:
    return file_size(task.file) if task.piece is None else task.piece[1] - task.piece[0]


class _Progress:
    """A progress bar over the bytes read (tqdm; shown after half a second, by default only in
    a terminal or a Jupyter kernel, as `load`'s): of the tasks finished, and of a whole file as
    far as its reader has gone, so that one large file moves the bar too."""

    def __init__(self, tasks: list[_Task], enabled: bool | None) -> None:
        self.sizes = [_task_size(task) for task in tasks]
        files = len({task.file for task in tasks})
        self.bar = byte_bar(sum(self.sizes), f"reading {files:,} file(s)", enabled) if tasks else None
        # How far into its file each task's reader has gone, in bytes, written by the workers
        # (`_share`: memory shared with them, only while a bar is shown); a task read in this
        # process moves the bar itself (`reading`).
        self.slots = context().Array("q", len(tasks), lock=False) if self.bar is not None else None
        self.shown = [0] * len(tasks)  # what the bar counts of each task

    def reading(self, at: int) -> Callable[[int], None] | None:
        """For task `at` read in this process: the bar moved as the reading goes."""
        if self.bar is None:
            return None
        return functools.partial(self._moved, at)

    def finished(self, at: int) -> None:
        if self.bar is not None:
            self._moved(at, self.sizes[at])

    def poll(self) -> None:
        """The bar moved on to where the workers' readers are."""
        if self.slots is not None:
            for at, offset in enumerate(self.slots):
                self._moved(at, offset)

    def _moved(self, at: int, offset: int) -> None:
        offset = min(offset, self.sizes[at])
        if offset > self.shown[at]:
            self.bar.update(offset - self.shown[at])  # tqdm redraws at most ~10 times a second
            self.shown[at] = offset

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        end_bar(self.bar, finished=kind is None)
