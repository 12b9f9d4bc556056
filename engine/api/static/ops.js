// Tailor operations page: polls the API's series (from Prometheus) and redraws its charts
// without a reload. Every piece of data goes in through textContent or setAttribute.
"use strict";

(() => {
  const root = document.getElementById("ops");
  const cfg = root.dataset;
  const everyMs = Math.max(500, Number(cfg.everyMs) || 2000);
  const seriesUrl = `${cfg.seriesUrl}?minutes=${encodeURIComponent(cfg.minutes || "15")}`;
  const SVG = "http://www.w3.org/2000/svg"; // a namespace name, not a fetch
  const W = 600;
  const H = 220;
  const PAD = { left: 64, right: 12, top: 12, bottom: 26 };

  const isNumber = (x) => typeof x === "number" && Number.isFinite(x);
  const FORMATS = {
    per_s: (v) => `${v < 10 ? v.toFixed(2) : v.toFixed(1)}/s`,
    per_min: (v) => `${v < 10 ? v.toFixed(1) : v.toFixed(0)}/min`,
    seconds: (v) => (v < 1 ? `${(v * 1000).toFixed(0)} ms` : `${v.toFixed(2)} s`),
    share: (v) => `${(v * 100).toFixed(1)}%`,
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    return node;
  }

  function clock(unixS) {
    return new Date(unixS * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // A round upper bound for the y axis: 1, 2 or 5 times a power of ten.
  function ceiling(max) {
    if (!(max > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(max));
    return [1, 2, 5, 10].map((m) => m * power).find((c) => c >= max * 1.05) || 10 * power;
  }

  function latest(points) {
    for (let i = points.length - 1; i >= 0; i -= 1) {
      if (isNumber(points[i][1])) return points[i][1];
    }
    return null;
  }

  function valid(series) {
    if (!Array.isArray(series)) return [];
    return series
      .filter((s) => s && Array.isArray(s.points))
      .map((s) => ({
        name: String(s.name || ""),
        points: s.points.filter((p) => Array.isArray(p) && isNumber(p[0])),
      }));
  }

  function draw(card, series, start, end) {
    const format = FORMATS[card.dataset.unit] || ((v) => v.toFixed(2));
    const values = series.flatMap((s) => s.points.map((p) => p[1]).filter(isNumber));
    const top = ceiling(Math.max(0, ...values));
    const x = (t) => PAD.left + ((t - start) / Math.max(end - start, 1)) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);

    const plot = card.querySelector("svg.plot");
    const nodes = [];
    for (const v of [0, top / 2, top]) {
      nodes.push(svg("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
      const label = svg("text", { class: "tick", x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" });
      label.textContent = format(v);
      nodes.push(label);
    }
    for (const [t, anchor] of [[start, "start"], [end, "end"]]) {
      const label = svg("text", { class: "tick", x: x(t), y: H - 6, "text-anchor": anchor });
      label.textContent = clock(t);
      nodes.push(label);
    }
    series.forEach((s, i) => {
      // One polyline per run of points with values: a gap (no data) is left as a gap.
      let run = [];
      const flush = () => {
        if (run.length) {
          const line = svg("polyline", { class: `line s${i % 4}`, points: run.join(" ") });
          line.setAttribute("data-series", s.name);
          nodes.push(line);
        }
        run = [];
      };
      for (const [t, v] of s.points) {
        if (isNumber(v)) run.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`);
        else flush();
      }
      flush();
    });
    plot.replaceChildren(...nodes);

    const legend = series.map((s, i) => {
      const now = latest(s.points);
      const item = el("li", `s${i % 4}`);
      item.append(el("span", "swatch"), el("span", "name", s.name || "all"));
      item.append(el("span", "value", now === null ? "no data" : format(now)));
      item.setAttribute("data-series", s.name);
      return item;
    });
    card.querySelector(".legend").replaceChildren(...legend);

    const current = series.map((s) => latest(s.points));
    const points = series.reduce((n, s) => n + s.points.filter((p) => isNumber(p[1])).length, 0);
    const first = current.find(isNumber);
    card.setAttribute("data-points", String(points));
    card.setAttribute("data-latest", first === undefined ? "" : String(first));
    card.setAttribute("data-max", values.length ? String(Math.max(...values)) : "");
    card.setAttribute("data-series", String(series.length));
    card.querySelector('[data-field="now"]').textContent = headline(card, series, current, format);
  }

  function headline(card, series, current, format) {
    if (card.dataset.chart === "yes_rate") {
      const by = Object.fromEntries(series.map((s, i) => [s.name, current[i]]));
      if (isNumber(by.engine) && isNumber(by.control)) {
        const lift = (by.engine - by.control) * 100;
        return `lift ${lift >= 0 ? "+" : "\u2212"}${Math.abs(lift).toFixed(1)} pts`;
      }
    }
    const now = current.find(isNumber);
    return now === undefined ? "no data" : format(now);
  }

  function render(data) {
    const end = Number(data.end);
    const start = end - Number(data.minutes) * 60;
    const charts = data && typeof data.charts === "object" && data.charts ? data.charts : {};
    for (const card of root.querySelectorAll(".chart")) {
      draw(card, valid(charts[card.dataset.chart]), start, end);
    }
    root.setAttribute("data-end", String(end));
    root.setAttribute("data-refreshes", String(Number(root.dataset.refreshes || 0) + 1));
  }

  function setStatus(status, text) {
    root.setAttribute("data-status", status);
    root.querySelector('[data-field="status"]').textContent = text;
  }

  async function poll() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), Math.max(everyMs, 8000));
    try {
      const response = await fetch(seriesUrl, {
        cache: "no-store",
        headers: { Accept: "application/json" },
        signal: abort.signal,
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        render(body);
        setStatus("live", `Live \u00b7 updated ${new Date().toLocaleTimeString()}`);
      } else {
        const why = typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
        setStatus("waiting", `no series: ${why}`);
      }
    } catch (_) {
      setStatus("waiting", "the API cannot be reached");
    } finally {
      clearTimeout(timer);
      setTimeout(poll, everyMs);
    }
  }

  poll();
})();
