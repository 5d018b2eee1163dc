"""How fast the dashboard stays on large books.

Makes books with N decisions (default 1,000,000; synthetic rows spread over the last 30 days,
written into the schema the real server creates) plus feedback on 2% of them, starts
`conductor serve` on them, and measures
  1. each /ui/api endpoint the pages call (p50 / p99 over --repeat calls), and
  2. each page in Debian's headless Chromium, from navigation to its data drawn
     (tests/python/dashboard_browser.py, bench mode).
Prints a Markdown table and writes it to out/bench/dashboard.md.

usage: .venv/bin/python scripts/bench_dashboard.py [--rows N] [--repeat K]
"""

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target/release/conductor"
MODELS = [("small-a", "small", 0.1), ("medium-b", "medium", 1.0), ("large-c", "large", 5.0), ("xl-d", "large", 20.0)]
KEYS = ["team-search", "team-support", "batch-jobs"]
POLICIES = ["threshold:0.7", "quality", "cost:10", "direct"]
WORDS = "route the cheapest model that will answer well explain summarize translate write code test prime city".split()


def config(books):
    s = f'[server]\nlisten = "127.0.0.1:0"\n[local]\nenabled = false\n[books]\npath = "{books}"\n'
    for mid, tier, price in MODELS:
        s += (f'\n[[models]]\nid = "{mid}"\nprovider = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
              f'upstream_model = "x"\ninput_usd_per_mtok = {price}\noutput_usd_per_mtok = {price * 3}\ntier = "{tier}"\n')
    return s


def start(cfg):
    p = subprocess.Popen([str(BIN), "serve", "--config", str(cfg)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "CONDUCTOR_LOG": "error"})
    line = p.stdout.readline().strip()
    assert line.startswith("conductor listening on "), line
    return p, line.removeprefix("conductor listening on ")


def seed(books, n):
    """Writes n decisions (and feedback on 2%) in the table layout the server made."""
    rng = random.Random(7)
    now = int(time.time() * 1000)
    span = 30 * 86400 * 1000
    db = sqlite3.connect(books)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    rows, fb = [], []
    for i in range(n):
        ts = now - span + (span * i) // n
        p = [rng.uniform(0.3, 0.95) for _ in MODELS]
        cands = [{"model": m, "p_success": round(x, 4), "est_cost_usd": c * 1e-4} for (m, _, c), x in zip(MODELS, p)]
        chosen = rng.choices(MODELS, weights=[50, 25, 15, 10])[0][0]
        r = rng.random()
        outcome = "ok" if r < 0.95 else "error" if r < 0.98 else "abstained" if r < 0.99 else "client_disconnected"
        attempts = [{"model": chosen, "outcome": "ok" if outcome != "error" else "error", "start_ms": 0.0, "duration_ms": 300.0}]
        if rng.random() < 0.05:
            attempts.insert(0, {"model": "small-a", "outcome": "error", "error": "upstream returned HTTP 500", "start_ms": 0.0, "duration_ms": 5.0})
        pt, ct = rng.randint(20, 800), rng.randint(5, 400)
        price = dict((m, c) for m, _, c in MODELS)
        cost = (pt + 3 * ct) * price[chosen] / 1e6
        base = (pt + 3 * ct) * 20.0 / 1e6
        stream = rng.random() < 0.3
        lat = rng.lognormvariate(6.0, 0.8)
        policy = rng.choice(POLICIES)
        requested = chosen if policy == "direct" else f"auto:{policy}" if rng.random() < 0.3 else "auto"
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30)))
        did = f"{i:08x}{rng.getrandbits(96):024x}"
        rows.append((did, ts, rng.choice(KEYS), requested, chosen if outcome != "error" else None, policy,
                     "synthetic", json.dumps(cands), json.dumps(attempts), prompt, pt, ct, cost, base, lat,
                     int(stream), outcome, None if outcome != "error" else "upstream returned HTTP 500",
                     None, lat * 0.2 if stream else None))
        if outcome == "ok" and rng.random() < 0.02:
            fb.append((ts + 1000, did, float(rng.random() < p[[m for m, _, _ in MODELS].index(chosen)]), rows[-1][2]))
        if len(rows) == 50_000:
            flush(db, rows, fb)
    flush(db, rows, fb)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    db.commit()
    db.close()


def flush(db, rows, fb):
    db.executemany("INSERT INTO decisions (id, ts_ms, key_id, requested_model, chosen_model, policy, reason, candidates, "
                   "attempts, prompt, prompt_tokens, completion_tokens, cost_usd, baseline_cost_usd, latency_ms, stream, "
                   "outcome, error, verification, ttft_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO feedback (ts_ms, decision_id, score, key_id) VALUES (?,?,?,?)", fb)
    db.commit()
    rows.clear()
    fb.clear()


def timed(url, k):
    out = []
    body = None
    for _ in range(k):
        t = time.perf_counter()
        with urllib.request.urlopen(url) as r:
            body = r.read()
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return out, json.loads(body)


def pct(v, p):
    return v[min(len(v) - 1, max(0, round(p * len(v)) - 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="conductor-ui-bench-"))
    books, cfg = work / "books.sqlite", work / "conductor.toml"
    cfg.write_text(config(books))
    p, base = start(cfg)  # the server creates the schema and indexes
    p.terminate()
    p.wait()
    t = time.perf_counter()
    seed(books, a.rows)
    print(f"seeded {a.rows:,} decisions in {time.perf_counter() - t:.0f} s ({books.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
    t = time.perf_counter()
    p, base = start(cfg)  # folds the seeded decisions into the rollups before it listens
    started_s = time.perf_counter() - t
    try:
        lines = []
        first = timed(f"{base}/ui/api/decisions?limit=50", 1)[1]
        cursor = first["next"]
        for _ in range(200):  # 200 pages in: 10,000 rows back
            cursor = timed(f"{base}/ui/api/decisions?limit=50&before={cursor}", 1)[1]["next"]
        some_id = first["rows"][0]["id"]
        cases = [
            ("overview, last 1 h", "/ui/api/overview?window=1h"),
            ("overview, last 24 h", "/ui/api/overview?window=24h"),
            ("overview, last 7 d", "/ui/api/overview?window=7d"),
            ("overview, last 30 d (all rows)", "/ui/api/overview?window=30d"),
            ("decisions, first page", "/ui/api/decisions?limit=50"),
            ("decisions, page 201 (cursor)", f"/ui/api/decisions?limit=50&before={cursor}"),
            ("decisions, model = xl-d", "/ui/api/decisions?limit=50&model=xl-d"),
            ("decisions, outcome = error, key filter", "/ui/api/decisions?limit=50&outcome=error&key=batch-jobs"),
            ("decisions, policy = cost:10 (no index)", "/ui/api/decisions?limit=50&policy=cost:10"),
            ("one decision (the why)", f"/ui/api/decisions/{some_id}"),
            ("quality, last 7 d", "/ui/api/quality?window=7d"),
            ("quality, last 30 d", "/ui/api/quality?window=30d"),
            ("budgets & health", "/ui/api/health"),
        ]
        for name, path in cases:
            v, body = timed(base + path, a.repeat)
            extra = ""
            if "overview" in path:
                extra = f"{body['totals']['requests']:,} rows in window"
            elif "quality" in path:
                extra = f"{body['ratings']:,} ratings"
            elif "decisions?" in path:
                extra = f"{len(body['rows'])} rows"
            lines.append(f"| `{path.split('?')[0]}` {name} | {pct(v, 0.5):.1f} | {pct(v, 0.99):.1f} | {extra} |")
        out = subprocess.run([str(ROOT / ".venv/bin/python"), str(ROOT / "tests/python/dashboard_browser.py"), "bench", base,
                              str(ROOT / "out/bench/ui"), json.dumps({"n": 5})], capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stdout, out.stderr, file=sys.stderr)
            raise SystemExit("browser bench failed")
        pages = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{") and "page" in l]
    finally:
        p.terminate()
        p.wait()
    report = [f"Dashboard on books with {a.rows:,} decisions ({books.stat().st_size / 1e6:.0f} MB SQLite), "
              f"{os.cpu_count()} CPU cores. The first start on these books took {started_s:.1f} s "
              "(rolling up decisions written without the server).", "",
              f"API (server-side query + JSON + loopback HTTP, {a.repeat} calls each):", "",
              "| endpoint | p50 ms | p99 ms | returned |", "|---|---|---|---|", *lines, "",
              "Pages in headless Chromium, navigation to data drawn (5 loads after a first):", "",
              "| page | first load ms | median ms | slowest ms |", "|---|---|---|---|"]
    for pg in pages:
        ms = pg["ms"]
        report.append(f"| {pg['page']} | {pg.get('first_ms', '–')} | {statistics.median(ms):.0f} | {max(ms):.0f} |")
    text = "\n".join(report)
    print(text)
    (ROOT / "out/bench").mkdir(parents=True, exist_ok=True)
    (ROOT / "out/bench/dashboard.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
