// Small SVG charts for the dashboard: lines over time, horizontal share bars, and the
// reliability diagram. Plain DOM, no library; every label goes in as text, never HTML.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

  function el(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svg(w, h, label) {
    return el("svg", { viewBox: `0 0 ${w} ${h}`, class: "chart", role: "img", "aria-label": label });
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function shortTime(ms, spanMs) {
    const d = new Date(ms);
    if (spanMs > 2 * 86400e3) return `${d.getMonth() + 1}/${d.getDate()}`;
    return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }

  // series: [{name, points: [[t_ms, y], ...]}]; fmt formats y values.
  function lines(series, { label = "", fmt = (v) => String(v), from, to } = {}) {
    const W = 640, H = 220, L = 76, R = 16, T = 12, B = 28;
    const s = svg(W, H, label);
    const all = series.flatMap((x) => x.points);
    const t0 = from ?? Math.min(...all.map((p) => p[0]));
    const t1 = to ?? Math.max(...all.map((p) => p[0]));
    const ymax = niceMax(Math.max(0, ...all.map((p) => p[1])));
    const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / ymax) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const v = (ymax * i) / 4;
      s.append(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
      s.append(el("text", { x: L - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, fmt(v)));
    }
    for (let i = 0; i <= 4; i++) {
      const t = t0 + ((t1 - t0) * i) / 4;
      s.append(el("text", { x: x(t), y: H - 8, class: "axis", "text-anchor": "middle" }, shortTime(t, t1 - t0)));
    }
    series.forEach((ser, i) => {
      if (!ser.points.length) return;
      const d = ser.points.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
      const color = ser.color || COLORS[i % COLORS.length];
      s.append(el("path", { d, class: "line", stroke: color }));
      for (const p of ser.points) {
        const c = el("circle", { cx: x(p[0]), cy: y(p[1]), r: 2.5, fill: color });
        c.append(el("title", {}, `${ser.name}: ${fmt(p[1])} at ${new Date(p[0]).toLocaleString()}`));
        s.append(c);
      }
    });
    return s;
  }

  // rows: [{name, value}] drawn as proportional bars with their share.
  function shares(rows, { label = "", fmt = (v) => String(v) } = {}) {
    const total = rows.reduce((a, r) => a + r.value, 0) || 1;
    const W = 640, row = 26, H = Math.max(row, rows.length * row) + 4;
    const s = svg(W, H, label);
    s.classList.add("shares");
    rows.forEach((r, i) => {
      const w = (r.value / total) * (W - 300);
      const yy = i * row + 4;
      s.append(el("text", { x: 0, y: yy + 14, class: "label" }, r.name));
      s.append(el("rect", { x: 180, y: yy, width: Math.max(1, w), height: row - 8, fill: COLORS[i % COLORS.length] }));
      s.append(el("text", { x: 186 + w, y: yy + 14, class: "label" }, `${fmt(r.value)} (${((100 * r.value) / total).toFixed(1)}%)`));
    });
    return s;
  }

  // bins: [{lo, hi, n, mean_predicted, mean_feedback}]: the diagonal is perfect calibration.
  function reliability(bins, { label = "reliability diagram" } = {}) {
    const S = 320, P = 40;
    const s = svg(S + P + 12, S + P + 12, label);
    s.classList.add("square");
    const x = (v) => P + v * S, y = (v) => 12 + (1 - v) * S;
    for (let i = 0; i <= 10; i += 2) {
      const v = i / 10;
      s.append(el("line", { x1: x(0), x2: x(1), y1: y(v), y2: y(v), class: "grid" }));
      s.append(el("text", { x: P - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, v.toFixed(1)));
      s.append(el("text", { x: x(v), y: S + 30, class: "axis", "text-anchor": "middle" }, v.toFixed(1)));
    }
    s.append(el("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: "diagonal" }));
    const nmax = Math.max(1, ...bins.map((b) => b.n));
    for (const b of bins) {
      const h = S * b.mean_feedback;
      const r = el("rect", {
        x: x(b.lo) + 2, y: y(b.mean_feedback), width: Math.max(2, (b.hi - b.lo) * S - 4), height: Math.max(0.5, h),
        class: "bin", "fill-opacity": (0.35 + 0.65 * (b.n / nmax)).toFixed(2),
      });
      r.append(el("title", {}, `predicted ${b.mean_predicted.toFixed(2)} · feedback ${b.mean_feedback.toFixed(2)} · n=${b.n}`));
      s.append(r);
      s.append(el("circle", { cx: x(b.mean_predicted), cy: y(b.mean_feedback), r: 3.5, class: "point" }));
    }
    s.append(el("text", { x: x(0.5), y: S + 46, class: "axis", "text-anchor": "middle" }, "predicted success"));
    return s;
  }

  return { lines, shares, reliability, COLORS };
})();
