"""Abstention through the official `openai` package: a conductor whose every model answers
with low confidence, asked with `auto:verify` and `conductor.abstain`, must say "I don't
know" in OpenAI's shape (whole and streamed), flag it, and otherwise return the unverified
answer marked as such.

Usage: python verify_sdk.py BASE_URL MESSAGE
"""

import sys

from openai import OpenAI

base, message = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=60)
messages = [{"role": "user", "content": "What is 6 times 7?"}]
abstain = {"conductor": {"abstain": True, "max_risk": 0.2}}

# Whole answer: the configured message, finish_reason "stop", flagged in body and header.
raw = client.chat.completions.with_raw_response.create(model="auto:verify", messages=messages, extra_body=abstain)
c = raw.parse()
assert raw.headers.get("x-conductor-abstained") == "1", dict(raw.headers)
assert c.choices[0].message.content == message, c.choices[0].message.content
assert c.choices[0].finish_reason == "stop", c.choices[0].finish_reason
meta = c.model_extra["conductor"]
assert meta["abstained"] is True and meta["verification"]["verified"] is False, meta
assert meta["verification"]["strategy"] == "verify" and meta["verification"]["max_risk"] == 0.2, meta
outcomes = [a["outcome"] for a in meta["attempts"]]
assert outcomes[-1] == "ok" and all(o == "rejected" for o in outcomes[:-1]), outcomes
assert all("verdict" in a for a in meta["attempts"]), meta["attempts"]
assert c.usage.completion_tokens >= 1  # the withheld answer was paid for

# Streamed: the same message in chunks, the flag in the first chunk's conductor object.
raw = client.chat.completions.with_raw_response.create(
    model="auto:verify", messages=messages, extra_body=abstain, stream=True, stream_options={"include_usage": True}
)
assert raw.headers.get("x-conductor-abstained") == "1", dict(raw.headers)
text, finish, flagged, usage = "", None, False, None
for chunk in raw.parse():
    extra = (chunk.model_extra or {}).get("conductor")
    if extra is not None:
        flagged = flagged or extra.get("abstained") is True
    if chunk.usage is not None:
        usage = chunk.usage
    for ch in chunk.choices:
        text += ch.delta.content or ""
        finish = ch.finish_reason or finish
assert text == message and finish == "stop" and flagged, (text, finish, flagged)
assert usage is not None and usage.completion_tokens >= 1

# Without abstain the last answer comes back, marked as not verified.
raw = client.chat.completions.with_raw_response.create(model="auto:verify", messages=messages)
c = raw.parse()
assert "x-conductor-abstained" not in raw.headers
assert c.choices[0].message.content == "#### 41", c.choices[0].message.content
meta = c.model_extra["conductor"]
assert meta["abstained"] is False and meta["verification"]["verified"] is False, meta
assert c.choices[0].logprobs is None, "log-probabilities only when the client asks"

print("all checks passed")
