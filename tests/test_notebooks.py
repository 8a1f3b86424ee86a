"""The notebooks as a user runs them (every cell, top to bottom, on a fresh kernel) and `chatcap lab`."""

from __future__ import annotations

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
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NAMES = ["01_overview", "02_latency", "03_tokens_and_cost", "04_transcripts"]
# Charts each notebook draws.
CHARTS = {"01_overview": 0, "02_latency": 5, "03_tokens_and_cost": 2, "04_transcripts": 0}


def execute(name: str, parameters: str = "", tail: str = "") -> nbformat.NotebookNode:
    """Run a notebook on a fresh python3 kernel in notebooks/, as JupyterLab would. `parameters`
    goes in a cell after the one tagged `parameters` (as papermill injects it); `tail` at the end."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    if parameters:
        at = next(n for n, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
        injected = nbformat.v4.new_code_cell(parameters, metadata={"tags": ["injected-parameters"]})
        notebook.cells.insert(at + 1, injected)
    if tail:
        notebook.cells.append(nbformat.v4.new_code_cell(tail))
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
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
    parameters = f"OUT = {str(tmp_path)!r}" if name == "04_transcripts" else ""
    notebook = execute(name, parameters, tail="import sys\nprint('kernel prefix:', sys.prefix)")
    check(notebook, name)
    assert f"kernel prefix: {sys.prefix}\n" in text(notebook)  # the venv's python, not another one
    assert f"from {ROOT / 'captures'}" in text(notebook)
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


def test_every_notebook_is_tested() -> None:
    assert sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb")) == NAMES


def test_lab_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "analyzer", "lab", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "JupyterLab on notebooks/" in result.stdout and "--no-browser" in result.stdout


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


def test_lab_serves_the_notebooks_and_stops_cleanly(tmp_path: Path) -> None:
    port, token = _free_port(), secrets.token_hex(16)
    # A token of our own, and Jupyter's config and runtime files kept out of the user's home.
    env = os.environ | {
        "JUPYTER_TOKEN": token,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    # As root (containers, CI) `chatcap lab` adds Jupyter's --allow-root itself.
    command = [sys.executable, "-m", "analyzer", "lab", "--no-browser", "--port", str(port)]
    log = (tmp_path / "lab.log").open("wb")
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "lab.log").read_text()
            try:
                if _get(f"{base}/api")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
            time.sleep(0.25)
        assert _get(f"{base}/lab")[0] == 302  # to the login page without the token
        assert _get(f"{base}/lab", token)[0] == 200
        status, body = _get(f"{base}/api/contents", token)
        assert status == 200 and all(f'"{name}.ipynb"'.encode() in body for name in NAMES)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, (tmp_path / "lab.log").read_text()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
    with pytest.raises(ProcessLookupError):  # nothing it started is left running
        os.killpg(server.pid, 0)


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
