// The best-combinations list and a cell's per-coin results, shared by the live
// sweep page and the stored sweep's page.
import { fmt, paramText, ranked } from "./heatmap.js";

const $ = (id) => document.getElementById(id);

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// Fill the <ol> with the best cells by the metric; each opens its coins.
export function renderBest(list, cells, metric, names, open) {
  const items = ranked(cells, metric).map((cell, rank) => {
    const button = el("button", null, { type: "button", class: "linklike best-cell" });
    button.dataset.index = String(cell.index);
    button.append(
      el("span", paramText(cell.params, names), { class: "best-params" }),
      el("span", ` ${metric.label}: ${show(metric.key, cell.metrics)}`, { class: "muted" }),
    );
    button.addEventListener("click", () => open(cell));
    const item = el("li");
    if (rank === 0) item.className = "top";
    item.append(button);
    return item;
  });
  list.replaceChildren(...items);
}

function show(key, metrics) {
  const value = metrics[key];
  if (key === "beat_buy_hold") return `${value} of ${metrics.coins}`;
  if (key === "mean_sharpe") return fmt(value);
  return `${fmt(value)}%`;
}

function tone(value) {
  if (value === null || value === undefined || value === 0) return "num";
  return value > 0 ? "num gain" : "num loss";
}

// Load a cell's per-coin results into the panel, each with a button that
// backtests that coin alone as a normal run and opens it.
export async function openCell(base, sweepId, cell, names) {
  const panel = $("cell-panel");
  panel.hidden = false;
  $("cell-title").textContent = paramText(cell.params, names);
  $("cell-status").textContent = "Loading…";
  const body = $("cell-coins").querySelector("tbody");
  body.replaceChildren();
  let data;
  try {
    const response = await fetch(`${base}${sweepId}/cells/${cell.index}/`);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    data = await response.json();
  } catch (error) {
    $("cell-status").textContent = `Could not load the coins: ${error.message}`;
    return;
  }
  $("cell-status").textContent = data.done
    ? `${data.metrics.coins} coins · median return ${fmt(data.metrics.median_return_pct)}%`
    : "Not computed yet.";
  const token = document.querySelector("#csrf-form input[name=csrfmiddlewaretoken]").value;
  for (const coin of data.coins) {
    const m = coin.metrics;
    const row = el("tr");
    row.append(el("th", coin.symbol, { scope: "row" }));
    if (!m) {
      row.append(el("td", "no data in range", { colspan: "6", class: "skipped" }));
    } else {
      row.append(
        el("td", fmt(m.total_return_pct), { class: tone(m.total_return_pct) }),
        el("td", fmt(m.buy_hold_return_pct), { class: tone(m.buy_hold_return_pct) }),
        el("td", fmt(m.sharpe), { class: "num" }),
        // A fall: negative, as on every page (the stored metric is its size).
        el("td", m.max_drawdown_pct == null ? fmt(null) : fmt(-m.max_drawdown_pct), { class: "num" }),
        el("td", String(m.num_trades), { class: "num" }),
      );
      const form = el("form", null, { method: "post", action: data.run_url });
      form.append(
        el("input", null, { type: "hidden", name: "csrfmiddlewaretoken", value: token }),
        el("input", null, { type: "hidden", name: "symbol", value: coin.symbol }),
        el("button", "Open run", { type: "submit", class: "button small" }),
      );
      const cellTd = el("td");
      cellTd.append(form);
      row.append(cellTd);
    }
    body.append(row);
  }
  panel.scrollIntoView({ behavior: "smooth", block: "nearest" });
}
