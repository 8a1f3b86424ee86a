"""The four frames of many captures on every core: `analyzer.parallel.frames_of(paths)`.

    built = analyzer.parallel.frames_of("captures/", workers=None)   # None: every core
    built.frames["exchanges"], built.problems, built.exchanges

Each file is one task: a worker process loads it, reconstructs its exchanges and returns only
their `frames.parts` (plain values, small beside the exchanges); the parent threads the
parts of every file together (`frames.assemble`, a walk in time order that needs them all).
Files are handed out largest first, so one big file does not finish last alone; the frames
are the same whatever the number of workers, and the same as `frames.all_frames` of
`analyzer.load(paths)`. A file that cannot be read is a problem, as in `load`; a worker
that dies (killed, out of memory, a crash in a library) costs the file it was reading
only: the files it took down with it are read again, and a file that kills its worker when
read alone is reported and skipped.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer import frames
from analyzer.cost import Prices
from analyzer.errors import LoadError
from analyzer.ingest import Paths, Problem, file_exchanges, sources
from analyzer.model import Exchange

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Built", "Done", "cores", "frames_of", "read"]


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
    """One file's share: its parts (None when nothing of it could be read), its problems and
    how many exchanges the parts hold."""

    parts: frames.Parts | None
    problems: list[Problem]
    exchanges: int


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
    read by one of `workers` processes (None: every core; 1: in this process). `redact`:
    credentials replaced first, as exports do. A single file given alone that cannot be read
    raises `LoadError`, as `load` does; anything else is in `problems`."""
    files, alone, problems = sources(paths)
    done = read(files, alone=alone, workers=workers, redact=redact, prices=prices, tables=tables, progress=progress)
    batches = []
    count = 0
    for result in done:
        problems += result.problems
        count += result.exchanges
        if result.parts is not None:
            batches.append(result.parts)
    return Built(frames.assemble(batches, tables=tables), problems, count)


def read(
    files: list[tuple[Path, str]],
    *,
    alone: bool = False,
    workers: int | None = None,
    redact: bool = False,
    prices: Prices | None = None,
    tables: Collection[str] = frames.TABLES,
    progress: bool | None = None,
) -> list[Done]:
    """Each file's share (`Done`), in the order of `files`: (path, label) pairs as
    `ingest.sources` gives them; `alone`: a single file given alone, whose failure raises."""
    workers = cores() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    tables = tuple(tables)
    done: list[Done | None] = [None] * len(files)
    with _Progress(files, progress) as bar:
        if workers == 1 or len(files) < 2:
            for at, (file, label) in enumerate(files):
                done[at] = _read(file, label, alone, redact, prices, tables)
                bar.finished(at)
        else:
            for at, result in _pooled(files, min(workers, len(files)), redact, prices, tables):
                done[at] = result
                bar.finished(at)
    assert all(result is not None for result in done)
    return done  # type: ignore[return-value]


def _read(file: Path, label: str, alone: bool, redact: bool, prices: Prices | None, tables: tuple[str, ...]) -> Done:
    """One file's parts (in a worker, or in this process). A reconstruction that fails costs
    its exchange only, as in `chatcap export`."""
    problems: list[Problem] = []
    count = 0

    def reconstructed() -> Iterator[Exchange]:
        nonlocal count
        for exchange in file_exchanges(file, label, problems):
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

    try:
        parts = frames.parts(reconstructed(), prices=prices, tables=tables)
    except LoadError as exc:
        if alone:
            raise
        return Done(None, [*problems, Problem(str(file), exc.reason, exc.position)], 0)
    return Done(parts, problems, count)


def _pooled(
    files: list[tuple[Path, str]], workers: int, redact: bool, prices: Prices | None, tables: tuple[str, ...]
) -> Iterator[tuple[int, Done]]:
    """Each file's share as workers finish it (in any order), by its position in `files`.

    A worker that dies breaks the whole pool, and every file it had not finished fails with
    it: those are read again in a new pool, and if that breaks too, each alone, so only a
    file that kills its worker by itself is lost."""
    by_size = sorted(range(len(files)), key=lambda at: -_size(files[at][0]))
    pending = by_size
    for attempt in ("together", "again", "alone"):
        broken: list[int] = []
        groups = [[at] for at in pending] if attempt == "alone" else [pending]
        for group in groups:
            with ProcessPoolExecutor(min(workers, len(group)), mp_context=_context()) as pool:
                futures: dict[Future[Done], int] = {
                    pool.submit(_read, *files[at], False, redact, prices, tables): at for at in group
                }
                for future in as_completed(futures):
                    at = futures[future]
                    try:
                        yield at, future.result()
                    except BrokenProcessPool:
                        broken.append(at)
                    except Exception as exc:  # pickling a value the parts hold, say: that file only
                        yield at, _lost(files[at][0], f"could not be read: {type(exc).__name__}: {exc}")
        if not broken:
            return
        pending = sorted(broken, key=by_size.index)
    for at in pending:
        yield at, _lost(files[at][0], "the worker process reading it died (killed, or out of memory); file skipped")


def _lost(file: Path, reason: str) -> Done:
    return Done(None, [Problem(str(file), reason)], 0)


def _context() -> Any:
    """Worker processes are forks of this one where the platform forks (Linux; Python 3.11's
    default there): a fork imports nothing again, so a script without an `if __name__ ==
    "__main__"` guard, or one read from stdin, works too. A worker only reads its file and
    returns: it takes no lock a thread of this process (a progress bar's) may hold."""
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0


class _Progress:
    """A progress bar over the bytes of the files finished (tqdm; shown after half a second,
    by default only in a terminal or a Jupyter kernel, as `load`'s)."""

    def __init__(self, files: list[tuple[Path, str]], enabled: bool | None) -> None:
        from analyzer.ingest import PROGRESS_DELAY_S

        if enabled is None:
            enabled = sys.stderr.isatty() or "ipykernel" in sys.modules
        self.sizes = [_size(file) for file, _ in files]
        self.bar: Any = None
        if enabled and files:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=sum(self.sizes), unit="B", unit_scale=True, desc=f"reading {len(files):,} file(s)",
                delay=PROGRESS_DELAY_S, leave=False, file=sys.stderr,
            )  # fmt: skip

    def finished(self, at: int) -> None:
        if self.bar is not None:
            self.bar.update(self.sizes[at])

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
