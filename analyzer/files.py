"""Files chatcap writes: created 0600 without following a symlink, in directories made 0700.

DESIGN.md, "Security defaults": everything chatcap writes is 0600 and never follows a
symlink it did not create. A transcript, a table or a converted copy of a capture holds
the same prompts and replies as the capture, so it gets the same care: a new file is
created with O_EXCL; a file already there is reused only when it is a regular file of the
user's own with no other hard link (then truncated and set to 0600); a symlink, FIFO,
device or someone else's file at the path is refused with an `UnsafePath` error.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO without a reader fails at once instead of hanging.
_REUSE = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UnsafePath(ValueError):
    """A path chatcap refuses to write to or through (one line, naming the path)."""


class RefusedPath(UserWarning):
    """A file of a many-file export was not written (an `UnsafePath`); the others were."""


def symlink_refused(path: str | os.PathLike[str]) -> UnsafePath:
    """The error for a symlink where chatcap was to write."""
    return UnsafePath(f"{path}: is a symbolic link; chatcap does not write through links it did not make")


def refused(exc: UnsafePath) -> None:
    """Report a path a many-file export skipped, as a `RefusedPath` warning."""
    warnings.warn(str(exc), RefusedPath, stacklevel=3)


def private_dir(path: str | os.PathLike[str]) -> Path:
    """`path` as a directory to write into: missing directories are created 0700; an
    existing one is used as it is, unless the path itself is a symlink."""
    path = Path(path)
    missing = []
    at = path
    while not os.path.lexists(at) and at != at.parent:
        missing.append(at)
        at = at.parent
    for directory in reversed(missing):
        # One made meanwhile by someone else is checked below like any existing one.
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o700)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise symlink_refused(path)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePath(f"{path}: not a directory")
    return path


def open_private(path: str | os.PathLike[str]) -> BinaryIO:
    """`path` opened for writing (binary), as described in the module docstring."""
    path = Path(path)
    try:
        descriptor = os.open(path, _CREATE, 0o600)
    except FileExistsError:
        descriptor = _reuse(path)
    return os.fdopen(descriptor, "wb")


def append_private(path: str | os.PathLike[str]) -> BinaryIO:
    """`path`, a file of this user's that `open_private` made, opened to write at its end; a
    symlink or anything but a regular file of the user's own with one link is refused."""
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise symlink_refused(path) from None
        raise
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink > 1:
        os.close(descriptor)
        raise UnsafePath(f"{path}: not a regular file of this user's alone")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "ab")


def write_private(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write `data` (text as UTF-8) to `path` through `open_private`; returns the path."""
    with open_private(path) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def write_one(path: str | os.PathLike[str], data: bytes | str, written: list[Path]) -> None:
    """One file of a many-file export (`write_private`): added to `written`, or, where it is
    refused (an `UnsafePath`), reported as a `RefusedPath` warning while the others go on."""
    try:
        written.append(write_private(path, data))
    except UnsafePath as exc:
        refused(exc)


def replace_private(path: str | os.PathLike[str], data: bytes) -> Path:
    """`write_private`, whole or not at all: written beside `path`, then renamed over it, so a
    reader never meets half a file; a symlink at `path` is refused."""
    path = Path(path)
    if path.is_symlink():
        raise symlink_refused(path)
    temporary = path.with_name(f".{path.name}.partial")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    write_private(temporary, data)
    os.replace(temporary, path)
    return path


def _reuse(path: Path) -> int:
    try:
        descriptor = os.open(path, _REUSE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise symlink_refused(path) from None
        if exc.errno in (errno.ENXIO, errno.EISDIR):
            raise UnsafePath(f"{path}: not a regular file") from None
        raise
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(f"{path}: not a regular file")
        if info.st_uid != os.geteuid():
            raise UnsafePath(f"{path}: belongs to another user")
        if info.st_nlink > 1:
            raise UnsafePath(f"{path}: has other hard links; chatcap writes only to a file of its own")
        os.fchmod(descriptor, 0o600)
        os.ftruncate(descriptor, 0)
        os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def sha256_of(path: Path) -> str | None:
    """The SHA-256 of a file's bytes (hex), read a MiB at a time; None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while piece := handle.read(1 << 20):
                digest.update(piece)
    except OSError:
        return None
    return digest.hexdigest()
