"""The one compiled part: analyzer._sse, the fast path's cut of an event-stream body (C, no
dependencies). Optional: where it cannot be built, analyzer.protocols.events uses its Python
version, which gives the same results more slowly. Everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("analyzer._sse", ["analyzer/_sse.c"], optional=True)])
