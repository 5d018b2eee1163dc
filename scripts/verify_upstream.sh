#!/usr/bin/env bash
# Checked answers on an OpenAI-compatible upstream (issue #13): a second conductor serves the
# local library; the gateway in front of it knows the two Qwen models only as remote
# OpenAI-compatible models, asks them for log-probabilities, checks each answer with the
# verifiers fitted from records/local_signals.jsonl and climbs from the 0.5B model to the 1.5B
# model when an answer is not accepted (`auto:cascade`, starting at the cheapest model).
# `conductor collect` sends the GSM8K prompts through it and scores the answers; the front
# gateway's books hold every attempt, its verdict and its cost.
#
#   bash scripts/verify_upstream.sh [PROMPTS=10] [MAX_RISK=0.3] [OUT=out/verify_upstream]
#
# Needs `bash scripts/setup.sh` (binary and models). Takes minutes per prompt on a small CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}
RISK=${2:-0.3}
OUT=${3:-out/verify_upstream}
BIN=target/release/conductor
mkdir -p "$OUT"
rm -f "$OUT"/*.sqlite* "$OUT/records.jsonl"

# Prints the address a freshly started `conductor serve` listens on (port 0: a free port).
start() {
    local log=$1; shift
    "$BIN" serve --listen 127.0.0.1:0 "$@" >"$log" 2>"$log.err" &
    PIDS+=($!)
    for _ in $(seq 1 600); do
        if grep -q "listening on" "$log" 2>/dev/null; then
            sed -n 's/.*listening on //p' "$log"
            return
        fi
        sleep 0.1
    done
    echo "conductor did not start: $(cat "$log.err")" >&2
    exit 1
}
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT

INNER=$(start "$OUT/inner.log" --books "$OUT/inner.sqlite")
model() { # id tier price
    printf '\n[[models]]\nid = "%s"\nprovider = "openai"\nbase_url = "%s/v1"\nupstream_model = "%s"\n' "$1" "$INNER" "$1"
    printf 'input_usd_per_mtok = %s\noutput_usd_per_mtok = %s\ntier = "%s"\n' "$3" "$3" "$2"
    printf 'first_token_timeout_ms = 900000\ntotal_timeout_ms = 900000\nmax_retries = 0\n'
}
{
    printf '[local]\nenabled = false\n[books]\npath = "%s/front.sqlite"\n' "$OUT"
    printf '[policy]\ndefault = "threshold:0.01"\n' # the cascade starts at the cheapest model
    printf '[verify]\nrecords = "records/local_signals.jsonl"\nmax_risk = %s\n' "$RISK"
    model qwen2.5-coder-0.5b small 0.0494
    model qwen2.5-coder-1.5b large 0.154
} >"$OUT/front.toml"
FRONT=$(CONDUCTOR_LOG=info,access=off start "$OUT/front.log" --config "$OUT/front.toml")
grep "answer checking" "$OUT/front.log.err" | sed 's/.*answer checking: /verifier: /' || true

# The collector reaches the front gateway as one more OpenAI-compatible model.
{
    printf '[local]\nenabled = false\n'
    printf '\n[[models]]\nid = "cascade"\nprovider = "openai"\nbase_url = "%s/v1"\nupstream_model = "auto:cascade"\n' "$FRONT"
    printf 'input_usd_per_mtok = 0\noutput_usd_per_mtok = 0\ntier = "large"\n'
    printf 'first_token_timeout_ms = 1800000\ntotal_timeout_ms = 1800000\nmax_retries = 0\n'
} >"$OUT/collect.toml"
"$BIN" collect --config "$OUT/collect.toml" --models cascade --tasks gsm8k --limit "$N" --batch 1 \
    --out "$OUT/records.jsonl"
"$BIN" logs --books "$OUT/front.sqlite" recent --json --limit 100000 >"$OUT/decisions.jsonl"
"$BIN" logs --books "$OUT/front.sqlite" recent --limit "$N"
# The cascade against the 1.5B model alone on the same prompts (its collected answers: same
# template, greedy decoding), and what abstaining would have changed.
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
recs = [json.loads(l) for l in open(f"{out}/records.jsonl")]
decs = sorted((json.loads(l) for l in open(f"{out}/decisions.jsonl")), key=lambda d: d["ts_ms"])
alone = {}
for l in open("records/local_signals.jsonl"):
    r = json.loads(l)
    if r["model"] == "qwen2.5-coder-1.5b":
        alone[r["prompt_id"]] = r
n = len(recs)
assert len(decs) == n, (len(decs), n)
big = [alone[r["prompt_id"]] for r in recs if r["prompt_id"] in alone]
verified = [d["verification"]["verified"] for d in decs]
right = [r["score"] >= 0.5 for r in recs]
kept = [ok for ok, v in zip(right, verified) if v]
print(f"prompts: {n}")
print(f"cascade: quality {sum(right) / n:.3f}, cost ${sum(d['cost_usd'] for d in decs) / n:.8f}/request, "
      f"{sum(d['chosen_model'] == 'qwen2.5-coder-1.5b' for d in decs) / n:.0%} reached the 1.5B model, "
      f"{sum(verified) / n:.0%} verified")
if len(big) == n:
    print(f"1.5B alone (collected): quality {sum(b['score'] for b in big) / n:.3f}, "
          f"cost ${sum(b['cost_usd'] for b in big) / n:.8f}/request")
print(f"with abstain: {n - sum(verified)} of {n} would be \"I don't know\"; "
      f"wrong among those answered {sum(not k for k in kept)}/{len(kept)}")
PY
