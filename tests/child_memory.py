"""How much memory a chatcap command takes, measured in a child process, and a large capture to
measure it on: for the tests that memory does not grow with the input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
from bundled import CAPTURES

# Runs a command and prints its exit status and peak RSS. Started first, as a small process in
# between: Linux carries a parent's resident set over into a child's ru_maxrss (fork copies it,
# exec keeps it), and pytest's is large.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024)
"""


def peak_rss(*args: str | Path) -> int:
    """The peak resident set, in bytes, of `chatcap ARGS...` (which must exit 0)."""
    command = [sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "analyzer", *map(str, args)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    status, peak = map(int, run.stdout.split())
    assert status == 0, args
    return peak


def capture_lines(path: Path, lines: int) -> Path:
    """A chatcap/1 capture of `lines` exchanges of 32 kB (the last of replayed/conversation.jsonl,
    its system prompt long, as chat apps send them), written to `path`."""
    line = orjson.loads((CAPTURES / "replayed" / "conversation.jsonl").read_bytes().splitlines()[-1])
    request = json.loads(line["request"]["postData"]["text"])
    request["messages"][0]["content"] = "A long system prompt, as chat apps send. " * 600
    line["request"]["postData"]["text"] = json.dumps(request)
    path.write_bytes((orjson.dumps(line) + b"\n") * lines)
    return path


def conversation_lines(path: Path, conversations: int, turns: int, prompt_kb: int = 24) -> Path:
    """A chatcap/1 capture of `conversations` conversations of `turns` exchanges each, as a chat
    app sends them: every request resends its conversation's whole history (a system prompt
    of its own of `prompt_kb` kB, the questions and the replies so far), and each gets the
    reply of the last exchange of replayed/conversation.jsonl, written to `path`."""
    import analyzer

    template = CAPTURES / "replayed" / "conversation.jsonl"
    line = orjson.loads(template.read_bytes().splitlines()[-1])
    reply = analyzer.load(template, progress=False)[-1].reconstruct().choices[0].content
    request = json.loads(line["request"]["postData"]["text"])
    with path.open("wb") as out:
        for conversation in range(conversations):
            prompt = (
                f"Conversation {conversation}: "
                + "a long system prompt, as chat apps send. " * (prompt_kb * 25)
                + "Go."
            )
            history = [{"role": "system", "content": prompt}]
            for turn in range(turns):
                history.append({"role": "user", "content": f"Question {turn} of conversation {conversation}?"})
                request["messages"] = history
                line["request"]["postData"]["text"] = json.dumps(request)
                out.write(orjson.dumps(line) + b"\n")
                history.append({"role": "assistant", "content": reply})
    return path


def distinct_histories(path: Path, exchanges: int, kb: int = 8) -> Path:
    """A chatcap/1 capture of `exchanges` exchanges whose histories never repeat, as in a capture
    of many short conversations: each sends a system prompt, a question and an earlier answer
    of `kb` kB each that no other request sends, then a short question, and gets the reply of
    the last exchange of replayed/conversation.jsonl; written to `path`."""
    template = CAPTURES / "replayed" / "conversation.jsonl"
    line = orjson.loads(template.read_bytes().splitlines()[-1])
    request = json.loads(line["request"]["postData"]["text"])
    with path.open("wb") as out:
        for n in range(exchanges):
            said = [
                f"{role} {n}: " + f"{role} text of exchange {n}. " * (kb * 1000 // 30) for role in ("sys", "ask", "ans")
            ]
            request["messages"] = [
                {"role": "system", "content": said[0]},
                {"role": "user", "content": said[1]},
                {"role": "assistant", "content": said[2]},
                {"role": "user", "content": "And then?"},
            ]
            line["request"]["postData"]["text"] = json.dumps(request)
            out.write(orjson.dumps(line) + b"\n")
    return path
