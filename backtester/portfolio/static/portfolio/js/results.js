// A portfolio run's outcome, shared by the live page and the detail page: the
// metrics with their formulas, one figure of linked panels on a zoomable time
// axis (equity against the benchmark, drawdown, positions open, which coin was
// held when), contributions per coin, and the trade list paged on the server.
// SVG traces, not WebGL: the WebGL renderer compiles code at run time, which
// the page's Content-Security-Policy forbids.
import { $, DASH, plain, signed } from "../../backtester/js/common.js";

const COLORS = { ink: "#1f2937", muted: "#6b7280", line: "#e5e7eb", accent: "#2563eb",
  gain: "#15803d", loss: "#b91c1c", bench: "#9ca3af" };

function format(value, info) {
  if (value === null || value === undefined) return DASH;
  if (info.unit === "%") return `${signed(value, info.digits)}%`;
  if (info.unit === "USDT") return plain(value, info.digits);
  return plain(value, info.digits);
}

export function renderMetrics(metrics, infos) {
  const list = $("metrics");
  list.replaceChildren();
  for (const info of infos) {
    if (!(info.key in metrics)) continue;
    const box = document.createElement("div");
    const dt = document.createElement("dt");
    dt.textContent = info.label;
    dt.title = info.help; // the formula, on hover
    const dd = document.createElement("dd");
    dd.textContent = format(metrics[info.key], info);
    dd.dataset.metric = info.key;
    box.append(dt, dd);
    list.append(box);
  }
}

// Each coin's held intervals as one line per coin on a category axis.
function holdingTraces(held) {
  const symbols = Object.keys(held).sort();
  const x = [];
  const y = [];
  for (const symbol of symbols) {
    for (const [entry, exit] of held[symbol]) x.push(entry, exit, null), y.push(symbol, symbol, null);
  }
  return { symbols, trace: { x, y, type: "scatter", mode: "lines", name: "Held",
    line: { width: 6, color: COLORS.accent }, xaxis: "x", yaxis: "y4", hoverinfo: "y",
    showlegend: false } };
}

export function renderCharts(equity, held) {
  const time = equity.time;
  const traces = [
    { x: time, y: equity.equity, type: "scatter", mode: "lines", name: "Account",
      line: { color: COLORS.accent, width: 1.5 }, yaxis: "y" },
    { x: time, y: equity.benchmark, type: "scatter", mode: "lines",
      name: "Equal-weight buy & hold", line: { color: COLORS.bench, width: 1.2 }, yaxis: "y" },
    { x: time, y: equity.drawdown_pct, type: "scatter", mode: "lines", name: "Drawdown",
      fill: "tozeroy", line: { color: COLORS.loss, width: 1 }, yaxis: "y2" },
    { x: time, y: equity.positions, type: "scatter", mode: "lines", name: "Positions",
      line: { color: COLORS.gain, width: 1, shape: "hv" }, yaxis: "y3" },
  ];
  const timeline = holdingTraces(held || {});
  traces.push(timeline.trace);
  const axis = (domain, extra = {}) => ({ domain, automargin: true, gridcolor: COLORS.line,
    zerolinecolor: COLORS.line, color: COLORS.muted, ...extra });
  const layout = {
    margin: { l: 70, r: 12, t: 30, b: 30 }, paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)", hovermode: "x unified", dragmode: "zoom",
    legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom" },
    // One x axis for every panel: zooming one zooms them all.
    xaxis: { type: "date", anchor: "y4", domain: [0, 1], gridcolor: COLORS.line, color: COLORS.muted,
      showspikes: true, spikemode: "across", spikethickness: 1 },
    yaxis: axis([0.62, 1], { title: { text: "Equity" } }),
    yaxis2: axis([0.46, 0.59], { title: { text: "DD" }, ticksuffix: "%" }),
    yaxis3: axis([0.33, 0.43], { title: { text: "Open" }, rangemode: "tozero", dtick: 1 }),
    yaxis4: axis([0, 0.3], { type: "category", categoryorder: "array",
      categoryarray: timeline.symbols, title: { text: "Held" }, tickfont: { size: 9 } }),
  };
  return Plotly.react($("portfolio-chart"), traces, layout,
    { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] });
}

export function renderContributions(contributions) {
  const pairs = Object.entries(contributions).sort((a, b) => b[1] - a[1]);
  const trace = { type: "bar", x: pairs.map((p) => p[0]), y: pairs.map((p) => p[1]),
    marker: { color: pairs.map((p) => (p[1] >= 0 ? COLORS.gain : COLORS.loss)) },
    hovertemplate: "%{x}: %{y:,.2f}<extra></extra>" };
  const layout = { margin: { l: 70, r: 12, t: 8, b: 60 }, paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)", yaxis: { title: { text: "P&L" }, gridcolor: COLORS.line },
    xaxis: { tickfont: { size: 9 } } };
  return Plotly.react($("contributions-chart"), [trace], layout,
    { responsive: true, displaylogo: false, displayModeBar: false });
}

const when = (iso) => iso.slice(0, 16).replace("T", " ");
const price = (v) => Number(v.toPrecision(6)).toString();

export class TradeList {
  constructor(url) {
    this.url = url;
    this.page = 1;
    this.pages = 1;
    this.symbol = "";
    $("trades-prev").onclick = () => this.load(this.page - 1);
    $("trades-next").onclick = () => this.load(this.page + 1);
    $("trade-symbol").onchange = (e) => { this.symbol = e.target.value; this.load(1); };
  }

  setSymbols(symbols) {
    const select = $("trade-symbol");
    select.replaceChildren(new Option("All coins", ""));
    for (const s of symbols) select.add(new Option(s, s));
  }

  async fetch(page, held = false) {
    const url = new URL(this.url, location.href);
    url.searchParams.set("page", page);
    if (this.symbol) url.searchParams.set("symbol", this.symbol);
    if (held) url.searchParams.set("held", "1");
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
  }

  async load(page, held = false) {
    let body;
    try {
      body = await this.fetch(Math.max(1, Math.min(page, this.pages)), held);
    } catch (error) {
      $("trades-error").hidden = false;
      $("trades-error").textContent = `Could not load the trades: ${error.message}`;
      return null;
    }
    $("trades-error").hidden = true;
    this.page = body.page;
    this.pages = body.pages;
    this.show(body);
    return body;
  }

  show(body) {
    const rows = body.trades.map((t) => {
      const tr = document.createElement("tr");
      const cells = [t.symbol, t.side, when(t.entry_time), when(t.exit_time), price(t.entry_price),
        price(t.exit_price), plain(t.pnl), signed(t.return_pct), t.exit_reason, String(t.bars_held)];
      cells.forEach((text, i) => {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        if (i >= 4 && i !== 8) cell.className = "num";
        if (i === 6 || i === 7) cell.classList.add(t.pnl >= 0 ? "gain" : "loss");
        cell.textContent = text;
        tr.append(cell);
      });
      return tr;
    });
    $("trades").tBodies[0].replaceChildren(...rows);
    $("trades-count").textContent = `(${body.count})`;
    $("trades-page").textContent = `Page ${body.page} of ${body.pages}`;
    $("trades-prev").disabled = body.page <= 1;
    $("trades-next").disabled = body.page >= body.pages;
  }
}

// Draw everything of a finished run: metrics and charts at once, then the
// trades and holdings (replayed on the server) when they arrive.
export async function renderResult({ metrics, equity, contributions }, infos, tradesUrl) {
  $("portfolio-results").hidden = false;
  renderMetrics(metrics, infos);
  renderContributions(contributions);
  await renderCharts(equity, {});
  const trades = new TradeList(tradesUrl);
  trades.setSymbols(Object.keys(contributions).sort());
  const body = await trades.load(1, true);
  if (body) await renderCharts(equity, body.held);
  $("portfolio-results").dataset.ready = "true";
}
