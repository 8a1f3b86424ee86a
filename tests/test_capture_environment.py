"""What a program run by `chatcap capture -- COMMAND` gets in its environment, the CA bundle it
trusts, and the words a failed start is told in (the processes themselves: tests/e2e/test_capture_command.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.capture import (
    CA_VARIABLES,
    PROXY_VARIABLES,
    Listener,
    _startup_failure,
    command_environment,
    proxy_credentials,
    system_ca_bundle,
    write_ca_bundle,
)

ROOT = Path(__file__).resolve().parents[1]
REGULAR = Listener("regular", "regular", "", "127.0.0.1", 8080)
BUNDLE = Path("/tmp/chatcap-x/ca-bundle.pem")


def pem(name: str) -> bytes:
    """A PEM block that looks like a certificate (the bundle copies blocks, it does not parse them)."""
    return b"-----BEGIN CERTIFICATE-----\n" + name.encode().hex().encode() + b"\n-----END CERTIFICATE-----\n"


def test_every_proxy_variable_names_the_proxy_and_no_proxy_is_emptied() -> None:
    env = command_environment({"NO_PROXY": "localhost,127.0.0.1", "PATH": "/bin"}, [REGULAR], BUNDLE)
    assert {env[name] for name in PROXY_VARIABLES} == {"http://127.0.0.1:8080"}
    assert env["NO_PROXY"] == env["no_proxy"] == ""  # a local model server is captured too
    assert env["NODE_USE_ENV_PROXY"] == "1"
    assert env["PATH"] == "/bin"


def test_no_proxy_option_becomes_the_programs_no_proxy() -> None:
    env = command_environment({}, [REGULAR], BUNDLE, no_proxy="localhost,internal.example")
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,internal.example"


def test_every_ca_variable_names_the_bundle_and_so_does_another_naming_a_source(tmp_path: Path) -> None:
    system = tmp_path / "system.pem"
    system.write_bytes(pem("root"))
    env = command_environment(
        {"SOME_TOOL_CA": str(system), "SSL_CERT_DIR": "/etc/ssl/certs"}, [REGULAR], BUNDLE, sources=[system]
    )
    assert {env[name] for name in CA_VARIABLES} == {str(BUNDLE)}
    assert env["SOME_TOOL_CA"] == str(BUNDLE)
    assert env["SSL_CERT_DIR"] == "/etc/ssl/certs"


def test_a_wildcard_listener_is_reached_over_loopback() -> None:
    env = command_environment({}, [Listener("regular", "regular", "", "0.0.0.0", 9000)], BUNDLE)
    assert env["HTTPS_PROXY"] == "http://127.0.0.1:9000"
    env = command_environment({}, [Listener("regular", "regular", "", "::", 9000)], BUNDLE)
    assert env["HTTPS_PROXY"] == "http://[::1]:9000"


def test_proxyauth_user_and_password_go_into_the_programs_proxy_url() -> None:
    credentials = proxy_credentials(["proxyauth=alice:s3cret/x"])
    env = command_environment({}, [REGULAR], BUNDLE, proxy_auth=credentials)
    assert env["HTTPS_PROXY"] == "http://alice:s3cret%2Fx@127.0.0.1:8080"
    assert proxy_credentials(["proxyauth=any"]) is None and proxy_credentials(["proxyauth=@/etc/htpasswd"]) is None


def test_reverse_proxy_to_openai_sets_openai_base_url_with_v1_and_keeps_the_users_proxy() -> None:
    reverse = Listener("reverse:https://api.openai.com", "reverse", "https://api.openai.com", "127.0.0.1", 8081)
    env = command_environment({"HTTPS_PROXY": "http://corp:3128", "NO_PROXY": "intranet"}, [reverse], BUNDLE)
    assert env["OPENAI_BASE_URL"] == env["OPENAI_API_BASE"] == "http://127.0.0.1:8081/v1"
    assert env["HTTPS_PROXY"] == "http://corp:3128"  # the rest of its traffic goes as it did
    assert env["NO_PROXY"] == "intranet,127.0.0.1"  # the proxy itself is reached directly
    assert "NODE_USE_ENV_PROXY" not in env


def test_reverse_proxy_to_anthropic_sets_anthropic_base_url_without_a_path() -> None:
    reverse = Listener("reverse:https://api.anthropic.com", "reverse", "https://api.anthropic.com", "127.0.0.1", 8082)
    env = command_environment({}, [reverse], BUNDLE)
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8082"
    assert "OPENAI_BASE_URL" not in env


def test_reverse_proxy_to_another_host_sets_no_base_url() -> None:
    reverse = Listener("reverse:http://localhost:11434", "reverse", "http://localhost:11434", "127.0.0.1", 8083)
    env = command_environment({}, [reverse], BUNDLE)
    assert not {"OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_GEMINI_BASE_URL"} & set(env)


def test_the_bundle_holds_system_roots_the_users_ca_and_mitmproxys_once_each_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "system.pem"
    system.write_bytes(pem("root-a") + pem("root-b"))
    company = tmp_path / "company.pem"
    company.write_bytes(pem("company") + pem("root-a"))  # a copy of a system root: kept once
    mitmproxy = tmp_path / "mitmproxy-ca-cert.pem"
    mitmproxy.write_bytes(pem("mitmproxy"))
    monkeypatch.setattr("analyzer.capture.system_ca_bundle", lambda: system)
    bundle = tmp_path / "bundle.pem"
    sources = write_ca_bundle(bundle, mitmproxy, {"NODE_EXTRA_CA_CERTS": str(company)})
    assert sources == [system, company, mitmproxy]
    assert bundle.read_bytes() == b"".join(pem(name) for name in ("root-a", "root-b", "company", "mitmproxy"))
    assert bundle.stat().st_mode & 0o777 == 0o600


def test_the_bundle_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    mitmproxy = tmp_path / "ca.pem"
    mitmproxy.write_bytes(pem("mitmproxy"))
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "bundle.pem").symlink_to(victim)
    with pytest.raises(OSError):
        write_ca_bundle(tmp_path / "bundle.pem", mitmproxy, {})
    assert victim.read_text() == "keep"


def test_this_machine_has_a_system_bundle_with_roots() -> None:
    found = system_ca_bundle()
    assert found is not None and found.read_bytes().count(b"BEGIN CERTIFICATE") > 50


def test_a_port_in_use_is_told_in_mitmproxys_words_with_port_0_advice() -> None:
    said = [
        "[16:13:35.510] [Errno 98] HTTP(S) proxy failed to listen on 127.0.0.1:8080 with [Errno 98] error while "
        "attempting to bind on address ('127.0.0.1', 8080): address already in use",
        "Try specifying a different port by using `--mode regular@8082`.",
        "",
        "Error logged during startup, exiting...",
    ]
    message = _startup_failure(said, 1)
    assert message.startswith("mitmproxy could not listen: HTTP(S) proxy failed to listen on 127.0.0.1:8080")
    assert message.endswith("the port is in use: --port 0 picks a free one")
    assert "--mode regular@" not in message and "Error logged" not in message


def test_another_start_failure_is_told_in_mitmproxys_words() -> None:
    said = ["/venv/bin/mitmdump: Invalid proxy mode specification: bogus:x (unknown mode)"]
    assert (
        _startup_failure(said, 1)
        == "mitmproxy could not start: Invalid proxy mode specification: bogus:x (unknown mode)"
    )
