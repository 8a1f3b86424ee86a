"""How fast `analyzer.parse` reads the same stream in other languages, beside plain ASCII.

    python benchmarks/languages.py            # best of 5, ranges over 3 runs
    make bench

Each input is a raw HTTP dump of one chat/completions stream, 8 characters a delta, whose
text is 250 kB of one language's words in a seeded random order (so the same word meets
ever other neighbours, as in prose, not one sentence repeated). Text dumps are checked for mojibake
(UTF-8 read through a legacy code page) before they are parsed: ordinary accented text
must not pay for that check (goal: every language within 1.5x of ASCII). The last input is
real mojibake, which is repaired and so costs ftfy's full pass.

Peers, per input: `ftfy is_bad` over the whole dump, which is what the check cost when it
ran ftfy on every text with a code-page pair in it (l'été, "—…").
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import orjson
from ftfy.badness import is_bad

import analyzer

SENTENCES = {
    "ASCII English": "Last summer it was very pleasant... Where did you go? To the beach, of course! ",
    "French": "L’été dernier — c’était très agréable… Où êtes-vous allés ? À la plage, évidemment ! ",
    "German": "Letzten Sommer war es sehr schön – wir fuhren an die Ostsee, aßen Fischbrötchen. ",
    "Spanish": "¿Dónde estuvisteis el verano pasado? En la playa, ¡claro! Fue muy agradable. ",
    "Vietnamese": "Mùa hè năm ngoái thật dễ chịu. Bạn đã đi đâu? Tất nhiên là ra biển rồi! ",
    "Chinese": "去年夏天非常愉快。你们去了哪里？当然是海边！我们吃了很多海鲜，看了日落。",
}


def dump(text: str, mangle: str | None = None) -> bytes:
    pieces = [text[i : i + 8] for i in range(0, len(text), 8)]
    events = "".join(
        "data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk", "model": "m",
                                 "choices": [{"index": 0, "delta": {"content": piece}}]}).decode() + "\n\n"
        for piece in pieces
    )  # fmt: skip
    body = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n" + events + "data: [DONE]\n\n"
    if mangle:  # what a tool that read the UTF-8 bytes as `mangle` and saved them again wrote
        body = body.encode("utf-8").decode(mangle)
    return body.encode("utf-8")


def prose(sentence: str, size: int, seed: int = 21) -> str:
    """`size` bytes of the sentence's words (its characters, for Chinese) in a seeded random order."""
    words = sentence.split() if " " in sentence else list(sentence)
    joiner = " " if " " in sentence else ""
    rng = random.Random(seed)
    out: list[str] = []
    while sum(map(len, out)) * 1.2 < size:
        out.extend(rng.sample(words, len(words)))
    text = joiner.join(out)
    return text.encode()[:size].decode("utf-8", "ignore")


def inputs() -> dict[str, bytes]:
    size = 250_000
    out = {name: dump(prose(sentence, size)) for name, sentence in SENTENCES.items()}
    out["French, mojibake"] = dump(prose(SENTENCES["French"], size // 4), mangle="windows-1252")
    return out


def best_of(function: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    data = inputs()
    ascii_speeds: list[float] = []
    print(f"{'input':<18} {'MB':>5}  {'analyzer.parse':>16}  {'x ASCII time':>12}  {'ftfy is_bad, whole':>18}")
    for name, body in data.items():
        size = len(body) / 1e6
        assert analyzer.parse(body)[0].reconstruct().choices, name
        parse = [size / best_of(lambda body=body: analyzer.parse(body)) for _ in range(3)]
        text = body.decode("utf-8")
        whole = [size / best_of(lambda text=text: is_bad(text)) for _ in range(3)]
        if not ascii_speeds:
            ascii_speeds = parse
        slower = [min(ascii_speeds) / max(parse), max(ascii_speeds) / min(parse)]
        print(f"{name:<18} {size:>5.2f}  {min(parse):>7.1f}-{max(parse):<5.1f}MB/s  "
              f"{slower[0]:>5.2f}-{slower[1]:<5.2f}  {min(whole):>9.1f}-{max(whole):<5.1f}MB/s")  # fmt: skip
    print("(MB/s of input: the range over 3 runs, each the best of 5; x ASCII: the range of time relative to ASCII)")


if __name__ == "__main__":
    main()
