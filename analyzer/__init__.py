"""chatcap's analyzer: reconstruct what LLM chat APIs sent and received.

    import analyzer
    xs = analyzer.load("captures/")      # any supported format -> list of Exchange
    for x in analyzer.stream("big.jsonl"): ...   # the same, one at a time (bounded memory)
    rec = xs[0].reconstruct()            # messages, reasoning, tool calls, usage, timing
    rec.to_openai()                      # the equivalent non-streaming chat.completion
    analyzer.sql("SELECT count(*) FROM exchanges", "captures/")   # DuckDB over the four tables

pandas and altair are imported only when `analyzer.frames` / `analyzer.charts` are used, DuckDB
only by `analyzer.sql`.
"""

from __future__ import annotations

import importlib
from typing import Any

from analyzer.errors import LoadError, NoExchangesFound
from analyzer.ingest import Exchanges, ExchangeStream, Problem, load, parse, stream
from analyzer.model import Choice, Exchange, Notice, Reconstruction, ToolCall, Usage

__version__ = "0.1.0"

__all__ = [
    "Choice",
    "Exchange",
    "ExchangeStream",
    "Exchanges",
    "LoadError",
    "NoExchangesFound",
    "Notice",
    "Problem",
    "Reconstruction",
    "ToolCall",
    "Usage",
    "load",
    "parse",
    "sql",
    "stream",
]

_LAZY = {"frames", "charts", "export", "metrics", "redact", "sse", "protocols", "cost", "tokens", "threads", "query"}


def __getattr__(name: str) -> Any:
    if name == "sql":  # a function: analyzer.query.sql
        return importlib.import_module("analyzer.query").sql
    if name in _LAZY:
        return importlib.import_module(f"analyzer.{name}")
    raise AttributeError(f"module 'analyzer' has no attribute {name!r}")
