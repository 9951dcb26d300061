// Run detail: sortable results, the strategy x coin heatmap, and the charts of
// the selected result (price with trades, equity against buy & hold, drawdown).
import { fromScript, renderHeatmap, signed } from "./common.js";

const request = fromScript("chart-request");
const names = fromScript("strategy-names");
const heatmap = fromScript("heatmap-data");

// ---- results table: click a heading to sort, a row to chart it ----------------------
function makeSortable(table) {
  const heads = [...table.tHead.rows[0].cells];
  const body = table.tBodies[0];
  heads.forEach((th, column) => {
    th.querySelector("button")?.addEventListener("click", () => {
      const text = th.dataset.type === "text";
      const now = th.getAttribute("aria-sort");
      const dir = now ? (now === "ascending" ? -1 : 1) : text ? 1 : -1;
      heads.forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      const key = (tr) => {
        const raw = tr.cells[column]?.dataset.sort;
        if (raw === undefined || raw === "") return null;
        return text ? raw : Number(raw);
      };
      const rows = [...body.rows].map((tr) => [key(tr), tr]);
      rows.sort(([x], [y]) => {
        if (x === null || y === null) return (x === null) - (y === null); // blanks last
        return (text ? x.localeCompare(y) : x - y) * dir;
      });
      body.append(...rows.map(([, tr]) => tr));
    });
  });
  body.addEventListener("click", (event) => {
    const link = event.target.closest("tr")?.querySelector("a");
    if (link && !event.target.closest("a")) link.click();
  });
}
const results = document.getElementById("results");
if (results) makeSortable(results);

// Drawn only when the page has both the cells and the table to draw them in, so a
// run without a heatmap never stops the charts below from loading.
const heatmapTable = document.getElementById("heatmap");
if (heatmap?.length && heatmapTable) {
  renderHeatmap(heatmapTable, heatmap, names, (symbol, strategy) =>
    `?${new URLSearchParams({ symbol, strategy })}#chart`);
}

// ---- charts -----------------------------------------------------------------------
const status = document.getElementById("chart-status");
const config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
const font = { family: getComputedStyle(document.body).fontFamily, size: 12 };

function layout() {
  return {
    font,
    margin: { l: 55, r: 10, t: 10, b: 30 },
    xaxis: { type: "date" },
    yaxis: { type: "linear", automargin: true },
    legend: { orientation: "h", x: 0, y: -0.14 },
    hovermode: "x unified",
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
  };
}

function setScale(chart, scale) {
  Plotly.relayout(chart, { "yaxis.type": scale });
  for (const button of document.querySelectorAll(`[data-chart="${chart}"]`)) {
    button.setAttribute("aria-pressed", String(button.dataset.scale === scale));
  }
}
for (const button of document.querySelectorAll("[data-scale]")) {
  button.addEventListener("click", () => setScale(button.dataset.chart, button.dataset.scale));
}

const dates = (ms) => ms.map((t) => new Date(t));

// One marker per kind, so the legend explains them: entries by side, exits by
// the reason they closed. Kinds a result does not have draw no trace.
const ENTRY_MARKERS = {
  long: { name: "Long entry ▲", symbol: "triangle-up", color: "#16a34a" },
  short: { name: "Short entry ▼", symbol: "triangle-down", color: "#7c3aed" },
};
const EXIT_MARKERS = Object.fromEntries([
  ["signal", "signal", "●", "circle", "#334155"],
  ["stop_loss", "stop", "■", "square", "#dc2626"],
  ["take_profit", "target", "◆", "diamond", "#0891b2"],
  ["trailing_stop", "trailing", "✚", "cross", "#ea580c"],
  ["end", "end", "○", "circle-open", "#6b7280"],
  ["liquidation", "liquidation", "✖", "x", "#111827"],
].map(([reason, label, glyph, symbol, color]) =>
  [reason, { label, name: `Exit: ${label} ${glyph}`, symbol, color }]));

function markerTraces(t, kinds, labels, time, price, hover) {
  const traces = [];
  for (const [kind, style] of Object.entries(kinds)) {
    const rows = labels.flatMap((label, i) => (label === kind ? [i] : []));
    if (!rows.length) continue;
    traces.push({
      x: dates(rows.map((i) => t[time][i])), y: rows.map((i) => t[price][i]),
      text: rows.map((i) => hover(i)), name: style.name, type: "scatter", mode: "markers",
      marker: { symbol: style.symbol, color: style.color, size: 9,
        line: { color: style.symbol.endsWith("-open") ? style.color : "#fff", width: 1 } },
      hovertemplate: "%{text}<extra></extra>",
    });
  }
  return traces;
}

function drawPrice(data) {
  const t = data.trades;
  document.getElementById("price-note").textContent =
    t.shown < t.count ? `(the latest ${t.shown} of ${t.count} trades)` : "";
  // Stored before sides and exit reasons existed: long trades, out on a signal.
  const sides = t.side ?? t.entry_time.map(() => "long");
  const reasons = t.exit_reason ?? t.entry_time.map(() => "signal");
  const price = (v) => Number(v).toPrecision(6);
  Plotly.newPlot("price-chart", [
    { x: dates(data.price.time), y: data.price.close, name: `${data.symbol} close`, type: "scatter",
      mode: "lines", line: { color: "#334155", width: 1.2 }, hovertemplate: "%{y:.6g}" },
    ...markerTraces(t, ENTRY_MARKERS, sides, "entry_time", "entry_price",
      (i) => `${sides[i]} entry ${price(t.entry_price[i])}`),
    ...markerTraces(t, EXIT_MARKERS, reasons, "exit_time", "exit_price",
      (i) => `${EXIT_MARKERS[reasons[i]]?.label ?? reasons[i]} exit `
        + `${price(t.exit_price[i])}, ${sides[i]} trade ${signed(t.return_pct[i])}%`),
  ], layout(), config);
}

function drawEquity(data) {
  const e = data.equity;
  const values = [...e.strategy, ...e.buy_hold].filter((v) => v > 0);
  const log = values.length > 0 && Math.max(...values) / Math.min(...values) > 10;
  Plotly.newPlot("equity-chart", [
    { x: dates(e.time), y: e.strategy, name: "Strategy", type: "scatter", mode: "lines",
      line: { color: "#2553c7", width: 2 }, hovertemplate: "%{y:,.0f}" },
    { x: dates(e.time), y: e.buy_hold, name: "Buy & hold", type: "scatter", mode: "lines",
      line: { color: "#6b7280", width: 1.5, dash: "dot" }, hovertemplate: "%{y:,.0f}" },
  ], layout(), config);
  if (log) setScale("equity-chart", "log");
}

function drawDrawdown(data) {
  const e = data.equity;
  const spec = layout();
  spec.yaxis.ticksuffix = "%";
  if (request.max_drawdown_pct != null) {
    // The stored curve is down-sampled, so it can miss the deepest bar: mark the
    // exact figure computed on every bar.
    const y = -request.max_drawdown_pct;
    spec.shapes = [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y,
      line: { color: "#7f1d1d", width: 1, dash: "dash" } }];
    spec.annotations = [{ xref: "paper", x: 1, xanchor: "right", y, yanchor: "top", showarrow: false,
      text: `max ${signed(y)}%`, font: { size: 11, color: "#7f1d1d" } }];
  }
  Plotly.newPlot("drawdown-chart", [
    { x: dates(e.time), y: e.drawdown_pct, name: "Drawdown", type: "scatter", mode: "lines",
      fill: "tozeroy", fillcolor: "rgba(220, 38, 38, 0.18)", line: { color: "#b42318", width: 1.2 },
      hovertemplate: "%{y:.2f}%<extra></extra>" },
  ], spec, config);
}

async function loadCharts() {
  const query = new URLSearchParams({ symbol: request.symbol, strategy: request.strategy });
  const response = await fetch(`${request.url}?${query}`, { headers: { Accept: "application/json" } });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  drawPrice(data);
  drawEquity(data);
  drawDrawdown(data);
  status.textContent = data.price.time.length ? "" : "The prices of this coin are no longer stored.";
  status.hidden = !status.textContent;
}

function chartError(message) {
  status.textContent = message;
  status.classList.add("chart-error");
}

if (request.symbol && status) {
  if (!window.Plotly) {
    chartError("Could not load the charts: the chart library did not load. Reload the page to try again.");
  } else {
    loadCharts().catch((error) => chartError(`Could not load the charts: ${error.message}`));
  }
}
