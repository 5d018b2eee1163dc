"""Drives the dashboard in Debian's headless Chromium (through Playwright) against a running
conductor, for crates/cli/tests/dashboard_browser.rs. Prints one JSON object per line for
the Rust side to check against the books; exits non-zero when a page fails here.

usage: dashboard_browser.py open|keys|bench BASE_URL OUT_DIR ARGS_JSON
"""

import json
import sys
import time
from pathlib import Path

from openai import OpenAI
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying Google's hosts, which a
# closed network refuses (noise, and seconds of start-up).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def emit(**kv):
    print(json.dumps(kv), flush=True)


class Session:
    def __init__(self, pw, base, out):
        self.base, self.out = base, Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        self.page = self.browser.new_page(viewport={"width": 1360, "height": 900})
        self.errors = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def clean(self, step):
        """Asserts that `step` logged no console error."""
        if self.errors:
            raise AssertionError(f"{step}: console errors: {self.errors}")

    def open(self, route, name):
        """Opens `/ui#/<route>` and waits until the page `name` has drawn its data."""
        started = time.perf_counter()
        old = self.page.evaluate("() => (document.querySelector('main') || {dataset: {}}).dataset.loaded || ''") \
            if self.page.url.startswith(self.base + "/ui") else ""
        if self.page.url.endswith(f"#/{route}"):
            self.page.evaluate("() => route()")
        elif self.page.url.startswith(self.base + "/ui") and "/login" not in self.page.url:
            self.page.evaluate("h => { location.hash = h }", f"#/{route}")
        else:
            self.page.goto(f"{self.base}/ui#/{route}")
        self.page.wait_for_function(
            "([name, old]) => { const m = document.querySelector('main'); return m && m.dataset.page === name && m.dataset.loaded && m.dataset.loaded !== old; }",
            arg=[name, old], timeout=20000)
        return (time.perf_counter() - started) * 1000

    def shot(self, name):
        path = self.out / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        emit(screenshot=str(path))

    def text(self, sel):
        return self.page.inner_text(sel).strip()


def open_mode(s, a):
    p = s.page
    # Overview: the counts the books have.
    s.open("overview", "overview")
    emit(page="overview", requests=s.text("#stat-requests .value"), saved=s.text("#stat-saved .value"),
         errors=s.text("#stat-errors .value"), fallbacks=s.text("#stat-fallbacks .value"))
    s.clean("overview")
    s.shot("overview")

    # Decisions, then the why of one of them, read off the page.
    s.open("decisions", "decisions")
    emit(page="decisions", rows=p.locator("table.decisions tbody tr").count())
    s.clean("decisions")
    s.shot("decisions")
    p.click(f'tr[data-id="{a["decision_id"]}"]')
    p.wait_for_selector("#why")
    p.wait_for_function("() => document.querySelector('main').dataset.page === 'decision'")
    facts = {el.get_attribute("data-fact"): el.inner_text().strip() for el in p.query_selector_all("#why dd")}
    cands = [[td.inner_text().strip() for td in tr.query_selector_all("td")] for tr in p.query_selector_all("table.candidates tbody tr")]
    attempts = [[td.inner_text().strip() for td in tr.query_selector_all("td")] for tr in p.query_selector_all("table.attempts tbody tr")]
    emit(page="decision", facts=facts, candidates=cands, attempts=attempts)
    s.clean("decision")
    s.shot("decision")

    # Live: a request made now shows up in the open table without a reload.
    s.open("decisions", "decisions")
    p.evaluate("() => { window.__notReloaded = 42 }")
    client = OpenAI(base_url=f"{s.base}/v1", api_key="none", max_retries=0)
    r = client.chat.completions.create(model=a["live_model"], messages=[{"role": "user", "content": "live view check"}], max_tokens=8)
    live_id = r.id.removeprefix("chatcmpl-")
    p.wait_for_selector(f'tr[data-id="{live_id}"]', timeout=15000)
    emit(page="live", id=live_id, same_page=p.evaluate("() => window.__notReloaded") == 42)
    s.clean("live")
    s.shot("live")

    s.open("quality", "quality")
    emit(page="quality", ratings=s.text("#stat-ratings .value"), bins=p.locator("svg .bin").count())
    s.clean("quality")
    s.shot("quality")

    s.open("health", "health")
    breakers = {tr.get_attribute("data-model"): tr.query_selector_all("td")[3].inner_text().strip()
                for tr in p.query_selector_all("table.models tbody tr")}
    emit(page="health", breakers=breakers, budgets=p.locator("table.budgets tbody tr").count())
    s.clean("health")
    s.shot("health")

    # Agents: approve one waiting run and deny the other, with the buttons.
    s.open("agents", "agents")
    emit(page="agents", runs=p.locator("table.runs tbody tr").count())
    s.clean("agents")
    s.shot("agents")
    for run, button in ((a["approve_run"], "#approve"), (a["deny_run"], "#deny")):
        s.open(f"agents/{run}", "agent")
        p.wait_for_selector(button)
        if button == "#approve":
            s.shot("agent-awaiting")
        p.click(button)
        p.wait_for_function("() => { const e = document.querySelector('#run-status'); return e && e.innerText.trim() === 'succeeded'; }", timeout=20000)
        decisions = [el.inner_text().strip() for el in p.query_selector_all("li.step-approval .step-head b")]
        emit(page="agent", run=run, button=button, status=s.text("#run-status"), approvals=decisions)
        s.clean(f"agent {run}")
    s.shot("agent-run")


def keys_mode(s, a):
    p = s.page
    admin, user = a["admin_key"], a["user_key"]
    p.goto(f"{s.base}/ui")
    p.wait_for_selector("input[name=key]")
    emit(page="login", url=p.url, has_data=p.locator("main").count() > 0)
    s.clean("login")
    s.shot("login")
    # A key that is not an admin key is refused at the door (the 403 is the only error).
    p.fill("input[name=key]", user)
    p.click("button[type=submit]")
    p.wait_for_selector("p.error")
    emit(page="login-refused", message=s.text("p.error"))
    s.errors = [e for e in s.errors if "status of 403" not in e]
    s.clean("refused login")
    p.fill("input[name=key]", admin)
    p.click("button[type=submit]")
    p.wait_for_url(f"{s.base}/ui")
    leaks, requests = [], None
    for route, name in (("overview", "overview"), ("decisions", "decisions"), ("quality", "quality"), ("health", "health")):
        s.open(route, name)
        if name == "overview":
            requests = s.text("#stat-requests .value")
        html = p.content()
        leaks += [f"{name}: {which}" for which, k in (("admin", admin), ("user", user)) if k in html]
    emit(page="signed-in", leaks=leaks, script_cookies=p.evaluate("() => document.cookie"),
         requests=requests)
    s.clean("signed in")
    # Signing out ends the session: the API answers 401 to this browser again.
    p.click("header button[type=submit]")
    p.wait_for_url(f"{s.base}/ui/login")
    status = p.evaluate("async () => (await fetch('/ui/api/overview')).status")
    s.errors = [e for e in s.errors if "status of 401" not in e]
    emit(page="signed-out", api_status=status)
    s.clean("signed out")


def bench_mode(s, a):
    """Time each page from navigation to its data drawn, `a["n"]` times (first load apart)."""
    for route, name in (("overview", "overview"), ("decisions", "decisions"), ("quality", "quality"), ("health", "health")):
        times = [s.open(route, name)]
        for _ in range(a.get("n", 5)):
            s.open("health" if name != "health" else "quality", "health" if name != "health" else "quality")
            times.append(s.open(route, name))
        emit(page=name, first_ms=round(times[0], 1), ms=sorted(round(t, 1) for t in times[1:]))
    s.open("decisions", "decisions")
    older = []
    for _ in range(a.get("n", 5)):
        t = time.perf_counter()
        old = s.page.evaluate("() => document.querySelector('main').dataset.loaded")
        s.page.click("#older")
        s.page.wait_for_function("old => document.querySelector('main').dataset.loaded !== old", arg=old)
        older.append(round((time.perf_counter() - t) * 1000, 1))
    emit(page="decisions-older", ms=sorted(older))
    s.clean("bench")


def main():
    mode, base, out, args = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3], json.loads(sys.argv[4])
    with sync_playwright() as pw:
        s = Session(pw, base, out)
        try:
            {"open": open_mode, "keys": keys_mode, "bench": bench_mode}[mode](s, args)
        except Exception:
            try:
                s.shot("failure")
            finally:
                raise
        finally:
            s.browser.close()
    emit(done=True, console_errors=s.errors)


if __name__ == "__main__":
    main()
