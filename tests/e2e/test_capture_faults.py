"""Faults around a live capture, with real processes: a full disk, a proxy stopped while fifty
responses start, a capture killed outright, decompression bombs, a planted symlink.

Every process a test starts is stopped in its `finally`, whatever the test found.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import errno
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import brotli
import httpx
import openai
import pytest
import zstandard
from harness import ROOT, FixedBody, HeldStreams, Proxy, free_port, scripted_stream, start_proxy, start_upstream

import analyzer
from analyzer.capture import wait_for_port
from analyzer.ingest.text import BODY_CAP

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
PAGE = 4096


# -- helpers -------------------------------------------------------------------------------


def start_capture(
    tmp_path: Path, *options: str, out: Path | None = None
) -> tuple[subprocess.Popen[bytes], int, Path, Path]:
    """`chatcap capture` as a user runs it, its terminal output going to a file; HOME is the
    test's own, so mitmproxy's CA is made there. Returns the process, port, out dir and output."""
    port = free_port()
    out = out or tmp_path / "live"
    terminal = tmp_path / "terminal.txt"
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    with terminal.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "analyzer", "capture", "--port", str(port), "--out", str(out), *options],
            stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        wait_for_port(port, process, timeout=60)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process, port, out, terminal


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


def lines_of(directory: Path) -> list[bytes]:
    """The capture files' lines, each with its newline (one still being written has none)."""
    return [line for path in sorted(directory.glob("*.jsonl")) for line in path.read_bytes().splitlines(keepends=True)]


def whole_lines(directory: Path) -> int:
    return sum(line.endswith(b"\n") for line in lines_of(directory))


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a dead child nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def descendants(pid: int) -> set[int]:
    children: dict[int, set[int]] = collections.defaultdict(set)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[parent].add(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children[todo.pop()] - found:
            found.add(child)
            todo.append(child)
    return found


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def kill_all(pids: set[int]) -> None:
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def curl_chat(proxy_url: str, upstream_url: str, message: str) -> subprocess.CompletedProcess[bytes]:
    body = json.dumps({"model": "gpt-e2e", "messages": [{"role": "user", "content": message}], "stream": True})
    return subprocess.run(
        ["curl", "-sN", "-x", proxy_url, f"{upstream_url}/v1/chat/completions",
         "-H", "content-type: application/json", "-d", body],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip


# -- a full disk ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: a real filesystem that fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount)],
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({result.stderr.strip() or result.returncode}): needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` to the last page, then give back `leave` bytes (whole pages)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\xff" * PAGE)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        handle.truncate(handle.tell() - leave)
    return filler


def test_a_full_disk_leaves_every_line_whole_the_user_told_and_the_count_what_is_readable(
    tmp_path: Path, small_disk: Path
) -> None:
    # Each line is ~25 kB: more than a page plus the slack left, so writing one on the full
    # disk gets part way (a short write) before ENOSPC.
    exchange = scripted_stream([f"word{n:04d} " for n in range(150)], gap_ms=0.5, first_ms=5)
    server = start_upstream([exchange])
    capture, port, out, terminal = start_capture(tmp_path, out=small_disk / "live")
    proxy_url = f"http://127.0.0.1:{port}"
    try:
        curl_chat(proxy_url, server.url, "before the disk filled")
        wait_until(lambda: whole_lines(out) == 1, "the first exchange recorded")
        filler = fill(small_disk, leave=PAGE)
        for n in range(2):
            received = curl_chat(proxy_url, server.url, f"on the full disk {n}")
            assert received.stdout == exchange.response.body  # the client is not hurt by the disk
        # Told at once, while the capture still runs: both exchanges' writes failed (the addon
        # writes on a thread of its own, so wait for the second before freeing space).
        wait_until(lambda: "No space left on device" in terminal.read_text(), "the failure on the terminal")
        wait_until(lambda: "2 exchange(s) lost so far" in terminal.read_text(), "both failures on the terminal")
        filler.unlink()
        for n in range(2):
            curl_chat(proxy_url, server.url, f"after space was freed {n}")
        wait_until(lambda: whole_lines(out) >= 3, "the exchanges after space was freed")
        capture.send_signal(signal.SIGINT)  # Ctrl-C
        capture.wait(timeout=60)
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait()
        server.shutdown()
        server.server_close()
    output = terminal.read_text()
    lines = lines_of(out)
    entries = [json.loads(line) for line in lines]  # every line parses
    assert all(line.endswith(b"\n") for line in lines)
    asked = [json.loads(entry["request"]["postData"]["text"])["messages"][0]["content"] for entry in entries]
    assert asked == ["before the disk filled", "after space was freed 0", "after space was freed 1"]
    printed = re.search(r"captured (\d+) exchange\(s\)", output)
    assert printed and int(printed.group(1)) == len(lines) == 3, output
    failures = [line for line in output.splitlines() if "No space left on device" in line]
    assert failures and all("chatcap" in line and ".jsonl" in line for line in failures), output
    assert "2 exchange(s) lost" in output, output
    assert "Traceback" not in output


# -- SIGTERM while fifty responses start ----------------------------------------------------


def stop_while_responses_start(tmp_path: Path) -> list[dict]:
    """Fifty openai-SDK streams through mitmdump to an upstream that holds back every first
    byte; once all fifty wait there, their first bytes leave 0.5 ms apart and the proxy gets
    SIGTERM 10 ms in, when about a third have started and the rest are on their way."""
    upstream = HeldStreams(events=40, gap_s=0.05)
    proxy = start_proxy(tmp_path)

    def ask(n: int) -> None:
        client = openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-e2e", max_retries=0, timeout=30,
                               http_client=httpx.Client(proxy=proxy.url))  # fmt: skip
        try:
            for _ in client.chat.completions.create(
                model="held", messages=[{"role": "user", "content": f"request-{n}"}], stream=True
            ):
                pass
        except openai.APIError:
            pass  # cut by the shutdown: expected

    threads = [threading.Thread(target=ask, args=(n,), daemon=True) for n in range(50)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: upstream.arrived == 50, "fifty requests at the upstream", timeout=60)
        upstream.release(stagger_s=0.0005)
        time.sleep(0.01)
        proxy.process.send_signal(signal.SIGTERM)
        proxy.process.wait(timeout=30)
        for thread in threads:
            thread.join(timeout=30)
    finally:
        proxy.stop(signal.SIGKILL)
        upstream.close()
    return [json.loads(line) for line in lines_of(proxy.out)]  # every line parses


@pytest.mark.slow
def test_sigterm_while_50_streaming_responses_start_records_each_exchange_once(tmp_path: Path) -> None:
    for attempt in range(3):  # the shutdown races the first bytes: give the race three goes
        entries = stop_while_responses_start(tmp_path / f"attempt{attempt}")
        asked = collections.Counter(
            json.loads(entry["request"]["postData"]["text"])["messages"][0]["content"] for entry in entries
        )
        twice = {name: count for name, count in asked.items() if count > 1}
        assert not twice, f"attempt {attempt}: recorded more than once: {twice}"
        assert set(asked) == {f"request-{n}" for n in range(50)}  # and none lost
        assert all(entry["_error"] == "proxy shutdown" for entry in entries)


# -- the capture killed outright ------------------------------------------------------------


def browser_available() -> bool:
    return shutil.which("chromium") is not None


@pytest.mark.parametrize(
    "browser",
    [False, pytest.param(True, marks=pytest.mark.skipif(not browser_available(), reason="Debian's chromium is not installed"))],
    ids=["proxy", "proxy+browser"],
)  # fmt: skip
def test_sigkill_on_the_capture_parent_takes_mitmdump_and_the_browser_with_it(tmp_path: Path, browser: bool) -> None:
    options = ["--browser", "--headless"] if browser else []
    capture, port, _, terminal = start_capture(tmp_path, *options)
    children: set[int] = set()
    profile: Path | None = None
    devtools_port: int | None = None
    try:
        if browser:
            wait_until(lambda: "profile " in terminal.read_text(), "the browser's profile named")
            profile = Path(re.search(r"profile (\S+?),", terminal.read_text()).group(1))
            wait_until(lambda: (profile / "DevToolsActivePort").exists(), "the browser up", timeout=60)
            devtools_port = int((profile / "DevToolsActivePort").read_text().split()[0])
            wait_until(lambda: len(descendants(capture.pid)) >= 4, "the browser's processes")
        children = descendants(capture.pid)
        assert children, "chatcap capture started no process"
        capture.send_signal(signal.SIGKILL)
        capture.wait(timeout=10)
        with contextlib.suppress(TimeoutError):  # asserted below, naming the survivors
            wait_until(lambda: not any(alive(pid) for pid in children), "every child gone", timeout=20)
        survivors = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in children if alive(pid)}
        assert not survivors, f"outlived their parent: {survivors}"
        assert port_is_free(port)
        if browser:
            assert devtools_port is not None and port_is_free(devtools_port)
            assert profile is not None and not profile.exists(), "the throw-away profile was left behind"
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait()
        kill_all(children | descendants(capture.pid))
        if profile is not None:
            shutil.rmtree(profile, ignore_errors=True)


# -- decompression bombs --------------------------------------------------------------------

BOMB_SIZE = 512 * MiB
CAP = 4 * MiB


def _compress(encoding: str) -> bytes:
    zeros = bytes(MiB)
    if encoding == "gzip":
        compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return b"".join(compressor.compress(zeros) for _ in range(BOMB_SIZE // MiB)) + compressor.flush()
    if encoding == "br":
        compressor = brotli.Compressor(quality=5)
        return b"".join(compressor.process(zeros) for _ in range(BOMB_SIZE // MiB)) + compressor.finish()
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    return b"".join(compressor.compress(zeros) for _ in range(BOMB_SIZE // MiB)) + compressor.flush()


def peak_rss(pid: int) -> int:
    """VmHWM: the most resident memory the process has had, in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_a_decompression_bomb_is_recorded_as_sent_with_the_proxy_under_100_mib_and_reaches_the_client_whole(
    tmp_path: Path, encoding: str
) -> None:
    bomb = _compress(encoding)
    assert len(bomb) < MiB  # small on the wire, 512 MiB inflated
    upstream = FixedBody(bomb, [("content-type", "application/json"), ("content-encoding", encoding)])
    proxy = start_proxy(tmp_path)  # the default cap, 64 MiB
    received = tmp_path / "received"
    try:
        before = peak_rss(proxy.process.pid)
        subprocess.run(
            ["curl", "-s", "-x", proxy.url, f"{upstream.url}/v1/chat/completions", "-d", "{}", "-o", str(received)],
            timeout=120, check=True,
        )  # fmt: skip
        wait_until(lambda: whole_lines(proxy.out) == 1, "the exchange recorded", timeout=60)
        grown = peak_rss(proxy.process.pid) - before
    finally:
        proxy.stop()
        upstream.close()
    assert hashlib.sha256(received.read_bytes()).digest() == hashlib.sha256(bomb).digest()  # every original byte
    assert grown < 100 * MiB, f"the proxy grew by {grown / MiB:.0f} MiB"
    (line,) = lines_of(proxy.out)
    entry = json.loads(line)
    content = entry["response"]["content"]
    assert content["encoding"] == "base64" and base64.b64decode(content["text"]) == bomb  # nothing lost
    assert encoding in entry["response"]["_asSent"] and "1024 times" in entry["response"]["_asSent"]
    assert entry["_chatcap"]["complete"] is True and "_truncated" not in entry["response"]

    (exchange,) = analyzer.load(proxy.out)  # the reader inflates it, to its own cap, and says so
    codes = [notice.code for notice in exchange.warnings]
    assert "body_recorded_as_sent" in codes and "body_capped" in codes
    assert len(exchange.response.body) == BODY_CAP


def _incompressible(size: int) -> bytes:
    return hashlib.shake_256(b"chatcap").digest(size // 2).hex().encode()  # hex text: about 2:1 in gzip


def _recorded(tmp_path: Path, sent: bytes, content_type: str, encoding: str, *options: str) -> tuple[Proxy, dict]:
    """One response of `sent` bytes, declared `encoding`, through the proxy: the proxy and its record."""
    upstream = FixedBody(sent, [("content-type", content_type), ("content-encoding", encoding)])
    proxy = start_proxy(tmp_path, *options)
    try:
        subprocess.run(
            ["curl", "-s", "-x", proxy.url, f"{upstream.url}/v1/chat/completions", "-d", "{}", "-o", "/dev/null"],
            timeout=60, check=True,
        )  # fmt: skip
        wait_until(lambda: whole_lines(proxy.out) == 1, "the exchange recorded", timeout=60)
    finally:
        proxy.stop()
        upstream.close()
    return proxy, json.loads(lines_of(proxy.out)[0])


def test_a_compressed_body_that_decodes_past_the_cap_is_recorded_as_sent_whole(tmp_path: Path) -> None:
    body = _incompressible(6 * MiB)
    sent = gzip.compress(body)
    assert len(body) > CAP and len(sent) < CAP
    proxy, entry = _recorded(tmp_path, sent, "text/plain", "gzip", "--set", f"chatcap_max_body={CAP}")
    assert base64.b64decode(entry["response"]["content"]["text"]) == sent
    assert f"past the {CAP}-byte cap" in entry["response"]["_asSent"]
    assert entry["response"]["_chunks"][-1][1] == len(sent)  # the reads' ends count the bytes as sent
    (exchange,) = analyzer.load(proxy.out)
    assert exchange.response.body == body  # the reader's cap (64 MiB) is not the record's
    assert exchange.response.chunks == [(entry["response"]["_chunks"][-1][0], len(body))]
    assert "read_times_dropped" in [notice.code for notice in exchange.warnings]


def test_a_body_that_does_not_decode_as_declared_is_recorded_as_sent_not_dropped(tmp_path: Path) -> None:
    sent = b'data: {"choices": [{"delta": {"content": "not gzip at all"}}]}\n\n'
    proxy, entry = _recorded(tmp_path, sent, "text/event-stream", "gzip")
    assert entry["response"]["content"]["text"] == sent.decode()
    assert "does not decode" in entry["response"]["_asSent"]
    (exchange,) = analyzer.load(proxy.out)
    assert exchange.response.body == sent
    assert "body_recorded_as_sent" in [notice.code for notice in exchange.warnings]


# -- the capture file ----------------------------------------------------------------------


def test_a_symlink_planted_at_the_capture_file_name_is_refused_and_nothing_is_written_through_it(
    tmp_path: Path,
) -> None:
    exchange = scripted_stream(["planted"], gap_ms=5, first_ms=5)
    server = start_upstream([exchange])
    victim = tmp_path / "victim"
    victim.write_bytes(b"")
    proxy = start_proxy(tmp_path)
    try:
        proxy.out.mkdir(exist_ok=True)
        # The name is chatcap-<local time to the second>-<pid>.jsonl: plant one for every
        # second the first write could happen in.
        now = datetime.now()
        for second in range(-2, 60):
            stamp = (now + timedelta(seconds=second)).strftime("%Y%m%d-%H%M%S")
            (proxy.out / f"chatcap-{stamp}-{proxy.process.pid}.jsonl").symlink_to(victim)
        curl_chat(proxy.url, server.url, "hello")
        wait_until(lambda: any(not p.is_symlink() for p in proxy.out.glob("*.jsonl")), "the exchange recorded")
        wait_until(lambda: "symlink" in proxy.log.read_text(), "the refusal in the log")
    finally:
        proxy.stop()
        server.shutdown()
        server.server_close()
    assert victim.read_bytes() == b""  # nothing went through the link
    (recorded,) = [path for path in proxy.out.glob("*.jsonl") if not path.is_symlink()]
    assert recorded.stat().st_mode & 0o777 == 0o600
    assert json.loads(recorded.read_bytes())["response"]["status"] == 200
    refusal = [line for line in proxy.log.read_text().splitlines() if "symlink" in line]
    assert refusal and "refus" in refusal[0] and str(recorded) in refusal[0]


def test_the_capture_directory_is_created_private(tmp_path: Path) -> None:
    exchange = scripted_stream(["private"], gap_ms=5, first_ms=5)
    server = start_upstream([exchange])
    proxy = start_proxy(tmp_path)
    try:
        curl_chat(proxy.url, server.url, "hello")
        wait_until(lambda: whole_lines(proxy.out) == 1, "the exchange recorded")
    finally:
        proxy.stop()
        server.shutdown()
        server.server_close()
    assert proxy.out.stat().st_mode & 0o777 == 0o700


# -- the writer process -----------------------------------------------------------------------


def test_the_writer_process_ends_with_mitmdump_killed_outright_and_every_line_is_whole(tmp_path: Path) -> None:
    # The addon makes and writes its records in a process of its own. Killed outright, mitmdump
    # runs no `done`: the writer must not linger (the pipe closes under it), and what it wrote,
    # while exchanges were still being handed over, is whole lines (what it had not received
    # whole is lost with the proxy, as an exchange still in flight is).
    exchange = scripted_stream([f"word{n:04d} " for n in range(400)], gap_ms=0, first_ms=1)
    server = start_upstream([exchange])
    proxy = start_proxy(tmp_path)
    writers: set[int] = set()
    try:
        curl_chat(proxy.url, server.url, "first")
        wait_until(lambda: whole_lines(proxy.out) == 1, "the first exchange recorded")
        writers |= descendants(proxy.process.pid)
        assert writers, "no writer process under mitmdump"
        for n in range(8):
            received = curl_chat(proxy.url, server.url, f"before the kill {n}")
            assert received.stdout == exchange.response.body
        proxy.stop(signal.SIGKILL)
        wait_until(lambda: not any(alive(pid) for pid in writers), "the writer process gone after mitmdump")
    finally:
        proxy.stop(signal.SIGKILL)
        kill_all(writers)
        server.shutdown()
        server.server_close()
    lines = lines_of(proxy.out)
    assert all(line.endswith(b"\n") for line in lines)
    asked = [json.loads(line)["request"]["postData"]["text"] for line in lines]  # every line parses
    assert 1 <= len(asked) <= 9 and '"first"' in asked[0]
