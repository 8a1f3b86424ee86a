"""A plain anthropic-SDK program: no proxy or certificate code, the environment does that.

    python anthropic_stream.py BASE_URL

Streams one Messages reply from BASE_URL; prints its text, then each tool call as
`tool NAME JSON` on a line of its own.
"""

import json
import sys

import anthropic

client = anthropic.Anthropic(base_url=sys.argv[1], api_key="sk-ant-api03-commandSECRETabcdefghijklmnop", max_retries=0)
with client.messages.stream(
    model="claude-e2e", max_tokens=64, messages=[{"role": "user", "content": "weather in Zürich?"}]
) as stream:
    for text in stream.text_stream:
        print(text, end="", flush=True)
    message = stream.get_final_message()
print()
for block in message.content:
    if block.type == "tool_use":
        print("tool", block.name, json.dumps(block.input, sort_keys=True))
