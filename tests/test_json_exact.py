"""`loads_exact` and `dumps_exact`, which read and write tool arguments: held to the standard
library's json (which keeps integers of any size exact) on generated JSON, and to orjson's
error messages (which say where the JSON breaks) on broken JSON."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.model import dumps_exact, loads_exact

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**40), 10**40)  # past 64 bits both ways, where orjson would give a float
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


def typed(value: Any) -> Any:
    """`value` with every number tagged by its type: 1 and 1.0 must not compare equal."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return (type(value).__name__, value)


@settings(max_examples=500, deadline=None)
@given(value=JSON, compact=st.booleans(), as_bytes=st.booleans())
def test_loads_exact_reads_any_json_as_the_standard_library_does(value: Any, compact: bool, as_bytes: bool) -> None:
    text = json.dumps(value, separators=(",", ":") if compact else None, ensure_ascii=not compact)
    source: str | bytes = text.encode() if as_bytes else text
    assert typed(loads_exact(source)) == typed(json.loads(text))


@settings(max_examples=300, deadline=None)
@given(value=JSON)
def test_dumps_exact_writes_what_loads_exact_reads_back(value: Any) -> None:
    assert typed(loads_exact(dumps_exact(value))) == typed(value)


def test_an_id_past_64_bits_keeps_every_digit() -> None:
    assert loads_exact('{"id": 123456789012345678901234567890}') == {"id": 123456789012345678901234567890}
    assert loads_exact(b"[-99999999999999999999, 18446744073709551616]") == [-99999999999999999999, 2**64]


@pytest.mark.parametrize(
    "text",
    ['{"city": "Par', '{"a": 1} {"b": 2}', "", "NaN", '{"a": 1,}', "[1e400]", b'"\xff"', '"\\ud800"'],
    ids=["truncated", "two-values", "empty", "nan", "trailing-comma", "out-of-range", "invalid-utf8", "lone-surrogate"],
)
def test_broken_json_raises_orjsons_error_which_says_where(text: str | bytes) -> None:
    with pytest.raises(ValueError) as raised:
        loads_exact(text)
    with pytest.raises(orjson.JSONDecodeError) as expected:
        orjson.loads(text)
    assert str(raised.value) == str(expected.value)


def test_json_nested_deeper_than_the_stack_is_read_or_refused_never_a_recursion_error() -> None:
    assert loads_exact("[" * 1000 + "]" * 1000) is not None  # within orjson's 1024 levels
    with pytest.raises(ValueError, match="depth"):
        loads_exact("[" * 1500 + "]" * 1500)
    # Within orjson's levels but past the recursion limit, with an integer only the standard
    # library would keep exact: refused as a ValueError (a parse error), never a RecursionError.
    with pytest.raises(ValueError, match="recursion limit with an integer past 64 bits"):
        loads_exact("[" * 1000 + "1234567890123456789" + "]" * 1000)


def test_dumps_exact_writes_a_value_nested_past_every_writers_limit_cut_at_max_depth() -> None:
    from analyzer.model import MAX_DEPTH, TOO_DEEP

    deep = loads_exact("[" * 1000 + "2" + "]" * 1000)  # as a parsed body may hold it
    written = json.loads(dumps_exact({"a": deep, "big": 2**70}))
    assert written["big"] == 2**70
    inner = written["a"]
    for _ in range(MAX_DEPTH - 1):
        inner = inner[0]
    assert inner == TOO_DEEP
