"""Values kept in a temporary file rather than in memory: what a streaming command must keep
for every exchange but seldom reads again, so its memory does not grow with the text it read.

    kept = Spill()
    kept[7] = message        # pickled into an unnamed temporary file (gone when closed)
    kept[7]                  # read back from it

The file is made in the temporary directory (`TMPDIR`) without a name (mode 0600), and
removed by the system when the process ends, however it ends. When it
cannot be made or written (no room, a file size limit), what follows is kept in memory
instead: `Spill.trouble` says why, and an `Unspilled` warning (the CLI prints it as a note).
"""

from __future__ import annotations

import errno
import itertools
import os
import pickle
import tempfile
import warnings
from array import array
from collections.abc import Hashable, Iterator, Mapping
from typing import Any

__all__ = ["Spill", "Unspilled"]


class Unspilled(UserWarning):
    """A temporary file could not be written: what was to go there is kept in memory."""


class Spill(Mapping[Hashable, Any]):
    """A mapping whose values live in a temporary file: a key and an offset each in memory."""

    def __init__(self, *, file: bool = True) -> None:
        """`file=False`: everything kept in memory (for data that is there anyway), quietly."""
        self._file: Any = None  # made with the first value
        self._end = 0
        self._where: dict[Hashable, tuple[int, int]] = {}  # key -> (offset, size) in the file
        self._lists: dict[Hashable, array[int]] = {}  # key -> where each value of a list starts, and the end
        self._memory: dict[Hashable, Any] = {}  # what the file could not take
        self._in_file = file
        self.trouble: str | None = None  # why values are kept in memory, if they are

    @property
    def in_file(self) -> bool:
        """Whether values go to the file (`file=True`), while it can be written."""
        return self._in_file and self.trouble is None

    def extend(self, key: Hashable, values: list[Any]) -> None:
        """`values` kept under `key`, each read back alone (`item`): a list costs 8 bytes a value
        in memory, where as many keys would cost a hundred or more."""
        if self._in_file and self.trouble is None:
            data = [pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL) for value in values]
            starts = array("q", itertools.accumulate(map(len, data), initial=self._end))
            if self._written(b"".join(data)):
                self._lists[key] = starts
                self._end = starts[-1]
                return
        self._lists.pop(key, None)
        self._memory[key] = list(values)

    def item(self, key: Hashable, index: int) -> Any:
        """The `index`th value of the list kept under `key` (`extend`)."""
        starts = self._lists.get(key)
        if starts is None:
            return self._memory[key][index]
        start = starts[index]
        return pickle.loads(os.pread(self._file.fileno(), starts[index + 1] - start, start))

    def __setitem__(self, key: Hashable, value: Any) -> None:
        if self._in_file and self.trouble is None:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            if self._written(data):
                self._where[key] = (self._end, len(data))
                self._end += len(data)
                return
        self._where.pop(key, None)  # set again since: the file's copy is stale
        self._memory[key] = value

    def _written(self, data: bytes) -> bool:
        """Whether `data` is written at the file's end; if not, why is `trouble`, said once."""
        try:
            self._write(data)
        except OSError as exc:
            self.trouble = f"{exc.strerror or exc} ({tempfile.gettempdir()})"
            warnings.warn(Unspilled(f"could not write a temporary file: {self.trouble}; kept in memory instead"), stacklevel=3)  # fmt: skip
            return False
        return True

    def _write(self, data: bytes) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="chatcap-", buffering=0)  # noqa: SIM115 (closed by close())
        written = 0
        while written < len(data):  # os.pwrite may write part of it
            count = os.pwrite(self._file.fileno(), memoryview(data)[written:], self._end + written)
            if not count:
                raise OSError(errno.ENOSPC, "nothing written")
            written += count

    def __getitem__(self, key: Hashable) -> Any:
        where = self._where.get(key)
        if where is None:
            return self._memory[key]
        offset, size = where
        # Our own file, unnamed and written by this process only.
        return pickle.loads(os.pread(self._file.fileno(), size, offset))

    def __contains__(self, key: object) -> bool:
        return key in self._where or key in self._memory

    def __iter__(self) -> Iterator[Hashable]:
        yield from self._where
        yield from self._memory

    def __len__(self) -> int:
        return len(self._where) + len(self._memory)

    def close(self) -> None:
        """The file removed now rather than when the process ends."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._where.clear()
        self._lists.clear()
        self._memory.clear()

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
