"""Run a live capture: mitmdump with the chatcap addon, and optionally a browser routed through it.

The browser gets a fresh throw-away profile, the proxy, and trust in mitmproxy's CA for
that profile only (an SPKI pin), so nothing on the user's machine changes.

mitmdump and the browser die with the process that started them, however it dies (on Linux:
PR_SET_PDEATHSIG), and a small watchdog removes the browser's profile if that process could
not. mitmdump's warnings and errors (a full disk, a refused file) go to the same terminal.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

ADDON = Path(__file__).resolve().parent / "addon.py"  # what `mitmdump -s` loads (addons/chatcap.py loads it too)


class CaptureError(Exception):
    """The capture could not start; the message says why and what to do."""


def mitmdump_path() -> str:
    beside = Path(sys.executable).with_name("mitmdump")
    if beside.exists():
        return str(beside)
    found = shutil.which("mitmdump")
    if not found:
        raise CaptureError("mitmdump not found: install the capture extra (pip install 'chatcap[capture]')")
    return found


def ca_certificate(confdir: Path) -> Path:
    return confdir / "mitmproxy-ca-cert.pem"


def spki_pin(certificate: Path) -> str:
    """base64(sha256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium's
    --ignore-certificate-errors-spki-list wants it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def find_browser() -> str:
    """Debian's chromium, else any Chrome on PATH, else Playwright's bundled Chromium."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            path = playwright.chromium.executable_path
        if path and Path(path).exists():
            return path
    except Exception:
        pass
    raise CaptureError("no Chromium found: install Debian's chromium (apt-get install chromium) or Chrome")


def browser_flags(proxy_port: int, pin: str | None) -> list[str]:
    """Chromium flags that route everything, loopback included, through the proxy and trust
    mitmproxy's CA (by its SPKI pin) in this browser only."""
    flags = [
        f"--proxy-server=http://127.0.0.1:{proxy_port}",
        "--proxy-bypass-list=<-loopback>",  # route localhost too: local chat apps are captured as well
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",  # HTTP/3 would go around an HTTP proxy
    ]
    if pin:
        flags.append(f"--ignore-certificate-errors-spki-list={pin}")
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
    return flags


def browser_command(executable: str, proxy_port: int, pin: str, profile: Path, url: str, headless: bool) -> list[str]:
    command = [executable, f"--user-data-dir={profile}", *browser_flags(proxy_port, pin)]
    if headless:
        command += ["--headless=new", "--disable-gpu", "--remote-debugging-port=0"]
    return [*command, url]


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    """Wait until something listens on 127.0.0.1:`port`; fail early if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise CaptureError(f"the process exited ({process.returncode}) before listening: is port {port} in use?")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise CaptureError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _dies_with_this_process() -> Callable[[], None] | None:
    """A `preexec_fn` that has Linux send the child SIGTERM when the thread starting it dies,
    whether it exits, crashes or gets SIGKILL; None where there is no prctl (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


# Removes the browser's profile (and any browser process left) once the capture is gone without
# doing it: stdin closes when the capture's process dies, however it dies. The capture writes the
# browser's pid when it has one, and "stopped" when it cleaned up itself.
_WATCHDOG = """
import os, shutil, signal, sys, time
profile, browser, stopped = sys.argv[1], None, False
for line in sys.stdin:
    if line.strip() == "stopped":
        stopped = True
    elif line.strip().isdigit():
        browser = int(line)

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

if not stopped:
    if browser is not None:
        deadline = time.monotonic() + 10  # it got SIGTERM with its parent: a moment to close
        while alive(browser) and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            os.killpg(browser, signal.SIGKILL)  # the browser leads its own group: what is left of it
        except OSError:
            pass
    for _ in range(3):
        shutil.rmtree(profile, ignore_errors=True)
        if not os.path.exists(profile):
            break
        time.sleep(0.2)
"""


def recorded(files: list[Path]) -> int:
    """How many exchanges `files` hold that can be read back: whole lines that parse as JSON
    (a line cut short by a full disk or a killed proxy does not count). One line in memory at a time."""
    count = 0
    for path in files:
        with path.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n") or not line.strip():
                    continue
                try:
                    orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                count += 1
    return count


@dataclass
class Capture:
    """A running capture; `stop()` ends the browser and the proxy cleanly."""

    port: int
    out: Path
    confdir: Path
    proxy: subprocess.Popen[bytes]
    browser: subprocess.Popen[bytes] | None = None
    profile: Path | None = None
    watchdog: subprocess.Popen[bytes] | None = None
    started_files: set[Path] = field(default_factory=set)

    @property
    def ca(self) -> Path:
        return ca_certificate(self.confdir)

    def instructions(self) -> str:
        proxy = f"http://127.0.0.1:{self.port}"
        return "\n".join(
            [
                f"capturing on {proxy} → {self.out}/",
                "point a client at it:",
                f"  export HTTPS_PROXY={proxy} HTTP_PROXY={proxy}",
                f"  export SSL_CERT_FILE={self.ca}        # Python (httpx, openai, anthropic)",
                f"  export REQUESTS_CA_BUNDLE={self.ca}   # requests",
                f"  export NODE_EXTRA_CA_CERTS={self.ca}  # Node.js",
                "  (SSL_CERT_FILE replaces the system roots for that shell: use it only for the client you capture)",
            ]
        )

    def new_files(self) -> list[Path]:
        return sorted(set(self.out.glob("*.jsonl")) - self.started_files)

    def recorded(self) -> int:
        """Exchanges this capture recorded that can be read back."""
        return recorded(self.new_files())

    def stop(self) -> None:
        """The browser first, then mitmdump (it writes the exchanges still open), then the profile."""
        # The throw-away browser gets a few seconds; mitmdump more, to write its last exchanges.
        for process, grace in ((self.browser, 5), (self.proxy, 15)):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self.browser is not None:
            with contextlib.suppress(OSError):  # its helpers, if any outlived it (they share its group)
                os.killpg(self.browser.pid, signal.SIGKILL)
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
        if self.watchdog is not None:
            _tell(self.watchdog, "stopped")
            with contextlib.suppress(OSError):
                self.watchdog.stdin.close()  # type: ignore[union-attr]
            try:
                self.watchdog.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.watchdog.kill()
                self.watchdog.wait()


def _tell(watchdog: subprocess.Popen[bytes], line: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        stdin: IO[bytes] = watchdog.stdin  # type: ignore[assignment]
        stdin.write(f"{line}\n".encode())
        stdin.flush()


def start(
    port: int = 8080,
    out: str | Path = "captures/live",
    *,
    browser: bool = False,
    url: str = "about:blank",
    headless: bool | None = None,
    redact: bool = True,
    flow_filter: str | None = None,
    confdir: str | Path | None = None,
    log: Path | None = None,
) -> Capture:
    """Start mitmdump with the addon on 127.0.0.1:`port` writing to `out`, and a routed browser if asked.

    mitmdump's warnings and errors go to this process's terminal (all its output to `log`, if given).
    Both children get SIGTERM from the kernel if the calling thread dies without `Capture.stop()`."""
    out_dir = Path(out)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    conf = Path(confdir) if confdir else Path.home() / ".mitmproxy"
    command = [
        mitmdump_path(), "--listen-host", "127.0.0.1", "--listen-port", str(port), "-s", str(ADDON),
        "--set", f"confdir={conf}", "--set", f"chatcap_dir={out_dir}", "--set", f"chatcap_redact={str(redact).lower()}",
    ]  # fmt: skip
    if flow_filter:
        command += ["--set", f"chatcap_filter={flow_filter}"]
    if log is None:  # the terminal: what needs the user (a full disk, a refused file), not every flow
        command += ["--set", "termlog_verbosity=warn", "--set", "flow_detail=0"]
    # Started from a new session, so the terminal's Ctrl-C reaches only this process, which
    # stops the children in order (`Capture.stop`).
    with log.open("ab") if log else contextlib.nullcontext() as sink:
        proxy = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_dies_with_this_process(),
        )  # fmt: skip
    capture = Capture(port, out_dir, conf, proxy, started_files=set(out_dir.glob("*.jsonl")))
    try:
        wait_for_port(port, proxy)
        if browser:
            if headless is None:
                headless = not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")
            executable, pin = find_browser(), spki_pin(capture.ca)
            capture.profile = Path(tempfile.mkdtemp(prefix="chatcap-browser-"))
            capture.watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(capture.profile)], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            command = browser_command(executable, port, pin, capture.profile, url, headless)
            capture.browser = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_dies_with_this_process(),
            )  # fmt: skip
            _tell(capture.watchdog, str(capture.browser.pid))
    except BaseException:
        capture.stop()
        raise
    return capture
