"""Drives a running conductor with the official `openai` package, as a user would.

Usage: python openai_sdk.py BASE_URL LOCAL_MODEL
Exits non-zero (AssertionError / SDK exception) on any mismatch.
"""

import json
import sys

import openai
from openai import OpenAI

base, local_model = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=120)
messages = [{"role": "user", "content": "Say hello in one word."}]

# /v1/models lists the routing pseudo-models and the library.
ids = [m.id for m in client.models.list()]
assert "auto" in ids and local_model in ids, ids

for model in ["auto", local_model]:
    # Non-streaming, with the raw response to see conductor's headers.
    raw = client.chat.completions.with_raw_response.create(model=model, messages=messages, max_tokens=4, temperature=0)
    completion = raw.parse()
    answered_by = raw.headers["x-conductor-model"]
    decision = raw.headers["x-conductor-decision-id"]
    assert completion.model == answered_by, (completion.model, answered_by)
    if model != "auto":
        assert answered_by == model
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage.completion_tokens >= 1
    extra = completion.model_extra["conductor"]  # the SDK keeps unknown fields
    assert extra["decision_id"] == decision and extra["model"] == answered_by, extra

    # Streaming with usage.
    stream = client.chat.completions.create(
        model=model, messages=messages, max_tokens=4, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage, chunk_model = "", None, None, None
    for chunk in stream:
        chunk_model = chunk.model
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert finish in ("stop", "length"), finish
    assert usage is not None and usage.completion_tokens >= 1, usage
    assert chunk_model, "chunks name the model"
    if model != "auto":
        assert chunk_model == model

    # Feedback on the decision (plain HTTP: not part of OpenAI's API).
    fb = client.post("/feedback", body={"decision_id": decision, "score": 1.0}, cast_to=object)
    assert fb["ok"] is True, fb

# Routing knobs through the model name and through extra_body.
c = client.chat.completions.create(model="auto:cost", messages=messages, max_tokens=2)
assert c.model_extra["conductor"]["policy"].startswith("cost"), c.model_extra
c = client.chat.completions.create(model="auto", messages=messages, max_tokens=2, extra_body={"conductor": {"policy": "quality"}})
assert c.model_extra["conductor"]["policy"] == "quality"

# Errors raise the SDK's usual exception classes.
try:
    client.chat.completions.create(model="no-such-model", messages=messages)
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError as e:
    assert e.body["code"] == "model_not_found", e.body
try:
    client.chat.completions.create(model="auto", messages=[])
    raise AssertionError("expected BadRequestError")
except openai.BadRequestError as e:
    assert "messages" in e.message

# Token log-probabilities from the local engine, whole and streamed: each in (-inf, 0], the
# alternatives sorted, and (greedy) the chosen token the most likely of them.
c = client.chat.completions.create(
    model=local_model, messages=messages, max_tokens=5, temperature=0, logprobs=True, top_logprobs=3
)
content = c.choices[0].logprobs.content
assert len(content) == c.usage.completion_tokens, (len(content), c.usage)
for t in content:
    assert t.logprob <= 0.0, t
    tops = [x.logprob for x in t.top_logprobs]
    assert len(tops) == 3 and tops == sorted(tops, reverse=True), t
    assert t.top_logprobs[0].token == t.token, t
assert "".join(t.token for t in content) == c.choices[0].message.content
streamed = []
for chunk in client.chat.completions.create(
    model=local_model, messages=messages, max_tokens=5, temperature=0, logprobs=True, top_logprobs=2, stream=True
):
    for ch in chunk.choices:
        if ch.logprobs and ch.logprobs.content:
            streamed.extend(ch.logprobs.content)
assert [t.token for t in streamed] == [t.token for t in content], (streamed, content)

# Constrained output: a JSON schema through the SDK; the answer parses and matches it.
schema = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0, "maximum": 150}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
c = client.chat.completions.create(
    model=local_model,
    messages=[{"role": "user", "content": "Describe a person with a name and an age."}],
    max_tokens=64,
    response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}},
)
person = json.loads(c.choices[0].message.content)
assert set(person) == {"name", "age"}, person
assert isinstance(person["name"], str) and len(person["name"]) <= 20, person
assert isinstance(person["age"], int) and 0 <= person["age"] <= 150, person
obj = json.loads(
    client.chat.completions.create(
        model=local_model, messages=messages, max_tokens=48, response_format={"type": "json_object"}
    ).choices[0].message.content
)
assert isinstance(obj, dict), obj
try:
    client.chat.completions.create(
        model=local_model, messages=messages,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}}},
    )
    raise AssertionError("expected BadRequestError for a schema that cannot be expressed")
except openai.BadRequestError as e:
    assert "json_schema" in e.message, e.message

# A field the local model cannot honour is refused by name, never silently dropped.
try:
    client.chat.completions.create(
        model=local_model, messages=messages, tools=[{"type": "function", "function": {"name": "f"}}]
    )
    raise AssertionError("expected BadRequestError for tools")
except openai.BadRequestError as e:
    assert e.body["param"] == "tools", e.body

# One model by id.
assert client.models.retrieve(local_model).id == local_model

# Embeddings from the bundled MiniLM, in OpenAI's shape (the SDK asks for base64 and decodes).
emb = client.embeddings.create(model="all-MiniLM-L6-v2", input=["a cat sat on the mat", "quantum field theory"])
assert len(emb.data) == 2 and [d.index for d in emb.data] == [0, 1], emb
vec = emb.data[0].embedding
assert len(vec) == 384, len(vec)
norm = sum(x * x for x in vec) ** 0.5
assert abs(norm - 1.0) < 1e-3, norm
assert emb.usage.prompt_tokens > 0, emb.usage
floats = client.embeddings.create(model="all-MiniLM-L6-v2", input="a cat sat on the mat", encoding_format="float")
assert max(abs(a - b) for a, b in zip(floats.data[0].embedding, vec)) < 1e-6, "float and base64 agree"
try:
    client.embeddings.create(model="text-embedding-3-small", input="x")
    raise AssertionError("expected NotFoundError for an unknown embedding model")
except openai.NotFoundError as e:
    assert e.body["code"] == "model_not_found", e.body

print("openai sdk: all checks passed")
