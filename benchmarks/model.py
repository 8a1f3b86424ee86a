"""What building the reconstruction's model costs (issue #21, item 2): chatcap's msgspec
structs, made by keyword only, beside slots dataclasses of the same fields (what the model
was) made by position and by keyword. Every stream builds a Choice, a Usage and its tool
calls; this is their price, one object at a time.

    python benchmarks/model.py        # ranges over 3 runs, each the best of 5
    make bench
"""

from __future__ import annotations

import dataclasses
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analyzer.model import Choice, ToolCall, Usage


def dataclass_like(struct: type[msgspec.Struct]) -> type:
    """A `@dataclass(slots=True)` with the struct's fields, defaults and order."""
    fields = []
    for field in msgspec.structs.fields(struct):
        if field.default_factory is not msgspec.NODEFAULT:
            fields.append((field.name, Any, dataclasses.field(default_factory=field.default_factory)))
        elif field.default is not msgspec.NODEFAULT:
            fields.append((field.name, Any, dataclasses.field(default=field.default)))
        else:
            fields.append((field.name, Any))
    return dataclasses.make_dataclass(f"{struct.__name__}Dataclass", fields, slots=True)


# Each as the folds make one: every field given, written out in the call (`call`).
VALUES: dict[type, dict[str, Any]] = {
    Choice: {
        "index": 0, "role": "assistant", "content": "Hello", "reasoning": None, "reasoning_source": None,
        "reasoning_details": [], "refusal": None, "tool_calls": [], "function_call": None, "logprobs": None,
        "finish_reason": "stop", "annotations": [], "extras": {}, "think": None, "answer": "Hello",
    },
    Usage: {
        "raw": {}, "prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42, "cached_prompt_tokens": 0,
        "reasoning_tokens": 0, "cache_write_tokens": None, "source": "reported",
    },
    ToolCall: {
        "index": 0, "id": "call_1", "type": "function", "name": "get_weather", "arguments": "{}",
        "parsed_arguments": None, "parse_error": None,
    },
}  # fmt: skip


def call(kind: type, values: dict[str, Any], by_keyword: bool) -> Callable[[], object]:
    """A function making one `kind` with `values` written out as literals in the call, as the
    folds write it (a fresh list or dict each time, as there)."""
    given = ", ".join(f"{name}={value!r}" if by_keyword else repr(value) for name, value in values.items())
    return eval(f"lambda: kind({given})", {"kind": kind})  # our own literals, written out


def nanoseconds(make: Callable[[], object]) -> list[float]:
    return [min(timeit.repeat(make, number=100_000, repeat=5)) / 100_000 * 1e9 for _ in range(3)]


def main() -> None:
    print(f"{'object':<10} {'msgspec struct, keywords':>26} {'dataclass, position':>24} {'dataclass, keywords':>24}")
    for struct, values in VALUES.items():
        twin = dataclass_like(struct)
        ordered = {f.name: values[f.name] for f in msgspec.structs.fields(struct)}
        cells = [nanoseconds(call(struct, values, True)), nanoseconds(call(twin, ordered, False)),
                 nanoseconds(call(twin, values, True))]  # fmt: skip
        print(f"{struct.__name__:<10} " + " ".join(f"{f'{min(c):.0f}–{max(c):.0f} ns':>25}" for c in cells))
    print("(one object built; range over 3 runs, each the best of 5 × 100,000)")


if __name__ == "__main__":
    main()
