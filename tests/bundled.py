"""Where the test data the project ships lives: every test reads it from here.

Everything named here is in the repository, so a clone tests everything: a missing file is a
failure, never a skip.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Streams recorded from real providers by other projects' test suites, with the requests and the
# official SDKs' answers: sources, commits and licences in its PROVENANCE.md.
REAL_CORPUS = ROOT / "tests" / "data" / "real"
