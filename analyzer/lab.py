"""The notebooks chatcap ships, and the working directory `chatcap lab` opens them in.

The package carries its notebooks as data (`analyzer/notebooks/*.ipynb`, copied from the
repository's notebooks/ when the wheel is built, see setup.py); an editable install reads the
checkout's notebooks/ instead. `prepare(directory, captures)` copies them into a directory of
the user's with `CAPTURES` set in each one's `parameters` cell. Later runs copy only the
missing ones and never overwrite a notebook changed since: `.chatcap-lab.json` in the
directory keeps the SHA-256 of each copy as chatcap wrote it, so a copy nobody changed is
brought up to date (a newer shipped version, other captures) and any other is left as it is
and reported.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from analyzer.files import private_dir, write_private

MANIFEST = ".chatcap-lab.json"
DEFAULT_DIRECTORY = "chatcap-lab"
# Replaces the comment above `CAPTURES = ` in the copies.
CAPTURES_COMMENT = (
    "# A capture file or directory (any format `analyzer.load` reads): `chatcap lab --captures PATH` sets it."
)


def shipped() -> Traversable:
    """The directory of the notebooks chatcap ships: the package's own copy when installed from
    a wheel, the checkout's notebooks/ in an editable install (`pip install -e .`)."""
    packaged = resources.files("analyzer") / "notebooks"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "notebooks").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout / "notebooks"
    raise FileNotFoundError("chatcap's notebooks are missing from its package: reinstall chatcap")


def notebooks() -> dict[str, bytes]:
    """Each shipped notebook's file name and content, in order."""
    found = {item.name: item.read_bytes() for item in shipped().iterdir() if item.name.endswith(".ipynb")}
    return dict(sorted(found.items()))


def is_shipped(directory: str | os.PathLike[str]) -> bool:
    """Whether `directory` is where the shipped notebooks are read from (chatcap's own, not a copy)."""
    source = shipped()
    return isinstance(source, Path) and Path(directory).resolve() == source.resolve()


def with_captures(notebook: bytes, captures: str) -> bytes:
    """`notebook` with `CAPTURES = captures` in its cell tagged `parameters`, written as Jupyter writes it."""
    content = json.loads(notebook)
    for cell in content["cells"]:
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell["source"]
        lines = ("".join(source) if isinstance(source, list) else source).split("\n")
        at = next((n for n, line in enumerate(lines) if line.startswith("CAPTURES = ")), None)
        if at is None:
            continue
        start = at
        while start and lines[start - 1].startswith("#"):
            start -= 1
        lines[start : at + 1] = [CAPTURES_COMMENT, f"CAPTURES = {captures!r}"]
        cell["source"] = "\n".join(lines).splitlines(keepends=True)
        return (json.dumps(content, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()
    raise ValueError("the notebook has no `CAPTURES = ` line in a cell tagged parameters")


@dataclass
class Lab:
    """What `prepare` did in a working directory."""

    directory: Path
    captures: Path  # what CAPTURES says in the notebooks chatcap wrote there
    copied: list[str] = field(default_factory=list)  # not there before
    updated: list[str] = field(default_factory=list)  # unchanged since chatcap wrote them, rewritten
    kept: list[str] = field(default_factory=list)  # changed since (or not chatcap's): left as they are
    captures_changed: bool = False  # CAPTURES differs from what the last run set

    def report(self) -> list[str]:
        """What was done, a line each, for the terminal."""
        lines = []
        if self.copied:
            lines.append(f"copied {', '.join(self.copied)} into {self.directory}")
        if self.updated:
            lines.append(f"updated {', '.join(self.updated)} (unchanged since chatcap copied them)")
        for name in self.kept:
            also = "; its CAPTURES stays as it was" if self.captures_changed else ""
            lines.append(f"kept {name} as you changed it{also} (move it away and run chatcap lab again for chatcap's)")
        lines.append(f"CAPTURES = {self.captures}")
        if not self.captures.exists():
            lines.append(
                f"{self.captures} does not exist yet: `chatcap capture` records into captures/live/ "
                "in the directory it runs in; --captures PATH names another file or directory"
            )
        return lines


def prepare(directory: str | os.PathLike[str], captures: str | os.PathLike[str] | None = None) -> Lab:
    """Copy the shipped notebooks into `directory` (made 0700 if missing) with CAPTURES set to
    `captures`; default: what an earlier run set there, else captures/ in the current directory.
    A notebook already there is rewritten only when it is exactly what chatcap wrote last time."""
    if is_shipped(directory):
        raise ValueError(f"{directory}: chatcap's own notebooks; open a directory for copies of them")
    folder = private_dir(directory)
    manifest = _read_manifest(folder / MANIFEST)
    written: dict[str, str] = dict(manifest.get("notebooks", {}))
    before = manifest.get("captures")
    chosen = captures if captures is not None else before if isinstance(before, str) else Path.cwd() / "captures"
    target = Path(os.path.abspath(os.path.expanduser(chosen)))
    lab = Lab(folder, target, captures_changed=isinstance(before, str) and before != str(target))
    for name, shipped_content in notebooks().items():
        wanted = with_captures(shipped_content, str(target))
        path = folder / name
        if not os.path.lexists(path):
            lab.copied.append(name)
        else:
            present = path.read_bytes() if path.is_file() and not path.is_symlink() else None
            if present == wanted:
                written[name] = _sha256(wanted)
                continue
            if present is None or written.get(name) != _sha256(present):
                lab.kept.append(name)
                continue
            lab.updated.append(name)
        write_private(path, wanted)
        written[name] = _sha256(wanted)
    record = {"captures": str(target), "notebooks": written}
    write_private(folder / MANIFEST, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return lab


def _read_manifest(path: Path) -> dict[str, Any]:
    """The last run's record; an unreadable one counts as none (every notebook that differs is kept)."""
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) and isinstance(record.get("notebooks", {}), dict) else {}


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
