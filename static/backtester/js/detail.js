// Run detail: sortable results (sort kept in the URL), the strategy x coin
// heatmap, and for the selected result one linked figure (price with the
// strategy's indicators and trades, an RSI/MACD panel, equity against buy &
// hold, drawdown) that re-fetches finer data on zoom, plus the trade list paged,
// sorted and filtered on the server. Choosing another result swaps the result
// section in place: no reload, the table keeps its sort and scroll.
import { $, DASH, fromScript, plain, renderHeatmap, signed } from "./common.js";
import { EXIT_MARKERS, TradeList } from "./trades.js";

const names = fromScript("strategy-names");
const heatmap = fromScript("heatmap-data");

// ---- results table: sort (kept in the URL), click a row to chart it -----------------
function sortTable(table, column, dir) {
  const heads = [...table.tHead.rows[0].cells];
  const th = heads[column];
  if (!th) return;
  const text = th.dataset.type === "text";
  heads.forEach((h) => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
  const key = (tr) => {
    const raw = tr.cells[column]?.dataset.sort;
    if (raw === undefined || raw === "") return null;
    return text ? raw : Number(raw);
  };
  const body = table.tBodies[0];
  const rows = [...body.rows].map((tr) => [key(tr), tr]);
  rows.sort(([x], [y]) => {
    if (x === null || y === null) return (x === null) - (y === null); // blanks last
    return (text ? x.localeCompare(y) : x - y) * dir;
  });
  body.append(...rows.map(([, tr]) => tr));
}

function makeSortable(table) {
  const heads = [...table.tHead.rows[0].cells];
  heads.forEach((th, column) => {
    th.querySelector("button")?.addEventListener("click", () => {
      const now = th.getAttribute("aria-sort");
      const dir = now ? (now === "ascending" ? -1 : 1) : th.dataset.type === "text" ? 1 : -1;
      sortTable(table, column, dir);
      const url = new URL(location.href);
      url.searchParams.set("sort", `${dir > 0 ? "" : "-"}${column}`);
      history.replaceState(history.state, "", url);
    });
  });
  const wanted = new URL(location.href).searchParams.get("sort");
  if (wanted && /^-?\d+$/.test(wanted)) {
    sortTable(table, Math.abs(Number(wanted)), wanted.startsWith("-") ? -1 : 1);
  }
  table.tBodies[0].addEventListener("click", (event) => {
    const link = event.target.closest("tr")?.querySelector("a");
    if (!link) return;
    event.preventDefault();
    select(link.href);
  });
}

// Swap the selected result's section for the one of `href`, without a reload.
async function select(href, push = true) {
  const url = new URL(href, location.href);
  const keep = new URL(location.href).searchParams.get("sort");
  if (keep && !url.searchParams.has("sort")) url.searchParams.set("sort", keep);
  const part = new URL(url);
  part.searchParams.set("fragment", "result");
  const response = await fetch(part, { headers: { Accept: "text/html" } });
  if (!response.ok) {
    location.href = url;
    return;
  }
  const holder = document.createElement("template");
  holder.innerHTML = await response.text();
  const fresh = holder.content.getElementById("chart");
  const old = $("chart");
  if (window.Plotly && $("charts")) Plotly.purge($("charts"));
  if (fresh && old) old.replaceWith(document.importNode(fresh, true));
  if (push) history.pushState({ detail: true }, "", url);
  const symbol = url.searchParams.get("symbol");
  const strategy = url.searchParams.get("strategy");
  for (const tr of $("results")?.tBodies[0].rows ?? []) {
    const link = tr.querySelector("a");
    const params = link && new URL(link.href).searchParams;
    const on = params && params.get("symbol") === symbol && params.get("strategy") === strategy;
    tr.classList.toggle("selected", Boolean(on));
    if (on) tr.setAttribute("aria-current", "true");
    else tr.removeAttribute("aria-current");
  }
  initSelected();
  $("chart")?.scrollIntoView({ block: "start" });
}
window.addEventListener("popstate", () => select(location.href, false));

const results = $("results");
if (results) makeSortable(results);

// Drawn only when the page has both the cells and the table to draw them in.
const heatmapTable = $("heatmap");
if (heatmap?.length && heatmapTable) {
  renderHeatmap(heatmapTable, heatmap, names, ({ symbol, strategy, params }) =>
    `?${new URLSearchParams({ symbol, strategy, params: JSON.stringify(params) })}#chart`);
  heatmapTable.addEventListener("click", (event) => {
    const link = event.target.closest("a");
    if (!link) return;
    event.preventDefault();
    select(link.href);
  });
}

// ---- colours from the stylesheet (light or dark) --------------------------------------
function palette() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  return {
    ink: v("--ink"), muted: v("--muted"), line: v("--line"), accent: v("--accent"),
    gain: v("--gain"), loss: v("--loss"), panel: v("--panel"), price: v("--chart-price"),
    overlay: [v("--chart-1"), v("--chart-2"), v("--chart-3")],
  };
}

// ---- the linked figure -----------------------------------------------------------------
// Times travel as epoch ms; Plotly gets UTC wall-clock strings so that what it
// shows and the zoom range it reports are both UTC.
const utc = (ms) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");
const toServer = (text) => `${String(text).slice(0, 19).replace(" ", "T")}Z`;
const CANDLE_BARS = 400; // at most this many bars in view: candles, else a line

// A log axis spanning a decade or more labels the powers of ten only, with
// unlabelled minor ticks between: the default labels 2 and 5 of every decade,
// which crowds a 300-pixel panel.
function tickOptions(scale, values) {
  const positive = values.filter((v) => v > 0);
  const wide = scale === "log" && positive.length
    && Math.max(...positive) / Math.min(...positive) >= 10;
  return wide ? { dtick: 1, minor: { ticks: "outside", ticklen: 3, showgrid: false } } : {};
}

// One marker per kind, so the legend explains them: entries by side, exits by the
// reason they closed. Kinds a window does not have draw no trace.
const ENTRY_MARKERS = {
  long: { name: "Long entry ▲", symbol: "triangle-up", color: "gain" },
  short: { name: "Short entry ▼", symbol: "triangle-down", color: "--chart-2" },
};
// Keep one trade of each kind per slot of `slots` across the window (the first
// in it) and count how many it stands for; all of them when they fit.
function thin(rows, times, slots) {
  if (rows.length <= slots || rows.length < 2) return rows.map((i) => [i, 1]);
  const lo = times[rows[0]], hi = times[rows[rows.length - 1]];
  const width = (hi - lo) / slots || 1;
  const kept = new Map();
  for (const i of rows) {
    const slot = Math.min(slots - 1, Math.floor((times[i] - lo) / width));
    const entry = kept.get(slot);
    if (entry) entry[1] += 1;
    else kept.set(slot, [i, 1]);
  }
  return [...kept.values()];
}

// At most one marker of a kind per `MARKER_PX` pixels: at the whole range
// hundreds of trades would cover the price line; zoom in and each trade has its own.
const MARKER_PX = 9;

function markerTraces(t, colors, width = 800) {
  const css = getComputedStyle(document.documentElement);
  const colorOf = (c) => (c.startsWith("--") ? css.getPropertyValue(c).trim() : colors[c]);
  const num = (v) => Number(v).toPrecision(6);
  const traces = [];
  const slots = Math.max(20, Math.floor(width / MARKER_PX));
  const group = (kinds, labels, time, price, hover) => {
    for (const [kind, style] of Object.entries(kinds)) {
      const rows = labels.flatMap((label, i) => (label === kind ? [i] : []));
      if (!rows.length) continue;
      const color = colorOf(style.color);
      const kept = thin(rows, t[time], slots);
      const thinned = kept.length < rows.length;
      traces.push({ type: "scatter", mode: "markers", yaxis: "y", name: style.name,
        x: kept.map(([i]) => utc(t[time][i])), y: kept.map(([i]) => t[price][i]),
        text: kept.map(([i, n]) => (n > 1 ? `${hover(i)} and ${n - 1} more near it; zoom in for each` : hover(i))),
        hovertemplate: "%{text}<extra></extra>",
        marker: { symbol: style.symbol, color, size: thinned ? 7 : 9, opacity: thinned ? 0.85 : 1,
          line: { color: style.symbol.endsWith("-open") ? color : colors.panel, width: 1 } } });
    }
  };
  group(ENTRY_MARKERS, t.side, "entry_time", "entry_price",
    (i) => `#${t.n[i]} ${t.side[i]} entry ${num(t.entry_price[i])}`);
  group(EXIT_MARKERS, t.exit_reason, "exit_time", "exit_price",
    (i) => `#${t.n[i]} ${EXIT_MARKERS[t.exit_reason[i]]?.label ?? t.exit_reason[i]} exit `
      + `${num(t.exit_price[i])}, ${signed(t.return_pct[i])}%`);
  return traces;
}

// Spans without bars: steps over eight times the mean one (and over two hours).
// The mean, not the median: downsampled equity keeps each bucket's low and high,
// so its steps range from nothing to two buckets (four mean steps).
function gapsOf(times) {
  if (times.length < 3) return [];
  const mean = (times[times.length - 1] - times[0]) / (times.length - 1);
  const limit = Math.max(8 * mean, 2 * 3_600_000);
  const out = [];
  for (let i = 1; i < times.length; i += 1) {
    if (times[i] - times[i - 1] > limit) out.push([times[i - 1], times[i]]);
  }
  return out;
}

// The x of a line with a valueless point inside each gap, and `at` to give any
// series on those times the same nulls: Plotly then breaks the line there
// instead of drawing a straight segment over weeks without bars.
function gapped(times, gaps) {
  const starts = new Set(gaps.map(([from]) => from));
  const x = [];
  const pos = [];
  times.forEach((t, i) => {
    x.push(utc(t));
    pos.push(i);
    if (starts.has(t) && i + 1 < times.length) {
      x.push(utc((t + times[i + 1]) / 2));
      pos.push(-1);
    }
  });
  return { x, at: (values) => pos.map((i) => (i < 0 ? null : values[i])) };
}

class LinkedCharts {
  constructor(root, request, status) {
    this.root = root;
    this.request = request;
    this.status = status;
    this.range = null; // [start, end] as Plotly strings, null for everything
    this.seq = 0;
    this.scales = { yaxis: "linear", equity: null };
  }

  query(extra = {}) {
    const q = { symbol: this.request.symbol, strategy: this.request.strategy,
      params: JSON.stringify(this.request.params ?? {}), ...extra };
    if (this.range) {
      q.start = toServer(this.range[0]);
      q.end = toServer(this.range[1]);
    }
    const width = this.root.clientWidth || 800;
    q.points = String(Math.min(3000, Math.max(300, Math.round(width))));
    return new URLSearchParams(q);
  }

  async load() {
    const seq = ++this.seq;
    const q = this.query();
    // The first, whole-range request was preloaded by the page's head: ask for
    // exactly those URLs (and no other header) to be handed that response.
    const first = !this.range && !this.drawnOnce ? this.request.first : null;
    const get = async (url, preloaded) => {
      const response = await fetch(preloaded ?? `${url}?${q}`);
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || response.statusText);
      return data;
    };
    const [price, equity] = await Promise.all([
      get(this.request.price_url, first?.price), get(this.request.equity_url, first?.equity),
    ]);
    this.drawnOnce = true;
    if (seq !== this.seq) return; // a newer zoom is on its way
    this.price = price;
    this.equity = equity;
    // Hundreds of trade markers cost more to draw than every line together:
    // paint the curves first and add the markers a frame later.
    const many = price.trades.shown > 300;
    this.markersPending = many;
    await this.draw(!many);
    this.root.dataset.painted = String(seq);
    if (many) {
      await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
      if (seq !== this.seq) return;
      this.markersPending = false;
      await this.draw(true);
    }
    const win = $("chart-window");
    if (win) {
      win.textContent = `${equity.bars.toLocaleString("en-US")} bars in view · `
        + (price.bars <= CANDLE_BARS ? "candles, one per bar"
          : `line of closes${price.bars_per_candle > 1 ? `, ${price.bars_per_candle.toFixed(1)} bars a point` : ""}`)
        + (equity.downsampled ? " · equity: each bucket's low and high" : " · equity: every bar");
    }
    this.root.dataset.equityPoints = String(equity.points);
    this.root.dataset.equityBars = String(equity.bars);
    this.root.dataset.loaded = String(seq);
  }

  traces(colors, markers = true) {
    const p = this.price;
    const e = this.equity;
    const x = p.time.map(utc);
    const line = gapped(p.time, gapsOf(p.time));
    const out = [];
    if (p.bars <= CANDLE_BARS) {
      out.push({ type: "candlestick", x, open: p.open, high: p.high, low: p.low, close: p.close,
        name: `${p.symbol}`, yaxis: "y", increasing: { line: { color: colors.gain } },
        decreasing: { line: { color: colors.loss } }, hoverinfo: "x+y" });
    } else {
      out.push({ type: "scatter", mode: "lines", x: line.x, y: line.at(p.close), name: `${p.symbol} close`,
        yaxis: "y", line: { color: colors.price, width: 1.2 }, hovertemplate: "%{y:.6g}" });
    }
    Object.entries(p.overlay).forEach(([name, y], i) => {
      out.push({ type: "scatter", mode: "lines", x: line.x, y: line.at(y), name, yaxis: "y",
        line: { color: colors.overlay[i % 3], width: 1.1 }, hovertemplate: "%{y:.6g}" });
    });
    if (markers) out.push(...markerTraces(p.trades, colors, this.root.clientWidth || 800));
    if (p.panel) {
      Object.entries(p.panel.lines).forEach(([name, y], i) => {
        const trace = name === "Histogram"
          ? { type: "bar", marker: { color: colors.muted } }
          : { type: "scatter", mode: "lines", line: { color: colors.overlay[i % 3], width: 1.1 } };
        out.push({ ...trace, x: line.x, y: line.at(y), name, yaxis: "y2", hovertemplate: "%{y:.4g}" });
      });
    }
    const eq = gapped(e.time, gapsOf(e.time));
    const ex = eq.x;
    out.push({ type: "scatter", mode: "lines", x: ex, y: eq.at(e.strategy_equity), name: "Equity",
      yaxis: "y3", line: { color: colors.accent, width: 1.8 }, hovertemplate: "%{y:,.0f}" });
    out.push({ type: "scatter", mode: "lines", x: ex, y: eq.at(e.buy_hold), name: "Buy & hold",
      yaxis: "y3", line: { color: colors.muted, width: 1.2, dash: "dot" }, hovertemplate: "%{y:,.0f}" });
    out.push({ type: "scatter", mode: "lines", x: ex, y: eq.at(e.drawdown_pct), name: "Drawdown",
      yaxis: "y4", fill: "tozeroy", line: { color: colors.loss, width: 1 },
      hovertemplate: "%{y:.2f}%<extra>drawdown</extra>" });
    return out;
  }

  layout(colors) {
    const panel = Boolean(this.price.panel);
    const d = panel
      ? { y: [0.56, 1], y2: [0.41, 0.53], y3: [0.17, 0.38], y4: [0, 0.14] }
      : { y: [0.48, 1], y3: [0.2, 0.45], y4: [0, 0.17] };
    const axis = (domain, extra = {}) => ({ domain, automargin: true, gridcolor: colors.line,
      zerolinecolor: colors.line, color: colors.muted, ...extra });
    const eqValues = [...this.equity.strategy_equity, ...this.equity.buy_hold].filter((v) => v > 0);
    const wide = eqValues.length > 0 && Math.max(...eqValues) / Math.min(...eqValues) >= 10;
    // Until a chip is pressed, equity spanning a decade or more is drawn on a log
    // axis; the chips then say so (syncChips), so what is drawn is what is pressed.
    this.scales.equity ??= wide ? "log" : "linear";
    const equityScale = this.scales.equity;
    const shapes = [];
    const annotations = [];
    if (this.request.max_drawdown_pct != null) {
      const y = -this.request.max_drawdown_pct;
      shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y4", y0: y, y1: y,
        line: { color: colors.loss, width: 1, dash: "dash" } });
      annotations.push({ xref: "paper", x: 1, xanchor: "right", yref: "y4", y, yanchor: "bottom",
        showarrow: false, text: `max ${signed(y)}%`, font: { size: 11, color: colors.loss } });
    }
    // Each span without bars shaded across every panel.
    for (const [from, to] of gapsOf(this.price.time)) {
      shapes.push({ type: "rect", xref: "x", x0: utc(from), x1: utc(to), yref: "paper", y0: 0, y1: 1,
        fillcolor: colors.muted, opacity: 0.15, line: { width: 0 }, layer: "below" });
    }
    for (const level of this.price.panel?.levels ?? []) {
      shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y2", y0: level, y1: level,
        line: { color: colors.muted, width: 1, dash: "dot" } });
    }
    const layout = {
      font: { family: getComputedStyle(document.body).fontFamily, size: 12, color: colors.ink },
      margin: { l: 60, r: 12, t: 8, b: 30 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      showlegend: true, legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom", font: { size: 11 } },
      hovermode: "x unified", dragmode: "zoom", uirevision: "keep", bargap: 0,
      xaxis: { type: "date", anchor: "y4", domain: [0, 1], rangeslider: { visible: false },
        showspikes: true, spikemode: "across", spikesnap: "cursor", spikethickness: 1,
        spikedash: "dot", spikecolor: colors.muted, gridcolor: colors.line, color: colors.muted },
      yaxis: axis(d.y, { type: this.scales.yaxis, title: { text: "Price" },
        ...tickOptions(this.scales.yaxis, [...this.price.low, ...this.price.high]) }),
      yaxis3: axis(d.y3, { type: equityScale, title: { text: "Equity" },
        ...tickOptions(equityScale, eqValues) }),
      yaxis4: axis(d.y4, { ticksuffix: "%", title: { text: "DD" } }),
      shapes, annotations,
    };
    if (panel) layout.yaxis2 = axis(d.y2, { title: { text: this.price.panel.name.split(" ")[0] } });
    if (this.range) layout.xaxis.range = [...this.range];
    else layout.xaxis.autorange = true;
    return layout;
  }

  draw(markers = true) {
    const colors = palette();
    const phone = window.matchMedia("(max-width: 600px)").matches;
    const config = { responsive: true, displaylogo: false, displayModeBar: !phone,
      modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"] };
    const layout = this.layout(colors);
    // The toolbar stands upright in a right margin of its own: across the top it
    // covered the legend's last entries, which wrap to the plot's width.
    if (!phone) {
      layout.modebar = { orientation: "v" };
      layout.margin.r = 40;
    }
    this.drawing = true;
    this.syncChips();
    return Plotly.react(this.root, this.traces(colors, markers), layout, config).then(() => {
      this.drawing = false;
      if (!this.bound) this.bind();
    });
  }

  bind() {
    this.bound = true;
    let timer = null;
    this.root.on("plotly_relayout", (event) => {
      if (this.drawing) return;
      let range;
      if (event["xaxis.range[0]"] !== undefined) range = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
      else if (Array.isArray(event["xaxis.range"])) range = event["xaxis.range"];
      else if (event["xaxis.autorange"]) range = null;
      else return;
      clearTimeout(timer);
      timer = setTimeout(() => this.zoom(range), 120);
    });
    this.root.on("plotly_hover", (event) => this.readout(event));
  }

  // Zoom to a trade (ISO times) with as much again either side, at least a day.
  focusTrade(entry, exit) {
    const from = Date.parse(entry), to = Date.parse(exit);
    const pad = Math.max(86_400_000, (to - from) / 2);
    this.zoom([utc(from - pad), utc(to + pad)]);
    this.root.scrollIntoView({ block: "center" });
  }

  zoom(range) {
    this.range = range;
    this.load().catch((error) => chartError(this.status, `Could not load the charts: ${error.message}`));
  }

  // One line for every panel at the time under the pointer, whichever panel
  // it is over: the price (and the strategy's lines), equity, buy & hold, drawdown.
  readout(event) {
    const out = $("readout");
    if (!out || !event.points?.length || !this.price) return;
    const x = String(event.points[0].x);
    const ms = Date.parse(`${x.slice(0, 19).replace(" ", "T")}Z`);
    const nearest = (times) => {
      let lo = 0, hi = times.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (times[mid] < ms) lo = mid + 1;
        else hi = mid;
      }
      return lo > 0 && ms - times[lo - 1] < times[lo] - ms ? lo - 1 : lo;
    };
    const p = this.price;
    const e = this.equity;
    const i = nearest(p.time);
    const k = nearest(e.time);
    const num = (v) => (v == null ? DASH : Number(v).toPrecision(6));
    const parts = [`${x.slice(0, 16)} UTC`, `close ${num(p.close[i])}`];
    if (p.bars <= CANDLE_BARS) {
      parts.push(`O ${num(p.open[i])} H ${num(p.high[i])} L ${num(p.low[i])}`);
    }
    for (const [name, values] of Object.entries(p.overlay)) parts.push(`${name} ${num(values[i])}`);
    for (const [name, values] of Object.entries(p.panel?.lines ?? {})) {
      parts.push(`${name} ${values[i] == null ? DASH : Number(values[i]).toFixed(2)}`);
    }
    const whole = (v) => (v == null ? DASH : v.toLocaleString("en-US", { maximumFractionDigits: 0 }));
    parts.push(`Equity ${whole(e.strategy_equity[k])}`, `Buy & hold ${whole(e.buy_hold[k])}`,
      `Drawdown ${e.drawdown_pct[k] == null ? DASH : `${plain(e.drawdown_pct[k])}%`}`);
    out.textContent = parts.join(" · ");
  }

  setScale(axis, scale) {
    this.scales[axis] = scale;
    this.syncChips();
    // The whole figure is drawn again rather than relayout: Plotly kept a log
    // axis's dtick of one decade through a relayout back to linear and froze
    // the page for seconds drawing thousands of ticks.
    if (this.equity) this.draw(!this.markersPending);
  }

  // Press the chip of each scale drawn (equity's may have been picked by the data).
  syncChips() {
    for (const button of document.querySelectorAll("[data-axis]")) {
      const drawn = this.scales[button.dataset.axis];
      if (drawn) button.setAttribute("aria-pressed", String(button.dataset.scale === drawn));
    }
  }
}

function chartError(status, message) {
  if (!status) return;
  status.hidden = false;
  status.textContent = message;
  status.classList.add("chart-error");
}

// ---- the selected result ---------------------------------------------------------------
let charts = null;

function initSelected() {
  const script = $("chart-request");
  const request = script ? JSON.parse(script.textContent) : null;
  charts = null;
  if (!request?.symbol) return;
  if ($("trades")) {
    // A click on a trade zooms the figure to it (charts is set just below).
    const list = new TradeList(request, (entry, exit) => charts?.focusTrade(entry, exit));
    list.bind();
    list.load();
  }
  const root = $("charts");
  const status = $("chart-status");
  if (!root) return;
  if (!window.Plotly) {
    chartError(status, "Could not load the charts: the chart library did not load. Reload the page to try again.");
    return;
  }
  charts = new LinkedCharts(root, request, status);
  for (const button of document.querySelectorAll("[data-axis]")) {
    button.addEventListener("click", () => charts.setScale(button.dataset.axis, button.dataset.scale));
  }
  $("chart-reset")?.addEventListener("click", () => charts.zoom(null));
  charts.load().then(() => {
    status.textContent = "";
    status.hidden = true;
  }).catch((error) => chartError(status, `Could not load the charts: ${error.message}`));
}

// The charts follow the system's light or dark scheme.
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => charts?.price && charts.draw());
initSelected();
