# Two commands: `make demo` and `make test`. Both set everything up first and are
# quick the second time (the venv is rebuilt only when pyproject.toml changes, and the
# one C file, analyzer/_sse.c, is compiled again when it or setup.py does).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test fuzz lab bench recordings compatibility clean chromium charts golden dist

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools

$(VENV)/.demo: pyproject.toml setup.py analyzer/_sse.c | $(PY)
	$(PIP) install -e .
	@touch $@

$(VENV)/.test: pyproject.toml setup.py analyzer/_sse.c | $(PY)
	$(PIP) install -e '.[test,capture,lab]'
	@touch $@ $(VENV)/.demo

demo: $(VENV)/.demo
	$(PY) -m analyzer summary captures/
	$(PY) -m analyzer export captures/ --format html --out out/html
	$(PY) -m analyzer export captures/ --format markdown --out out/markdown
	$(PY) -m analyzer export captures/ --format jsonl --out out/
	@echo "transcripts written to out/: open out/html/index.html"

# The browser tests drive Debian's chromium through Playwright (no browser download).
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

test: $(VENV)/.test chromium
	$(PY) -m ruff check $(wildcard analyzer tests benchmarks addons docs)
	$(PY) -m ruff format --check $(wildcard analyzer tests benchmarks addons)
	$(PY) -m pytest

# tests/test_fuzz_layers.py with a long budget: `make test` runs a fixed sample of 240 mutants
# of the bundled inputs (about 20 s); this runs FUZZ_EXAMPLES of them (drawn with FUZZ_SEED:
# change it to draw others).
# FUZZ_SWEEP: seeds (comma-separated file names) to sweep besides, every place with every value.
FUZZ_EXAMPLES ?= 6000
FUZZ_SEED ?= 19
FUZZ_SWEEP ?=
fuzz: $(VENV)/.test
	CHATCAP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) CHATCAP_FUZZ_SEED=$(FUZZ_SEED) CHATCAP_FUZZ_SWEEP=$(FUZZ_SWEEP) \
		$(PY) -m pytest tests/test_fuzz_layers.py -q

# The wheel users install: pip install 'dist/chatcap-0.1.0-<tags>.whl[capture,lab]' (or pipx).
dist: $(VENV)/.demo
	rm -rf dist
	$(PY) -m pip wheel --disable-pip-version-check --no-deps -q -w dist .
	@ls dist/*.whl

# JupyterLab on the checkout's notebooks/ as they are (chatcap lab notebooks).
lab: $(VENV)/.test
	$(PY) -m analyzer lab notebooks

# Re-record captures/replayed/: synthetic conversations through the real proxy and addon.
recordings: $(VENV)/.test
	$(PY) tests/data/record_captures.py

# docs/compatibility.md from a run over tests/data/real (streams recorded from real providers).
compatibility: $(VENV)/.test
	$(PY) docs/compatibility.py

# Redraw the README's pictures (docs/img/) from the bundled captures.
charts: $(VENV)/.test
	$(PY) docs/charts.py

bench: $(VENV)/.test
	$(PY) benchmarks/run.py --real tests/data/real
	$(PY) benchmarks/load.py
	$(PY) benchmarks/protocols.py --real tests/data/real
	$(PY) benchmarks/proxy.py
	$(PY) benchmarks/large_inputs.py
	$(PY) benchmarks/summary.py
	$(PY) benchmarks/frames.py
	$(PY) benchmarks/redaction.py
	$(PY) benchmarks/model.py
	$(PY) benchmarks/languages.py
	$(PY) benchmarks/sql.py
	$(PY) benchmarks/scale.py

clean:
	rm -rf $(VENV) out build dist *.egg-info analyzer/*.so

# tests/data/golden/: every bundled input exported in every transcript format, and the four frames
# of the bundled captures, the real corpus and the external recordings (review the diff).
golden: $(VENV)/.test
	$(PY) tests/data/make_golden.py
	$(PY) tests/data/make_frames_golden.py
