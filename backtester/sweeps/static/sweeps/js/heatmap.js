// A parameter heatmap on one canvas: x = the first axis, y = the second (one row
// when there is none), any further axes fixed at a chosen value. Cells are added
// in batches and the canvas is redrawn at most once per animation frame, so
// thousands of cells arriving over a socket cost one draw per frame.
const PENDING = "#eef0f4";
const MARGIN = { left: 64, right: 8, top: 8, bottom: 40 };
// Metrics whose sign means something (0 is neutral): coloured around 0.
const SIGNED = new Set(["median_return_pct", "mean_return_pct", "mean_sharpe"]);

export function paramText(params, names) {
  return names.map((n) => `${n}=${params[n]}`).join(", ");
}

export class Heatmap {
  // labels: [key, label, show(value, metrics)] the tooltip lists (a sweep's
  // across-coins metrics unless another kind of cell gives its own).
  constructor(canvas, tip, { onClick = null, labels = null } = {}) {
    this.canvas = canvas;
    this.tip = tip;
    this.onClick = onClick;
    this.labels = labels ?? LABELS;
    this.cells = new Map(); // index -> cell
    this.frame = 0;
    this.best = null;
    canvas.addEventListener("mousemove", (e) => this.hover(e));
    canvas.addEventListener("mouseleave", () => { this.tip.hidden = true; });
    canvas.addEventListener("click", (e) => {
      const cell = this.cellAt(e);
      if (cell && this.onClick) this.onClick(cell);
    });
    new ResizeObserver(() => this.schedule()).observe(canvas.parentElement);
  }

  // axes: {name: [values]} in grid order; metric: {key, higher_is_better}.
  setup(axes, metric, fixed = {}) {
    this.names = Object.keys(axes);
    this.x = { name: this.names[0], values: axes[this.names[0]] };
    this.y = this.names.length > 1
      ? { name: this.names[1], values: axes[this.names[1]] }
      : { name: null, values: [null] };
    this.fixed = fixed;
    this.metric = metric;
    this.cells.clear();
    this.best = null;
    this.schedule();
  }

  setMetric(metric) { this.metric = metric; this.schedule(); }
  setFixed(fixed) { this.fixed = fixed; this.schedule(); }
  setBest(index) { this.best = index; this.schedule(); }

  add(cells) {
    for (const c of cells) this.cells.set(c.index, c);
    this.schedule();
  }

  // The cells on the current x-y plane (further axes at their fixed values).
  visible() {
    const out = [];
    for (const c of this.cells.values()) {
      if (Object.entries(this.fixed).every(([k, v]) => c.params[k] === v)) out.push(c);
    }
    return out;
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  layout() {
    const width = this.canvas.parentElement.clientWidth || 600;
    const nx = this.x.values.length, ny = this.y.values.length;
    const cw = Math.max(4, (width - MARGIN.left - MARGIN.right) / nx);
    const ch = ny === 1 ? 48 : Math.max(8, Math.min(32, 520 / ny));
    return { width, height: MARGIN.top + ch * ny + MARGIN.bottom, cw, ch, nx, ny };
  }

  // Map a value to [-1, 1]: > 0 good (green), < 0 bad (red).
  scaler(cells) {
    const key = this.metric.key;
    const values = cells.map((c) => c.metrics[key]).filter((v) => v !== null && v !== undefined);
    if (!values.length) return () => 0;
    const sign = this.metric.higher_is_better ? 1 : -1;
    if (SIGNED.has(key)) {
      const top = Math.max(...values.map(Math.abs)) || 1;
      return (v) => sign * v / top;
    }
    const lo = Math.min(...values), hi = Math.max(...values);
    return (v) => (hi === lo ? 0 : sign * (2 * (v - lo) / (hi - lo) - 1));
  }

  draw() {
    if (!this.x) return;
    const L = this.layout();
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(L.width * ratio);
    this.canvas.height = Math.round(L.height * ratio);
    this.canvas.style.height = `${L.height}px`;
    const g = this.canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, L.width, L.height);
    const cells = this.visible();
    const scale = this.scaler(cells);
    const xi = new Map(this.x.values.map((v, i) => [v, i]));
    const yi = new Map(this.y.values.map((v, i) => [v, i]));
    // Pending cells first, as the grid's background.
    g.fillStyle = PENDING;
    g.fillRect(MARGIN.left, MARGIN.top, L.cw * L.nx, L.ch * L.ny);
    const gap = L.cw > 6 && L.ch > 6 ? 1 : 0;
    let bestRect = null, drawn = 0;
    for (const c of cells) {
      const i = xi.get(c.params[this.x.name]);
      const j = yi.get(this.y.name === null ? null : c.params[this.y.name]);
      if (i === undefined || j === undefined) continue;
      const v = c.metrics[this.metric.key];
      const x = MARGIN.left + i * L.cw, y = MARGIN.top + (L.ny - 1 - j) * L.ch;
      if (v === null || v === undefined) {
        g.fillStyle = "#d1d5db";
      } else {
        const t = Math.max(-1, Math.min(1, scale(v)));
        const alpha = (0.12 + 0.8 * Math.abs(t)).toFixed(3);
        g.fillStyle = t >= 0 ? `rgba(22, 163, 74, ${alpha})` : `rgba(220, 38, 38, ${alpha})`;
      }
      g.fillRect(x + gap, y + gap, L.cw - gap, L.ch - gap);
      drawn += 1;
      if (c.index === this.best) bestRect = [x, y];
    }
    // What the last frame drew, for tests and assistive tools.
    this.canvas.dataset.drawn = String(drawn);
    if (bestRect) {
      g.strokeStyle = "#111827";
      g.lineWidth = 2;
      g.strokeRect(bestRect[0] + 1, bestRect[1] + 1, L.cw - 1, L.ch - 1);
    }
    this.drawAxes(g, L);
    this.drawLegend(cells);
  }

  // The scale under the canvas: the value at the red end and at the green end.
  drawLegend(cells) {
    const legend = this.canvas.closest(".sweep-heatmap")?.querySelector(".heat-legend");
    if (!legend) return;
    const key = this.metric.key;
    const values = cells.map((c) => c.metrics[key]).filter((v) => v !== null && v !== undefined);
    legend.hidden = !values.length;
    if (!values.length) return;
    let lo = Math.min(...values), hi = Math.max(...values);
    if (SIGNED.has(key)) {
      const top = Math.max(...values.map(Math.abs));
      [lo, hi] = [-top, top];
    }
    const [bad, good] = this.metric.higher_is_better ? [lo, hi] : [hi, lo];
    const show = this.labels.find(([k]) => k === key)?.[2] ?? ((v) => fmt(v));
    const label = this.metric.label ?? key;
    legend.querySelector(".heat-low").textContent = `${label}: ${show(bad, { coins: "" })}`;
    legend.querySelector(".heat-high").textContent = show(good, { coins: "" });
  }

  drawAxes(g, L) {
    g.fillStyle = "#4b5563";
    g.font = "11px system-ui, sans-serif";
    g.textAlign = "center";
    g.textBaseline = "top";
    const everyX = Math.ceil(34 / L.cw);
    this.x.values.forEach((v, i) => {
      if (i % everyX) return;
      g.fillText(String(v), MARGIN.left + (i + 0.5) * L.cw, MARGIN.top + L.ny * L.ch + 3);
    });
    g.font = "600 12px system-ui, sans-serif";
    g.fillText(this.x.name, MARGIN.left + (L.nx * L.cw) / 2, MARGIN.top + L.ny * L.ch + 20);
    if (this.y.name === null) return;
    g.font = "11px system-ui, sans-serif";
    g.textAlign = "right";
    g.textBaseline = "middle";
    const everyY = Math.ceil(14 / L.ch);
    this.y.values.forEach((v, j) => {
      if (j % everyY) return;
      g.fillText(String(v), MARGIN.left - 6, MARGIN.top + (L.ny - 1 - j + 0.5) * L.ch);
    });
    g.save();
    g.translate(12, MARGIN.top + (L.ny * L.ch) / 2);
    g.rotate(-Math.PI / 2);
    g.textAlign = "center";
    g.font = "600 12px system-ui, sans-serif";
    g.fillText(this.y.name, 0, 0);
    g.restore();
  }

  cellAt(event) {
    if (!this.x) return null;
    const L = this.layout();
    const box = this.canvas.getBoundingClientRect();
    const i = Math.floor((event.clientX - box.left - MARGIN.left) / L.cw);
    const j = L.ny - 1 - Math.floor((event.clientY - box.top - MARGIN.top) / L.ch);
    if (i < 0 || i >= L.nx || j < 0 || j >= L.ny) return null;
    const xv = this.x.values[i], yv = this.y.values[j];
    for (const c of this.visible()) {
      if (c.params[this.x.name] === xv && (this.y.name === null || c.params[this.y.name] === yv)) {
        return c;
      }
    }
    return null;
  }

  hover(event) {
    const cell = this.cellAt(event);
    this.canvas.classList.toggle("clickable", Boolean(cell));
    if (!cell) { this.tip.hidden = true; return; }
    this.tip.replaceChildren(...cellLines(cell, this.names, this.labels));
    this.tip.hidden = false;
    const box = this.canvas.parentElement.getBoundingClientRect();
    const left = Math.min(event.clientX - box.left + 14, box.width - this.tip.offsetWidth - 4);
    this.tip.style.left = `${Math.max(0, left)}px`;
    this.tip.style.top = `${event.clientY - box.top + 14}px`;
  }
}

const LABELS = [
  ["median_return_pct", "Median return", (v) => `${fmt(v)}%`],
  ["mean_return_pct", "Mean return", (v) => `${fmt(v)}%`],
  ["mean_sharpe", "Mean Sharpe", (v) => fmt(v)],
  ["beat_buy_hold", "Beat buy & hold", (v, m) => (m.coins === "" ? `${v} coins` : `${v} of ${m.coins}`)],
  // A fall: shown negative, as on every page (the stored metric is its size).
  ["median_max_drawdown_pct", "Median max drawdown", (v) => (v == null ? fmt(v) : `${fmt(-v)}%`)],
  ["trades", "Trades", (v) => String(v)],
];

export function fmt(value, digits = 2) {
  if (value === null || value === undefined) return "\u2013";
  const text = Math.abs(value).toFixed(digits);
  if (Number(text) === 0) return text;
  return (value > 0 ? "+" : "\u2212") + text;
}

export function cellLines(cell, names, labels = LABELS) {
  const head = document.createElement("strong");
  head.textContent = paramText(cell.params, names);
  const lines = [head];
  for (const [key, label, show] of labels) {
    const line = document.createElement("div");
    line.textContent = `${label}: ${show(cell.metrics[key], cell.metrics)}`;
    lines.push(line);
  }
  return lines;
}

// The best cells by the metric, best first (cells without a value left out).
export function ranked(cells, metric, limit = 5) {
  const sign = metric.higher_is_better ? -1 : 1;
  return cells
    .filter((c) => c.metrics[metric.key] !== null && c.metrics[metric.key] !== undefined)
    .sort((a, b) => sign * (a.metrics[metric.key] - b.metrics[metric.key]) || a.index - b.index)
    .slice(0, limit);
}
