"""The notebooks as a user runs them (every cell, top to bottom, on a fresh kernel) and `chatcap lab`."""

from __future__ import annotations

import ast
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from bundled import CAPTURES, captures_as_cloned
from nbclient import NotebookClient

import analyzer

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NAMES = ["01_overview", "02_latency", "03_tokens_and_cost", "04_transcripts"]
# Charts each notebook draws.
CHARTS = {"01_overview": 0, "02_latency": 5, "03_tokens_and_cost": 2, "04_transcripts": 0}


def execute(name: str, parameters: str = "", tail: str = "", folder: Path = NOTEBOOKS) -> nbformat.NotebookNode:
    """Run a notebook on a fresh python3 kernel in its folder (notebooks/), as JupyterLab would.
    `parameters` goes in a cell after the one tagged `parameters` (as papermill injects it); `tail`
    at the end."""
    notebook = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    if parameters:
        at = next(n for n, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
        injected = nbformat.v4.new_code_cell(parameters, metadata={"tags": ["injected-parameters"]})
        notebook.cells.insert(at + 1, injected)
    if tail:
        notebook.cells.append(nbformat.v4.new_code_cell(tail))
    client = NotebookClient(notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(folder)}})
    client.execute()  # raises CellExecutionError at the first cell that fails
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def text(notebook: nbformat.NotebookNode) -> str:
    found = [o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
             for o in outputs(notebook)]  # fmt: skip
    return "\n".join(found)


def drawn(notebook: nbformat.NotebookNode) -> int:
    """Charts drawn: altair's JupyterChart widgets (analyzer.charts turns them on in a kernel)."""
    return sum("JupyterChart" in o.get("data", {}).get("text/plain", "") for o in outputs(notebook))


def check(notebook: nbformat.NotebookNode, name: str) -> None:
    assert not [o for o in outputs(notebook) if o.output_type == "error"]
    assert drawn(notebook) == CHARTS[name]
    everything = json.dumps(outputs(notebook))
    assert "cdn.jsdelivr" not in everything and "<script src=" not in everything  # nothing fetched from the network


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_the_bundled_captures(name: str, tmp_path: Path) -> None:
    # The bundled captures alone, as a clone has them: not what a user recorded into captures/live/.
    bundled = captures_as_cloned()
    parameters = f"CAPTURES = {str(bundled)!r}"
    if name == "04_transcripts":
        parameters += f"\nOUT = {str(tmp_path)!r}"
    notebook = execute(name, parameters, tail="import sys\nprint('kernel prefix:', sys.prefix)")
    check(notebook, name)
    assert f"kernel prefix: {sys.prefix}\n" in text(notebook)  # the venv's python, not another one
    said = text(notebook)
    assert f"{len(analyzer.load(bundled))} exchange(s)" in said and f"from {bundled}" in said
    if name == "04_transcripts":
        # The longest conversation (replayed/conversation.jsonl, seven exchanges): one transcript of it.
        (transcript,) = tmp_path.glob("*.md")
        assert "7 exchange(s)" in transcript.read_text() and (tmp_path / "index.html").exists()


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_a_users_capture_directory(name: str, tmp_path: Path) -> None:
    captures = tmp_path / "my captures"
    captures.mkdir()
    shutil.copy(ROOT / "captures" / "replayed" / "conversation.jsonl", captures)
    parameters = f"CAPTURES = {str(captures)!r}"
    if name == "04_transcripts":
        parameters += f"\nOUT = {str(tmp_path / 'out')!r}"
    notebook = execute(name, parameters)
    check(notebook, name)
    assert "7 exchange(s)" in text(notebook)
    if name == "04_transcripts":
        (transcript,) = (tmp_path / "out").glob("*.md")
        assert transcript.name == "c1-which-trail-is-best-for-a-beginner-in-late-autum.md"
        assert "Regenerated:" in transcript.read_text() and "Edited:" in transcript.read_text()


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "widgets" not in notebook.metadata  # saved widget state is output too
    parameters = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1 and "CAPTURES = " in parameters[0].source


@pytest.mark.parametrize("name", NAMES)
def test_notebook_reads_the_checkouts_captures_by_default(name: str) -> None:
    """Opened in the checkout (`make lab`, `pip install -e`), a notebook reads its captures/; the
    tests run it on a copy of the bundled captures instead, so its default is checked here."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    namespace = {"Path": Path, "analyzer": analyzer}  # what the notebook's first cell imports
    exec(cell.source, namespace)
    assert namespace["CAPTURES"] == str(CAPTURES)


def test_every_notebook_is_tested() -> None:
    assert sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb")) == NAMES


def test_lab_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "analyzer", "lab", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "JupyterLab on chatcap's notebooks, copied into DIR" in result.stdout
    assert all(option in result.stdout for option in ["--captures", "--no-browser", "--port", "[DIR]"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Lab:
    base: str  # the server's URL
    token: str
    log: Path  # what `chatcap lab` and JupyterLab printed

    def contents(self, path: str = "") -> dict:
        """JupyterLab's view of a file or directory (relative to the directory it serves)."""
        status, body = _get(f"{self.base}/api/contents/{path}?content=1", self.token)
        assert status == 200, (status, path)
        return json.loads(body)


@contextmanager
def lab(tmp_path: Path, *arguments: str, cwd: Path) -> Iterator[Lab]:
    """`chatcap lab ARGUMENTS --no-browser` run from `cwd` until JupyterLab answers; stopped with
    SIGTERM afterwards, which it must obey at once, leaving nothing it started running."""
    port, token = _free_port(), secrets.token_hex(16)
    # A token of our own, and Jupyter's config and runtime files kept out of the user's home.
    env = os.environ | {
        "JUPYTER_TOKEN": token,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    # As root (containers, CI) `chatcap lab` adds Jupyter's --allow-root itself.
    command = [sys.executable, "-m", "analyzer", "lab", *arguments, "--no-browser", "--port", str(port)]
    log_path = tmp_path / f"lab-{port}.log"
    log = log_path.open("wb")
    server = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                if _get(f"{base}/api")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
            time.sleep(0.25)
        yield Lab(base, token, log_path)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, log_path.read_text()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
    with pytest.raises(ProcessLookupError):  # nothing it started is left running
        os.killpg(server.pid, 0)


def captures_in(notebook: dict) -> str:
    """The value of CAPTURES in a notebook's cell tagged `parameters`."""
    (cell,) = [c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", [])]
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    (line,) = [line for line in source.splitlines() if line.startswith("CAPTURES = ")]
    return ast.literal_eval(line.removeprefix("CAPTURES = "))


def test_lab_without_dir_serves_copies_in_chatcap_lab_here_reading_captures_here_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    with lab(tmp_path, cwd=tmp_path) as running:
        assert _get(f"{running.base}/lab")[0] == 302  # to the login page without the token
        assert _get(f"{running.base}/lab", running.token)[0] == 200
        listed = running.contents()
        assert listed["path"] == "" and sorted(item["name"] for item in listed["content"]) == [
            f"{name}.ipynb" for name in NAMES
        ]  # .chatcap-lab.json is hidden
        served = running.contents("01_overview.ipynb")["content"]
    assert captures_in(served) == str(tmp_path / "captures")
    assert sorted(path.name for path in (tmp_path / "chatcap-lab").glob("*.ipynb")) == [f"{n}.ipynb" for n in NAMES]
    assert "captures does not exist yet" in running.log.read_text()


def test_lab_dir_serves_the_four_notebooks_copied_there_and_a_second_run_keeps_a_users_edit(tmp_path: Path) -> None:
    directory, captures = tmp_path / "my lab", tmp_path / "my captures"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with lab(tmp_path, str(directory), "--captures", str(captures), cwd=elsewhere) as running:
        listed = sorted(item["name"] for item in running.contents()["content"])
        served = {name: running.contents(f"{name}.ipynb")["content"] for name in NAMES}
    assert listed == [f"{name}.ipynb" for name in NAMES]
    assert all(captures_in(notebook) == str(captures) for notebook in served.values())
    assert "copied 01_overview.ipynb, 02_latency.ipynb, 03_tokens_and_cost.ipynb, 04_transcripts.ipynb" in (
        running.log.read_text()
    )
    assert list(elsewhere.iterdir()) == []  # nothing written where it ran from

    edited = nbformat.read(directory / "02_latency.ipynb", as_version=4)
    edited.cells.append(nbformat.v4.new_code_cell("print('my own cell')"))
    nbformat.write(edited, directory / "02_latency.ipynb")
    (directory / "03_tokens_and_cost.ipynb").unlink()
    # The second run, from another directory and without --captures, keeps the captures first chosen.
    with lab(tmp_path, str(directory), cwd=tmp_path) as running:
        again = {name: running.contents(f"{name}.ipynb")["content"] for name in NAMES}
    said = running.log.read_text()
    assert "my own cell" in "".join(again["02_latency"]["cells"][-1]["source"])
    assert "kept 02_latency.ipynb as you changed it" in said
    assert "copied 03_tokens_and_cost.ipynb into" in said and "updated" not in said
    assert again["01_overview"] == served["01_overview"] and again["03_tokens_and_cost"] == served["03_tokens_and_cost"]
    assert all(captures_in(notebook) == str(captures) for notebook in again.values())


def test_lab_opens_the_checkouts_notebooks_as_they_are_and_refuses_to_set_their_captures(tmp_path: Path) -> None:
    before = {path.name: path.read_bytes() for path in NOTEBOOKS.glob("*")}
    result = subprocess.run(
        [sys.executable, "-m", "analyzer", "lab", str(NOTEBOOKS), "--captures", str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == f"Error: {NOTEBOOKS} holds chatcap's own notebooks: --captures needs another DIR\n"
    assert {path.name: path.read_bytes() for path in NOTEBOOKS.glob("*")} == before


def test_notebook_copied_by_lab_reads_the_captures_it_was_given(tmp_path: Path) -> None:
    from analyzer.lab import prepare

    captures = tmp_path / "it's my captures"
    captures.mkdir()
    shutil.copy(ROOT / "captures" / "replayed" / "conversation.jsonl", captures)
    prepare(tmp_path / "lab", captures)
    notebook = execute("01_overview", folder=tmp_path / "lab")  # as it is: no parameter injected
    check(notebook, "01_overview")
    assert f"7 exchange(s) from {captures}\n" in text(notebook)


@pytest.mark.parametrize("name", ["02_latency", "03_tokens_and_cost"])
def test_notebook_on_captures_without_per_read_times_says_what_it_cannot_draw(name: str, tmp_path: Path) -> None:
    """HAR files (DevTools, Charles, HTTP Toolkit) have no per-read times and single requests no
    conversation: the notebook draws the rest and says what it could not, run as a user runs it
    headless, through papermill with `-p CAPTURES`."""
    out = tmp_path / f"{name}.ipynb"
    result = subprocess.run(
        [str(Path(sys.executable).with_name("papermill")), str(NOTEBOOKS / f"{name}.ipynb"), str(out),
         "-p", "CAPTURES", str(ROOT / "tests" / "data" / "har"), "--cwd", str(NOTEBOOKS), "-k", "python3"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    notebook = nbformat.read(out, as_version=4)
    assert not [o for o in outputs(notebook) if o.output_type == "error"]
    said = text(notebook)
    assert "from " + str(ROOT / "tests" / "data" / "har") in said
    if name == "02_latency":
        assert "no explorer: no exchanges with per-read arrival times" in said
        assert "no exchange with per-read timing" in said  # and no timeline
        assert drawn(notebook) == CHARTS[name] - 2
    else:
        assert drawn(notebook) >= 1
