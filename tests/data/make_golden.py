"""Write tests/data/golden/: every bundled capture exported in every transcript format.

    python tests/data/make_golden.py      # make golden; then review the diff

`tests/test_export.py` renders the same exports and requires them byte for byte: a change
to an exporter shows up as a diff of these files, to read before committing. Prices are the
made-up ones in golden/prices.toml (genai-prices is switched off here), so a price update
does not touch the golden files. The input is the bundled captures alone (tests/bundled.py),
never what else a user has written into captures/ (`chatcap capture` records into captures/live/).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from bundled import CAPTURES, copy_bundled  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "golden"
PRICES = GOLDEN / "prices.toml"
FORMATS = ("markdown", "html", "jsonl")


@contextmanager
def fixed_prices() -> Iterator[None]:
    with (
        mock.patch.dict(os.environ, {"CHATCAP_PRICES": str(PRICES)}),
        mock.patch("analyzer.cost._genai_model", lambda *args: None),
    ):
        yield


def render(out: Path, captures: Path = CAPTURES) -> None:
    """Every format of the bundled captures, taken by name from `captures`, into `out/<format>/`."""
    import analyzer
    from analyzer import export

    with fixed_prices(), tempfile.TemporaryDirectory() as clone, contextlib.chdir(clone):
        copy_bundled(captures, Path(clone))
        xs = list(analyzer.load("captures"))  # sources named as `captures/…` on any machine
        export.markdown(xs, out / "markdown")
        export.html(xs, out / "html")
        export.jsonl(xs, out / "jsonl" / "conversations.jsonl", reasoning=True)


def main() -> None:
    for name in FORMATS:
        shutil.rmtree(GOLDEN / name, ignore_errors=True)
    render(GOLDEN)
    count = sum(1 for name in FORMATS for _ in (GOLDEN / name).iterdir())
    print(f"wrote {count} golden file(s) under {GOLDEN.relative_to(ROOT)}: review the diff")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
