"""Where the test data the project ships lives: every test reads it from here.

Everything named here is in the repository, so a clone tests everything: a missing file is a
failure, never a skip. No test reads a directory a user writes into: `chatcap capture` records
into captures/live/ (README) and anything may be dropped beside the bundled captures, so they are
named one by one, and whatever wants them as a directory gets a copy holding them alone.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Streams recorded from real providers by other projects' test suites, with the requests and the
# official SDKs' answers: sources, commits and licences in its PROVENANCE.md.
REAL_CORPUS = ROOT / "tests" / "data" / "real"

CAPTURES = ROOT / "captures"
# The sample captures the project ships (`git ls-files captures`, README.md aside), in the order a
# directory load reads them; captures/README.md says what each is.
BUNDLED = (
    "000_d638e083d5fc0320.txt",
    "001_abeb99c31e8268f6.txt",
    "002_22fabd0d0adae130.txt",
    "branching_conversation.jsonl",
    "errors.jsonl",
    "four_protocols.jsonl",
    "multi_choice_n2.jsonl",
    "replayed/client_abort.jsonl",
    "replayed/conversation.jsonl",
    "replayed/error_mid_stream.jsonl",
    "replayed/gzip_stream.jsonl",
    "replayed/rate_limited.jsonl",
    "replayed/reasoning_tool_call.jsonl",
    "replayed/two_choices.jsonl",
    "tool_calls.jsonl",
    "truncated.jsonl",
)
BUNDLED_CAPTURES = tuple(CAPTURES / name for name in BUNDLED)


def copy_bundled(captures: Path, into: Path) -> Path:
    """`into/captures/`: the bundled captures taken by name from `captures` (a checkout's
    captures/), in their layout, and nothing else that directory holds."""
    target = into / "captures"
    for name in BUNDLED:
        copied = target / name
        copied.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(captures / name, copied)
    return target


@functools.cache
def captures_as_cloned() -> Path:
    """A `captures/` directory as a clone has it: the bundled captures alone, whatever a user has
    written into this checkout's. Loaded whole it names exchanges as `captures/` does
    (`replayed/conversation.jsonl#2`); run from its parent, `chatcap summary captures/` is the
    README's command. Made once per process, removed at exit; read it, never write into it."""
    into = Path(tempfile.mkdtemp(prefix="chatcap-bundled-"))
    atexit.register(shutil.rmtree, into, ignore_errors=True)
    return copy_bundled(CAPTURES, into)


def chatcap(*args: str | Path, columns: int = 250) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, its output piped and COLUMNS wide enough for a summary row; run
    where `captures/` holds the bundled captures alone, as in a fresh clone."""
    return subprocess.run(
        [sys.executable, "-m", "analyzer", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=captures_as_cloned().parent,
        env={**os.environ, "COLUMNS": str(columns)},
    )
