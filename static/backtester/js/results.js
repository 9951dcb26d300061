// The live results: a table that stays sorted while it fills, the heatmap and
// the summary.
import {
  $, DASH, demoTag, fromScript, plain, renderHeatmap, riskLabel, signed, tone,
} from "./common.js";

const names = Object.fromEntries(fromScript("strategies-data").map((s) => [s.key, s.name]));
// Coins holding synthetic demo prices: their results say so.
const synthetic = new Set(fromScript("coins-data").filter((c) => c.synthetic).map((c) => c.symbol));
const tbody = document.querySelector("#results tbody");

// ---- results table ----------------------------------------------------------------
const rows = new Map(); // "SYMBOL|strategy|params" -> {data, values, tr}
let order = [];         // rows in display order
let sortKey = null, sortDir = -1;
// The run whose results these are, and whether it is still going: a result
// links to its charts on the run's detail page (in a new tab while the run is
// on, so this page keeps following it).
let runId = null, running = false;

// A result's charts: its coin, strategy and parameters name it in the run.
function detailUrl({ symbol, strategy, params }) {
  const query = new URLSearchParams({ symbol, strategy, params: JSON.stringify(params ?? {}) });
  return `/runs/${runId}/?${query}#chart`;
}

function linkTarget(a) {
  if (running) {
    a.target = "_blank";
    a.rel = "noopener";
  } else {
    a.removeAttribute("target");
  }
}

export function setRun(id, active) {
  runId = id;
  running = active;
  document.querySelectorAll("#results tbody a, #heatmap a").forEach(linkTarget);
}

// The parameter sets seen per strategy: a run may hold a strategy twice.
const variants = new Map();

const paramsText = (params) =>
  Object.entries(params ?? {}).map(([k, v]) => `${k}=${v}`).join(", ");

// The strategy's name, with its parameters once it runs with more than one set.
function label(data) {
  const name = names[data.strategy] ?? data.strategy;
  return variants.get(data.strategy)?.size > 1 ? `${name} (${paramsText(data.params)})` : name;
}

function rowValues(data) {
  const m = data.metrics ?? {};
  const excess = m.total_return_pct != null && m.buy_hold_return_pct != null
    ? m.total_return_pct - m.buy_hold_return_pct : null;
  return {
    symbol: data.symbol, strategy: label(data),
    risk: riskLabel(data.risk) || null,
    total_return_pct: m.total_return_pct ?? null,
    buy_hold_return_pct: m.buy_hold_return_pct ?? null, excess,
    // Shown negative, as a fall, on every page and chart.
    sharpe: m.sharpe ?? null, max_drawdown_pct: m.max_drawdown_pct == null ? null : -m.max_drawdown_pct,
    num_trades: m.num_trades ?? null, win_rate_pct: m.win_rate_pct ?? null,
  };
}

// A result whose range has a stretch this long without bars is flagged (the
// detail page uses the same threshold).
const GAP_FLAG_HOURS = 24;

function gapBadge(metrics) {
  const hours = metrics?.longest_gap_hours;
  if (!(hours > GAP_FLAG_HOURS)) return null;
  const badge = document.createElement("span");
  badge.className = "badge gap";
  badge.textContent = "gap";
  const missing = (metrics.missing_bars ?? 0).toLocaleString("en-US");
  badge.title = `${missing} bars missing in this range; the longest gap is `
    + `${Math.round(hours).toLocaleString("en-US")} hours`;
  return badge;
}

function drawRow(tr, data, v) {
  const cells = [];
  const head = (text) => {
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = text;
    cells.push(th);
  };
  const cell = (text, cls = "") => {
    const td = document.createElement("td");
    td.className = `num ${cls}`.trim();
    td.textContent = text;
    cells.push(td);
    return td;
  };
  head(data.symbol);
  if (data.metrics && runId !== null) {
    const a = document.createElement("a");
    a.href = detailUrl(data);
    a.textContent = data.symbol;
    linkTarget(a);
    cells[0].replaceChildren(a);
  }
  const badge = gapBadge(data.metrics);
  if (badge) cells[0].append(" ", badge);
  if (synthetic.has(data.symbol)) cells[0].append(demoTag());
  cell(v.strategy, "text");
  cell(v.risk ?? DASH, "text risk-col");
  if (data.metrics) {
    cell(signed(v.total_return_pct), tone(v.total_return_pct));
    cell(signed(v.buy_hold_return_pct), tone(v.buy_hold_return_pct));
    cell(signed(v.excess), tone(v.excess));
    cell(plain(v.sharpe));
    cell(plain(v.max_drawdown_pct));  // negative: a fall, as on every page
    cell(v.num_trades ?? DASH);
    cell(plain(v.win_rate_pct, 1));
  } else {
    const td = cell(data.skipped || "no data in range", "muted skipped");
    td.colSpan = 7;
  }
  tr.replaceChildren(...cells);
}

function compare(a, b) {
  if (!sortKey) return 0;
  const x = a.values[sortKey], y = b.values[sortKey];
  if (x == null && y == null) return 0;
  if (x == null) return 1; // blanks last either way
  if (y == null) return -1;
  return (typeof x === "string" ? x.localeCompare(y) : x - y) * sortDir;
}

// Add a result, or redraw it in place if the same coin, strategy and parameters
// arrive again.
export function upsertRow(data) {
  const variant = paramsText(data.params);
  const key = `${data.symbol}|${data.strategy}|${variant}`;
  if (!variants.has(data.strategy)) variants.set(data.strategy, new Set());
  const seen = variants.get(data.strategy);
  if (!seen.has(variant)) {
    seen.add(variant);
    if (seen.size === 2) {
      // A second parameter set: name the parameters on the rows drawn so far.
      for (const other of order) {
        if (other.data.strategy !== data.strategy) continue;
        other.values = rowValues(other.data);
        drawRow(other.tr, other.data, other.values);
      }
    }
  }
  const values = rowValues(data);
  let row = rows.get(key);
  if (row) {
    Object.assign(row, { data, values });
    drawRow(row.tr, data, values);
    order.splice(order.indexOf(row), 1);
  } else {
    const tr = document.createElement("tr");
    tr.dataset.key = key;
    row = { data, values, tr };
    drawRow(tr, data, values);
    rows.set(key, row);
  }
  let i = order.length;
  if (sortKey) {
    i = order.findIndex((other) => compare(row, other) < 0);
    if (i < 0) i = order.length;
  }
  // The risk column shows only when some result has risk settings.
  if (values.risk) $("results").classList.add("has-risk");
  order.splice(i, 0, row);
  tbody.insertBefore(row.tr, order[i + 1]?.tr ?? null);
  $("results-empty").hidden = true;
}

export function clearRows() {
  $("results").classList.remove("has-risk");
  rows.clear();
  variants.clear();
  order = [];
  tbody.replaceChildren();
  $("results-empty").hidden = false;
}

// A click anywhere on a result's row opens its charts, as on the detail page.
tbody.addEventListener("click", (event) => {
  const link = event.target.closest("tr")?.querySelector("a");
  if (link && !event.target.closest("a")) link.click();
});

for (const th of document.querySelectorAll("#results th[data-key]")) {
  th.querySelector("button").addEventListener("click", () => {
    const key = th.dataset.key;
    sortDir = sortKey === key ? -sortDir : th.dataset.type === "text" ? 1 : -1;
    sortKey = key;
    document.querySelectorAll("#results th").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
    order.sort(compare); // stable: ties keep their arrival order
    tbody.append(...order.map((r) => r.tr));
  });
}

// The heatmap is redrawn at most once a frame however fast results arrive.
let heatmapQueued = false;
export function queueHeatmap() {
  if (heatmapQueued) return;
  heatmapQueued = true;
  requestAnimationFrame(() => {
    heatmapQueued = false;
    const cells = [...rows.values()].map((r) => ({
      symbol: r.data.symbol, strategy: r.data.strategy, value: r.values.total_return_pct,
      row: `${r.data.strategy}|${paramsText(r.data.params)}`, label: r.values.strategy,
      params: r.data.params,
    }));
    const several = new Set(cells.map((c) => c.row)).size > 1;
    $("heatmap-wrap").hidden = !several;
    if (several) {
      renderHeatmap($("heatmap"), cells, names, runId === null ? null : detailUrl);
      document.querySelectorAll("#heatmap a").forEach(linkTarget);
    }
  });
}

function stat(label, value, cls = "") {
  const box = document.createElement("div");
  const l = document.createElement("span");
  l.className = "label";
  l.textContent = label;
  const v = document.createElement("strong");
  v.className = cls;
  v.textContent = value;
  box.append(l, v);
  return box;
}

// A box whose value is long (a coin and a strategy): a row of its own on a phone.
function wide(box) {
  box.classList.add("summary-wide");
  return box;
}

export function renderSummary(summary, runId, elapsed) {
  const pick = (p) => (p ? `${p.symbol} · ${names[p.strategy] ?? p.strategy} ${signed(p.total_return_pct, 1)}%` : DASH);
  const link = document.createElement("a");
  link.className = "button primary";
  link.href = `/runs/${runId}/`;
  link.textContent = `Open run #${runId} →`;
  const linkBox = document.createElement("div");
  linkBox.className = "summary-link";
  linkBox.append(link);
  $("summary").replaceChildren(
    stat("Backtests", `${summary.results}${summary.skipped ? ` (${summary.skipped} without data)` : ""}`),
    stat("Beat buy & hold", `${summary.beat_buy_hold} / ${summary.results - summary.skipped}`),
    stat("Median return", `${signed(summary.median_return_pct)}%`, tone(summary.median_return_pct)),
    stat("Mean return", `${signed(summary.mean_return_pct)}%`, tone(summary.mean_return_pct)),
    stat("Mean Sharpe", plain(summary.mean_sharpe)),
    // Coloured by sign like every return: the best of a losing run is a loss.
    wide(stat("Best", pick(summary.best), tone(summary.best?.total_return_pct))),
    wide(stat("Worst", pick(summary.worst), tone(summary.worst?.total_return_pct))),
    stat("Server time", `${Number(elapsed).toFixed(2)} s`),
    linkBox,
  );
  $("summary").hidden = false;
}
