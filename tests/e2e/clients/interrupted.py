"""A program that outlives one Ctrl-C: it says `waiting` on stdout, and on SIGINT makes one
openai-SDK request (so the proxy must still be there), prints its text, and exits 130.

    python interrupted.py BASE_URL
"""

import signal
import sys

import openai

interrupted = False


def note(*_: object) -> None:
    global interrupted
    interrupted = True


signal.signal(signal.SIGINT, note)
print("waiting", flush=True)
while not interrupted:
    signal.pause()
client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-x", max_retries=0)
reply = client.chat.completions.create(model="gpt-e2e", messages=[{"role": "user", "content": "after ^C"}], stream=True)
print("".join(c.choices[0].delta.content or "" for c in reply if c.choices), flush=True)
sys.exit(130)
