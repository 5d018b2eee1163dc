// The dashboard: one page per hash route (#/overview, #/decisions, #/decision/<id>,
// #/quality, #/health, #/agents, #/agents/<id>), drawn from /ui/api/* and kept current by
// /ui/api/live. Data goes into the page as text nodes only.
"use strict";

const main = document.getElementById("main");
let options = null;
let page = { name: "", live: null, timer: null };

// ---------- helpers ----------

function h(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const usd = (v) => (v == null ? "–" : Math.abs(v) < 0.01 ? `$${v.toFixed(6)}` : `$${v.toFixed(4)}`);
const ms = (v) => (v == null ? "–" : v >= 10000 ? `${(v / 1000).toFixed(1)} s` : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`);
const pct = (v) => (v == null || !isFinite(v) ? "–" : `${(100 * v).toFixed(1)}%`);
const num = (v) => (v == null ? "–" : Number(v).toLocaleString("en-US"));
const when = (t) => new Date(t).toLocaleString();

class ApiError extends Error {}

async function api(path, init) {
  const r = await fetch(path, { credentials: "same-origin", ...(init || {}) });
  if (r.status === 401) {
    location.href = "/ui/login";
    throw new ApiError("signed out");
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError((body.error && body.error.message) || `${r.status} ${r.statusText}`);
  return body;
}

function post(path, body) {
  return api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body || {}) });
}

function show(...nodes) {
  main.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
}

function failure(e) {
  return h("p", { class: "error", role: "alert" }, String(e.message || e));
}

function stat(id, label, value, note) {
  return h("div", { class: "stat", id }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), note ? h("div", { class: "note" }, note) : null);
}

function windowPicker(current, onPick) {
  return h("div", { class: "picker", role: "group", "aria-label": "time window" },
    ...["1h", "24h", "7d", "30d"].map((w) =>
      h("button", { type: "button", class: w === current ? "on" : "", onclick: () => onPick(w) }, w)));
}

function table(cls, head, rows) {
  return h("table", { class: cls }, h("thead", {}, h("tr", {}, ...head.map((c) => h("th", {}, c)))), h("tbody", {}, ...rows));
}

function badge(text) {
  return h("span", { class: `badge b-${String(text).replace(/[^a-z_-]/gi, "")}` }, text);
}

// ---------- live ----------

const liveDot = document.getElementById("live");
function startLive() {
  const es = new EventSource("/ui/api/live");
  es.onopen = () => liveDot.className = "live on";
  es.onerror = () => liveDot.className = "live off";
  es.addEventListener("decision", (ev) => {
    const d = JSON.parse(ev.data);
    if (page.live) page.live(d);
  });
}

// ---------- overview ----------

async function overview(win) {
  win = win || sessionStorage.getItem("window") || "24h";
  sessionStorage.setItem("window", win);
  const o = await api(`/ui/api/overview?window=${win}`);
  const t = o.totals;
  const saved = t.routed_baseline_usd - t.routed_cost_usd;
  const answered = o.latency.n;
  const series = o.series;
  const from = o.since_ms, to = Date.now();
  let fresh = 0;
  const freshNote = h("span", { id: "fresh", class: "muted" });
  show(
    h("div", { class: "title" }, h("h1", {}, "Overview"), windowPicker(win, overview), freshNote),
    h("section", { class: "stats" },
      stat("stat-requests", "Requests", num(t.requests), `${num(answered)} answered`),
      stat("stat-tokens", "Tokens", num(t.tokens)),
      stat("stat-cost", "Cost", usd(t.cost_usd)),
      stat("stat-saved", "Saved vs. largest model", usd(saved),
        t.routed_baseline_usd > 0 ? `${pct(saved / t.routed_baseline_usd)} of ${usd(t.routed_baseline_usd)} (${o.largest_model || "–"})` : "no routed answers"),
      stat("stat-errors", "Error rate", pct(t.requests ? t.errors / t.requests : null), `${num(t.errors)} errors · ${num(t.abstained)} abstained`),
      stat("stat-fallbacks", "Fallback rate", pct(t.requests ? t.fallbacks / t.requests : null), `${num(t.fallbacks)} needed another model`),
      stat("stat-latency", "Latency p50 / p99", `≤ ${ms(o.latency.p50_ms)} / ≤ ${ms(o.latency.p99_ms)}`, "bounds within 25%"),
      stat("stat-ttft", "Time to first token p50 / p99", `≤ ${ms(o.ttft.p50_ms)} / ≤ ${ms(o.ttft.p99_ms)}`, `${num(o.ttft.n)} streams`)),
    h("section", { class: "grid2" },
      h("div", { class: "card" }, h("h2", {}, "Requests"),
        Charts.lines([
          { name: "requests", points: series.map((b) => [b.t_ms, b.requests]) },
          { name: "errors", points: series.map((b) => [b.t_ms, b.errors]), color: "#dc2626" },
        ], { label: "requests over time", fmt: (v) => num(Math.round(v)), from, to })),
      h("div", { class: "card" }, h("h2", {}, "Routed cost vs. the largest model for the same tokens"),
        Charts.lines([
          { name: "cost", points: series.map((b) => [b.t_ms, b.routed_cost_usd]) },
          { name: "largest model", points: series.map((b) => [b.t_ms, b.routed_baseline_usd]), color: "#9ca3af" },
        ], { label: "cost over time", fmt: usd, from, to }))),
    h("section", { class: "card" }, h("h2", {}, "Share of traffic per model"),
      o.models.length ? Charts.shares(o.models.map((m) => ({ name: m.model, value: m.requests })), { label: "traffic per model", fmt: num })
        : h("p", { class: "muted" }, "No requests in this window.")),
  );
  // Throttled, not debounced: under steady traffic the page still refreshes every 2 s.
  page.live = () => {
    fresh += 1;
    freshNote.textContent = `${fresh} new since loaded`;
    if (!page.timer) page.timer = setTimeout(() => page.name === "overview" && route(), 2000);
  };
}

// ---------- decisions ----------

let decisionState = { filters: {}, cursors: [null] };

function decisionRow(d, isNew) {
  return h("tr", { "data-id": d.id, class: isNew ? "new" : "", tabindex: 0, onclick: () => location.hash = `#/decision/${d.id}` },
    h("td", {}, when(d.ts_ms)), h("td", {}, d.key_id), h("td", {}, d.requested_model),
    h("td", {}, d.model || "–"), h("td", {}, d.policy), h("td", {}, badge(d.outcome)),
    h("td", { class: "num" }, usd(d.cost_usd)), h("td", { class: "num" }, ms(d.latency_ms)),
    h("td", { class: "num" }, d.attempts), h("td", { class: "prompt" }, d.prompt || ""));
}

function matches(d, f) {
  return (!f.model || d.model === f.model) && (!f.key || d.key_id === f.key) &&
    (!f.policy || d.policy === f.policy) && (!f.outcome || d.outcome === f.outcome);
}

async function decisions() {
  const st = decisionState;
  const f = st.filters;
  const q = new URLSearchParams({ limit: "50" });
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  const cursor = st.cursors[st.cursors.length - 1];
  if (cursor) q.set("before", cursor);
  const pg = await api(`/ui/api/decisions?${q}`);
  const select = (name, values, label) => h("label", {}, label,
    h("select", { name, onchange: (e) => { f[name] = e.target.value; st.cursors = [null]; route(); } },
      h("option", { value: "" }, "any"), ...values.map((v) => h("option", { value: v, selected: f[name] === v }, v))));
  const policy = h("input", { name: "policy", placeholder: "e.g. threshold:0.7", value: f.policy || "" });
  policy.addEventListener("change", (e) => { f.policy = e.target.value.trim(); st.cursors = [null]; route(); });
  const body = table("decisions", ["time", "key", "requested", "model", "policy", "outcome", "cost", "latency", "attempts", "prompt"],
    pg.rows.map((d) => decisionRow(d, false)));
  const tbody = body.querySelector("tbody");
  show(
    h("div", { class: "title" }, h("h1", {}, "Decisions"), h("span", { class: "muted", id: "page-no" }, `page ${st.cursors.length}`)),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      select("model", options.models, "model"), select("key", options.keys, "key"),
      h("label", {}, "policy", policy), select("outcome", options.outcomes, "outcome"),
      select("window", ["1h", "24h", "7d", "30d"], "within")),
    pg.rows.length ? body : h("p", { class: "muted", id: "no-rows" }, "No decisions match."),
    h("div", { class: "pager" },
      h("button", { type: "button", id: "newer", disabled: st.cursors.length === 1, onclick: () => { st.cursors.pop(); route(); } }, "← Newer"),
      h("button", { type: "button", id: "older", disabled: !pg.next, onclick: () => { st.cursors.push(pg.next); route(); } }, "Older →")),
  );
  page.live = (d) => {
    if (st.cursors.length !== 1 || !matches(d, f)) return;
    if (!pg.rows.length) return route();
    tbody.prepend(decisionRow(d, true));
    while (tbody.children.length > 50) tbody.lastChild.remove();
  };
}

// ---------- one decision: the why ----------

async function decision(id) {
  const r = await api(`/ui/api/decisions/${encodeURIComponent(id)}`);
  const d = r.decision;
  const facts = [
    ["decision", d.id], ["time", when(d.ts_ms)], ["key", d.key_id], ["requested", d.requested_model],
    ["answered by", d.chosen_model || "–"], ["policy", d.policy], ["reason", d.reason], ["outcome", d.outcome],
    ["error", d.error], ["tokens", `${num(d.prompt_tokens)} in · ${num(d.completion_tokens)} out`],
    ["cost", usd(d.cost_usd)], ["largest model, same tokens", usd(d.baseline_cost_usd)],
    ["latency", ms(d.latency_ms)], ["time to first token", d.stream ? ms(d.ttft_ms) : "(not streamed)"],
  ].filter(([, v]) => v !== null && v !== undefined);
  const cands = [...d.candidates].sort((a, b) => a.est_cost_usd - b.est_cost_usd);
  const attempts = d.attempts.map((a, i) => h("tr", {},
    h("td", {}, i + 1), h("td", {}, a.model), h("td", {}, badge(a.outcome)),
    h("td", { class: "num" }, ms(a.start_ms)), h("td", { class: "num" }, ms(a.duration_ms)),
    h("td", {}, a.verdict ? `${a.verdict.accepted ? "accepted" : "not accepted"}${a.verdict.confidence != null ? ` · confidence ${a.verdict.confidence.toFixed(3)}` : ""}${a.verdict.tau != null ? ` · τ ${a.verdict.tau.toFixed(3)}` : ""}` : ""),
    h("td", { class: "num" }, a.cost_usd != null ? usd(a.cost_usd) : ""), h("td", {}, a.error || "")));
  show(
    h("div", { class: "title" }, h("h1", {}, "Why this model"), h("a", { href: "#/decisions" }, "← all decisions")),
    h("section", { class: "card", id: "why" },
      h("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { "data-fact": k }, v)]))),
    h("section", { class: "card" }, h("h2", {}, "Candidates"),
      cands.length ? table("candidates", ["model", "predicted success", "estimated cost", ""],
        cands.map((c) => h("tr", { class: c.model === d.chosen_model ? "chosen" : "", "data-model": c.model },
          h("td", {}, c.model), h("td", { class: "num" }, c.p_success.toFixed(3)), h("td", { class: "num" }, usd(c.est_cost_usd)),
          h("td", {}, c.model === d.chosen_model ? "chosen" : ""))))
        : h("p", { class: "muted" }, "A model was named in the request: nothing was predicted.")),
    h("section", { class: "card" }, h("h2", {}, "Policy"),
      h("dl", { class: "facts" }, h("dt", {}, "this request"), h("dd", {}, d.policy),
        h("dt", {}, "server default"), h("dd", {}, Object.entries(r.policy_config.default).map(([k, v]) => k === "kind" ? v : `${k} = ${v}`).join(" · ")),
        h("dt", {}, "max cost"), h("dd", {}, r.policy_config.max_cost_usd == null ? "none" : usd(r.policy_config.max_cost_usd)),
        h("dt", {}, "min quality"), h("dd", {}, r.policy_config.min_quality == null ? "none" : String(r.policy_config.min_quality)))),
    h("section", { class: "card" }, h("h2", {}, "Attempts and fallbacks"),
      table("attempts", ["#", "model", "outcome", "started", "took", "verdict", "paid", "error"], attempts)),
    d.verification ? h("section", { class: "card" }, h("h2", {}, "Verification"),
      h("p", {}, d.verification.abstained ? "Abstained: no answer could be trusted." : d.verification.verified ? "Verified answer." : "Answer returned unverified."),
      h("pre", { id: "verification" }, JSON.stringify(d.verification, null, 2))) : null,
    h("section", { class: "card" }, h("h2", {}, "Feedback"),
      r.ratings.length ? table("ratings", ["time", "key", "score"], r.ratings.map((x) =>
        h("tr", {}, h("td", {}, when(x.ts_ms)), h("td", {}, x.key_id), h("td", { class: "num" }, x.score.toFixed(2)))))
        : h("p", { class: "muted" }, "No feedback on this decision.")),
    d.prompt ? h("section", { class: "card" }, h("h2", {}, "Routed text"), h("pre", {}, d.prompt)) : null,
  );
}

// ---------- quality ----------

async function quality(win) {
  win = win || "7d";
  const q = await api(`/ui/api/quality?window=${win}`);
  const byModel = {};
  for (const p of q.series) (byModel[p.model] = byModel[p.model] || []).push([p.t_ms, p.mean_score]);
  const r = q.router;
  show(
    h("div", { class: "title" }, h("h1", {}, "Quality"), windowPicker(win, quality)),
    h("section", { class: "stats" },
      stat("stat-ratings", "Ratings", num(q.ratings)),
      stat("stat-ece", "Calibration error (ECE)", q.ece == null ? "–" : q.ece.toFixed(3), "predicted success vs. feedback"),
      stat("stat-brier", "Brier score", q.brier == null ? "–" : q.brier.toFixed(3))),
    h("section", { class: "grid2" },
      h("div", { class: "card" }, h("h2", {}, "Mean feedback per model"),
        q.series.length ? Charts.lines(Object.entries(byModel).map(([name, points]) => ({ name, points })),
          { label: "feedback per model", fmt: (v) => v.toFixed(2), from: q.since_ms, to: Date.now() })
          : h("p", { class: "muted" }, "No feedback in this window."),
        h("ul", { class: "legend" }, ...Object.keys(byModel).map((m, i) =>
          h("li", {}, h("span", { class: `swatch c${i % Charts.COLORS.length}` }), m)))),
      h("div", { class: "card" }, h("h2", {}, "Is the router calibrated on live traffic?"),
        q.reliability.length ? Charts.reliability(q.reliability) : h("p", { class: "muted" }, "No rated routed decisions yet."),
        h("p", { class: "muted" }, "Bars: mean feedback of the decisions whose chosen model's predicted success fell in each bin; dots: mean prediction. On the diagonal is calibrated."))),
    h("section", { class: "card" }, h("h2", {}, "Router"),
      h("dl", { class: "facts", id: "router" },
        h("dt", {}, "source"), h("dd", {}, r.source), h("dt", {}, "predictor"), h("dd", {}, r.predictor),
        h("dt", {}, "features"), h("dd", {}, r.features), h("dt", {}, "trained on"), h("dd", {}, `${num(r.train_prompts)} prompts`),
        h("dt", {}, "models"), h("dd", {}, (r.models || []).join(", ")),
        h("dt", {}, "feedback weight"), h("dd", {}, String(q.feedback_model_weight)),
        h("dt", {}, "hyperparameters"), h("dd", {}, r.hyperparameters ? h("code", {}, JSON.stringify(r.hyperparameters)) : "–"))),
  );
}

// ---------- budgets and health ----------

async function health() {
  const x = await api("/ui/api/health");
  show(
    h("div", { class: "title" }, h("h1", {}, "Budgets & health")),
    h("section", { class: "card" }, h("h2", {}, "Spend against budget"),
      x.budgets.length ? table("budgets", ["key", "period", "spent", "reserved", "limit", "used"], x.budgets.map((b) => {
        const used = b.limit_usd > 0 ? (b.spent_usd + b.reserved_usd) / b.limit_usd : 0;
        return h("tr", { "data-key": b.key }, h("td", {}, b.key), h("td", {}, b.period || ""),
          h("td", { class: "num" }, usd(b.spent_usd)), h("td", { class: "num" }, usd(b.reserved_usd)),
          h("td", { class: "num" }, usd(b.limit_usd)),
          h("td", {}, h("meter", { min: 0, max: 1, low: 0.7, high: 0.9, optimum: 0, value: Math.min(1, used) }), ` ${pct(used)}`));
      })) : h("p", { class: "muted" }, "No key has a budget.")),
    h("section", { class: "card" }, h("h2", {}, "Models"),
      table("models", ["model", "provider", "tier", "breaker", "reopens in", "waiting", "$ / M tokens in · out"], x.models.map((m) =>
        h("tr", { "data-model": m.model }, h("td", {}, m.model), h("td", {}, m.provider), h("td", {}, m.tier),
          h("td", {}, badge(m.breaker)), h("td", { class: "num" }, m.breaker === "closed" ? "" : ms(m.reopens_in_ms)),
          h("td", { class: "num" }, m.queue_waiting), h("td", { class: "num" }, `${m.usd_per_mtok[0]} · ${m.usd_per_mtok[1]}`))))),
  );
  page.timer = setTimeout(() => page.name === "health" && route(), 5000);
}

// ---------- agents ----------

async function agents() {
  const x = await api("/ui/api/agents");
  show(
    h("div", { class: "title" }, h("h1", {}, "Agent runs")),
    x.runs.length ? table("runs", ["run", "goal", "status", "steps", "cost", "updated"], x.runs.map((r) =>
      h("tr", { "data-id": r.id, tabindex: 0, onclick: () => location.hash = `#/agents/${r.id}` },
        h("td", {}, r.id), h("td", { class: "prompt" }, r.goal), h("td", {}, badge(r.status)),
        h("td", { class: "num" }, r.steps), h("td", { class: "num" }, usd(r.cost_usd)), h("td", {}, when(r.updated_ms)))))
      : h("p", { class: "muted" }, "No agent runs yet."),
  );
  page.timer = setTimeout(() => page.name === "agents" && route(), 3000);
}

function stepView(s) {
  const head = (title, ...rest) => h("div", { class: "step-head" }, h("b", {}, `${s.n}. ${title}`), ...rest);
  switch (s.kind) {
    case "model":
      return [head(`${s.role} → ${s.routing.model || "?"}`, h("span", { class: "muted" },
          ` ${usd(s.cost_usd)} · ${num(s.prompt_tokens + s.completion_tokens)} tokens · ${ms(s.latency_ms)} · ${s.routing.reason || ""}`),
          s.routing.decision_id ? h("a", { href: `#/decision/${s.routing.decision_id}` }, " why") : null),
        s.content ? h("pre", {}, s.content) : null,
        ...s.tool_calls.map((c) => h("div", { class: "call" }, `calls ${c.name}(${c.arguments})`))];
    case "tool":
      return [head(`tool ${s.call.name}`, h("span", { class: "muted" }, ` ${s.ok ? "ok" : "failed"} · ${ms(s.latency_ms)} · ${s.approval}`)),
        h("div", { class: "call" }, s.call.arguments), h("pre", {}, s.result)];
    case "approval":
      return [head(`approval: ${s.decision}`), h("div", { class: "call" }, `${s.call.name}(${s.call.arguments})`)];
    case "guard":
      return [head(s.stopped ? "loop guard stopped the run" : "loop guard"), h("p", {}, s.message)];
    case "judgement":
      return [head(`judge: ${s.score.toFixed(2)} ${s.passed ? "passed" : "failed"}`), h("p", {}, s.reason)];
    case "end":
      return [head(`end: ${s.status}`), s.answer ? h("pre", {}, s.answer) : null, s.reason ? h("p", {}, s.reason) : null];
    default:
      return [head(s.kind), h("pre", {}, JSON.stringify(s, null, 2))];
  }
}

async function agentRun(id) {
  const r = await api(`/ui/api/agents/${encodeURIComponent(id)}`);
  const note = h("p", { id: "action-note", class: "muted" });
  const act = (path, body) => async () => {
    try {
      await post(`/ui/api/agents/${encodeURIComponent(id)}/${path}`, body);
      note.textContent = "sent";
      setTimeout(route, 300);
    } catch (e) {
      note.textContent = e.message;
      note.className = "error";
    }
  };
  const open = r.status === "running" || r.status === "awaiting_approval";
  show(
    h("div", { class: "title" }, h("h1", {}, "Agent run"), h("a", { href: "#/agents" }, "← all runs")),
    h("section", { class: "card" }, h("dl", { class: "facts" },
      h("dt", {}, "run"), h("dd", {}, r.id), h("dt", {}, "goal"), h("dd", {}, r.goal),
      h("dt", {}, "status"), h("dd", { id: "run-status" }, badge(r.status)),
      h("dt", {}, "steps"), h("dd", {}, r.steps_taken), h("dt", {}, "tokens"), h("dd", {}, num(r.tokens)),
      h("dt", {}, "cost"), h("dd", {}, usd(r.cost_usd)), r.answer ? h("dt", {}, "answer") : null, r.answer ? h("dd", {}, r.answer) : null),
      open ? h("button", { type: "button", id: "cancel", class: "danger", onclick: act("cancel") }, "Cancel run") : null),
    r.awaiting ? h("section", { class: "card approval", id: "awaiting" }, h("h2", {}, "Waiting for your approval"),
      h("div", { class: "call" }, `${r.awaiting.name}(${r.awaiting.arguments})`),
      h("button", { type: "button", id: "approve", onclick: act("approvals", { approve: true }) }, "Approve"),
      h("button", { type: "button", id: "deny", class: "danger", onclick: act("approvals", { approve: false }) }, "Deny")) : null,
    note,
    h("section", { class: "card" }, h("h2", {}, "Transcript"),
      h("ol", { class: "steps" }, ...r.steps.map((s) => h("li", { class: `step step-${s.kind}` }, ...stepView(s))))),
  );
  if (open) page.timer = setTimeout(() => page.name === "agent" && route(), 2000);
}

// ---------- routing ----------

async function route() {
  clearTimeout(page.timer);
  page.timer = null;
  page.live = null;
  const [, name, arg] = (location.hash || "#/overview").split("/");
  const pages = { overview, decisions, decision, quality, health, agents, agent: agentRun };
  const key = name === "agents" && arg ? "agent" : name;
  const fn = pages[key] || overview;
  page.name = pages[key] ? key : "overview";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("on", a.dataset.page === (key === "decision" ? "decisions" : key === "agent" ? "agents" : page.name));
  try {
    await fn(arg && decodeURIComponent(arg));
    main.dataset.page = page.name;
    main.dataset.loaded = String(Date.now());
  } catch (e) {
    if (!(e instanceof ApiError && e.message === "signed out")) show(failure(e));
  }
}

(async () => {
  try {
    options = await api("/ui/api/options");
  } catch (e) {
    show(failure(e));
    return;
  }
  document.getElementById("nav-agents").hidden = !options.agents;
  // Without keys there is no session to end.
  document.querySelector("header form").hidden = options.open;
  window.addEventListener("hashchange", route);
  startLive();
  route();
})();
