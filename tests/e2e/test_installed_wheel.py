"""The wheel is the whole product: built from this checkout, installed with its `[capture,lab]`
extras into a fresh virtualenv, and used from a directory outside any checkout, as a user who
ran `pip install 'chatcap[capture,lab]'` would — capture a program, open the lab, load the
addon into a plain mitmdump.

The virtualenv's pip fetches the dependencies from the package index (its cache, after the
first run), so this module takes a minute or so.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import ROOT, free_port, scripted_stream, self_signed, start_upstream, wait_for_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORDS = [f"w{n} " for n in range(8)]


@dataclass
class Installed:
    venv: Path
    wheel: Path
    user: Path  # a directory of the user's, outside the checkout

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *command: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        """A command in the user's directory, with the virtualenv's bin/ first on PATH and
        nothing of the checkout's (no PYTHONPATH, no .venv)."""
        environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
        environment["PATH"] = f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"
        environment.update(HOME=str(self.user / "home"), COLUMNS="250", **env)
        return subprocess.run(command, cwd=self.user, env=environment, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    dist, venv = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("venv")
    user = tmp_path_factory.mktemp("user")
    (user / "home").mkdir()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = dist.glob("chatcap-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", f"{wheel}[capture,lab]"], check=True, capture_output=True, timeout=900)
    return Installed(venv, wheel, user)


def test_the_installed_package_is_the_wheels_not_the_checkouts(installed: Installed) -> None:
    where = installed.run(installed.bin("python"), "-c", "import analyzer; print(analyzer.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.venv)
    addon = installed.run(installed.bin("chatcap"), "addon-path")
    assert addon.returncode == 0 and Path(addon.stdout.strip()).is_relative_to(installed.venv)
    assert Path(addon.stdout.strip()).is_file()


def test_chatcap_capture_records_a_program_and_passes_its_exit_status_through(
    installed: Installed, tmp_path: Path
) -> None:
    certificate = self_signed(tmp_path)
    server = start_upstream([scripted_stream(WORDS, gap_ms=5, first_ms=10)], certificate)
    client = ROOT / "tests" / "e2e" / "clients" / "openai_stream.py"
    try:
        # The client is any program: here the test environment's Python, which has the openai SDK.
        ran = installed.run(
            installed.bin("chatcap"), "capture", "--set", f"ssl_verify_upstream_trusted_ca={certificate[0]}",
            "--", sys.executable, str(client), f"{server.url}/v1", "3",
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert ran.returncode == 3, ran.stderr
    assert ran.stdout == "".join(WORDS)
    assert "captured 1 exchange(s)" in ran.stderr
    (recorded,) = (installed.user / "captures" / "live").glob("*.jsonl")  # the default --out, in the user's directory
    summary = installed.run(installed.bin("chatcap"), "summary", str(recorded))
    assert summary.returncode == 0 and "gpt-e2e" in summary.stdout, summary.stderr


def test_mitmdump_loads_the_installed_addon_by_its_path_and_records(installed: Installed, tmp_path: Path) -> None:
    upstream = start_upstream([scripted_stream(WORDS, gap_ms=5, first_ms=10)])
    addon = installed.run(installed.bin("chatcap"), "addon-path").stdout.strip()
    port, out = free_port(), tmp_path / "recorded"
    proxy = subprocess.Popen(
        [installed.bin("mitmdump"), "--listen-host", "127.0.0.1", "-p", str(port), "-s", addon,
         "--set", f"chatcap_dir={out}", "--set", f"confdir={tmp_path / 'conf'}"],
        cwd=installed.user, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, proxy)
        body = json.dumps({"model": "gpt-e2e", "messages": [{"role": "user", "content": "hi"}], "stream": True})
        subprocess.run(
            ["curl", "-sS", "-x", f"http://127.0.0.1:{port}", f"{upstream.url}/v1/chat/completions",
             "-H", "content-type: application/json", "-d", body, "-o", "/dev/null"],
            check=True, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not list(out.glob("*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
        upstream.shutdown()
        upstream.server_close()
    (recorded,) = out.glob("*.jsonl")
    entry = json.loads(recorded.read_text())
    assert entry["_chatcap"]["schema"] == "chatcap/1" and entry["response"]["status"] == 200


def test_chatcap_lab_serves_the_four_notebooks_from_a_working_directory(installed: Installed) -> None:
    port, token = free_port(), secrets.token_hex(8)
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment.update(
        PATH=f"{installed.venv / 'bin'}:/usr/bin:/bin", HOME=str(installed.user / "home"), JUPYTER_TOKEN=token,
        JUPYTER_CONFIG_DIR=str(installed.user / "jupyter-config"), JUPYTER_DATA_DIR=str(installed.user / "jupyter-data"),
    )  # fmt: skip
    lab = subprocess.Popen(
        [installed.bin("chatcap"), "lab", "my-lab", "--no-browser", "--port", str(port)],
        cwd=installed.user, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, lab, timeout=90)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/contents", headers={"Authorization": f"token {token}"}
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    listing = json.load(response)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        lab.terminate()
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lab.kill()
    served = sorted(item["name"] for item in listing["content"] if item["name"].endswith(".ipynb"))
    assert served == ["01_overview.ipynb", "02_latency.ipynb", "03_tokens_and_cost.ipynb", "04_transcripts.ipynb"]
    copied = installed.user / "my-lab"
    assert sorted(path.name for path in copied.glob("*.ipynb")) == served
    parameters = json.loads((copied / "02_latency.ipynb").read_text())["cells"]
    text = "".join("".join(cell["source"]) for cell in parameters if "parameters" in cell["metadata"].get("tags", []))
    assert str(installed.user / "captures") in text
