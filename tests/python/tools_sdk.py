"""A tool-call round trip through the official `openai` package: offer a calculator, get a
call back (whole and streamed, the stream's pieces put together the way the SDK's users
do), run it, send the result as a `tool` message, and get a final text answer that uses it.

Usage: python tools_sdk.py BASE_URL MODEL [MODEL ...]
Each MODEL is asked with `tool_choice` "required" first (a local model is then constrained
to a call), then the result goes back with `tool_choice` "none".
"""

import ast
import json
import operator
import sys

from openai import OpenAI

base, models = sys.argv[1], sys.argv[2:]
client = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=120)
tools = [
    {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression such as 6*7.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string", "description": "the expression"}},
                "required": ["expression"],
            },
        },
    }
]
question = [{"role": "user", "content": "What is 6 times 7? Use the calculator."}]
OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def calculate(expr: str) -> str:
    def ev(n):
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.BinOp):
            return OPS[type(n.op)](ev(n.left), ev(n.right))
        raise ValueError(expr)

    v = ev(ast.parse(expr, mode="eval").body)
    return str(int(v)) if float(v).is_integer() else str(v)


def finish(model, call_id, name, arguments, stream):
    args = json.loads(arguments)
    assert name == "calculator", name
    result = calculate(args["expression"])
    messages = question + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
        },
        {"role": "tool", "tool_call_id": call_id, "content": result},
    ]
    kw = dict(model=model, messages=messages, tools=tools, tool_choice="none", max_tokens=48, temperature=0)
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(stream=True, **kw) if c.choices)
    else:
        text = client.chat.completions.create(**kw).choices[0].message.content
    assert text and text.strip(), f"{model}: empty final answer"
    return args["expression"], result, text


for model in models:
    # Whole.
    c = client.chat.completions.create(
        model=model, messages=question, tools=tools, tool_choice="required", max_tokens=64, temperature=0
    )
    ch = c.choices[0]
    assert ch.finish_reason == "tool_calls", (model, ch)
    calls = ch.message.tool_calls
    assert calls and calls[0].type == "function" and calls[0].id, (model, ch.message)
    whole = finish(model, calls[0].id, calls[0].function.name, calls[0].function.arguments, False)

    # Streamed: the call arrives as deltas keyed by index.
    acc, finish_reason = {}, None
    for chunk in client.chat.completions.create(
        model=model, messages=question, tools=tools, tool_choice="required", max_tokens=64, temperature=0, stream=True
    ):
        if not chunk.choices:
            continue
        d = chunk.choices[0].delta
        for tc in d.tool_calls or []:
            a = acc.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            a["id"] = tc.id or a["id"]
            if tc.function and tc.function.name:
                a["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                a["arguments"] += tc.function.arguments
        finish_reason = chunk.choices[0].finish_reason or finish_reason
    assert finish_reason == "tool_calls", (model, finish_reason)
    assert 0 in acc and acc[0]["id"], (model, acc)
    streamed = finish(model, acc[0]["id"], acc[0]["name"], acc[0]["arguments"], True)
    print(json.dumps({"model": model, "whole": whole, "streamed": streamed}))
print("ok")
