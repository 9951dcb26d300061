// Shared by the run page and the run detail page: page data, number formatting
// and the strategy x coin heatmap.
export const MINUS = "\u2212";
export const $ = (id) => document.getElementById(id);
export const fromScript = (id) => JSON.parse($(id).textContent);
export const DASH = "\u2013";

// A number with an explicit sign (+1.23 / −1.23), readable without colour.
export function signed(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  const text = Math.abs(value).toLocaleString("en-US", {
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  });
  if (Number(text.replaceAll(",", "")) === 0) return text;
  return (value > 0 ? "+" : MINUS) + text;
}

// A number with a typographic minus and no plus sign.
export function plain(value, digits = 2) {
  return signed(value, digits).replace(/^\+/, "");
}

export function tone(value) {
  if (value === null || value === undefined || value === 0) return "";
  return value > 0 ? "gain" : "loss";
}

export function median(values) {
  const v = values.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

// Green for gains, red for losses; tanh keeps +40% and +4000% apart but bounded.
export function heatColor(value) {
  if (value === null || value === undefined) return "transparent";
  const t = Math.tanh(value / 60);
  const alpha = (0.1 + 0.65 * Math.abs(t)).toFixed(3);
  return t >= 0 ? `rgba(22, 163, 74, ${alpha})` : `rgba(220, 38, 38, ${alpha})`;
}

// The risk settings of a result in a few words ("" when they are the defaults):
// direction unless long, then the stops that are on and the size below 1.
export function riskLabel(risk) {
  if (!risk) return "";
  const parts = [];
  if (risk.direction && risk.direction !== "long") parts.push(risk.direction);
  const pct = (v) => `${Number(v).toLocaleString("en-US", { maximumFractionDigits: 4 })}%`;
  if (risk.stop_loss_pct != null) parts.push(`stop ${pct(risk.stop_loss_pct)}`);
  if (risk.take_profit_pct != null) parts.push(`target ${pct(risk.take_profit_pct)}`);
  if (risk.trailing_stop_pct != null) parts.push(`trail ${pct(risk.trailing_stop_pct)}`);
  if (risk.position_size != null && risk.position_size !== 1) parts.push(`size ${risk.position_size}`);
  return parts.join(" · ");
}

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// Draw a strategy (rows) x coin (columns) table of total returns, with a
// median column. cells: [{symbol, strategy, value, row?, label?}]: a run holding a
// strategy with several parameter sets gives each its own row key and label;
// names: key -> display name; link(cell) optionally returns a URL for a cell.
export function renderHeatmap(table, cells, names, link = null) {
  const rowOf = (c) => c.row ?? c.strategy;
  const labels = new Map(cells.map((c) => [rowOf(c), c.label ?? names[c.strategy] ?? c.strategy]));
  const strategyOf = new Map(cells.map((c) => [rowOf(c), c.strategy]));
  // Strategies in the registry's order, then any unknown ones.
  const known = Object.keys(names);
  const rank = (k) => known.indexOf(strategyOf.get(k)) + 1 || 1e9;
  const strategies = [...new Set(cells.map(rowOf))].sort((a, b) => rank(a) - rank(b));
  const symbols = [...new Set(cells.map((c) => c.symbol))].sort();
  const byCell = new Map(cells.map((c) => [`${c.symbol}|${rowOf(c)}`, c]));
  const head = el("tr");
  head.append(el("th", "Strategy", { scope: "col", class: "sticky" }));
  head.append(el("th", "Median", { scope: "col" }));
  for (const s of symbols) head.append(el("th", s, { scope: "col" }));
  const body = document.createElement("tbody");
  for (const k of strategies) {
    const tr = el("tr");
    tr.append(el("th", labels.get(k), { scope: "row", class: "sticky" }));
    const mid = median(cells.filter((c) => rowOf(c) === k).map((c) => c.value));
    const midCell = el("td", signed(mid, 0), { class: "median" });
    midCell.style.background = heatColor(mid);
    tr.append(midCell);
    for (const s of symbols) {
      const cell = byCell.get(`${s}|${k}`);
      const v = cell?.value;
      const td = el("td");
      if (cell !== undefined) {
        const text = signed(v, 0);
        const url = link && v !== null ? link(cell) : null;
        if (url) td.append(el("a", text, { href: url }));
        else td.textContent = text;
        td.title = `${s} · ${labels.get(k)}: ${signed(v, 2)}%`;
        td.style.background = heatColor(v);
      }
      tr.append(td);
    }
    body.append(tr);
  }
  const thead = document.createElement("thead");
  thead.append(head);
  table.replaceChildren(thead, body);
}

// The label of a coin whose bars are seed_demo's synthetic prices.
// Its word is drawn by CSS, so the coin's text (copied, sorted, read by
// tests) stays the symbol; screen readers get the label.
export function demoTag() {
  const tag = document.createElement("span");
  tag.className = "tag demo";
  tag.title = "synthetic demo prices, not market data";
  tag.setAttribute("role", "img");
  tag.setAttribute("aria-label", "synthetic demo prices");
  return tag;
}
