"""JupyterLab as a user meets it: `chatcap lab` in headless Chromium, a notebook run from the
Run menu, its charts drawn with nothing fetched beyond loopback."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from harness import ROOT, free_port
from test_browser import chromium

sys.path.insert(0, str(ROOT / "tests"))
from bundled import captures_as_cloned

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_latency_notebook_draws_its_charts_offline_in_jupyterlab(tmp_path: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    port, token = free_port(), secrets.token_hex(8)
    env = os.environ | {"JUPYTER_TOKEN": token, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
                        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}  # fmt: skip
    # chatcap lab copies the notebooks into a directory of the user's: JupyterLab's autosave never
    # writes outputs into the repo. They read the bundled captures alone, not what a user recorded
    # into the checkout's captures/live/.
    bundled = captures_as_cloned()
    command = [sys.executable, "-m", "analyzer", "lab", str(tmp_path / "lab"), "--captures", str(bundled),
               "--no-browser", "--port", str(port)]  # fmt: skip
    with (tmp_path / "lab.log").open("wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "lab.log").read_text()
                time.sleep(0.3)
        opened = nbformat.read(tmp_path / "lab" / "02_latency.ipynb", as_version=4)
        (parameters,) = [cell for cell in opened.cells if "parameters" in cell.metadata.get("tags", [])]
        assert f"CAPTURES = {str(bundled)!r}" in parameters.source.splitlines()  # the copy it runs reads them
        outside: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium(), headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                local = ("http://127.0.0.1", "data:", "blob:")
                page.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
                page.goto(f"http://127.0.0.1:{port}/lab/tree/02_latency.ipynb?token={token}")
                page.wait_for_selector(".jp-Notebook", timeout=60_000)
                # A cold server can be slow to list its kernels, and JupyterLab then asks which one
                # to start (the notebook names python3 in its metadata): accept its choice.
                with contextlib.suppress(PlaywrightTimeout):
                    page.locator(".jp-Dialog .jp-mod-accept").click(timeout=15_000)
                # Run only once the kernel is connected and idle: cells run while it is still
                # starting can stay queued for good on a busy machine (seen once: every cell [*],
                # the kernel idle).
                page.wait_for_function(
                    "(document.querySelector('#jp-main-statusbar') || {}).textContent?.includes('| Idle')",
                    timeout=120_000,
                )
                page.click(".lm-MenuBar-itemLabel:text-is('Run')")
                page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
                try:  # a cold JupyterLab and kernel on a busy 2-core machine can take a while
                    page.wait_for_function("document.querySelectorAll('.vega-embed').length >= 4", timeout=180_000)
                except Exception:
                    page.screenshot(path=str(tmp_path / "lab.png"))
                    raise
                drawn = page.locator(".vega-embed svg, .vega-embed canvas").count()
            finally:
                browser.close()
        assert drawn >= 4
        assert outside == []  # altair's default would fetch Vega from a CDN
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
