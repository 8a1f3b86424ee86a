"""Draw the README's pictures from the bundled captures: `make charts` (or
`python docs/charts.py [OUT_DIR]`, default docs/img/)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bundled import captures_as_cloned  # noqa: E402

import analyzer  # noqa: E402
from analyzer import charts, frames  # noqa: E402

TIMELINE = ["replayed/reasoning_tool_call.jsonl#2", "replayed/conversation.jsonl#2"]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    xs = analyzer.load(captures_as_cloned(), progress=False)  # never what a user added to captures/
    exchanges, chunks = frames.exchanges(xs), frames.chunks(xs)
    conversation = exchanges.loc[exchanges["id"] == "replayed/conversation.jsonl#1", "conversation"].iloc[0]
    pictures = {
        "timeline.png": charts.timeline(chunks, exchanges, ids=TIMELINE),
        "latency.png": charts.latency(exchanges),
        "tokens-and-cost.png": charts.tokens_and_cost(exchanges),
        "gaps.png": charts.gaps(chunks, exchanges),
        "conversation.png": charts.conversation(exchanges, conversation),
    }
    for name, chart in pictures.items():
        charts.save(chart, out / name)
        print(out / name)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img")
