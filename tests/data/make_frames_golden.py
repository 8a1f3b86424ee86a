"""Write tests/data/golden/frames/: the four analysis frames of three sets of exchanges.

    python tests/data/make_frames_golden.py      # make golden; then review the diff

The sets: the bundled captures (tests/bundled.py), the real-provider corpus (tests/data/real, each
stream with its recorded request where there is one, at its protocol's path) and the external
recordings (tests/data/external, written as capture lines by its wrap.py and loaded as one batch).
For each set and frame, `<set>/<frame>.jsonl` holds a first line naming the columns and their
dtypes, then one JSON object per row. `tests/test_frames_golden.py` builds the frames again and
requires them equal (`pandas.testing.assert_frame_equal`), dtypes, categories and row order
included. The files were first written by the frame builders of `e9a39b5` and reviewed. Prices
are golden/prices.toml's, as for the transcripts (genai-prices switched off), so a price update
does not touch them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from bundled import CAPTURES, REAL_CORPUS, copy_bundled  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "golden" / "frames"
EXTERNAL = ROOT / "tests" / "data" / "external"
SETS = ("bundled", "real", "external")
FRAMES = ("exchanges", "chunks", "messages", "tool_calls")
# The real corpus's streams, by the protocol their names say, at that protocol's path
# (as tests/test_real_corpus_protocols.py reads them).
PATHS = {
    "anthropic_messages": "https://provider/v1/messages",
    "openai_responses": "https://provider/v1/responses",
    "gemini": "https://provider/v1beta/models/gemini:streamGenerateContent?alt=sse",
}


def _module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def exchanges_of(name: str) -> Iterator[list[Any]]:
    """The exchanges of one set, loaded with sources named the same on any machine, under the
    golden prices."""
    import analyzer
    from analyzer.model import Exchange, Request, Response

    golden = _module("make_golden", ROOT / "tests" / "data" / "make_golden.py")
    with golden.fixed_prices(), tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        if name == "bundled":
            copy_bundled(CAPTURES, Path(scratch))
            yield list(analyzer.load("captures"))
        elif name == "external":
            wrap = _module("external_wrap", EXTERNAL / "wrap.py")
            wrap.write_all(Path(scratch))
            yield list(analyzer.load("jsonl"))
        else:
            xs = []
            for stream in sorted(REAL_CORPUS.glob("*.sse")):
                request_file = stream.with_suffix(".request.json")
                body = request_file.read_bytes() if request_file.exists() else None
                url = PATHS.get(stream.stem.split("__")[1], "https://provider/v1/chat/completions")
                request = Request(method="POST", url=url, body=body)
                response = Response(
                    status=200, headers=[("content-type", "text/event-stream")], body=stream.read_bytes()
                )
                source = f"tests/data/real/{stream.name}"
                xs.append(
                    Exchange(id=stream.stem, source=source, format="sse-text", request=request, response=response)
                )
            yield xs


def frames_of(xs: list[Any]) -> dict[str, Any]:
    from analyzer import frames

    return {"exchanges": frames.exchanges(xs), "chunks": frames.chunks(xs), "messages": frames.messages(xs),
            "tool_calls": frames.tool_calls(xs)}  # fmt: skip


def encode(frame: Any) -> bytes:
    """A frame as JSON lines: its columns and dtypes, then each row (missing values as null,
    times as ISO 8601 text, numpy scalars as Python's)."""
    import pandas as pd

    def cell(value: Any) -> Any:
        if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
            return None
        if isinstance(value, datetime):
            return value.isoformat()
        if hasattr(value, "item") and not isinstance(value, list | dict | str):
            return value.item()
        return value

    lines = [orjson.dumps({"columns": [[name, str(dtype)] for name, dtype in frame.dtypes.items()]})]
    names = list(frame.columns)
    for values in zip(*(frame[name].astype(object) for name in names), strict=True):
        lines.append(orjson.dumps(dict(zip(names, map(cell, values), strict=True))))
    return b"\n".join(lines) + b"\n"


def decode(data: bytes) -> Any:
    """The frame a golden file holds, with its dtypes."""
    import pandas as pd

    header, *rows = data.splitlines()
    columns = orjson.loads(header)["columns"]
    parsed = [orjson.loads(row) for row in rows]
    frame = pd.DataFrame({name: pd.Series([row[name] for row in parsed], dtype=object) for name, _ in columns})
    for name, dtype in columns:
        if dtype.startswith("datetime64"):
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601").astype(dtype)
        elif dtype != "object":
            frame[name] = frame[name].astype(dtype)
    return frame


def main() -> None:
    shutil.rmtree(GOLDEN, ignore_errors=True)
    written = 0
    for name in SETS:
        with exchanges_of(name) as xs:
            built = frames_of(xs)
        (GOLDEN / name).mkdir(parents=True)
        for frame_name, frame in built.items():
            (GOLDEN / name / f"{frame_name}.jsonl").write_bytes(encode(frame))
            written += 1
    print(f"wrote {written} golden file(s) under {GOLDEN}: review the diff")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
