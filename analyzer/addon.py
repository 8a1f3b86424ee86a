"""chatcap — a mitmproxy addon that records LLM API exchanges without slowing them.

    mitmdump --listen-host 127.0.0.1 -s "$(chatcap addon-path)" --set chatcap_dir=captures/live

(in a checkout, `-s addons/chatcap.py` loads this same file.)

(mitmdump listens on every interface unless told otherwise: keep it on loopback.)

Every finished exchange (complete, failed, aborted by either side, or cut by the proxy
shutting down) is appended as one line to a `chatcap/1` JSONL file: a HAR 1.2 entry with
each network read's arrival time in `response._chunks`. Responses stream through to the
client as they arrive; the addon only watches them go by: on the proxy's event loop it notes
each read (its time and where the body then ends, into two arrays) and, when the exchange ends,
hands what the flow holds to a writer process of its own, which makes the record, redacts,
serialises and appends it (see `_Writer`), so none of that holds the proxy's GIL.

Standard library only (besides mitmproxy itself), so it loads in any mitmproxy >= 11
install. Format: DESIGN.md, "Capture file format".
"""

from __future__ import annotations

import base64
import contextlib
import errno
import importlib.util
import json
import logging
import os
import pickle
import re
import secrets
import subprocess
import sys
import threading
import time
import traceback
import zlib
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Optional

from mitmproxy import ctx, flowfilter, http

SCHEMA = "chatcap/1"
VERSION = "0.1.0"
MiB = 1024 * 1024


log = logging.getLogger("chatcap")
_perf_counter = time.perf_counter


def _load(name: str) -> Any:
    """A module of analyzer/ beside this file, by path: the one place its rules live. Those the
    addon uses are standard-library only, so this works in a standalone mitmproxy that cannot
    import chatcap (`mitmdump -s .../site-packages/analyzer/addon.py`)."""
    path = Path(__file__).resolve().parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"chatcap_{name}", path)
    if spec is None or spec.loader is None or not path.exists():
        raise ImportError(f"chatcap: cannot find {path}: the addon needs the analyzer/ folder it ships in")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look their module up there
    spec.loader.exec_module(module)
    return module


redact = _load("redact")
llmcalls = _load("llmcalls")


# Decoders without an output limit get their input in pieces small enough that one piece
# cannot inflate far past the room left: brotli turns one input byte into at most about a
# meta-block (16 MiB, 2**24; 8 MiB measured), zstd into at most a block (128 KiB, 2**17).
_MOST_PER_INPUT_BYTE_LOG2 = {"br": 24, "zstd": 17}
# Decoders with an output limit hand over at most this much per call: a large body is built
# in place, never held twice.
_OUTPUT_STEP = 1 << 20
# A body decoded to more than this many times the bytes that carried it is a decompression
# bomb (deflate cannot pass 1032:1; real text, even an event stream of near-identical chunks,
# stays far below 100:1), once past a floor: it is recorded as sent, still encoded (nothing
# lost: a reader decodes it, to its own cap), and the proxy never inflates it further.
_MOST_RATIO = 1024
_RATIO_FLOOR = 1 << 20
_INPUT_PIECE = 4096  # compressed bytes decoded at a time: at most about 4 MiB of output at 1024:1


class _Inflater:
    """Incremental Content-Encoding decoding for the record (the client gets the original bytes),
    one level, as the header says, and never more output than asked for: a body that inflates
    past the cap (a decompression bomb: 1 kB of brotli can be 1 GB of zeros) costs the proxy
    the cap and one piece, not what it would inflate to."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.failed: str | None = None
        self._decoder: Any = None
        self._limited = False  # the decoder itself stops at an output limit
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._limited = True
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()
            self._limited = True
        elif encoding == "br":
            try:
                import brotli  # mitmproxy depends on it

                self._decoder = brotli.Decompressor()
                self._limited = _brotli_has_output_limit(brotli)
            except ImportError:
                self.failed = "brotli is not installed"
        elif encoding == "zstd":
            try:
                import zstandard  # mitmproxy depends on it

                self._decoder = zstandard.ZstdDecompressor().decompressobj()
            except ImportError:
                self.failed = "zstandard is not installed"
        else:
            self.failed = f"unknown Content-Encoding {encoding!r}"
        self._raw_deflate_tried = False

    def feed(self, data: bytes, into: bytearray, most: int) -> bool:
        """`data` decoded onto the end of `into`, at most `most` bytes of it; True when there
        was more than that (then stop feeding: the decoder is let go)."""
        if self.failed or self._decoder is None or not data:
            return False
        start = len(into)
        try:
            if self._limited:
                self._limited_steps(data, into, start + most)
            else:
                self._in_pieces(data, into, start + most)
        except Exception as exc:
            del into[start:]
            if self.encoding == "deflate" and not self._raw_deflate_tried:
                self._raw_deflate_tried = True  # some servers send raw deflate without the zlib header
                self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(data, into, most)
            self.failed = f"{self.encoding} decoding failed: {exc}"
            return False
        if len(into) > start + most:
            del into[start + most :]
            self._decoder = None  # nothing more will be asked of it: let its window go
            return True
        return False

    def _limited_steps(self, data: bytes, into: bytearray, end: int) -> None:
        """Decode up to one byte past `end` (getting it says the body goes on past the cap),
        a step at a time."""
        while True:
            step = min(_OUTPUT_STEP, end + 1 - len(into))
            if self.encoding == "br":
                out = self._decoder.process(data, output_buffer_limit=step)
                data = b""  # brotli keeps what it has not decoded yet
            else:
                out = self._decoder.decompress(data, step)
                data = self._decoder.unconsumed_tail
            into += out
            if len(into) > end or (not data and len(out) < step):
                return

    def _in_pieces(self, data: bytes, into: bytearray, end: int) -> None:
        decode = self._decoder.process if self.encoding == "br" else self._decoder.decompress
        shift = _MOST_PER_INPUT_BYTE_LOG2[self.encoding]
        view = memoryview(data)
        while view and len(into) <= end:
            piece = max(1, (end - len(into)) >> shift)
            into += decode(view[:piece])
            view = view[piece:]


def _brotli_has_output_limit(brotli: Any) -> bool:
    """Brotli >= 1.2 can stop at an output limit (`output_buffer_limit`); older ones cannot."""
    try:
        brotli.Decompressor().process(b"", output_buffer_limit=1)
    except TypeError:
        return False
    return True


def _decoded(raw: bytes, content_encoding: str, limit: int, warn: Callable[[str], None]) -> bytes:
    """A request body decoded as its Content-Encoding says when it fits in `limit` bytes;
    as sent when it does not (said with `warn`), or when it does not decode."""
    encoding = content_encoding.strip().lower()
    if not raw or not encoding or encoding == "identity":
        return raw
    inflater, decoded = _Inflater(encoding), bytearray()
    more = inflater.feed(raw, decoded, limit)
    if more:
        warn(f"chatcap: a {encoding} request body inflates past {limit} bytes: recorded as sent, encoded")
    return raw if more or inflater.failed else bytes(decoded)


class Recording:
    """One exchange in flight: the request as sent and each response read as it passes."""

    __slots__ = (
        "as_sent",
        "body",
        "ends",
        "flow",
        "inflater",
        "limit",
        "perf0",
        "raw_size",
        "started",
        "tentative",
        "times",
        "truncated",
        "wire",
        "wire_ends",
    )

    def __init__(self, flow: http.HTTPFlow, limit: int, tentative: bool = False) -> None:
        self.flow = flow
        self.started = flow.request.timestamp_start or time.time()
        # One clock per exchange: perf_counter, anchored to the request's start.
        self.perf0 = time.perf_counter() - (time.time() - self.started)
        self.body = bytearray()
        # Per read: arrival (perf_counter seconds) and where the body then ended, in two flat
        # arrays of machine numbers: no object per read for the GC, and they cross to the writer
        # process as two blocks of bytes. `response._chunks` is made from them there.
        self.times = array("d")
        self.ends = array("q")
        self.inflater: _Inflater | None = None
        self.limit = limit
        self.raw_size = 0
        self.truncated: str | None = None  # why the record stops short of the body, when it does
        # A compressed body's bytes as sent, beside the decoded ones while they fit the cap: when
        # it will not decode, or decodes past the cap (a decompression bomb), the record keeps
        # these instead (`as_sent` says why), so nothing is lost and the proxy holds no more
        # than the cap. Set with `inflater`.
        self.wire: bytearray | None = None
        self.wire_ends = array("q")
        self.as_sent: str | None = None
        # Chosen by its response (an event stream), kept only if it turns out to carry `choices`.
        self.tentative = tentative

    def decode(self, encoding: str) -> None:
        """The body comes with this Content-Encoding: record it decoded (or as sent, see `wire`)."""
        self.inflater = _Inflater(encoding)
        self.wire = bytearray()

    def observe(self, data: bytes) -> bytes:
        """mitmproxy's stream callback: note the read and pass it on unchanged. It runs on the
        event loop for every read of every stream, so it only stamps and appends; everything
        else about the record is done once, by the writer process, when the exchange ends."""
        try:
            if data:
                arrived = _perf_counter()
                self.raw_size += len(data)
                if self.truncated:  # past the cap nothing is decoded or kept
                    return data
                body = self.body
                if self.inflater is None and len(body) + len(data) <= self.limit:
                    body += data  # the common case: as _keep would, without the call
                else:
                    self._keep(data)
                    body = self.body  # a body kept as sent from now on is another bytearray
                self.times.append(arrived)
                self.ends.append(len(body))
                if self.wire is not None:
                    self.wire_ends.append(len(self.wire))
            else:  # the end of the stream: hand the body back to the flow
                self._restore_body()
        except Exception as exc:
            _trouble("could not record a read; the stream continues", exc)
        return data

    def whole(self, raw: bytes) -> bytes:
        """The body of a response that was not streamed (an addon turned streaming off),
        decoded and capped as a streamed one is."""
        self._keep(raw)
        return bytes(self.body)

    def _keep(self, data: bytes) -> None:
        """One read into the record: decoded, and cut where the cap falls."""
        if self.inflater is None:
            room = self.limit - len(self.body)
            if len(data) > room:
                data = data[:room]
                self.truncated = f"record capped at {self.limit} bytes; the client got everything"
            self.body += data
            return
        # A piece at a time, so that the ratio is judged on the bytes decoded so far, not on a
        # whole read that might inflate a thousandfold before it is looked at.
        view = memoryview(data)
        while view and self.inflater is not None and not self.truncated:
            piece, view = view[:_INPUT_PIECE], view[_INPUT_PIECE:]
            self._inflate(piece)
        if view and self.as_sent:
            self._keep(bytes(view))  # the rest of the read, as sent

    def _inflate(self, piece: memoryview) -> None:
        inflater = self.inflater
        assert inflater is not None
        if self.wire is not None:
            if len(self.wire) + len(piece) <= self.limit:
                self.wire += piece
            else:  # larger than the cap even as sent: the decoded bytes are all there will be
                self.wire, self.wire_ends = None, array("q")
        room = self.limit - len(self.body)
        most = room
        if self.wire is not None:
            most = min(most, max(_RATIO_FLOOR, _MOST_RATIO * len(self.wire)) - len(self.body))
        more = inflater.feed(bytes(piece), self.body, max(most, 0))
        if (more or inflater.failed) and self.wire is not None:
            self._keep_as_sent(past=("cap" if most == room else "ratio") if more else None)
        elif more:
            self.truncated = (
                f"record capped at {self.limit} bytes: the {inflater.encoding} body inflates past it "
                "and was not decoded further; the client got every original byte"
            )

    def _keep_as_sent(self, past: str | None) -> None:
        """From now on the record holds the body as sent, still encoded, and the decoded bytes go.
        `past`: the limit the body decodes past ("cap" or "ratio"); None: it does not decode."""
        inflater, wire = self.inflater, self.wire
        assert inflater is not None and wire is not None
        if past == "cap":
            why = f"inflates past the {self.limit}-byte cap"
        elif past == "ratio":
            why = f"inflates to over {_MOST_RATIO} times its size (a decompression bomb?)"
        else:
            why = f"does not decode ({inflater.failed})"
        self.as_sent = f"the {inflater.encoding} body {why}: recorded as sent, still encoded"
        self.body, self.ends = wire, self.wire_ends
        self.wire, self.wire_ends, self.inflater = None, array("q"), None

    def _restore_body(self) -> None:
        """A streamed flow keeps no body in mitmproxy; put the recorded one back, so that
        `-w` flow files, `hardump` HAR files and mitmweb show it too (never a partial one)."""
        response = self.flow.response
        if response is None or self.truncated or self.as_sent or (self.inflater and self.inflater.failed):
            return
        if self.inflater is None:
            response.raw_content = bytes(self.body)
        else:
            response.content = bytes(self.body)  # encoded again as its Content-Encoding says


def _headers(headers: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers]


def _redact(entry: dict[str, Any]) -> None:
    """Credentials out of a record, with analyzer/redact.py's rules (by structure): URL,
    headers (their names noted in `_chatcap.redacted`), and both bodies, stream payloads
    included, the reads' end offsets moved with the edits."""
    request, response = entry["request"], entry["response"]
    request["url"] = redact.redact_text(request["url"])
    names: set[str] = set()
    for message in (request, response):
        pairs = [(header["name"], header["value"]) for header in message["headers"]]
        names |= {name for name, value in pairs if value and redact.is_secret_header(name)}
        message["headers"] = [{"name": name, "value": value} for name, value in redact.redact_headers(pairs)]
    post = request["postData"]
    body = _bytes(post)
    redacted = redact.redact_body(body)[0]
    if redacted is not body:  # something was redacted (else the text stands: no second copy of a large body)
        post["text"], encoding = _text(redacted)
        post.pop("encoding", None)
        if encoding:
            post["encoding"] = encoding
    content = response["content"]
    if "text" in content:
        chunks = response.get("_chunks") or []
        body = _bytes(content)
        data, ends = redact.redact_body(body, [end for _, end in chunks])
        if data is not body:  # something was redacted: the text and the reads' ends move
            response["_chunks"] = [[t, end] for (t, _), end in zip(chunks, ends or [], strict=True)]
            content["text"], encoding = _text(data)
            content.pop("encoding", None)
            if encoding:
                content["encoding"] = encoding
            content["size"] = len(data)
    entry["_chatcap"]["redacted"] = sorted(names)


def _bytes(holder: dict[str, Any]) -> bytes:
    """The bytes a HAR `text` (and `encoding`) holds."""
    if holder.get("encoding") == "base64":
        return base64.b64decode(holder["text"])
    return holder["text"].encode("utf-8", "surrogatepass")


try:  # faster where the proxy's Python has it (chatcap's own environment does); optional
    import orjson

    def _dumps(entry: dict[str, Any]) -> bytes:
        try:
            return orjson.dumps(entry)
        except TypeError:  # a lone surrogate in a header: let json escape it
            return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")

except ImportError:

    def _dumps(entry: dict[str, Any]) -> bytes:
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


# Bytes JSON can only write as a six-character escape (\u0000): all controls but \b \t \n \f \r.
_SIX_CHARACTER_ESCAPES = bytes(sorted(set(range(32)) - set(b"\b\t\n\f\r")))
_SIX_CHARACTER_ESCAPE = re.compile(b"[" + re.escape(_SIX_CHARACTER_ESCAPES) + b"]")


def _text(data: bytes) -> tuple[str, str | None]:
    """HAR `content.text` and `encoding`: the text itself, or base64 when the bytes are not UTF-8
    or are mostly control characters (a body of NULs would be six times its size as JSON
    escapes, base64 is 4/3; a decompression bomb inflates to just that)."""
    if _SIX_CHARACTER_ESCAPE.search(data) is not None:
        escaped = len(data) - len(data.translate(None, _SIX_CHARACTER_ESCAPES))
        if 5 * escaped > len(data) // 3:  # the escapes would cost more than base64 does
            return base64.b64encode(data).decode("ascii"), "base64"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def _trouble(what: str, exc: BaseException) -> None:
    """One line for the user on the terminal; the traceback only in the debug log."""
    log.error(f"chatcap: {what}: {type(exc).__name__}: {exc}")
    log.debug("chatcap: the traceback", exc_info=exc)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# Set in a flow's metadata once its record is written (or dropped): whatever hook mitmproxy
# calls for it later, during shutdown or after a script reload, records it no second time.
_FINISHED = "chatcap_finished"


class ChatCapture:
    """Records LLM API exchanges to `<chatcap_dir>/chatcap-<date>-<time>-<pid>.jsonl`."""

    def __init__(self) -> None:
        self.recordings: dict[str, Recording] = {}
        self.filter: flowfilter.TFilter | None = None
        self.path: Path | None = None  # the capture file, as the writer last said
        self.written = 0  # records written whole
        self.lost = 0  # exchanges that could not be recorded, here or by the writer
        self.lost_here = 0  # of which here (the writer counts its own: each exchange tells it these)
        self.stopped = False  # `done` has run: no new recordings
        # Each finished exchange is handed, as it stands, to a thread that passes it on to the
        # writer: a process of its own (see `_Writer`), where it is made into its record,
        # redacted, serialised and appended, so that none of that holds this process's GIL
        # while the event loop streams every other exchange (and stamps their reads).
        self.handover = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatcap-writer")
        self.writer: _Writer | None = None  # started with the proxy (`running`) or the first record

    # -- configuration ------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option("chatcap_dir", str, "captures/live", "Directory the capture JSONL files are written to.")
        loader.add_option(
            "chatcap_filter",
            Optional[str],  # noqa: UP045 - mitmproxy's option typecheck wants typing.Optional
            None,
            "mitmproxy filter expression choosing the flows to record; default: LLM API calls "
            "(chat/completions, completions, responses, v1/messages, generateContent, or a JSON body with messages).",
        )
        loader.add_option("chatcap_redact", bool, True, "Redact credentials (headers, keys, tokens) in the capture.")
        loader.add_option("chatcap_max_body", int, 64 * MiB, "Most response bytes recorded per exchange.")

    def configure(self, updated: set[str]) -> None:
        if "chatcap_filter" in updated:
            expression = ctx.options.chatcap_filter
            self.filter = flowfilter.parse(expression) if expression else None
        # A new chatcap_dir takes effect with the next record: each names its directory.

    # -- which flows ----------------------------------------------------------------------

    def _wanted(self, flow: http.HTTPFlow) -> bool:
        if self.filter is not None:
            return bool(self.filter(flow))
        request = flow.request
        return llmcalls.is_llm_request(
            request.method, request.path, request.headers.get("content-type", ""), request.raw_content
        )

    # -- a flow's life ------------------------------------------------------------------

    def request(self, flow: http.HTTPFlow) -> None:
        if self.stopped:
            return
        try:
            if self._wanted(flow):
                self.recordings[flow.id] = Recording(flow, ctx.options.chatcap_max_body)
        except Exception as exc:
            _trouble("could not start a recording", exc)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        recording = self.recordings.get(flow.id)
        if recording is None:
            if self.stopped or flow.metadata.get(_FINISHED) or self.filter is not None:
                return
            if "text/event-stream" not in flow.response.headers.get("content-type", ""):
                return
            # An event stream on a path we do not know: watch it, keep it if it has `choices`.
            recording = self.recordings[flow.id] = Recording(flow, ctx.options.chatcap_max_body, tentative=True)
        try:
            encoding = flow.response.headers.get("content-encoding", "").strip().lower()
            if encoding and encoding != "identity":
                recording.decode(encoding)
            flow.response.stream = recording.observe
        except Exception as exc:
            _trouble("could not observe a response", exc)

    def running(self) -> None:
        # The writer process starts with the proxy (on the hand-over thread), so that it is
        # ready by the first finished exchange.
        with contextlib.suppress(RuntimeError):
            self.handover.submit(self._start_writer)

    def response(self, flow: http.HTTPFlow) -> None:
        self._finish(flow, error=None)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finish(flow, error=flow.error.msg if flow.error else "unknown error")

    def done(self) -> None:
        # mitmproxy goes on calling `responseheaders`, `response` and `error` for the flows
        # still open while it tears their connections down after this: they are recorded
        # here, once, as cut by the shutdown, and those later calls find them finished.
        self.stopped = True
        for flow_id in list(self.recordings):
            self._finish(self.recordings[flow_id].flow, error="proxy shutdown")
        self.handover.shutdown(wait=True)  # every exchange is with the writer
        if self.writer is not None:
            self.writer.close()  # and it has written each (or counted it lost)
        if self.lost:
            log.error(f"chatcap: {self.lost} exchange(s) could not be written; {self.written} recorded"
                      + (f" in {self.path}" if self.path else ""))  # fmt: skip

    # -- the record ---------------------------------------------------------------------

    def _finish(self, flow: http.HTTPFlow, error: str | None) -> None:
        recording = self.recordings.pop(flow.id, None)
        if recording is None:
            return
        flow.metadata[_FINISHED] = True
        if recording.tentative and not llmcalls.is_chat_stream("text/event-stream", bytes(recording.body[:65536])):
            return  # an event stream, but not a chat completion: not ours to record
        try:
            exchange = _exchange(recording, error)  # what the flow holds, taken as it is: cheap
            exchange["directory"] = ctx.options.chatcap_dir
            exchange["redact"] = ctx.options.chatcap_redact
            exchange["max_body"] = ctx.options.chatcap_max_body
            exchange["lost_before"] = self.lost_here
        except Exception as exc:
            self.lost += 1
            self.lost_here += 1
            _trouble(f"could not record an exchange ({self.lost} lost so far)", exc)
            return
        try:
            self.handover.submit(self._hand_over, exchange)
        except RuntimeError:  # the hand-over thread has shut down (a hook after `done`): write it here
            _Records(self._reported).write(exchange)

    def _start_writer(self) -> _Writer:
        if self.writer is None:
            self.writer = _Writer(self._reported)
        return self.writer

    def _hand_over(self, exchange: dict[str, Any]) -> None:
        """On the hand-over thread: to the writer process (written here when there is none)."""
        self._start_writer().write(exchange)

    def _reported(self, kind: str, *values: Any) -> None:
        """What the writer says, on whichever thread hears it."""
        if kind == "log":
            level, text = values
            log.log(level, text)
        elif kind == "written":
            path, summary = values
            self.written += 1
            self.path = Path(path)
            if summary:
                log.info(summary)
        elif kind == "lost":
            self.lost += 1


class _Writer:
    """Where records are made and written: a Python process of its own (the proxy's interpreter
    running this file's `_serve_records`), fed pickled exchanges through a pipe, in order; it says
    what happened back through another. A mitmproxy that cannot start one (a frozen build, whose
    executable is mitmproxy itself) writes on the hand-over thread instead, as the process would."""

    def __init__(self, report: Any) -> None:
        self.report = report
        self.records: _Records | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.listener: threading.Thread | None = None
        if getattr(sys, "frozen", False):
            self.records = _Records(report)
            return
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SERVE_RECORDS, str(Path(__file__).resolve()), str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as exc:
            log.warning(f"chatcap: cannot start the writer process ({exc}): writing on a thread of the proxy")
            self.records = _Records(report)
            return
        self.listener = threading.Thread(target=self._listen, name="chatcap-writer-reports", daemon=True)
        self.listener.start()

    def write(self, exchange: dict[str, Any]) -> None:
        if self.process is not None:
            try:
                _send(self.process.stdin, exchange)
                return
            except OSError as exc:  # the writer process is gone: from now on, here
                log.error(f"chatcap: the writer process stopped ({exc}): writing on a thread of the proxy")
                self.process = None
        if self.records is None:
            self.records = _Records(self.report)
        self.records.write(exchange)

    def _listen(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for message in _received(self.process.stdout):
            self.report(*message)

    def close(self) -> None:
        """Once every exchange has been handed over: the writer finishes them and ends."""
        if self.process is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()  # type: ignore[union-attr]
            self.process.wait()
        if self.listener is not None:
            self.listener.join()
        if self.records is not None:
            self.records.close()


# The writer process: this file, loaded by path, reading exchanges from stdin until it closes.
# Ctrl-C and a SIGTERM go to the proxy (it then closes the pipe); the writer finishes what it has.
# It runs at a lower priority than the proxy (nice 10): where the two want the same core, the
# streams go first and records are written a little later. The current directory is not put on
# sys.path: a user's json.py there must not shadow json.
_SERVE_RECORDS = """\
import os, signal, sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
if hasattr(os, "nice"):
    os.nice(10)
for name in ("SIGINT", "SIGTERM"):
    signal.signal(getattr(signal, name), signal.SIG_IGN)
import importlib.util
spec = importlib.util.spec_from_file_location("chatcap_writer", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
module._serve_records(int(sys.argv[2]))
"""


def _send(pipe: Any, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(len(data).to_bytes(8, "little") + data)  # one write: a message is whole or absent
    pipe.flush()


def _received(pipe: Any) -> Any:
    """The messages `_send` wrote, until the pipe closes (a message cut short by a crash is dropped)."""
    while True:
        size = pipe.read(8)
        if len(size) < 8:
            return
        data = pipe.read(int.from_bytes(size, "little"))
        if len(data) < int.from_bytes(size, "little"):
            return
        yield pickle.loads(data)


def _serve_records(proxy_pid: int) -> None:
    """The writer process's life: each exchange from stdin recorded, what happened said on stdout.
    Its files are named after the proxy's process, as when the proxy writes them itself."""
    out = sys.stdout.buffer

    def report(*message: Any) -> None:
        with contextlib.suppress(OSError):  # the proxy is gone (killed): write what was handed over all the same
            _send(out, message)

    records = _Records(report, proxy_pid)
    try:
        for exchange in _received(sys.stdin.buffer):
            records.write(exchange)
    finally:
        records.close()


class _Records:
    """The capture file and its records; in the writer process (or on the hand-over thread)."""

    def __init__(self, report: Any, proxy_pid: int | None = None) -> None:
        self.report = report  # report("log", level, text) | ("written", path, summary) | ("lost",)
        self.proxy_pid = proxy_pid or os.getpid()
        self.directory: str | None = None
        self.path: Path | None = None
        self.descriptor: int | None = None
        self.lost = 0

    def write(self, exchange: dict[str, Any]) -> None:
        """Make the exchange's record, redact, serialise and append it."""
        try:
            entry = _entry(exchange, lambda text: self._log(logging.WARNING, text))
            if exchange["redact"]:
                _redact(entry)
            line = _dumps(entry)
        except Exception as exc:
            self._lost(exchange, f"could not record an exchange ({self._lost_so_far(exchange) + 1} lost so far)", exc)
            return
        try:
            self._append(line, exchange["directory"])
        except OSError as exc:
            lost = self._lost_so_far(exchange) + 1
            where = self.path or exchange["directory"]
            self._lost(exchange, None, None)
            self._log(logging.ERROR, f"chatcap: could not write an exchange to {where}: {exc.strerror or exc}; "
                      f"{lost} exchange(s) lost so far (the file still ends with a whole line)")  # fmt: skip
            return
        try:
            summary = _summary(entry, self.path)
        except Exception as exc:
            self._trouble("could not summarise an exchange (it is recorded)", exc)
            summary = ""
        self.report("written", str(self.path), summary)

    def _lost_so_far(self, exchange: dict[str, Any]) -> int:
        return exchange["lost_before"] + self.lost

    def _lost(self, exchange: dict[str, Any], what: str | None, exc: BaseException | None) -> None:
        self.lost += 1
        self.report("lost")
        if what is not None and exc is not None:
            self._trouble(what, exc)

    def _log(self, level: int, text: str) -> None:
        self.report("log", level, text)

    def _trouble(self, what: str, exc: BaseException) -> None:
        """As `_trouble`, said through the report."""
        self._log(logging.ERROR, f"chatcap: {what}: {type(exc).__name__}: {exc}")
        self._log(logging.DEBUG, "chatcap: the traceback\n" + "".join(traceback.format_exception(exc)))

    def _file(self, directory_name: str) -> int:
        """The capture file, made on first use (and again when the directory changes): always
        a new file (O_EXCL), never one reached through a symlink, 0600, in a directory made
        0700. Its name is predictable, so a name already taken (a symlink planted there, say) is
        refused and a random one used."""
        if self.descriptor is not None and directory_name != self.directory:
            self.close()
        if self.descriptor is None:
            directory = Path(directory_name)
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            stem = f"chatcap-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{self.proxy_pid}"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
            path = directory / f"{stem}.jsonl"
            try:
                descriptor = os.open(path, flags, 0o600)
            except FileExistsError:
                taken = path
                path = directory / f"{stem}-{secrets.token_hex(4)}.jsonl"
                descriptor = os.open(path, flags, 0o600)
                if taken.is_symlink():
                    self._log(logging.ERROR, f"chatcap: {taken} is a symlink chatcap did not make: refusing to write "
                              f"through it; recording to {path}")  # fmt: skip
                elif taken != self.path:
                    self._log(logging.WARNING, f"chatcap: {taken} already exists: recording to {path}")
            self.descriptor, self.path, self.directory = descriptor, path, directory_name
        return self.descriptor

    def _append(self, line: bytes, directory: str) -> None:
        """Append one record and its newline whole, or nothing: a failed or short write (a full
        disk) is cut back to where the file ended, so the file always ends with a whole line."""
        descriptor = self._file(directory)
        start = os.lseek(descriptor, 0, os.SEEK_END)
        try:
            for part in (line, b"\n"):
                view = memoryview(part)
                while view:
                    written = os.write(descriptor, view)
                    if written == 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    view = view[written:]
        except OSError:
            try:
                os.ftruncate(descriptor, start)
            except OSError as cut:
                self._log(logging.ERROR, f"chatcap: could not cut {self.path} back to its last whole line "
                          f"({cut.strerror}): its last line is torn; the next exchange goes to a new file")  # fmt: skip
                self.close()
            raise

    def close(self) -> None:
        if self.descriptor is not None:
            with contextlib.suppress(OSError):
                os.close(self.descriptor)
            self.descriptor = None


def _exchange(recording: Recording, error: str | None) -> dict[str, Any]:
    """What the writer needs of a finished exchange, taken from the flow as it is (the record
    is made from it in the writer): plain values, bytes and the reads' two arrays."""
    flow = recording.flow
    request, response = flow.request, flow.response
    exchange: dict[str, Any] = {
        "started": recording.started,
        "error": error,
        "request": {
            "method": request.method,
            "url": request.pretty_url,
            "http_version": request.http_version,
            "headers": list(request.headers.items(multi=True)),
            "content_type": request.headers.get("content-type", ""),
            "content_encoding": request.headers.get("content-encoding", ""),
            "body": request.raw_content or b"",
            "sent": request.timestamp_end,
        },
        "response": None,
    }
    if response is not None:
        if recording.times or response.stream:
            body = recording.body
        else:  # not streamed only when an addon before us turned streaming off: then the whole body
            body = bytearray(recording.whole(response.raw_content or b""))
        recording.body = recording.wire = bytearray()  # the body is the writer's now: one in memory, not two
        exchange["response"] = {
            "status": response.status_code,
            "reason": response.reason,
            "http_version": response.http_version,
            "headers": list(response.headers.items(multi=True)),
            "content_type": response.headers.get("content-type", ""),
            "body": body,
            "raw_size": recording.raw_size,
            "perf0": recording.perf0,
            "times": recording.times,
            "ends": recording.ends,
            "first": response.timestamp_start,
            "last": response.timestamp_end,
            "truncated": recording.truncated,
            "as_sent": recording.as_sent,
            "decode_error": recording.inflater.failed if recording.inflater else None,
        }
    return exchange


def _entry(exchange: dict[str, Any], warn: Callable[[str], None]) -> dict[str, Any]:
    """The `chatcap/1` record of an exchange (DESIGN.md, "Capture file format")."""
    request, response = exchange["request"], exchange["response"]
    started = exchange["started"]
    body = request["body"]
    with contextlib.suppress(Exception):
        body = _decoded(body, request["content_encoding"], exchange["max_body"], warn)
    request_text, request_encoding = _text(body)
    entry: dict[str, Any] = {
        "startedDateTime": _iso(started),
        "time": 0.0,
        "request": {
            "method": request["method"],
            "url": request["url"],
            "httpVersion": request["http_version"],
            "headers": _headers(request["headers"]),
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": len(request["body"]),
            "postData": {
                "mimeType": request["content_type"],
                "text": request_text,
                **({"encoding": request_encoding} if request_encoding else {}),
            },
        },
        "response": {"status": 0, "statusText": "", "httpVersion": "", "headers": [], "cookies": [],
                     "content": {"size": 0, "mimeType": ""}, "redirectURL": "", "headersSize": -1, "bodySize": -1},
        "cache": {},
        "timings": {"send": -1, "wait": -1, "receive": -1},
    }  # fmt: skip
    complete = exchange["error"] is None
    if response is not None:
        perf0 = response["perf0"]
        # `response._chunks`: [ms since the request started, end byte] per read.
        chunks = [
            [round((t - perf0) * 1000, 3), end] for t, end in zip(response["times"], response["ends"], strict=True)
        ]
        data = bytes(response["body"])
        text, encoding = _text(data)
        content: dict[str, Any] = {"size": len(data), "mimeType": response["content_type"], "text": text}
        if encoding:
            content["encoding"] = encoding
        entry["response"] = {
            "status": response["status"],
            "statusText": response["reason"],
            "httpVersion": response["http_version"],
            "headers": _headers(response["headers"]),
            "cookies": [],
            "content": content,
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": response["raw_size"],
            "_chunks": chunks,
        }
        sent = request["sent"] or started
        first = response["first"]
        last = response["last"] or (started + chunks[-1][0] / 1000 if chunks else None)
        entry["timings"] = {
            "send": round(max(sent - started, 0) * 1000, 3),
            "wait": round(max(first - sent, 0) * 1000, 3) if first else -1,
            "receive": round(max(last - first, 0) * 1000, 3) if first and last else -1,
        }
        entry["time"] = round(sum(v for v in entry["timings"].values() if v > 0), 3)
        if response["truncated"]:
            complete = False
            entry["response"]["_truncated"] = response["truncated"]
        if response["as_sent"]:
            entry["response"]["_asSent"] = response["as_sent"]
        elif response["decode_error"]:
            entry["response"]["_decodeError"] = response["decode_error"]
    if exchange["error"] is not None:
        entry["_error"] = exchange["error"]
    entry["_chatcap"] = {
        "schema": SCHEMA,
        "version": VERSION,
        "redacted": [],
        "complete": complete,
    }
    return entry


def _summary(entry: dict[str, Any], path: Path | None) -> str:
    """One line per exchange for the mitmdump log: host, model, status, TTFT, tokens, tok/s, file."""
    url = entry["request"]["url"]
    host = url.split("/")[2] if "://" in url else url
    try:
        model = json.loads(entry["request"]["postData"]["text"]).get("model", "?")
    except (ValueError, AttributeError):
        model = "?"
    in_path = _MODEL_IN_PATH.search(url)
    if model == "?" and in_path:  # Gemini names the model in the path
        model = in_path.group(1)
    ttft, tokens, rate = _stream_figures(entry)
    status = entry["response"]["status"] or "—"
    parts = [f"chatcap: {host} {model} {status}", f"TTFT {ttft}", f"{tokens} tokens", f"{rate} tok/s"]
    if entry.get("_error"):
        parts.append(f"ended: {entry['_error']}")
    return ", ".join(parts) + f" → {path}"


_USAGE = re.compile(rb'"(?:completion_tokens|output_tokens|candidatesTokenCount)"\s*:\s*(\d+)')
# Gemini counts the reasoning apart from the answer; the other protocols include it.
_THOUGHTS = re.compile(rb'"thoughtsTokenCount"\s*:\s*(\d+)')
_MODEL_IN_PATH = re.compile(r"/models/([^/:?]+):")
_TEXT_DELTA = re.compile(
    rb'"(?:content|reasoning_content|reasoning|text|thinking|arguments|partial_json|delta)"\s*:\s*"(?!")'
)


def _stream_figures(entry: dict[str, Any]) -> tuple[str, str, str]:
    """Cheap live figures for the log line (the analyzer computes the real ones)."""
    content = entry["response"]["content"]
    if content.get("encoding") == "base64" or not content.get("text"):
        return "—", "?", "—"
    body = content["text"].encode("utf-8", "surrogatepass")
    first, start = None, 0
    for t_ms, end in entry["response"].get("_chunks", []):
        if _TEXT_DELTA.search(body, start, int(end)):
            first = t_ms
            break
        start = max(int(end) - 64, 0)  # a key may straddle two reads
    tail = max(len(body) - 8192, 0)  # usage comes last
    usage = [int(n) for n in _USAGE.findall(body, tail)]
    thoughts = _THOUGHTS.findall(body, tail)
    if usage and thoughts:
        usage[-1] += int(thoughts[-1])
    tokens = str(usage[-1]) if usage else "?"
    chunks = entry["response"].get("_chunks") or []
    rate = "—"
    if first is not None and usage and chunks and chunks[-1][0] > first:
        rate = f"{usage[-1] / ((chunks[-1][0] - first) / 1000):.1f}"
    return (f"{first:.0f} ms" if first is not None else "—"), tokens, rate


addons = [ChatCapture()]
