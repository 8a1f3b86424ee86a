"""A plain openai-SDK program: no proxy or certificate code, the environment does that.

    python openai_stream.py BASE_URL [EXIT_STATUS]

Streams one chat completion from BASE_URL and prints the text as it arrives (and nothing else
on stdout), then exits with EXIT_STATUS (default 0).
"""

import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-proj-commandSECRETabcdefghijklmnop", max_retries=0)
stream = client.chat.completions.create(model="gpt-e2e", messages=[{"role": "user", "content": "count"}], stream=True)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
