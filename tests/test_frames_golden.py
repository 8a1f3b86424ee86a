"""The four frames of the bundled captures, the real-provider corpus and the external recordings
equal tests/data/golden/frames/ (written by tests/data/make_frames_golden.py, `make golden`;
first by the frame builders of `e9a39b5`, and reviewed): every value, dtype, category and row,
and an exchange's row where the exchange was given, in whatever order."""

from __future__ import annotations

import importlib.util
import itertools
import pickle
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import frames

ROOT = Path(__file__).resolve().parent.parent
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_spec = importlib.util.spec_from_file_location("make_frames_golden", ROOT / "tests" / "data" / "make_frames_golden.py")
assert _spec is not None and _spec.loader is not None
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)


def kept(name: str, frame: str) -> pd.DataFrame:
    return golden.decode((golden.GOLDEN / name / f"{frame}.jsonl").read_bytes())


@pytest.mark.parametrize("name", golden.SETS)
def test_frames_are_the_golden_files(name: str) -> None:
    """`make golden` rewrites them after a deliberate change (review the diff)."""
    with golden.exchanges_of(name) as xs:
        built = golden.frames_of(xs)
    assert sorted(built) == sorted(golden.FRAMES)
    for frame, got in built.items():
        pd.testing.assert_frame_equal(got, kept(name, frame), obj=f"{name}/{frame}")


def test_exchange_rows_follow_the_order_given() -> None:
    """The builder walks the exchanges by start time (the threads' order) and puts each row back
    where its exchange was given: here the bundled captures with the times that differ given in
    reverse (exchanges that start together, or have no start time, keep their order, which decides
    between them in the threads' order too)."""
    with golden.exchanges_of("bundled") as xs:
        # reverse=True keeps equal keys in their order
        reversed_times = sorted(xs, key=lambda x: (x.started_at is not None, x.started_at or EPOCH), reverse=True)
        assert [x.id for x in reversed_times] != [x.id for x in xs]
        got = frames.exchanges(reversed_times)
    expected = kept("bundled", "exchanges").set_index("id").loc[[x.id for x in reversed_times]].reset_index()
    pd.testing.assert_frame_equal(got, expected[list(got.columns)])


def _in_batches(xs: list, cuts: list[int]) -> dict[str, pd.DataFrame]:
    """The frames of `xs` made as workers make them: `frames.parts` of each batch between the cuts,
    sent through pickle as a process pool sends it, then `frames.assemble` of them all."""
    bounds = [0, *sorted(set(cuts)), len(xs)]
    batches = [pickle.loads(pickle.dumps(frames.parts(xs[a:b]))) for a, b in itertools.pairwise(bounds)]
    return frames.assemble(batches)


@pytest.mark.parametrize("name", golden.SETS)
def test_frames_assembled_from_one_batch_per_exchange_are_the_golden_files(name: str) -> None:
    """Threads, history notices, new messages and tool results span batches: each exchange in a
    batch of its own is the hardest split."""
    with golden.exchanges_of(name) as xs:
        built = _in_batches(xs, list(range(1, len(xs))))
    for frame in golden.FRAMES:
        pd.testing.assert_frame_equal(built[frame], kept(name, frame), obj=f"{name}/{frame}")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_frames_assembled_from_any_split_into_batches_are_the_golden_files(data: st.DataObject) -> None:
    with golden.exchanges_of("bundled") as xs:
        cuts = data.draw(st.lists(st.integers(0, len(xs)), max_size=6), label="cuts")
        built = _in_batches(xs, cuts)
    for frame in golden.FRAMES:
        pd.testing.assert_frame_equal(built[frame], kept("bundled", frame), obj=f"bundled/{frame}")
