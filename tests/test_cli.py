"""The CLI as a user runs it: a real process, one readable line on error, never a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bundled import captures_as_cloned, chatcap
from child_memory import capture_lines, peak_rss

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "tests" / "data" / "seeds"
DATA = ROOT / "tests" / "data" / "ingest"


def test_summary_lists_every_bundled_exchange() -> None:
    result = chatcap("summary", "captures/")
    assert result.returncode == 0, result.stderr
    for seed in ("000_d638e083d5fc0320.txt#1", "001_abeb99c31e8268f6.txt#1", "002_22fabd0d0adae130.txt#1"):
        assert seed in result.stdout
    assert "deepseek-v3" in result.stdout and "665→90" in result.stdout and "~30 s" in result.stdout


def test_show_prints_one_reconstructed_exchange() -> None:
    result = chatcap("show", "captures/000_d638e083d5fc0320.txt")
    assert result.returncode == 0, result.stderr
    assert "你好！😊 有什么我可以帮你的吗？" in result.stdout
    assert "mojibake repaired" in result.stdout


def test_show_unknown_id_is_one_line() -> None:
    result = chatcap("show", "captures/000_d638e083d5fc0320.txt", "--id", "nope")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: no exchange 'nope'")
    assert "Traceback" not in result.stderr


def test_show_reads_a_capture_one_exchange_at_a_time(tmp_path: Path) -> None:
    """The last of 1,600 exchanges of 32 kB is shown in about the memory the only one of a
    one-line capture takes (loading them all took twice the file)."""
    big = capture_lines(tmp_path / "big.jsonl", 1600)
    alone = peak_rss("show", capture_lines(tmp_path / "one.jsonl", 1))
    assert peak_rss("show", big, "--id", "big.jsonl#1600") - alone < big.stat().st_size / 5
    result = chatcap("show", big, "--id", "big.jsonl#1601")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: no exchange 'big.jsonl#1601'; there are: big.jsonl#1, big.jsonl#2")


def test_export_markdown_and_jsonl(tmp_path: Path) -> None:
    result = chatcap("export", "captures/", "--format", "markdown", "--out", tmp_path / "md")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "md").glob("*.md"))) >= 3
    result = chatcap("export", "captures/", "--format", "jsonl", "--out", tmp_path / "jl")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "jl" / "conversations.jsonl").read_text().count("\n") >= 3


def test_documentation_page_is_no_exchanges_found_not_a_crash() -> None:
    result = chatcap("summary", SEEDS / "003_70fdfcbe6a599fa7.txt")
    assert result.returncode == 1
    assert "003_70fdfcbe6a599fa7.txt: no exchanges found" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_bad_files_in_a_batch_are_skipped_with_a_line_each(tmp_path: Path) -> None:
    shutil.copy(DATA / "completion_body.json", tmp_path / "good.json")
    (tmp_path / "empty.txt").write_bytes(b"")
    shutil.copy(DATA / "torn_last_line.jsonl", tmp_path / "torn.jsonl")
    result = chatcap("summary", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "good.json#1" in result.stdout and "torn.jsonl#2" in result.stdout
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2 and any("empty.txt" in line for line in skipped)
    assert any("torn.jsonl line 3: torn last line" in line for line in skipped)
    assert "Traceback" not in result.stderr


def test_missing_path_is_one_line() -> None:
    result = chatcap("summary", "does/not/exist.jsonl")
    assert result.returncode == 1
    assert result.stderr == "Error: does/not/exist.jsonl: no such file or directory\n"


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("chatcap")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "summary" in result.stdout


def test_import_analyzer_stays_light() -> None:
    code = "import sys, analyzer; analyzer.load('captures/')[0].reconstruct(); print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'altair', 'numpy', 'rich', 'click', 'mitmproxy'}))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=captures_as_cloned().parent
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_show_labels_the_reasoning_in_a_terminal() -> None:
    result = chatcap("show", "captures/001_abeb99c31e8268f6.txt", "--render")
    assert result.returncode == 0, result.stderr
    assert "Reasoning:" in result.stdout and "Hello there friend" in result.stdout


def test_summary_marks_estimated_tokens_and_priced_costs() -> None:
    result = chatcap("summary", "captures/")
    assert result.returncode == 0, result.stderr
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("│")}
    assert "~?→121" in lines["002_22fabd0d0adae130.txt#1"]  # no usage reported, no request: completion estimated
    assert "│          $0 │" in lines["001_abeb99c31e8268f6.txt#1"]  # the gateway's own cost after [DONE]
    assert "≈$0.000026" in lines["branching_conversation.jsonl#1"]  # 44 in, 33 out at gpt-4o-mini's price
    assert "~ tokens estimated" in result.stdout


def test_show_prints_the_reply_exactly_as_received(tmp_path: Path) -> None:
    """Not rendered: `__init__` is not bold "init", a leading `+` is no bullet, `# x` no heading."""
    reply = "Call __init__ first.\n+ keep this plus\n# not a heading\n    indented code stays"
    body = {"id": "c1", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}]}  # fmt: skip
    capture = tmp_path / "reply.json"
    capture.write_text(json.dumps(body))
    result = chatcap("show", capture)
    assert result.returncode == 0, result.stderr
    assert reply in result.stdout
    rendered = chatcap("show", capture, "--render")  # rendering is asked for: a list item, a heading
    assert "keep this plus" in rendered.stdout and "+ keep this plus" not in rendered.stdout


def test_piped_output_is_not_padded_and_follows_columns() -> None:
    for columns in (120, 250):
        result = chatcap("summary", "captures/errors.jsonl", columns=columns)
        lines = result.stdout.splitlines()
        assert all(line == line.rstrip() for line in lines)
        assert max(len(line) for line in lines) <= columns


def test_summary_says_why_a_reply_ended_and_when_a_price_is_unknown() -> None:
    rows = {
        line.split("│")[1].strip(): line for line in chatcap("summary", "captures/").stdout.splitlines() if "│" in line
    }
    assert "error: The server had an error" in rows["errors.jsonl#2"]  # the stream's error, with its message
    assert "ended early: client" in rows["truncated.jsonl#1"]  # the proxy's reason, not "truncated"
    assert "no price" in rows["000_d638e083d5fc0320.txt#1"]  # deepseek-v3 is in no price list


def test_filters_never_renumber_conversations(tmp_path: Path) -> None:
    """The README's example: a conversation keeps the id it has in the whole input."""
    everything = chatcap("export", "captures/", "--format", "markdown", "--out", tmp_path / "all")
    assert everything.returncode == 0, everything.stderr
    filtered = chatcap("export", "captures/", "--model", "claude*", "--host", "*.anthropic.com",
                       "--since", "2025-10-01", "--format", "markdown", "--out", tmp_path / "some")  # fmt: skip
    assert filtered.returncode == 0, filtered.stderr
    some = {path.name for path in (tmp_path / "some").iterdir()}
    assert some and some < {path.name for path in (tmp_path / "all").iterdir()}
    readme = chatcap("export", "captures/", "--model", "claude*", "--host", "*.anthropic.com", "--since",
                     "2025-10-01", "--conversation", "c9", "--out", tmp_path / "c9")  # fmt: skip
    assert readme.returncode == 0, readme.stderr
    assert [path.name.split("-")[0] for path in (tmp_path / "c9").iterdir()] == ["c9"]
