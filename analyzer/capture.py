"""Run a live capture: mitmdump with the chatcap addon, and optionally a browser routed through
it, or a program run under it with the proxy and mitmproxy's CA in its environment (`run`).

The browser gets a fresh throw-away profile, the proxy, and trust in mitmproxy's CA for
that profile only (an SPKI pin), so nothing on the user's machine changes. A program gets
the proxy variables and a CA bundle (the system's roots, the CA files its environment already
named, and mitmproxy's CA) that lives as long as the capture.

mitmdump, the browser and the program die with the process that started them, however it dies
(on Linux: PR_SET_PDEATHSIG), and a small watchdog removes the capture's private files if that
process could not. mitmdump's warnings and errors (a full disk, a refused file) go to the same
terminal; why it could not start (a port in use) becomes the `CaptureError`.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import ctypes
import hashlib
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

import orjson

ADDON = Path(__file__).resolve().parent / "addon.py"  # what `mitmdump -s` loads (addons/chatcap.py loads it too)
LISTENING = Path(__file__).resolve().parent / "listening.py"  # says where mitmdump listens, once it does


class CaptureError(Exception):
    """The capture could not start; the message says why and what to do."""


class CommandError(CaptureError):
    """The program to run under the capture could not be started; `status` is what a shell exits with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


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


def browser_flags(proxy_port: int, pin: str | None, proxy_host: str = "127.0.0.1") -> list[str]:
    """Chromium flags that route everything, loopback included, through the proxy and trust
    mitmproxy's CA (by its SPKI pin) in this browser only."""
    flags = [
        f"--proxy-server=http://{proxy_host}:{proxy_port}",
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


def browser_command(
    executable: str, proxy_port: int, pin: str, profile: Path, url: str, headless: bool, proxy_host: str = "127.0.0.1"
) -> list[str]:
    command = [executable, f"--user-data-dir={profile}", *browser_flags(proxy_port, pin, proxy_host)]
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


# Removes the capture's private files (the directory with mitmdump's output and the CA bundle, the
# browser's profile) and any browser process left, once the capture is gone without doing it:
# stdin closes when the capture's process dies, however it dies. The capture writes "path P" for
# another path to remove, the browser's pid when it has one, and "stopped" when it cleaned up itself.
_WATCHDOG = """
import os, shutil, signal, sys, time
paths, browser, stopped = sys.argv[1:], None, False
for line in sys.stdin:
    if line.strip() == "stopped":
        stopped = True
    elif line.startswith("path "):
        paths.append(line[5:].rstrip("\\n"))
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
    for path in paths:
        for _ in range(3):
            shutil.rmtree(path, ignore_errors=True)
            if not os.path.exists(path):
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


def is_loopback(host: str) -> bool:
    """Whether an address mitmproxy bound is this machine only (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass(frozen=True)
class Listener:
    """One of mitmproxy's servers (one per `--mode`) and an address it listens on."""

    mode: str  # as mitmproxy spells it: "regular", "reverse:https://api.openai.com@8081"
    kind: str  # regular, upstream, reverse, socks5, ...
    target: str  # the upstream proxy or the reverse proxy's server; "" for the other kinds
    host: str
    port: int

    @property
    def address(self) -> str:
        """host:port as a program on this machine reaches it (a wildcard address as loopback)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def is_proxy(self) -> bool:
        """A proxy clients reach through HTTPS_PROXY (regular, or upstream: chained to another proxy)."""
        return self.kind in ("regular", "upstream")


def listeners(report: Mapping[str, Any]) -> list[Listener]:
    """The servers analyzer/listening.py reported, one Listener per address."""
    return [
        Listener(server["mode"], server["type"], server["target"] or "", str(host), int(port))
        for server in report["servers"]
        for host, port in server["addresses"]
    ]


# The variables naming an API's base URL, for the provider hosts whose SDKs read one, and the
# path the SDK expects in it: `--mode reverse:https://api.openai.com` gives the program
# OPENAI_BASE_URL=http://127.0.0.1:PORT/v1. Other reverse targets have no variable all their
# clients read: the program is told nothing, the user sets the client's base URL.
BASE_URL_VARIABLES = {
    # openai SDKs and the tools built on them; OPENAI_API_BASE: the older name litellm (aider) and LangChain read
    "api.openai.com": (("OPENAI_BASE_URL", "OPENAI_API_BASE"), "/v1"),
    "api.anthropic.com": (("ANTHROPIC_BASE_URL",), ""),  # anthropic SDKs, Claude Code
    "generativelanguage.googleapis.com": (("GOOGLE_GEMINI_BASE_URL",), ""),  # google-genai
}

# Where HTTP clients look for a proxy (curl reads http_proxy only in lower case).
PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY")

# Where the common runtimes look for CA certificates to trust; each gets the combined bundle.
CA_VARIABLES = (
    "SSL_CERT_FILE",  # OpenSSL's default: Python's ssl (httpx, openai, anthropic, urllib3), Go, Ruby, Rust with native roots
    "REQUESTS_CA_BUNDLE",  # requests
    "CURL_CA_BUNDLE",  # curl
    "NODE_EXTRA_CA_CERTS",  # Node.js and Bun (Claude Code, Codex's npm shim): added to their own roots
    "DENO_CERT",  # Deno
    "CODEX_CA_CERTIFICATE",  # Codex CLI reads it before SSL_CERT_FILE
    "AWS_CA_BUNDLE",  # boto3 and the AWS CLI (Bedrock)
    "GIT_SSL_CAINFO",  # git
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",  # gRPC
    "HTTPLIB2_CA_CERTS",  # httplib2 (older Google client libraries)
    "PIP_CERT",  # pip
    "NIX_SSL_CERT_FILE",  # programs built by Nix
)

# System CA bundles by distribution, looked at after OpenSSL's own default (as Go's crypto/x509 does).
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Arch, Gentoo
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # RHEL 7+
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/ssl/cert.pem",  # Alpine, macOS, BSDs
)

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.DOTALL)


def system_ca_bundle() -> Path | None:
    """The machine's trusted roots as one PEM file: OpenSSL's default file, else a distribution's
    usual one, else certifi's (Mozilla's roots), else None."""
    candidates: list[str | None] = [ssl.get_default_verify_paths().openssl_cafile, *SYSTEM_BUNDLES]
    with contextlib.suppress(ImportError):
        import certifi

        candidates.append(certifi.where())
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def write_ca_bundle(destination: Path, mitmproxy_ca: Path, environ: Mapping[str, str]) -> list[Path]:
    """Write the certificates a program under the capture should trust to `destination` (0600, never
    through a symlink): the system's roots, the CA files its environment already names (a company's
    CA in SSL_CERT_FILE or NODE_EXTRA_CA_CERTS keeps working), then mitmproxy's CA. Each certificate
    once. Returns the files it read."""
    if not mitmproxy_ca.is_file():
        raise CaptureError(f"mitmproxy's CA certificate {mitmproxy_ca} is missing")
    system = system_ca_bundle()
    named = [Path(environ[name]) for name in CA_VARIABLES if environ.get(name)]
    sources: list[Path] = []
    for path in [*([system] if system else []), *named, mitmproxy_ca]:
        if path.is_file() and path.resolve() not in {s.resolve() for s in sources}:
            sources.append(path)
    seen: set[bytes] = set()
    certificates: list[bytes] = []
    for path in sources:
        for match in _PEM.finditer(path.read_bytes()):
            block = match.group().replace(b"\r\n", b"\n")
            if block not in seen:
                seen.add(block)
                certificates.append(block)
    descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(b"\n".join(certificates) + b"\n")
    return sources


def command_environment(
    environ: Mapping[str, str],
    servers: Sequence[Listener],
    bundle: Path,
    *,
    sources: Iterable[Path] = (),
    no_proxy: str = "",
    proxy_auth: str | None = None,
) -> dict[str, str]:
    """`environ` for a program run under the capture.

    With a proxy listener: every proxy variable names it and NO_PROXY is `no_proxy` (empty by
    default, so a local model server on localhost is captured too; the user's own NO_PROXY is
    replaced), NODE_USE_ENV_PROXY=1 (Node's fetch reads the proxy variables only with it).
    With a reverse proxy to a provider whose SDKs read a base-URL variable, that variable names
    the proxy; a reverse-only capture leaves the user's own proxy variables alone and adds the
    listener to NO_PROXY, so the program reaches it directly. Every CA variable names `bundle`, and
    so does any other variable naming one of the `sources` it was made from (a tool's own setting)."""
    env = dict(environ)
    proxies = [server for server in servers if server.is_proxy]
    if proxies:
        credentials = f"{quote(proxy_auth, safe=':')}@" if proxy_auth else ""
        url = f"http://{credentials}{proxies[0].address}"
        env.update(dict.fromkeys(PROXY_VARIABLES, url))
        env["NO_PROXY"] = env["no_proxy"] = no_proxy
        env["NODE_USE_ENV_PROXY"] = "1"
    else:
        hosts = [host for host in (environ.get("NO_PROXY") or environ.get("no_proxy") or "").split(",") if host]
        hosts += [server.address.rsplit(":", 1)[0].strip("[]") for server in servers if server.kind == "reverse"]
        hosts += [host for host in no_proxy.split(",") if host]
        env["NO_PROXY"] = env["no_proxy"] = ",".join(dict.fromkeys(hosts))
    for server in servers:
        if server.kind == "reverse":
            env.update(base_url_variables(server))
    env.update(dict.fromkeys(CA_VARIABLES, str(bundle)))
    # Any other variable naming a file the bundle was made from is a tool's CA setting too.
    read = {path.resolve() for path in sources}
    for name, value in environ.items():
        if name not in CA_VARIABLES and value.startswith("/") and Path(value).resolve() in read:
            env[name] = str(bundle)
    return env


def base_url_variables(server: Listener) -> dict[str, str]:
    """The variables pointing a provider's SDKs at a reverse proxy to it, if they read one."""
    host = urlsplit(server.target if "://" in server.target else f"https://{server.target}").hostname or ""
    names, path = BASE_URL_VARIABLES.get(host, ((), ""))
    return dict.fromkeys(names, server.url + path)


def proxy_credentials(options: Iterable[str]) -> str | None:
    """The user:password `--set proxyauth=...` asks for, which the program's proxy URL must carry
    (None for no proxyauth, `any`, an htpasswd file or LDAP)."""
    value = option_value(options, "proxyauth")
    if not value or value == "any" or value.startswith(("@", "ldap:", "ldaps:")) or ":" not in value:
        return None
    return value


def option_value(options: Iterable[str], key: str) -> str | None:
    """The last value `--set key=value` gives, or None."""
    found = None
    for option in options:
        name, _, value = option.partition("=")
        if name.strip() == key:
            found = value
    return found


_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\.\d+\](\[[^\]]*\])?\s*")


def _from_chatcap(line: str) -> bool:
    """A line the chatcap addon logged ("chatcap: ..."): a failed write, a refused file."""
    return _TIMESTAMP.sub("", line).startswith("chatcap: ")


class _Relay(threading.Thread):
    """Copies mitmdump's output file to the terminal (stderr) line by line as it grows.

    Holds every line until `forward()`: a failed start is told once, as the CaptureError. While a
    program owns the terminal (`forward(only_chatcap=True)`), only the addon's own lines go through
    at once (a full disk); mitmproxy's other warnings wait for `stop()`, so an interactive program's
    screen is not written over by a TLS handshake some helper of it refused."""

    HELD_AT_MOST = 200

    def __init__(self, path: Path, sink: IO[str] | None, offset: int = 0) -> None:
        super().__init__(name="chatcap-mitmdump-output", daemon=True)
        self.path, self.sink, self.offset = path, sink, offset
        self.said: collections.deque[str] = collections.deque(maxlen=100)  # the last lines, for a failed start
        self.held: list[str] = []
        self.left_out = 0
        self.holding, self.only_chatcap = True, False
        self._lock = threading.Lock()
        self._finished = threading.Event()

    def run(self) -> None:
        pending = b""
        with self.path.open("rb") as handle:
            handle.seek(self.offset)  # a log appended to: this run's lines only
            while True:
                finished = self._finished.is_set()  # read once more after the writer is gone
                data = handle.read()
                *lines, pending = (pending + data).split(b"\n")
                for line in lines:
                    self._line(line.decode("utf-8", "replace").rstrip("\r"))
                if finished:
                    if pending:
                        self._line(pending.decode("utf-8", "replace"))
                    return
                if not data:
                    self._finished.wait(0.05)

    def _line(self, line: str) -> None:
        with self._lock:
            self.said.append(line)
            if self.holding or (self.only_chatcap and not _from_chatcap(line)):
                if len(self.held) < self.HELD_AT_MOST:
                    self.held.append(line)
                else:
                    self.left_out += 1
            else:
                self._write([line])

    def _write(self, lines: list[str]) -> None:
        if self.sink is None or not lines:
            return
        with contextlib.suppress(OSError, ValueError):
            self.sink.write("".join(f"{line}\n" for line in lines))
            self.sink.flush()

    def forward(self, only_chatcap: bool = False) -> None:
        """Let lines through from now on (all, or only the addon's); those held so far go first."""
        with self._lock:
            held, self.held = self.held, []
            self.holding, self.only_chatcap = False, only_chatcap
            self._write([line for line in held if not only_chatcap or _from_chatcap(line)])
            self.held = [line for line in held if only_chatcap and not _from_chatcap(line)]

    def stop(self) -> None:
        """Read to the end (mitmdump has exited) and, unless still holding, write what was held."""
        self._finished.set()
        if self.is_alive():
            self.join(timeout=5)
        with self._lock:
            if self.holding or not self.held:
                return
            more = f" ({self.left_out} more left out)" if self.left_out else ""
            self._write([f"mitmproxy's warnings while the program ran{more}:", *self.held])
            self.held, self.left_out = [], 0


def _startup_failure(said: Iterable[str], returncode: int | None) -> str:
    """Why mitmdump did not start, in its words (without its timestamps and its advice on `--mode`
    syntax), and what to do about a port in use."""
    reasons = []
    for line in said:
        line = _TIMESTAMP.sub("", line).strip()
        line = re.sub(r"^\S*mitmdump: ", "", re.sub(r"^\[Errno \d+\] ", "", line))
        if line and not line.startswith(("Error logged during startup", "Try specifying a different port")):
            reasons.append(line)
    reason = "; ".join(reasons) or f"mitmdump exited ({returncode}) without saying why"
    if "address already in use" in reason.lower():
        return f"mitmproxy could not listen: {reason}\nthe port is in use: --port 0 picks a free one"
    return f"mitmproxy could not start: {reason}"


@dataclass
class Capture:
    """A running capture; `stop()` ends the browser and the proxy cleanly."""

    port: int
    out: Path
    confdir: Path
    proxy: subprocess.Popen[bytes]
    workdir: Path  # private (0700): mitmdump's output, where it listens, the program's CA bundle
    relay: _Relay
    watchdog: subprocess.Popen[bytes]
    servers: list[Listener] = field(default_factory=list)
    proxy_auth: str | None = None
    browser: subprocess.Popen[bytes] | None = None
    profile: Path | None = None
    started_files: set[Path] = field(default_factory=set)

    @property
    def ca(self) -> Path:
        return ca_certificate(self.confdir)

    @property
    def main(self) -> Listener | None:
        """The listener clients use as their proxy (the first regular or upstream one), if any."""
        return next((server for server in self.servers if server.is_proxy), None)

    def exposed(self) -> list[Listener]:
        """Listeners reachable from other machines (not bound to loopback)."""
        return [server for server in self.servers if not is_loopback(server.host)]

    def instructions(self) -> str:
        lines = []
        for server in self.servers:
            if server.is_proxy and server is self.main:
                through = f" (chained to {server.target})" if server.kind == "upstream" else ""
                proxy = server.url
                lines += [
                    f"capturing on {proxy}{through} → {self.out}/",
                    "point a client at it:",
                    f"  export HTTPS_PROXY={proxy} HTTP_PROXY={proxy}",
                    f"  export SSL_CERT_FILE={self.ca}        # Python (httpx, openai, anthropic)",
                    f"  export REQUESTS_CA_BUNDLE={self.ca}   # requests",
                    f"  export NODE_EXTRA_CA_CERTS={self.ca} NODE_USE_ENV_PROXY=1  # Node.js (fetch: Node ≥ 22.21 / 24.5)",
                    "  (SSL_CERT_FILE replaces the system roots for that shell: use it only for the client you capture;"
                    " `chatcap capture -- COMMAND` runs a program with all of this set, system roots kept)",
                ]
            elif server.kind == "reverse":
                variables = base_url_variables(server)
                lines += [
                    f"capturing on {server.url} → {self.out}/: a reverse proxy to {server.target}",
                    "set the client's base URL to it (not HTTPS_PROXY):",
                    "  export " + " ".join(f"{name}={value}" for name, value in variables.items())
                    if variables
                    else f"  {server.url} + the path the API's base URL has (like {server.url}/v1)",
                ]
            elif not server.is_proxy:
                lines.append(f"capturing on {server.address} ({server.mode}) → {self.out}/")
        return "\n".join(dict.fromkeys(lines))  # a server listening on IPv4 and IPv6 is said once

    def new_files(self) -> list[Path]:
        return sorted(set(self.out.glob("*.jsonl")) - self.started_files)

    def recorded(self) -> int:
        """Exchanges this capture recorded that can be read back."""
        return recorded(self.new_files())

    def stop(self) -> None:
        """The browser first, then mitmdump (it writes the exchanges still open), then the private files."""
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
        self.relay.stop()
        for path in (self.profile, self.workdir):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        _release(self.watchdog)


def _release(watchdog: subprocess.Popen[bytes]) -> None:
    """Tell the watchdog everything is cleaned up, and let it go."""
    _tell(watchdog, "stopped")
    with contextlib.suppress(OSError):
        watchdog.stdin.close()  # type: ignore[union-attr]
    try:
        watchdog.wait(timeout=5)
    except subprocess.TimeoutExpired:
        watchdog.kill()
        watchdog.wait()


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
    listen_host: str = "127.0.0.1",
    modes: Sequence[str] = (),
    options: Sequence[str] = (),
    timeout: float = 30.0,
) -> Capture:
    """Start mitmdump with the addon on `listen_host`:`port` (0: a free port) writing to `out`, and a
    routed browser if asked. Returns once mitmdump listens and its CA exists.

    `modes` are mitmproxy's `--mode` specs (default: a regular proxy), `options` its `--set
    KEY=VALUE` options, given after chatcap's own so they win. mitmdump's warnings and errors go to
    this process's stderr (all its output to `log` instead, if given); why it could not start is
    the CaptureError. The children get SIGTERM from the kernel if the calling thread dies without
    `Capture.stop()`."""
    out_dir = Path(out)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    started_files = set(out_dir.glob("*.jsonl"))
    conf = Path(confdir or option_value(options, "confdir") or Path.home() / ".mitmproxy").expanduser()
    executable = mitmdump_path()
    workdir = Path(tempfile.mkdtemp(prefix="chatcap-"))
    # Removes workdir (and the browser's profile) if this process dies without `stop()`.
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(workdir)], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    listening = workdir / "listening.json"
    output = log if log is not None else workdir / "mitmdump.log"
    command = [
        executable, "--listen-host", listen_host, "--listen-port", str(port),
        *(argument for mode in modes for argument in ("--mode", mode)),
        "-s", str(ADDON), "-s", str(LISTENING), "--set", f"chatcap_listening={listening}",
        "--set", f"confdir={conf}", "--set", f"chatcap_dir={out_dir}", "--set", f"chatcap_redact={str(redact).lower()}",
    ]  # fmt: skip
    if flow_filter:
        command += ["--set", f"chatcap_filter={flow_filter}"]
    if log is None:  # the terminal: what needs the user (a full disk, a refused file), not every flow
        command += ["--set", "termlog_verbosity=warn", "--set", "flow_detail=0"]
    command += [argument for option in options for argument in ("--set", option)]
    # Started from a new session, so the terminal's Ctrl-C reaches only this process (and a
    # program it runs), which stops the children in order (`Capture.stop`). No stdin: the
    # terminal's keys are the program's.
    try:
        with output.open("ab") as sink:
            offset = sink.tell()
            proxy = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_dies_with_this_process(),
            )  # fmt: skip
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        _release(watchdog)
        raise
    relay = _Relay(output, None if log is not None else sys.stderr, offset)
    relay.start()
    capture = Capture(
        port=port, out=out_dir, confdir=conf, proxy=proxy, workdir=workdir, relay=relay, watchdog=watchdog,
        proxy_auth=proxy_credentials(options), started_files=started_files,
    )  # fmt: skip
    try:
        report = _wait_until_listening(proxy, listening, relay, timeout)
        if report["unknown_options"]:
            names = ", ".join(report["unknown_options"])
            raise CaptureError(f"mitmproxy has no option {names} (`mitmdump --options` lists them)")
        capture.servers = listeners(report)
        if not capture.servers:
            raise CaptureError("mitmproxy started but listens nowhere")
        capture.port = (capture.main or capture.servers[0]).port
        _wait_for_file(capture.ca, timeout)
        relay.forward()
        if browser:
            if headless is None:
                headless = not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")
            executable, pin = find_browser(), spki_pin(capture.ca)
            capture.profile = Path(tempfile.mkdtemp(prefix="chatcap-browser-"))
            _tell(watchdog, f"path {capture.profile}")
            host = (capture.main or capture.servers[0]).address.rsplit(":", 1)[0]
            command = browser_command(executable, capture.port, pin, capture.profile, url, headless, host)
            capture.browser = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_dies_with_this_process(),
            )  # fmt: skip
            _tell(watchdog, str(capture.browser.pid))
    except BaseException:
        capture.stop()
        raise
    return capture


def _wait_until_listening(
    proxy: subprocess.Popen[bytes], listening: Path, relay: _Relay, timeout: float
) -> dict[str, Any]:
    """What analyzer/listening.py wrote once mitmdump listened; a CaptureError with mitmdump's own
    reason when it exits first (a port in use, a bad option) or says nothing in time."""
    deadline = time.monotonic() + timeout
    while not listening.exists():
        if proxy.poll() is not None:
            relay.stop()
            raise CaptureError(_startup_failure(relay.said, proxy.returncode))
        if time.monotonic() > deadline:
            said = "; ".join(_TIMESTAMP.sub("", line) for line in relay.said if line.strip())
            said = f": {said}" if said else ""
            raise CaptureError(f"mitmproxy did not start listening within {timeout:.0f} s{said}")
        time.sleep(0.02)
    return orjson.loads(listening.read_bytes())


def _wait_for_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if time.monotonic() > deadline:
            raise CaptureError(f"mitmproxy did not write its CA certificate {path} within {timeout:.0f} s")
        time.sleep(0.02)


def run(capture: Capture, command: Sequence[str], *, no_proxy: str = "") -> int:
    """Run `command` under `capture` and return its exit status (128+N when signal N ended it, as
    shells say it).

    Its environment routes HTTP(S) through the proxy (`command_environment`) and trusts a CA
    bundle of the system's roots and mitmproxy's CA, written into the capture's private directory
    (gone with `Capture.stop()`). Its stdin, stdout and stderr stay this process's: an interactive
    program works as in the terminal, and the terminal's Ctrl-C reaches it (it is in the
    foreground group) while this process and the proxy (its own session) carry on until it exits.
    SIGTERM and SIGHUP to this process are passed on to it. Call from the main thread."""
    if not command:
        raise CommandError("no command to run", 2)
    bundle = capture.workdir / "ca-bundle.pem"
    sources = write_ca_bundle(bundle, capture.ca, os.environ)
    env = command_environment(
        os.environ, capture.servers, bundle, sources=sources, no_proxy=no_proxy, proxy_auth=capture.proxy_auth
    )
    program: subprocess.Popen[bytes] | None = None

    def pass_on(signum: int, _: Any) -> None:
        if program is not None and program.poll() is None:
            program.send_signal(signum)

    def carry_on(signum: int, _: Any) -> None:
        pass  # the terminal sent it to the program too; a Python handler, not SIG_IGN, so exec resets it

    handlers = {signal.SIGINT: carry_on, signal.SIGQUIT: carry_on, signal.SIGTERM: pass_on, signal.SIGHUP: pass_on}
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    capture.relay.forward(only_chatcap=True)
    try:
        try:
            program = subprocess.Popen(list(command), env=env, preexec_fn=_dies_with_this_process())
        except FileNotFoundError:
            raise CommandError(f"{command[0]}: command not found", 127) from None
        except PermissionError:
            raise CommandError(f"{command[0]}: permission denied", 126) from None
        status = program.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - status if status < 0 else status
