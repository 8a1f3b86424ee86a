"""The bracket scan that reads a large HAR entry by entry (`ingest._har_elements`), and the cuts
that let workers read one in pieces (`ingest.har_pieces`), against orjson's reading of the same
bytes: strings full of quotes, backslashes and brackets, elements of every kind, blocks of any size."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer import ingest

# Strings made of what the scan looks at: quotes, backslashes (runs of them), brackets, commas.
_TEXT = st.text(alphabet='\\"{}[],: x', max_size=12)
_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_ELEMENT = st.dictionaries(_TEXT, _VALUE, max_size=4) | st.lists(_VALUE, max_size=3) | _VALUE


def _har(entries: list[Any], indent: bool) -> bytes:
    har = {"log": {"version": "1.2", "pages": [{"id": "]}"}], "entries": entries, "comment": '"}]'}}
    return orjson.dumps(har, option=orjson.OPT_INDENT_2 if indent else 0)


def _elements(data: bytes, **where: Any) -> list[Any]:
    """The elements the scan finds, parsed (None for a scalar, as the scan gives it)."""
    return [None if found is None else orjson.loads(found) for found in ingest._har_elements(io.BytesIO(data), **where)]


@settings(max_examples=300, deadline=None)
@given(entries=st.lists(_ELEMENT, max_size=8), block=st.integers(1, 64), indent=st.booleans(), data=st.data())
def test_the_scan_finds_each_entry_as_orjson_reads_it_and_so_do_the_pieces_it_cuts(
    entries: list[Any], block: int, indent: bool, data: st.DataObject
) -> None:
    """Whatever the block size (so a backslash run, a string or an entry goes on from block to
    block), each element of log.entries comes out as its JSON; and the file cut after any object
    or array element (before the next one), each piece read from inside log.entries, gives the
    same elements in order."""
    har = _har(entries, indent)
    expected = [entry if isinstance(entry, (dict, list)) else None for entry in entries]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ingest, "_READ_BYTES", block)
        assert _elements(har) == expected
        spans = list(ingest._har_elements(io.BytesIO(har), spans=True))
        assert [span is None for span in spans] == [entry is None for entry in expected]
        assert [orjson.loads(har[span[0] : span[1]]) for span in spans if span] == [
            e for e in expected if e is not None
        ]
        places = [n for n in range(1, len(spans)) if spans[n] and spans[n - 1]]  # an object after an object
        cuts = sorted(data.draw(st.sets(st.sampled_from(places), max_size=3))) if places else []
        starts = [0, *(spans[n][0] for n in cuts)]
        ends = [*(spans[n - 1][1] for n in cuts), len(har)]
        read = []
        for start, end in zip(starts, ends, strict=True):
            read += _elements(har[start:end], at=start, inside=(start > 0, end < len(har)))
        assert read == expected


def test_a_piece_that_does_not_end_between_two_entries_is_damage_not_entries() -> None:
    """A piece's bytes that stop inside an entry (the file changed after it was cut) say so."""
    har = _har([{"a": "b"}, {"c": ["d"]}], indent=False)
    inside_the_second = har.index(b'["d"]')
    with pytest.raises(ingest._Damaged, match=f"byte {inside_the_second:,} is not between two entries"):
        _elements(har[:inside_the_second], inside=(False, True))
