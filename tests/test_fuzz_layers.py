"""Every layer survives any input the readers take: mutants of every bundled file (tests/fuzz_inputs.py),
each placed in a directory beside a good capture, run through the whole pipeline as a user runs it:
`analyzer.load(dir)`, `reconstruct()`, `to_openai()`/`to_native()`, the threads and conversations,
the four frames, every export (Markdown, HTML, JSONL, CSV and Parquet tables, HAR), and the CLI's
`summary`, `show`, `convert --to har` and `export --format parquet` (the dataset build).

Mutants go through the pipeline in batches of BATCH (a directory holds the good capture and one batch);
when a batch fails, each of its mutants is run again alone beside the good capture, so a failure
names the mutant that causes it (`str(mutant)`: seed, place, value).

Below ingest, a hypothesis test gives the later layers Exchanges that keep the model's types but
hold hostile values (a URL with an unclosed IPv6 bracket, a status of 2**70, NaN read times).

CHATCAP_FUZZ_SWEEP names seeds to sweep besides: every place in their events and embedded
JSON, with every odd value (`make fuzz FUZZ_SWEEP=gemini.jsonl`).

Budget: CHATCAP_FUZZ_EXAMPLES mutants (default 240: two thirds type confusion, one third byte
damage), drawn from a seeded RNG (CHATCAP_FUZZ_SEED, default 19), and half as many hypothesis
examples (derandomized), so `make test` runs the same sample every time (about 20 s of one
core); `make fuzz` runs far more. The last-resort guard of `reconstruct()` must not be what
saves any of them: each test below fails if it fired.

A mutant on which `analyzer.load` itself raises something other than a LoadError, or gives an
Exchange that breaks the model's types (a url that is a number), is left out of the batch: that is
ingest's to fix (tests/test_bad_input.py), not the later layers'. Each such case is listed in a
UserWarning, so the run shows them without failing on them.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from click.testing import CliRunner
from fuzz_inputs import ODD, ROOT, Mutant, every_confused, sample_confused, sample_damaged
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import analyzer
from analyzer import export, frames, threads
from analyzer.cli import main
from analyzer.conversations import conversations
from analyzer.errors import LoadError
from analyzer.export import har
from analyzer.export.transcript import transcripts
from analyzer.model import Exchange

BUDGET = int(os.environ.get("CHATCAP_FUZZ_EXAMPLES", "240"))
RNG_SEED = int(os.environ.get("CHATCAP_FUZZ_SEED", "19"))
BATCH = 20
GOOD = ROOT / "captures" / "four_protocols.jsonl"
# Seeds to sweep (comma-separated names, e.g. anthropic-messages.jsonl): every event and
# embedded place of each with every odd value, on top of the sample. None by default.
SWEEP = [name for name in os.environ.get("CHATCAP_FUZZ_SWEEP", "").split(",") if name]
KINDS = {"confused": BUDGET - BUDGET // 3, "damaged": BUDGET // 3}
if SWEEP:
    KINDS["swept"] = len(every_confused(SWEEP))
BATCHES = [(kind, n) for kind, count in KINDS.items() for n in range(-(-count // BATCH))]


@functools.cache
def mutants(kind: str) -> list[Mutant]:
    if kind == "swept":
        return every_confused(SWEEP)
    rng = random.Random(f"{RNG_SEED}-{kind}")
    return (sample_confused if kind == "confused" else sample_damaged)(KINDS[kind], rng)


@dataclass
class Failure:
    step: str
    mutant: Mutant | None  # None: only the batch as a whole fails
    error: str

    def __str__(self) -> str:
        return f"{self.step}: {self.error}\n    mutant: {self.mutant or 'only the whole batch'}"


@dataclass
class Run:
    """What one batch showed, under each property the tests below assert."""

    raised: list[Failure] = field(default_factory=list)  # library steps that raised
    cli: list[Failure] = field(default_factory=list)  # CLI runs that did not end cleanly
    good_lost: list[str] = field(default_factory=list)  # the good capture, not whole somewhere
    silent_loss: list[str] = field(default_factory=list)  # fewer exchanges than the seed, nothing said
    guarded: list[str] = field(default_factory=list)  # saved only by reconstruct()'s last-resort guard
    ingest_crashes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        counts = {name: len(getattr(self, name)) for name in ("raised", "cli", "good_lost", "silent_loss", "guarded")}
        return f"Run({', '.join(f'{name}={n}' for name, n in counts.items())})"


def _error(exc: BaseException) -> str:
    """The exception and the innermost place in analyzer/ it came from."""
    frames_in = [f for f in traceback.extract_tb(exc.__traceback__) if "/analyzer/" in f.filename]
    where = (
        f" at {Path(frames_in[-1].filename).name}:{frames_in[-1].lineno} in {frames_in[-1].name}" if frames_in else ""
    )
    return f"{type(exc).__name__}: {str(exc)[:200]}{where}"


@functools.cache
def _clean(name: str, data: bytes) -> int:
    """How many exchanges the seed itself loads to, under its mutants' file name."""
    try:
        return len(analyzer.parse(data, name))
    except LoadError:
        return 0


@functools.cache
def _good() -> dict[str, Any]:
    return {x.id: x.reconstruct().to_openai() for x in analyzer.load(GOOD)}


def _seed_bytes(mutant: Mutant) -> bytes:
    from fuzz_inputs import seed

    return seed(mutant.seed).file_bytes


def _cli(args: list[str]) -> str | None:
    """Why a CLI run did not end cleanly (exit 0, or 1 with a one-line error), or None."""
    result = CliRunner().invoke(main, args)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"exception escaped the CLI: {_error(result.exception)}"
    if result.exit_code not in (0, 1):
        return f"exit code {result.exit_code}"
    if "Traceback" in output or "internal error" in output:
        return "output: " + output.strip().splitlines()[-1][:300]
    if result.exit_code == 1 and not output.rstrip("\n").rsplit("\n", 1)[-1].startswith("Error: "):
        return "exit code 1 without a one-line error last: " + output[-300:]
    return None


def _pipeline(directory: Path, files: dict[str, Mutant], out: Path) -> Run:
    """The whole pipeline over `directory` (the good capture and the mutant `files`, by path)."""
    run = Run()

    def step(name: str, call: Callable[[], Any], exchange: Exchange | None = None) -> Any:
        try:
            return call()
        except Exception as exc:
            mutant = files.get(exchange.source) if exchange is not None else None
            run.raised.append(Failure(name, mutant, _error(exc)))
            return None

    xs = step("load", lambda: analyzer.load(directory))
    if xs is None:
        return run
    for x in xs:
        rec = step("reconstruct", x.reconstruct, x)
        if rec is None:
            continue
        if rec.has("reconstruction_failed"):
            guard = next(w for w in rec.warnings if w.code == "reconstruction_failed")
            run.guarded.append(f"{files.get(x.source, x.source)}: {guard.message[:300]}")
        step("to_openai", rec.to_openai, x)
        step("to_native", rec.to_native, x)
        step("markdown_text", lambda x=x: export.markdown_text(x), x)
        step("har.entry", lambda x=x: har.entry(x), x)
    step("threads.analyse", lambda: threads.analyse(xs))
    chats = step("conversations", lambda: conversations(xs))
    shown = step("transcripts", lambda: transcripts(chats)) if chats is not None else None
    table = step("frames.exchanges", lambda: frames.exchanges(xs))
    step("frames.chunks", lambda: frames.chunks(xs))
    step("frames.messages", lambda: frames.messages(xs))
    step("frames.tool_calls", lambda: frames.tool_calls(xs))
    md = step("export.markdown", lambda: export.markdown(xs, out / "md"))
    step("export.html", lambda: export.html(xs, out / "html"))
    step("export.jsonl", lambda: export.jsonl(xs, out / "chats.jsonl"))
    step("export.tables csv", lambda: export.tables(xs, out / "csv", "csv"))
    step("export.tables parquet", lambda: export.tables(xs, out / "parquet", "parquet"))
    step("har.har", lambda: har.har(xs, out / "library.har"))
    step("har.jsonl", lambda: har.jsonl(xs, out / "library.jsonl"))

    dataset = out / "dataset"  # what `export --format parquet` builds: not `export.tables`' way
    for args in (
        ["summary", str(directory)],
        ["convert", str(directory), "--to", "har", "--out", str(out / "x.har")],
        ["export", str(directory), "--format", "parquet", "--out", str(dataset), "--workers", "1"],
    ):
        why = _cli(args)
        if why:
            run.cli.append(Failure(" ".join(args[:1]), None, why))
    for path, mutant in files.items():
        shows = [["show", path]]
        shows += [["show", path, "--id", x.id] for x in xs if x.source == path and x.position == f"line {mutant.line}"]
        for args in shows:
            why = _cli(args)
            if why:
                run.cli.append(Failure(" ".join(args[:1] + args[2:]), mutant, why))

    # The good capture: every exchange loaded, reconstructed as alone, and in every output.
    good = _good()
    loaded = {x.id: x for x in xs if Path(x.source).name == GOOD.name}
    if list(loaded) != list(good):
        run.good_lost.append(f"loaded {list(loaded)}, alone it loads {list(good)}")
    run.good_lost += [f"{i}: reconstructs otherwise beside the mutants" for i, x in loaded.items()
                      if x.reconstruct().to_openai() != good[i]]  # fmt: skip
    if table is not None and not set(good) <= set(table["id"]):
        run.good_lost.append("missing from frames.exchanges")
    if shown is not None:
        inside = {i for transcript in shown for i in transcript.exchanges}
        if not set(good) <= inside:
            run.good_lost.append(f"missing from the transcripts: {sorted(set(good) - inside)}")
        if md is not None and len(md) != len(shown):
            run.good_lost.append(f"{len(md)} Markdown files for {len(shown)} transcripts")
    for name in ("csv", "parquet"):
        written = out / name / f"exchanges.{name}"
        if written.exists():
            ids = set((pd.read_csv if name == "csv" else pd.read_parquet)(written)["id"])
            if not set(good) <= ids:
                run.good_lost.append(f"missing from exchanges.{name}")
    partitions = sorted(dataset.glob("exchanges/date=*/part-0.parquet"))
    if partitions and not set(good) <= {i for part in partitions for i in pd.read_parquet(part)["id"]}:
        run.good_lost.append("missing from the dataset's exchanges")
    if (out / "x.har").exists():
        entries = orjson.loads((out / "x.har").read_bytes())["log"]["entries"]
        count = sum(e["_chatcap"]["from"]["file"] == GOOD.name for e in entries)
        if count != len(good):
            run.good_lost.append(f"{count} of {len(good)} exchanges in the converted HAR")

    # A mutant that yields fewer exchanges than its seed says so: a problem for its file or a warning.
    for path, mutant in files.items():
        mine = [x for x in xs if x.source == path]
        said = any(p.source == path for p in xs.problems) or any(x.warnings or x.reconstruct().warnings for x in mine)
        if len(mine) < _clean(Path(path).name, _seed_bytes(mutant)) and not said:
            run.silent_loss.append(f"{mutant}: {len(mine)} exchange(s), no problem or warning")
    return run


def _off_contract(exchange: Exchange) -> list[str]:
    """Where an exchange the readers made breaks the model's types (analyzer/model.py): the
    layers after ingest may rely on those, so such a mutant is ingest's to fix, not theirs."""
    request, response = exchange.request, exchange.response
    found = []

    def check(name: str, value: Any, *types: type) -> None:
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            found.append(f"{name} is {type(value).__name__}")

    if request is not None:
        for name in ("method", "url", "http_version"):
            check(f"request.{name}", getattr(request, name), str, type(None))
        check("request.body", request.body, bytes, type(None))
    if response is not None:
        check("response.status", response.status, int, type(None))
        check("response.reason", response.reason, str, type(None))
        check("response.http_version", response.http_version, str, type(None))
        check("response.body", response.body, bytes)
        for n, read in enumerate(response.chunks or ()):
            if not (isinstance(read, tuple | list) and len(read) == 2):
                found.append(f"response.chunks[{n}] is {type(read).__name__}")
            else:
                check(f"response.chunks[{n}] time", read[0], float, int)
                check(f"response.chunks[{n}] offset", read[1], int)
    for part in (request, response):
        for n, header in enumerate(part.headers if part is not None else ()):
            if not (isinstance(header, tuple) and len(header) == 2 and all(isinstance(h, str) for h in header)):
                found.append(f"header {n} is {header!r:.60}")
    check("started_at", exchange.started_at, datetime, type(None))
    check("error", exchange.error, str, type(None))
    check("complete", exchange.complete, bool, type(None))
    for name, ms in (exchange.timings or {}).items():
        check(f"timings[{name!r:.40}]", ms, float, int)
    return found


def _batch(kind: str, number: int, tmp: Path) -> Run:
    chosen = mutants(kind)[number * BATCH : (number + 1) * BATCH]
    directory = tmp / "in"
    directory.mkdir()
    shutil.copy(GOOD, directory / GOOD.name)
    files: dict[str, Mutant] = {}
    crashes = []
    for n, mutant in enumerate(chosen):
        path = directory / f"m{number * BATCH + n:04d}_{mutant.seed}"
        path.write_bytes(mutant.data)
        try:
            off = [f"{x.id}: {', '.join(found)}" for x in analyzer.load(path) if (found := _off_contract(x))]
        except LoadError:
            off = []
        except Exception as exc:  # ingest's to fix: left out of the batch, listed in a warning
            off = [_error(exc)]
        if off:
            crashes.append(f"{mutant}: {'; '.join(off)}"[:400])
            path.rename(tmp / path.name)
            continue
        files[str(path)] = mutant
    run = _pipeline(directory, files, tmp / "out")
    if run.raised or run.cli:
        # Which mutant: each alone beside the good capture.
        raised: list[Failure] = []
        cli: list[Failure] = []
        for path, mutant in files.items():
            solo = tmp / f"alone_{Path(path).name}"
            (solo / "in").mkdir(parents=True)
            shutil.copy(GOOD, solo / "in" / GOOD.name)
            shutil.copy(path, solo / "in" / Path(path).name)
            again = _pipeline(solo / "in", {str(solo / "in" / Path(path).name): mutant}, solo / "out")
            raised += [Failure(f.step, mutant, f.error) for f in again.raised]
            cli += [Failure(f.step, mutant, f.error) for f in again.cli]
        # A batch's failure a mutant alone shows too is listed under that mutant only.
        run.raised = raised + [f for f in run.raised if f.mutant is None and f.step not in {a.step for a in raised}]
        run.cli = cli + [f for f in run.cli if f.mutant is None and f.step not in {a.step for a in cli}]
    run.ingest_crashes = crashes
    if crashes:
        warnings.warn(
            f"{len(crashes)} mutant(s) make analyzer.load raise or break the model's types (left out; ingest's to fix):\n"
            + "\n".join(crashes),
            UserWarning,
            stacklevel=1,
        )
    return run


_RUNS: dict[tuple[str, int], Run] = {}


@pytest.fixture
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    key = request.param
    if key not in _RUNS:
        _RUNS[key] = _batch(*key, tmp_path_factory.mktemp(f"fuzz-{key[0]}-{key[1]}"))
    return _RUNS[key]


IDS = [f"{kind}-{n}" for kind, n in BATCHES]


def _listed(failures: list[Any]) -> str:
    return "\n".join(map(str, failures[:25])) + (f"\n... and {len(failures) - 25} more" if len(failures) > 25 else "")


@pytest.mark.parametrize("run", BATCHES, ids=IDS, indirect=True)
def test_no_library_step_raises_on_a_mutant_beside_a_good_capture(run: Run) -> None:
    if run.raised:
        pytest.fail(_listed(run.raised), pytrace=False)


@pytest.mark.parametrize("run", BATCHES, ids=IDS, indirect=True)
def test_summary_show_convert_and_export_exit_0_or_1_with_a_one_line_error(run: Run) -> None:
    if run.cli:
        pytest.fail(_listed(run.cli), pytrace=False)


@pytest.mark.parametrize("run", BATCHES, ids=IDS, indirect=True)
def test_the_good_capture_loads_reconstructs_and_exports_whole_beside_mutants(run: Run) -> None:
    if run.good_lost:
        pytest.fail(_listed(run.good_lost), pytrace=False)


@pytest.mark.parametrize("run", BATCHES, ids=IDS, indirect=True)
def test_a_mutant_yielding_fewer_exchanges_than_its_seed_has_a_problem_or_warning(run: Run) -> None:
    if run.silent_loss:
        pytest.fail(_listed(run.silent_loss), pytrace=False)


@pytest.mark.parametrize("run", BATCHES, ids=IDS, indirect=True)
def test_no_mutant_is_saved_only_by_the_last_resort_guard(run: Run) -> None:
    if run.guarded:
        pytest.fail(_listed(run.guarded), pytrace=False)


# --- below ingest: any Exchange that keeps the model's types ----------------------------------
# The layers after ingest rely on analyzer/model.py's types, nothing more: an Exchange a user
# builds (or a reader yet to come makes) with any values of those types must reconstruct,
# frame and export. Hypothesis replaces a few of a bundled exchange's fields with such values.

MODEL_EXAMPLES = max(1, BUDGET // 2)
_HOSTILE_URLS = ["http://[::1/v1/chat/completions", "https://[zz]/v1/messages", "https://h:99999999/v1/responses",
                 "https://h/v1beta/models/:streamGenerateContent", "//", "", "https://h/%zz/chat/completions"]  # fmt: skip
_INTS = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 2**15, 2**31, 2**63, 2**64, 2**70]))
_TIMES = st.one_of(_INTS, st.floats(allow_nan=True, allow_infinity=True))
_HEADERS = st.lists(
    st.tuples(st.sampled_from(["content-type", "date", "location", "host", "x-api-key"]) | st.text(max_size=8),
              st.sampled_from(["text/event-stream", "application/json", "", "Mon, 99 Foo"]) | st.text(max_size=12)),
    max_size=4,
)  # fmt: skip
# A chat request body with one odd value (fuzz_inputs.ODD) in a place its readers look.
_REQUESTS = (
    '{"model":"m","messages":[{"role":"user","content":%s}]}',
    '{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":%s}]}]}',
    '{"model":"m","messages":[{"role":"user","content":[{"type":%s,"text":"x"}]}]}',
    '{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function",'
    '"function":{"name":"f","arguments":%s}}]},{"role":"tool","tool_call_id":"c","content":"ok"}]}',
    '{"model":"m","tools":%s,"messages":[{"role":"user","content":"hi"}]}',
    '{"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":%s}}],"messages":[]}',
    '{"model":%s,"temperature":0.5,"messages":[{"role":"user","content":"hi"}]}',
    '{"model":"m","max_tokens":%s,"reasoning_effort":"low","messages":[{"role":"system","content":"s"}]}',
    '{"model":"m","messages":%s}',
)
_ODD_JSON = st.sampled_from([odd for odd in ODD.values() if isinstance(odd, str)])
_REQUEST_BODIES = st.builds(lambda template, odd: (template % odd).encode(), st.sampled_from(_REQUESTS), _ODD_JSON)
_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "request.url": st.sampled_from(_HOSTILE_URLS) | st.text(max_size=30) | st.none(),
    "request.method": st.text(max_size=8) | st.none(),
    "request.http_version": st.text(max_size=8) | st.none(),
    "request.headers": _HEADERS,
    "request.body": _REQUEST_BODIES | st.binary(max_size=64) | st.none(),
    "response.status": _INTS | st.none(),
    "response.reason": st.text(max_size=12) | st.none(),
    "response.headers": _HEADERS,
    "response.body": st.binary(max_size=256),
    "response.chunks": st.lists(st.tuples(_TIMES, _INTS), max_size=6) | st.none(),
    "started_at": st.datetimes(timezones=st.none() | st.timezones()) | st.none(),
    "timings": st.dictionaries(st.sampled_from(["send", "wait", "receive", "blocked", "x"]), _TIMES) | st.none(),
    "error": st.text(max_size=20) | st.none(),
    "complete": st.booleans() | st.none(),
}


@functools.cache
def _loadable_seeds() -> list[str]:
    """The bundled seeds that load, by name."""
    from fuzz_inputs import seeds

    found = []
    for seed in seeds():
        try:
            analyzer.parse(seed.file_bytes, seed.name)
        except LoadError:
            continue
        found.append(seed.name)
    return found


# No shrinking: each draw is one labelled field, and shrinking a whole pipeline run takes minutes.
@settings(
    max_examples=MODEL_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_any_exchange_keeping_the_model_types_reconstructs_frames_and_exports(
    data: st.DataObject, tmp_path: Path
) -> None:
    from fuzz_inputs import seed

    name = data.draw(st.sampled_from(_loadable_seeds()), label="seed")
    xs = analyzer.parse(seed(name).file_bytes, name)
    exchange = xs[data.draw(st.integers(0, len(xs) - 1), label="exchange index")]
    for field_name in data.draw(st.lists(st.sampled_from(sorted(_FIELDS)), min_size=1, max_size=3, unique=True)):
        owner, _, attribute = field_name.rpartition(".")
        target = getattr(exchange, owner) if owner else exchange
        if target is not None:
            setattr(target, attribute, data.draw(_FIELDS[field_name], label=field_name))
    rec = exchange.reconstruct()
    assert not rec.has("reconstruction_failed"), [str(w) for w in rec.warnings]
    rec.to_openai()
    rec.to_native()
    export.markdown_text(exchange)
    frames.all_frames([exchange])
    out = tmp_path / str(data.draw(st.integers(0, 10**9), label="directory"))
    export.html([exchange], out / "html")
    export.jsonl([exchange], out / "chats.jsonl")
    har.har([exchange], out / "x.har")
