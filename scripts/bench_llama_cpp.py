"""Reference numbers from llama.cpp (via llama-cpp-python) on the same GGUF file and the
same prompt text, for `conductor bench local --llama-cpp`. Prints one JSON object.
Prefill: time to evaluate the whole prompt. Decode: greedy tokens, one eval per token."""
import json, statistics, sys, time
import numpy as np
from llama_cpp import Llama

path, prompt_file, runs, decode_tokens, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
prompt = open(prompt_file, encoding="utf-8").read()
t0 = time.perf_counter()
llm = Llama(model_path=path, n_ctx=4096, n_threads=threads, n_threads_batch=threads, n_batch=512, verbose=False)
load_s = time.perf_counter() - t0
tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
prefill, decode = [], []
for _ in range(runs):
    llm.reset()
    t = time.perf_counter()
    llm.eval(tokens)
    prefill.append(len(tokens) / (time.perf_counter() - t))
    tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    t = time.perf_counter()
    for _ in range(decode_tokens):
        llm.eval([tok])
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    decode.append(decode_tokens / (time.perf_counter() - t))
print(json.dumps({"load_s": load_s, "prompt_tokens": len(tokens),
                  "prefill_tps": statistics.median(prefill), "decode_tps": statistics.median(decode)}))
