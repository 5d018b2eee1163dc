"""Writes a multiple-choice prompt file for `conductor collect --tasks file:...` from the
MMLU-Pro questions in data/mmlu_pro: the N questions whose id has the smallest SHA-256 (the
same rule as `lab --sample`), scored by letter.

    python3 scripts/mc_prompts.py 100 > records/prompts/mmlu_pro.jsonl
"""
import hashlib
import json
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
rows = [json.loads(line) for line in open("data/mmlu_pro/questions.jsonl")]
key = lambda r: hashlib.sha256(str(r["question_id"]).encode()).hexdigest()
for r in sorted(rows, key=key)[:n]:
    print(json.dumps({"id": str(r["question_id"]), "prompt": r["prompt"], "scorer": "choice", "reference": r["answer"]}))
