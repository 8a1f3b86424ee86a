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

The kept shares are pickles: they are loaded only from a `_chatcap/parts/` directory this
user owns that no one else can write to, as chatcap writes it (0700, files 0600).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import pickle
import stat
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from analyzer import frames
from analyzer.export import table_values
from analyzer.export.transcript import passes
from analyzer.files import open_private, private_dir, replace_private, sha256_of, symlink_refused
from analyzer.ingest import Paths, Problem, sources, status
from analyzer.parallel import CELLS, Done, collector_paused, read

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SCHEMA_VERSION", "Built", "Busy", "arrow_schema", "build", "chosen", "write"]

# docs/schema.md, "Schema version": raised by any change to the columns, types, units, meanings or layout.
SCHEMA_VERSION = 1
VERSION_KEY = b"chatcap.schema_version"
STATE = "_chatcap"
NO_DATE = "__HIVE_DEFAULT_PARTITION__"
# The kept shares' own format (parallel.Done, frames.Parts, the cells the workers make) and
# the manifest's: raise it when they change, and every file is read again.
_FORMAT = 7


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
    kept: dict[int, Done] = {}
    for at, entry in enumerate(entries):
        share = _kept(store, entry) if unchanged[at] else None
        if share is not None:
            kept[at] = share
    missing = [at for at in range(len(files)) if at not in kept]

    fresh = read(
        [files[at] for at in missing], alone=alone, workers=workers, redact=True, progress=progress, cells=True,
        digest=True, pickled=True,
    )  # fmt: skip
    for at, share in zip(missing, fresh, strict=True):
        kept[at] = share
        # The hash stands for what was read only if the file did not change while it was read
        # (a capture still being written); else none is kept, and the next run reads it again.
        entry, now = entries[at], _entry(*files[at])
        steady = (now["size"], now["mtime_ns"]) == (entry["size"], entry["mtime_ns"])
        entry["sha256"] = (entry.get("sha256") or share.sha256 or sha256_of(files[at][0])) if steady else None
        entry["share"] = _keep(store, entry, share)
        entry["problems"] = [[p.source, p.reason, p.position] for p in share.problems]
    shares = [kept[at] for at in range(len(files))]
    problems += _problems(shares)
    count = sum(share.exchanges for share in shares)
    with status(f"threading {count:,} exchange(s) and writing the tables", progress):
        tables = frames.assemble([parts for share in shares for parts in share.parts], consume=True)
        del kept, fresh, shares  # the parts: what the frames do not share with them is freed before writing
        only: set[str] | None = None
        if select:
            only = chosen(tables["exchanges"], **select)
            if not only:
                raise ValueError("no exchange matches the filter")
            count = len(only)
        previous = manifest.get("partitions", {})
        written, partitions = write(tables, out, only=only, previous=previous, cells_ready=CELLS)
    removed = []
    for name in set(manifest.get("partitions", {})) - set(partitions):
        path = out / name
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # an empty partition directory
    for stale in {e.get("share") for e in manifest.get("files", [])} - {e.get("share") for e in entries}:
        if stale:
            with contextlib.suppress(FileNotFoundError):
                (store / stale).unlink()
    replace_private(state / "manifest.json", orjson.dumps({
        "schema_version": SCHEMA_VERSION, "format": _FORMAT, "chatcap": _versions(), "options": options,
        "exchanges": count, "files": entries, "partitions": partitions,
    }, option=orjson.OPT_INDENT_2))  # fmt: skip
    return Built(out, count, problems, len(missing), len(files) - len(missing), written, removed, len(partitions))


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
    if before is None or not before.get("share") or not isinstance(before.get("problems"), list):
        return False
    moved = (before["size"], before["mtime_ns"]) != (entry["size"], entry["mtime_ns"])
    if moved and (before.get("sha256") is None or sha256_of(Path(entry["path"])) != before["sha256"]):
        return False
    if not _private(store) or not _private(store / before["share"]):
        return False
    entry.update(sha256=before.get("sha256"), share=before["share"], problems=before["problems"])
    return True


def _kept(store: Path, entry: dict[str, Any]) -> Done | None:
    """The share an earlier build kept for an unchanged file (`_unchanged`: it found the share
    safe to load), if it loads as one; None when the file must be read again."""
    try:
        with (store / entry["share"]).open("rb") as handle:
            share = pickle.load(handle)  # our own file, in a directory only we can write
    except Exception:  # a damaged or foreign share: read the file again
        return None
    if not isinstance(share, Done) or not all(isinstance(parts, frames.Parts) for parts in share.parts):
        return None
    return share


def _private(path: Path) -> bool:
    """Whether `path` is ours and no one else can change it (not a symlink)."""
    try:
        found = path.lstat()
    except OSError:
        return False
    return found.st_uid == os.getuid() and not found.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not stat.S_ISLNK(found.st_mode)  # fmt: skip


def _keep(store: Path, entry: dict[str, Any], share: Done) -> str:
    """`share` kept for the next build (as its worker pickled it, if it did), by the file's name."""
    name = hashlib.sha256(f"{entry['label']}\0{entry['path']}".encode()).hexdigest()[:32] + ".pickle"
    pickled, share.pickled = share.pickled, None
    with open_private(store / name) as handle:
        if pickled:
            handle.write(pickled)
        else:  # pickled into the file as it goes: a share of a large file is hundreds of MB
            pickle.dump(share, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return name


def _problems(shares: Iterable[Done]) -> list[Problem]:
    return [problem for share in shares for problem in share.problems]


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
    out = Path(out_dir)
    exchanges = tables["exchanges"]
    started = exchanges["started_at"]
    dates = dict(zip(exchanges["id"], started.dt.strftime("%Y-%m-%d").astype(object).where(started.notna(), NO_DATE), strict=True))  # fmt: skip
    previous = previous or {}
    written: list[Path] = []
    partitions: dict[str, str] = {}
    for name, frame in tables.items():
        key = "id" if name == "exchanges" else "exchange"
        if only is not None:
            frame = frame[frame[key].isin(list(only))]
        frame = frame.reset_index(drop=True)
        # Dated by the exchange's id before the cells are made: redaction may change an id (a
        # file named like a key), and then it is no longer the key the dates are found by.
        day = frame[key].map(dates)
        frame = table_values(frame, "parquet", cells_ready=(cells_ready or {}).get(name, ()))
        schema = arrow_schema(tables[name])
        for date in sorted(set(day)):
            rows = frame[(day == date).to_numpy()].reset_index(drop=True)
            relative = f"{name}/date={date}/part-0.parquet"
            data = _parquet(rows, schema)
            digest = hashlib.sha256(data).hexdigest()
            partitions[relative] = digest
            if previous.get(relative) == digest and (out / relative).is_file():
                continue
            target = _partition(out, name, date) / "part-0.parquet"
            replace_private(target, data)
            written.append(target)
        if frame.empty:  # no rows: an empty file still says the table is there, with its columns
            relative = f"{name}/date={NO_DATE}/part-0.parquet"
            data = _parquet(frame, schema)
            partitions[relative] = hashlib.sha256(data).hexdigest()
            target = _partition(out, name, NO_DATE) / "part-0.parquet"
            replace_private(target, data)
            written.append(target)
    return written, partitions


def _partition(out: Path, name: str, date: str) -> Path:
    """A partition's directory, made if missing; a symlink in place of the table's is refused."""
    if (out / name).is_symlink():
        raise symlink_refused(out / name)
    return private_dir(out / name / f"date={date}")


def _parquet(frame: pd.DataFrame, schema: pa.Schema) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # pandas' own metadata left out: it would name a column empty in these rows as of no type.
    # One chunk per column, so the bytes do not depend on how the rows were made (in slices or not).
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False).replace_schema_metadata(schema.metadata)
    table = table.combine_chunks()
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


# pandas dtype of the frames -> Arrow type written (docs/schema.md, "Types, nulls and order").
def arrow_schema(frame: pd.DataFrame) -> pa.Schema:
    """The Arrow schema a table is written with, from its frame's dtypes: every partition the
    same, whatever its rows hold. The schema version is in its metadata."""
    import pyarrow as pa

    types = {
        "Int16": pa.int16(), "Int32": pa.int32(), "Int64": pa.int64(), "Float64": pa.float64(),
        "boolean": pa.bool_(),
    }  # fmt: skip
    fields = []
    for name, dtype in frame.dtypes.items():
        text = str(dtype)
        if text in types:
            kind = types[text]
        elif text.startswith("datetime64"):
            kind = pa.timestamp(getattr(dtype, "unit", "us"), tz="UTC")
        else:  # string, category and JSON text
            kind = pa.large_string()
        fields.append(pa.field(str(name), kind))
    return pa.schema(fields, metadata={VERSION_KEY: str(SCHEMA_VERSION).encode()})
