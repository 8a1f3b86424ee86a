"""The four tables as a Parquet dataset that grows with the captures: `chatcap export --format
parquet --out DIR`, `analyzer.dataset.build(paths, out_dir)`.

    DIR/exchanges/date=2025-10-01/part-0.parquet      one directory per table, Hive-partitioned
    DIR/chunks/date=__HIVE_DEFAULT_PARTITION__/…       by the UTC date the row's exchange started
    DIR/_chatcap/manifest.json                         what was read, and what was written
    DIR/_chatcap/parts/…                               each input file's share, kept for next time

The columns, their types and meaning are in docs/schema.md; every file carries the schema
version (`chatcap.schema_version` in its key-value metadata). The Arrow schema is fixed, not
guessed from the data, so every partition of a table has the same types (a column that is
empty in one day's rows is still text) and DuckDB, Spark, polars and pyarrow read the
directory as one table.

Re-running on a growing capture directory reads only files it has not seen: each input
file's share of the tables (`frames.parts`: what its exchanges decide alone) is kept under
`_chatcap/parts/`, keyed by the file's label and path, and reused while the file's size and
modification time (or, when those changed, its SHA-256) are what the manifest says. The
threads are then walked again over every file's share, since a new exchange can continue a
conversation of an old file or answer its tool call, and a partition is written only when
its bytes changed. With nothing new, nothing is read, reconstructed or written.

Memory does not grow with the captures' text. Each batch of parts (a file, or a piece of a
large capture: `ingest.PIECE_BYTES`) goes into its file's share as it comes, and only what the
threads need of it stays in memory (`frames.Assembly`: each exchange's start, session, replies
and messages' digests); its messages' values, assistant messages and tool results wait in a
temporary file (`spill.Spill`). The rows are then made a batch at a time, read back from the
shares, and each date's rows wait in another temporary file until their partition is written,
a row group at a time.

The kept shares are pickles: they are loaded only from a `_chatcap/parts/` directory this
user owns that no one else can write to, as chatcap writes it (0700, files 0600).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from analyzer import frames
from analyzer.export import column_cells, table_values
from analyzer.export.transcript import passes
from analyzer.files import (
    UnsafePath,
    append_private,
    open_private,
    private_dir,
    refused,
    replace_private,
    sha256_of,
    symlink_refused,
)
from analyzer.ingest import Paths, Problem, sources, status
from analyzer.model import as_utc
from analyzer.parallel import CELLS, Done, collector_paused, load_spooled, read
from analyzer.spill import Spill

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["SCHEMA_VERSION", "Built", "Busy", "build", "chosen", "schema_of", "write", "write_csv"]

# docs/schema.md, "Schema version": raised by any change to the columns, types, units, meanings or layout.
SCHEMA_VERSION = 1
VERSION_KEY = b"chatcap.schema_version"
STATE = "_chatcap"
NO_DATE = "__HIVE_DEFAULT_PARTITION__"
# The kept shares' own format (parallel.Done, frames.Parts, the cells the workers make) and
# the manifest's: raise it when they change, and every file is read again.
_FORMAT = 8


@dataclass
class Built:
    """What `build` did."""

    directory: Path
    exchanges: int = 0  # in the dataset
    problems: list[Problem] = field(default_factory=list)
    read: int = 0  # input files read (new or changed)
    reused: int = 0  # input files whose kept share was used
    written: list[Path] = field(default_factory=list)  # partition files written (changed)
    removed: list[Path] = field(default_factory=list)  # partition files of rows no longer there
    partitions: int = 0  # partition files in the dataset
    up_to_date: bool = False  # nothing new: nothing read, reconstructed or written


def build(
    paths: Paths,
    out_dir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    select: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> Built:
    """The tables of the captures at `paths` (credentials redacted) written into `out_dir` as
    a dataset, reading only the files not seen there before (see the module docstring), with
    `workers` processes (None: every core). `select`: only the rows of the exchanges `chosen`
    picks with these arguments (threaded among all, so conversation ids never depend on it);
    none matching is a `ValueError`; another build writing `out_dir` meanwhile, `Busy`."""
    out = private_dir(out_dir)
    state = private_dir(out / STATE)
    with _alone(out, state), collector_paused():
        return _build(paths, out, state, workers, select, progress)


def write_csv(
    paths: Paths,
    out_dir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    select: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> Built:
    """The four tables of the captures at `paths` (credentials redacted) as CSV files in
    `out_dir` (`chatcap export --format csv`; `export.tables` writes the same bytes), made a
    batch at a time as the dataset is (see the module docstring), so memory does not grow
    with the captures' text. The files' shares are kept in a temporary directory (0700) until
    the tables are written. `select` as for `build`."""
    out = private_dir(out_dir)
    files, alone, problems = sources(paths)
    with tempfile.TemporaryDirectory(prefix="chatcap-") as scratch, collector_paused():
        store = private_dir(Path(scratch) / "parts")
        entries = [_entry(file, label) for file, label in files]
        tables = _Csv(out, frames.TABLES)
        count, found, read_files = _made(
            files, alone, entries, [False] * len(files), store, tables, workers, select, progress
        )
        written = tables.finish() if count else []
    return Built(out, count, problems + found, read_files, 0, written, [], len(written))


class Busy(ValueError):
    """Another chatcap is writing the same dataset."""


@contextlib.contextmanager
def _alone(out: Path, state: Path) -> Iterator[None]:
    """This build the only one writing `out` while it runs: two at once (a nightly job that
    overran, one started by hand) would each write a manifest over the other's partitions.
    The second is refused at once (`Busy`), naming the first one's process. The lock is the
    kernel's (flock on `_chatcap/lock`), so a build that was killed holds none."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    lock = state / "lock"
    try:
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise symlink_refused(lock) from None
        raise
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise Busy(
                f"{out}: another chatcap (process {holder}) is writing this dataset; run again when it has finished"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)


def _build(
    paths: Paths,
    out: Path,
    state: Path,
    workers: int | None,
    select: dict[str, Any] | None,
    progress: bool | None,
) -> Built:
    store = private_dir(state / "parts")
    manifest = _manifest(state)
    files, alone, problems = sources(paths)
    known = {(entry["label"], entry["path"]): entry for entry in manifest.get("files", [])}
    entries = [_entry(file, label) for file, label in files]
    unchanged = [_unchanged(store, known.get((e["label"], e["path"])), e) for e in entries]
    options = {"select": {k: str(v) for k, v in select.items() if v is not None} if select else None}
    same_input = [(e["label"], e["path"], e["size"], e["mtime_ns"]) for e in entries] == [
        (e["label"], e["path"], e["size"], e["mtime_ns"]) for e in manifest.get("files", [])
    ]
    if all(unchanged) and same_input and manifest.get("options") == options and not problems:
        # Nothing new: not even the kept shares are loaded (the problems they hold are in the manifest).
        said = [Problem(*problem) for entry in entries for problem in entry["problems"]]
        partitions = len(manifest.get("partitions", {}))
        return Built(out, manifest.get("exchanges", 0), said, 0, len(files), [], [], partitions, True)
    tables = _Tables(out, frames.TABLES, manifest.get("partitions", {}), CELLS)
    count, found, read_again = _made(files, alone, entries, unchanged, store, tables, workers, select, progress)
    problems += found
    written, partitions = tables.finish()
    removed = []
    for name in set(manifest.get("partitions", {})) - set(partitions):
        path = out / name
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # an empty partition directory
    replace_private(state / "manifest.json", orjson.dumps({
        "schema_version": SCHEMA_VERSION, "format": _FORMAT, "chatcap": _versions(), "options": options,
        "exchanges": count, "files": entries, "partitions": partitions,
    }, option=orjson.OPT_INDENT_2))  # fmt: skip
    kept = {batch[0] for entry in entries for batch in entry.get("batches", [])}
    for stale in store.glob("*.pickle"):  # the shares of files gone, changed or read in fewer pieces
        if stale.name not in kept:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
    return Built(out, count, problems, read_again, len(files) - read_again, written, removed, len(partitions))


def _made(
    files: list[tuple[Path, str]],
    alone: bool,
    entries: list[dict[str, Any]],
    unchanged: list[bool],
    store: Path,
    tables: _Tables | _Csv,
    workers: int | None,
    select: dict[str, Any] | None,
    progress: bool | None,
) -> tuple[int, list[Problem], int]:
    """The rows of the tables of `files` given to `tables` a batch at a time (see the module
    docstring); the shares of the files `unchanged` says are kept in `store` are used, the
    others read (and `entries` say how they were kept). Returns how many exchanges the rows
    are of, what could not be read, and how many files were read."""
    pick = _picker(select)
    with Spill() as keep:  # what the walk reads later: messages, assistant messages, tool results
        assembly = frames.Assembly(keep=keep)
        shares: list[Done | None] = [None] * len(files)
        for at, entry in enumerate(entries):
            if unchanged[at]:
                shares[at] = _added(store, entry, at, assembly, pick)
        missing = [at for at in range(len(files)) if shares[at] is None]
        pieces: dict[tuple[int, int], int] = {}  # the exchanges of each piece read, by file and piece

        def hold(file: int, piece: int, share: Done) -> list[_Held]:
            """A task's batches, as its worker pickled them into the share's files: each added."""
            at = missing[file]
            held = []
            pieces[at, piece] = share.exchanges
            for n, spooled in enumerate(share.parts):
                batch = load_spooled(store / spooled.name, spooled.offset)
                rank = (at, piece, n)
                assembly.add(rank, batch, pick(batch))
                held.append(_Held(rank, spooled.name, spooled.offset, spooled.exchanges))
            return held

        fresh = read(
            [files[at] for at in missing], alone=alone, workers=workers, redact=True, progress=progress, cells=True,
            digest=True, spools=[store / _stem(entries[at]) for at in missing], hold=hold,
        )  # fmt: skip
        for at, share in zip(missing, fresh, strict=True):
            shares[at] = share
            # The hash stands for what was read only if the file did not change while it was read
            # (a capture still being written); else none is kept, and the next run reads it again.
            entry, now = entries[at], _entry(*files[at])
            steady = (now["size"], now["mtime_ns"]) == (entry["size"], entry["mtime_ns"])
            entry["sha256"] = (entry.get("sha256") or share.sha256 or sha256_of(files[at][0])) if steady else None
            entry["problems"] = [[p.source, p.reason, p.position] for p in share.problems]
            share.parts = [
                held._replace(
                    shift=sum(n for (file, piece), n in pieces.items() if file == at and piece < held.rank[1])
                )
                for held in share.parts
            ]
            entry["batches"] = [[held.name, held.offset, held.exchanges, held.shift] for held in share.parts]
        problems = [problem for share in shares if share is not None for problem in share.problems]
        count = exchanges = sum(share.exchanges for share in shares if share is not None)  # count: those chosen
        for at, share in enumerate(shares):
            assert share is not None
            _renumber(assembly, entries[at]["label"], share.parts)
        if select:
            count = assembly.chosen
            if not count:
                raise ValueError("no exchange matches the filter")
        what = f"threading {count:,} exchange(s) and writing the tables"
        with status(what, progress) as shown:
            # Each exchange is threaded, its message rows made, then its batch's rows written:
            # how far, in the status line.
            how_far, total = _HowFar(shown, what), 3 * exchanges
            for rows, started in assembly.walk(progress=lambda walked: how_far(walked, total)):
                tables.add("messages", rows, [_day(moment) for moment in started])
                how_far(assembly.walked, total)
            written = 2 * exchanges
            for share in shares:
                assert share is not None
                for held in share.parts:
                    how_far(written, total)
                    written += held.exchanges
                    found = assembly.rows(held.rank, load_spooled(store / held.name, held.offset))
                    days = dict(zip(found["exchanges"]["id"], map(_day, found["exchanges"]["started_at"]), strict=True))
                    for name, rows in found.items():
                        tables.add(
                            name,
                            rows,
                            [days[exchange] for exchange in rows["id" if name == "exchanges" else "exchange"]],
                        )
            how_far(total, total)
    return count, problems, len(missing)


class _HowFar:
    """A status line (`ingest.status`; None: none is shown) saying `what` and how much of it is done."""

    def __init__(self, shown: Any, what: str) -> None:
        self.shown, self.what = shown, what

    def __call__(self, done: int, total: int) -> None:
        if self.shown is not None and total:
            self.shown.update(f"{self.what}: {100 * done // total} %")


def chosen(
    exchanges: pd.DataFrame,
    *,
    model: str | None = None,
    host: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> set[str]:
    """The ids of the rows of an exchanges frame that `export.select` keeps with these
    arguments: `model` and `host` shell patterns against the requested and served model and
    the host, `since` / `until` bounding the start (aware datetimes)."""
    import pandas as pd

    return {
        row.id
        for row in exchanges[["id", "requested_model", "served_model", "host", "started_at"]].itertuples(index=False)
        if passes(
            (row.requested_model, row.served_model), row.host if isinstance(row.host, str) else None,
            None if pd.isna(row.started_at) else row.started_at,
            model=model, host=host, since=since, until=until,
        )
    }  # fmt: skip


def _versions() -> dict[str, str]:
    """The versions the shares were made by: another chatcap or price list makes them again."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("chatcap", "genai-prices"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = ""
    return found


def _manifest(state: Path) -> dict[str, Any]:
    """The manifest of an earlier build, or {} when there is none or its shares cannot be used."""
    try:
        manifest = orjson.loads((state / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(manifest, dict):
        return {}
    if (manifest.get("schema_version"), manifest.get("format"), manifest.get("chatcap")) != (
        SCHEMA_VERSION, _FORMAT, _versions()
    ):  # fmt: skip
        return {"partitions": manifest.get("partitions", {})}  # written by another chatcap: read everything again
    return manifest


def _entry(file: Path, label: str) -> dict[str, Any]:
    try:
        found = file.stat()
        size, mtime = found.st_size, found.st_mtime_ns
    except OSError:
        size, mtime = -1, -1
    return {"label": label, "path": str(file.resolve()), "size": size, "mtime_ns": mtime}


def _unchanged(store: Path, before: dict[str, Any] | None, entry: dict[str, Any]) -> bool:
    """Whether an earlier build kept a share for this file and the file is unchanged since
    (same size and time, or else the same SHA-256); if so, `entry` takes over what the
    manifest says of the share (its name, the file's hash, the problems met reading it)."""
    if before is None or not isinstance(before.get("batches"), list) or not isinstance(before.get("problems"), list):
        return False
    moved = (before["size"], before["mtime_ns"]) != (entry["size"], entry["mtime_ns"])
    if moved and (before.get("sha256") is None or sha256_of(Path(entry["path"])) != before["sha256"]):
        return False
    batches = before["batches"]
    if not all(isinstance(batch, list) and len(batch) == 4 and isinstance(batch[0], str) for batch in batches):
        return False
    names = {batch[0] for batch in batches}
    if not _private(store) or not all("/" not in name and _private(store / name) for name in names):
        return False
    entry.update(sha256=before.get("sha256"), problems=before["problems"], batches=before["batches"])
    return True


class _Held(NamedTuple):
    """A batch of a file's share, kept in `_chatcap/parts/`: what the build holds of it."""

    rank: tuple[int, ...]  # in the assembly: the file's place, then the batch's
    name: str  # the file it is pickled in
    offset: int  # where it starts there
    exchanges: int
    shift: int = 0  # the exchanges of the pieces of its file before its own (`_renumber`)

    def renamed(self, names: dict[str, str]) -> _Held:
        return self  # renumbered later (`_renumber`), once every piece's exchanges are known


def _stem(entry: dict[str, Any]) -> str:
    """The start of the names of a file's share's files (`{stem}-{piece}.pickle`), by its label and path."""
    return hashlib.sha256(f"{entry['label']}\0{entry['path']}".encode()).hexdigest()[:32]


def _added(store: Path, entry: dict[str, Any], at: int, assembly: frames.Assembly, pick: _Pick) -> Done | None:
    """The share an earlier build kept for an unchanged file (`_unchanged`: it found the share
    safe to load), each of its batches added to `assembly` and let go; None when it does not
    load as one (damaged, foreign), and the file must be read again."""
    held: list[_Held] = []
    try:
        for n, (name, offset, _, shift) in enumerate(entry["batches"]):
            batch = load_spooled(store / name, offset)
            rank = (at, n)
            assembly.add(rank, batch, pick(batch))
            held.append(_Held(rank, name, offset, len(batch.sent), shift))
    except Exception:  # a damaged or foreign share: read the file again
        for found in held:
            assembly.drop(found.rank)
        return None
    problems = [Problem(*problem) for problem in entry["problems"]]
    return Done(held, problems, sum(found.exchanges for found in held))  # type: ignore[arg-type]


def _renumber(assembly: frames.Assembly, label: str, held: list[_Held]) -> None:
    """The exchanges of a file read in pieces numbered on from piece to piece, as if it were
    read whole (each piece numbers its own from 1: `label#n`)."""
    start = f"{label}#"
    for batch in held:
        if batch.shift:

            def new(found: str, shift: int = batch.shift) -> str:
                number = found[len(start) :] if found.startswith(start) else ""
                return f"{start}{int(number) + shift}" if number.isdigit() else found

            assembly.rename(batch.rank, new)


_Pick = Callable[[frames.Parts], "list[bool] | None"]


def _picker(select: dict[str, Any] | None) -> _Pick:
    """Which exchanges of a batch `chosen` would keep with `select`'s arguments (None: all)."""
    if not select:
        return lambda batch: None

    def pick(batch: frames.Parts) -> list[bool]:
        cols = batch.exchanges
        return [
            passes((requested, served), host if isinstance(host, str) else None, started and as_utc(started), **select)
            for requested, served, host, started in zip(
                cols["requested_model"], cols["served_model"], cols["host"], cols["started_at"], strict=True
            )
        ]

    return pick


def _private(path: Path) -> bool:
    """Whether `path` is ours and no one else can change it (not a symlink)."""
    try:
        found = path.lstat()
    except OSError:
        return False
    return found.st_uid == os.getuid() and not found.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not stat.S_ISLNK(found.st_mode)  # fmt: skip


# -- writing ------------------------------------------------------------------------------


def write(
    tables: dict[str, pd.DataFrame],
    out_dir: str | os.PathLike[str],
    *,
    only: Collection[str] | None = None,
    previous: dict[str, str] | None = None,
    cells_ready: dict[str, Collection[str]] | None = None,
) -> tuple[list[Path], dict[str, str]]:
    """`tables` (the frames, by name) written into `out_dir` as a dataset partitioned by date
    (text redacted, lists and parsed JSON as JSON text, as `export.tables` writes them);
    `only`: the exchanges whose rows are written. A partition whose bytes equal what
    `previous` (relative path → SHA-256) records is not written again. Returns the files
    written and every partition's relative path → SHA-256. `cells_ready`: by table, the
    columns whose cells are table cells already (`parallel.read(cells=True)`)."""
    import pandas as pd

    exchanges = tables["exchanges"]
    started = [None if pd.isna(moment) else moment for moment in exchanges["started_at"].astype(object)]
    dates = dict(zip(exchanges["id"], map(_day, started), strict=True))
    writer = _Tables(Path(out_dir), list(tables), previous or {}, cells_ready or {})
    for name, frame in tables.items():
        key = "id" if name == "exchanges" else "exchange"
        if only is not None:
            frame = frame[frame[key].isin(list(only))]
        writer.add(name, frame.reset_index(drop=True), [dates[exchange] for exchange in frame[key]])
    return writer.finish()


def _day(started: datetime | None) -> str:
    """The partition of an exchange started at `started` (its UTC date)."""
    return NO_DATE if started is None else as_utc(started).date().isoformat()


# A partition file's row groups: cut after this many rows, or once their text reaches this
# many bytes; where, is decided by the rows alone, so the bytes do not depend on the batches.
_GROUP_ROWS = 131_072
_GROUP_BYTES = 8 << 20


class _Tables:
    """The tables' rows, given a batch at a time in each table's order, written as partitions
    (a file per table and date, the rows in the order given): each date's rows wait in a
    temporary file (`spill.Spill`, as Arrow) until `finish` writes its partition, a row group
    at a time. Memory holds a batch and a row group, not a table."""

    def __init__(
        self, out: Path, names: Collection[str], previous: dict[str, str], cells_ready: dict[str, Collection[str]]
    ) -> None:
        self.out, self.names, self.previous, self.cells_ready = out, names, previous, cells_ready
        self._waiting = Spill()
        self._segments: dict[tuple[str, str], int] = {}  # (table, date) → how many pieces wait
        self._schemas: dict[str, pa.Schema] = {}

    def add(self, name: str, rows: pd.DataFrame | dict[str, list[Any]], days: list[str]) -> None:
        """Rows of the table `name` (a frame, or columns as `frames.Assembly` gives them), each
        in the partition of its `days` (found before the cells are made: redaction may change
        an id, a file named like a key, and then it is no longer the key a day is found by)."""
        import pyarrow as pa

        schema = self._schema(name)
        ready = self.cells_ready.get(name, ())
        if isinstance(rows, dict):
            table = arrow_table(name, rows, schema, ready)
        else:
            frame = table_values(rows, "parquet", cells_ready=ready)
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        dates = list(dict.fromkeys(days))
        for date in dates:
            at = (name, date)
            n = self._segments.get(at, 0)
            self._waiting[name, date, n] = (
                table if len(dates) == 1 else table.filter(pa.array([day == date for day in days]))
            )
            self._segments[at] = n + 1

    def _schema(self, name: str) -> pa.Schema:
        """The Arrow schema the table `name` is written with: its frame's (`schema_of`)."""
        schema = self._schemas.get(name)
        if schema is None:
            schema = self._schemas[name] = schema_of(name)
        return schema

    def finish(self) -> tuple[list[Path], dict[str, str]]:
        """Every partition written (a partition whose bytes are what `previous` says, not
        again); returns the files written and every partition's relative path → SHA-256."""
        written: list[Path] = []
        partitions: dict[str, str] = {}
        with self._waiting:
            for (name, date), count in sorted(self._segments.items()):
                pieces = (self._waiting[name, date, n] for n in range(count))
                self._write(name, date, pieces, written, partitions)
        for name in self.names:
            if not any(table == name for table, _ in self._segments):
                # no rows: an empty file still says the table is there, with its columns
                self._write(name, NO_DATE, iter([]), written, partitions)
        return written, partitions

    def _write(
        self, name: str, date: str, pieces: Iterator[pa.Table], written: list[Path], partitions: dict[str, str]
    ) -> None:
        import pyarrow.parquet as pq

        relative = f"{name}/date={date}/part-0.parquet"
        target = _partition(self.out, name, date) / "part-0.parquet"
        if target.is_symlink():
            raise symlink_refused(target)
        partial = target.with_name(f".{target.name}.partial")
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        schema = self._schema(name)
        with open_private(partial) as handle, pq.ParquetWriter(handle, schema) as writer:
            for group in _row_groups(pieces, schema):
                writer.write_table(group.replace_schema_metadata(schema.metadata), row_group_size=_GROUP_ROWS)
                del group  # not held while the next one is made
        digest = sha256_of(partial)
        partitions[relative] = digest or ""
        if digest is not None and self.previous.get(relative) == digest and target.is_file():
            partial.unlink()
            return
        os.replace(partial, target)
        written.append(target)


class _Csv:
    """The tables as CSV files (`DIR/<table>.csv`, as `export.tables` writes them), their rows
    appended a batch at a time in each table's order. A table file refused (`UnsafePath`: a
    symlink in its place) is said (`RefusedPath`) and the others are written."""

    def __init__(self, out: Path, names: Collection[str]) -> None:
        self.out, self.names = out, names
        self._begun: set[str] = set()
        self._refused: set[str] = set()

    def add(self, name: str, rows: pd.DataFrame | dict[str, list[Any]], days: list[str] | None = None) -> None:
        """Rows of the table `name` (a frame, or columns as `frames.Assembly` gives them)."""
        if name in self._refused:
            return
        frame = frames.frame_of(name, rows) if isinstance(rows, dict) else rows
        frame = table_values(frame, "csv", cells_ready=CELLS.get(name, ()))
        path = self.out / f"{name}.csv"
        first = name not in self._begun
        try:
            handle = open_private(path) if first else append_private(path)
        except UnsafePath as exc:
            self._refused.add(name)
            refused(exc)
            return
        with handle:  # RFC 4180 line ends, so a text holding a lone CR is quoted too
            frame.to_csv(handle, index=False, header=first, lineterminator="\r\n")
        self._begun.add(name)

    def finish(self) -> list[Path]:
        """The files written (a table without rows: its header)."""
        for name in self.names:
            if name not in self._begun:
                self.add(name, {})
        return [self.out / f"{name}.csv" for name in self.names if name not in self._refused]


def _partition(out: Path, name: str, date: str) -> Path:
    """A partition's directory, made if missing; a symlink in place of the table's is refused."""
    if (out / name).is_symlink():
        raise symlink_refused(out / name)
    return private_dir(out / name / f"date={date}")


def _row_groups(pieces: Iterator[pa.Table], schema: pa.Schema) -> Iterator[pa.Table]:
    """The rows of `pieces`, one after another, cut into row groups (`_GROUP_ROWS`,
    `_GROUP_BYTES`) where the rows alone say, each group one chunk per column (so the bytes
    do not depend on how the rows were made); at least one group, empty if no rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    pending: list[pa.Table] = []
    rows = size = 0
    made = False
    for piece in pieces:
        sizes = np.zeros(piece.num_rows, dtype=np.int64)
        for column in piece.columns:
            if pa.types.is_large_string(column.type) or pa.types.is_string(column.type):
                sizes += pc.binary_length(column).fill_null(0).to_numpy(zero_copy_only=False)
        start = 0
        while start < piece.num_rows:
            room = min(_GROUP_ROWS - rows, piece.num_rows - start)
            reach = np.searchsorted(size + np.cumsum(sizes[start : start + room]), _GROUP_BYTES)
            take = min(room, int(reach) + 1)
            pending.append(piece.slice(start, take))
            rows += take
            size += int(sizes[start : start + take].sum())
            start += take
            if rows >= _GROUP_ROWS or size >= _GROUP_BYTES:
                group = pa.concat_tables(pending).combine_chunks()
                pending, rows, size = [], 0, 0  # let go before the group is written: the peak holds one copy
                made = True
                yield group
    if pending:
        yield pa.concat_tables(pending).combine_chunks()
    elif not made:
        yield schema.empty_table()


def arrow_table(name: str, columns: dict[str, list[Any]], schema: pa.Schema, ready: Collection[str] = ()) -> pa.Table:
    """The rows of the table `name`, as columns (`frames.Assembly`'s), as the Arrow table they are
    written as: what `table_values` and `pa.Table.from_pandas` make of their frame
    (`frames.frame_of`), made without one. `ready`: columns whose cells are made already."""
    import pyarrow as pa

    dtypes = frames.dtypes_of(name)
    arrays = []
    for column in schema:
        values = columns.get(column.name, [])
        if pa.types.is_large_string(column.type) and column.name not in ready:
            values = column_cells(values, dtypes[column.name])
        elif pa.types.is_floating(column.type):  # an integer, as a frame's Float64 holds it
            values = [float(value) if type(value) is int else value for value in values]
        arrays.append(pa.array(values, type=column.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


# The frames' dtypes (`frames.dtypes_of`) -> the Arrow type written (docs/schema.md, "Types,
# nulls and order"); any other (string, category, JSON text as object): large_string.
def schema_of(name: str) -> pa.Schema:
    """The Arrow schema the table `name` is written with, from its frame's dtypes: every
    partition the same, whatever its rows hold. The schema version is in its metadata."""
    import pyarrow as pa

    types = {
        "Int16": pa.int16(), "Int32": pa.int32(), "Int64": pa.int64(), "Float64": pa.float64(),
        "boolean": pa.bool_(),
        # Microseconds, whatever unit pandas gives a frame: what a start time holds (a Python datetime).
        "datetime": pa.timestamp("us", tz="UTC"),
    }  # fmt: skip
    fields = [pa.field(column, types.get(dtype, pa.large_string())) for column, dtype in frames.dtypes_of(name).items()]
    return pa.schema(fields, metadata={VERSION_KEY: str(SCHEMA_VERSION).encode()})
