"""docs/compatibility.md is generated: a run of every layer (fold, usage, show, transcript, JSONL)
over the real-provider corpus (tests/data/real) and the external recordings, by docs/compatibility.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from bundled import REAL_CORPUS as CORPUS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compatibility", ROOT / "docs" / "compatibility.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def found(generator: ModuleType) -> Any:
    """Every verdict of both tables (one run: it goes through every layer of 177 exchanges)."""
    return generator.results(CORPUS)


def test_compatibility_page_is_what_the_generator_writes(generator: ModuleType, found: Any) -> None:
    assert generator.TARGET.read_text(encoding="utf-8") == generator.page(found), "run `make compatibility`"


def test_every_layer_is_right_on_every_recording(generator: ModuleType, found: Any) -> None:
    """Fold, usage checks, show, transcript, JSONL (and server tools) on all 99 corpus streams
    and all 78 external recordings: no exchange wrong in any layer."""
    assert generator.wrong(found) == []
