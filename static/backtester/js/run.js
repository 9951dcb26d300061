// The live run page: form from the strategy schemas, websocket client, results.
const strategies = JSON.parse(document.getElementById("strategies-data").textContent);
const coins = JSON.parse(document.getElementById("coins-data").textContent);
const range = JSON.parse(document.getElementById("range-data").textContent);
const byKey = Object.fromEntries(strategies.map((s) => [s.key, s]));
// Pairs that must be ordered, mirroring the server's validation.
const ORDERED = {
  sma_crossover: [["fast", "slow"]],
  ema_crossover: [["fast", "slow"]],
  macd_crossover: [["fast", "slow"]],
  rsi_reversion: [["lower", "upper"]],
};

const $ = (id) => document.getElementById(id);
const form = $("run-form");
const strategySelect = $("strategy");
const paramsBox = $("params");
const tbody = document.querySelector("#results tbody");

// ---- form ------------------------------------------------------------------
for (const s of strategies) strategySelect.add(new Option(s.name, s.key));
strategySelect.add(new Option("All strategies (defaults)", "all"));

function renderParams() {
  const key = strategySelect.value;
  paramsBox.querySelectorAll(".field").forEach((el) => el.remove());
  if (key === "all") {
    $("strategy-help").textContent = "Runs all six strategies with their default parameters.";
    paramsBox.hidden = true;
    return;
  }
  const spec = byKey[key];
  $("strategy-help").textContent = spec.description;
  paramsBox.hidden = false;
  for (const p of spec.params) {
    const field = document.createElement("div");
    field.className = "field";
    const id = `param-${p.name}`;
    field.innerHTML = `<label for="${id}"></label><input id="${id}" type="number" required>
      <p class="help"></p><p class="field-error" data-error-for="params.${p.name}"></p>`;
    field.querySelector("label").textContent = p.name;
    const input = field.querySelector("input");
    Object.assign(input, { name: p.name, min: p.min, max: p.max, value: p.default });
    input.step = p.type === "int" ? "1" : "any";
    input.dataset.type = p.type;
    field.querySelector(".help").textContent = `${p.help} (${p.min}–${p.max}, default ${p.default})`;
    paramsBox.append(field);
  }
}
strategySelect.addEventListener("change", () => { clearErrors(); renderParams(); });
renderParams();

const coinList = $("coin-list");
for (const c of coins) {
  const label = document.createElement("label");
  label.className = "coin";
  label.title = c.name ? `${c.name}: ${c.first_bar?.slice(0, 10) ?? "?"} to ${c.last_bar?.slice(0, 10) ?? "?"}` : "";
  label.innerHTML = `<input type="checkbox" checked> <span></span>`;
  label.querySelector("input").value = c.symbol;
  label.querySelector("span").textContent = c.symbol;
  coinList.append(label);
}
const coinBoxes = () => [...coinList.querySelectorAll("input")];
function updateCoinCount() {
  const n = coinBoxes().filter((b) => b.checked).length;
  $("coin-count").textContent = `(${n} of ${coins.length})`;
}
coinList.addEventListener("change", updateCoinCount);
$("coins-all").onclick = () => { coinBoxes().forEach((b) => (b.checked = true)); updateCoinCount(); };
$("coins-none").onclick = () => { coinBoxes().forEach((b) => (b.checked = false)); updateCoinCount(); };
$("coin-filter").addEventListener("input", (e) => {
  const q = e.target.value.trim().toUpperCase();
  for (const label of coinList.children) label.hidden = q && !label.textContent.includes(q);
});
updateCoinCount();

if (range.first) {
  $("range-help").textContent = `Data: ${range.first.slice(0, 10)} to ${range.last.slice(0, 10)}`;
}
for (const chip of document.querySelectorAll(".quick .chip")) {
  chip.onclick = () => {
    const years = Number(chip.dataset.years);
    $("end").value = "";
    if (!years || !range.last) { $("start").value = ""; return; }
    const d = new Date(range.last);
    d.setUTCFullYear(d.getUTCFullYear() - years);
    $("start").value = d.toISOString().slice(0, 10);
  };
}

function clearErrors() {
  document.querySelectorAll(".field-error").forEach((el) => (el.textContent = ""));
  document.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  showBanner("");
}

function showError(field, message) {
  const el = field && document.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
  if (!el) return showBanner(message);
  el.textContent = message;
  const input = el.parentElement.querySelector("input, select");
  if (input) input.setAttribute("aria-invalid", "true");
}

function showBanner(message) {
  $("banner").textContent = message;
  $("banner").hidden = !message;
}

// Validate like the server; return the message to send or null.
function buildRequest() {
  clearErrors();
  const key = strategySelect.value;
  const message = { type: "run" };
  let ok = true;
  if (key === "all") {
    message.strategies = "all";
  } else {
    message.strategy = key;
    message.params = {};
    for (const input of paramsBox.querySelectorAll("input")) {
      const value = Number(input.value);
      const field = `params.${input.name}`;
      if (input.value === "" || Number.isNaN(value)) { showError(field, "Enter a number."); ok = false; continue; }
      if (input.dataset.type === "int" && !Number.isInteger(value)) { showError(field, "Enter a whole number."); ok = false; continue; }
      if (value < Number(input.min) || value > Number(input.max)) {
        showError(field, `Must be between ${input.min} and ${input.max}.`); ok = false; continue;
      }
      message.params[input.name] = value;
    }
    for (const [low, high] of ORDERED[key] || []) {
      if (ok && message.params[low] >= message.params[high]) {
        showError(`params.${low}`, `Must be less than ${high} (${message.params[high]}).`);
        ok = false;
      }
    }
  }
  const symbols = coinBoxes().filter((b) => b.checked).map((b) => b.value);
  if (!symbols.length) { showError("symbols", "Pick at least one coin."); ok = false; }
  if (symbols.length < coins.length) message.symbols = symbols;
  const start = $("start").value, end = $("end").value;
  if (start) message.start = start;
  if (end) message.end = end;
  if (start && end && start >= end) { showError("end", "End must be after start."); ok = false; }
  message.interval = $("interval").value;
  for (const name of ["fee", "slippage_bps"]) {
    const input = $(name);
    const value = Number(input.value);
    if (input.value === "" || Number.isNaN(value) || value < Number(input.min) || value > Number(input.max)) {
      showError(name, `Must be between ${input.min} and ${input.max}.`); ok = false;
    } else message[name] = value;
  }
  return ok ? message : null;
}

// ---- results table ----------------------------------------------------------
const rows = [];          // {key, data, values, tr}
const seen = new Set();   // symbol|strategy of rows shown for the current run
let sortKey = null, sortDir = -1;
const fmt = (v, digits = 2, sign = false) =>
  v === null || v === undefined ? "–" : (sign && v > 0 ? "+" : "") + Number(v).toFixed(digits);

function rowValues(data) {
  const m = data.metrics || {};
  const excess = m.total_return_pct != null && m.buy_hold_return_pct != null
    ? m.total_return_pct - m.buy_hold_return_pct : null;
  return { symbol: data.symbol, strategy: data.strategy, ...m, excess };
}

function makeRow(data, values) {
  const tr = document.createElement("tr");
  const cells = data.metrics
    ? [
        [data.symbol], [byKey[data.strategy]?.name ?? data.strategy],
        [fmt(values.total_return_pct, 2, true), values.total_return_pct],
        [fmt(values.buy_hold_return_pct, 2, true), values.buy_hold_return_pct],
        [fmt(values.excess, 2, true), values.excess],
        [fmt(values.sharpe)], [fmt(values.max_drawdown_pct)],
        [fmt(values.num_trades, 0)], [fmt(values.win_rate_pct, 1)],
      ]
    : [[data.symbol], [data.strategy], ["no data in range"]];
  cells.forEach(([text, signed], i) => {
    const td = document.createElement(i < 2 ? "th" : "td");
    if (i < 2) td.scope = "row";
    td.textContent = text;
    if (i >= 2) td.className = "num";
    if (signed != null) td.classList.add(signed > 0 ? "gain" : signed < 0 ? "loss" : "flat");
    if (!data.metrics && i === 2) td.colSpan = 7;
    tr.append(td);
  });
  return tr;
}

function compare(a, b) {
  if (!sortKey) return 0;
  const x = a.values[sortKey], y = b.values[sortKey];
  if (x == null && y == null) return 0;
  if (x == null) return 1;
  if (y == null) return -1;
  return (typeof x === "string" ? x.localeCompare(y) : x - y) * sortDir;
}

function addRow(data) {
  const key = `${data.symbol}|${data.strategy}`;
  if (seen.has(key)) return false;
  seen.add(key);
  const values = rowValues(data);
  const row = { key, data, values, tr: makeRow(data, values) };
  let i = rows.length;
  if (sortKey) { i = rows.findIndex((r) => compare(row, r) < 0); if (i < 0) i = rows.length; }
  rows.splice(i, 0, row);
  tbody.insertBefore(row.tr, rows[i + 1]?.tr ?? null);
  $("results-empty").hidden = true;
  return true;
}

for (const th of document.querySelectorAll("#results th[data-key]")) {
  th.querySelector("button").addEventListener("click", () => {
    const key = th.dataset.key;
    sortDir = sortKey === key ? -sortDir : th.dataset.type === "text" ? 1 : -1;
    sortKey = key;
    document.querySelectorAll("#results th").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
    rows.sort(compare);
    for (const r of rows) tbody.append(r.tr);
  });
}

// ---- heatmap (several strategies) ----------------------------------------------
function heatColor(v) {
  if (v == null) return "transparent";
  const t = Math.max(-1, Math.min(1, v / 100));
  return t >= 0 ? `rgba(22, 163, 74, ${0.15 + 0.6 * t})` : `rgba(220, 38, 38, ${0.15 + 0.6 * -t})`;
}

function renderHeatmap() {
  const strategyKeys = [...new Set(rows.map((r) => r.data.strategy))];
  const symbols = [...new Set(rows.map((r) => r.data.symbol))].sort();
  $("heatmap-wrap").hidden = strategyKeys.length < 2;
  if (strategyKeys.length < 2) return;
  const table = $("heatmap");
  const cell = Object.fromEntries(rows.map((r) => [r.key, r.values.total_return_pct]));
  const head = `<thead><tr><th scope="col">Strategy</th>${symbols.map((s) => `<th scope="col">${s}</th>`).join("")}</tr></thead>`;
  const body = strategyKeys.map((k) => `<tr><th scope="row">${byKey[k]?.name ?? k}</th>${symbols
    .map((s) => {
      const v = cell[`${s}|${k}`];
      return `<td style="background:${heatColor(v)}" title="${s} ${k}: ${fmt(v, 1, true)}%">${v == null ? "" : fmt(v, 0, true)}</td>`;
    }).join("")}</tr>`).join("");
  table.innerHTML = head + `<tbody>${body}</tbody>`;
}

// ---- progress and summary -----------------------------------------------------
let total = 0, completed = 0, startedAt = 0, timer = null, activeRun = null;

function setProgress() {
  const pct = total ? Math.round((100 * completed) / total) : 0;
  $("progress-bar").style.width = `${pct}%`;
  $("progress").setAttribute("aria-valuenow", pct);
  const elapsed = startedAt ? ((performance.now() - startedAt) / 1000).toFixed(2) : "0.00";
  $("progress-text").textContent = `${completed} / ${total} · ${pct}% · ${elapsed} s`;
}

function setRunning(running) {
  $("run-button").disabled = running;
  $("cancel-button").disabled = !running;
  clearInterval(timer);
  if (running) timer = setInterval(setProgress, 100);
}

function renderSummary(summary, runId, elapsed) {
  const box = $("summary");
  const best = summary.best, worst = summary.worst;
  const name = (k) => byKey[k]?.name ?? k;
  box.innerHTML = `
    <div><span class="label">Backtests</span><strong>${summary.results}</strong></div>
    <div><span class="label">Beat buy &amp; hold</span><strong>${summary.beat_buy_hold} / ${summary.results - summary.skipped}</strong></div>
    <div><span class="label">Median return</span><strong class="${summary.median_return_pct >= 0 ? "gain" : "loss"}">${fmt(summary.median_return_pct, 2, true)}%</strong></div>
    <div><span class="label">Mean Sharpe</span><strong>${fmt(summary.mean_sharpe)}</strong></div>
    <div><span class="label">Best</span><strong>${best ? `${best.symbol} · ${name(best.strategy)} ${fmt(best.total_return_pct, 1, true)}%` : "–"}</strong></div>
    <div><span class="label">Worst</span><strong>${worst ? `${worst.symbol} · ${name(worst.strategy)} ${fmt(worst.total_return_pct, 1, true)}%` : "–"}</strong></div>
    <div><span class="label">Time</span><strong>${Number(elapsed).toFixed(2)} s</strong></div>
    <div><a class="button" href="/runs/${runId}/">Open run ${runId} →</a></div>`;
  box.hidden = false;
}

// ---- websocket ------------------------------------------------------------------
let socket = null, retry = 0;

function setConnection(text, ok) {
  $("connection").textContent = text;
  $("connection").className = `status ${ok ? "ok" : "warn"}`;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/backtests/`);
  socket.onopen = () => { retry = 0; setConnection("Connected", true); };
  socket.onclose = () => {
    if (activeRun !== null) {
      showBanner(`The connection dropped during run ${activeRun}; that run was stopped on the server. Press Run to start it again.`);
      activeRun = null;
      setRunning(false);
    }
    const delay = Math.min(10000, 500 * 2 ** retry++);
    setConnection(`Disconnected: reconnecting in ${Math.round(delay / 1000)} s…`, false);
    setTimeout(connect, delay);
  };
  socket.onmessage = (event) => handle(JSON.parse(event.data));
}

function handle(msg) {
  switch (msg.type) {
    case "start":
      activeRun = msg.run_id; total = msg.total; completed = 0;
      startedAt = performance.now(); setProgress(); setRunning(true);
      break;
    case "result":
      if (activeRun === null) return;
      completed = msg.completed; total = msg.total;
      if (addRow(msg.data)) renderHeatmap();
      setProgress();
      break;
    case "complete":
      setRunning(false); activeRun = null; completed = total; setProgress();
      renderSummary(msg.summary, msg.run_id, msg.elapsed_s);
      break;
    case "cancelled":
      setRunning(false); activeRun = null;
      $("progress-text").textContent += " · cancelled";
      break;
    case "error":
      if (msg.run_id) { setRunning(false); activeRun = null; }
      showError(msg.field, msg.message);
      break;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const message = buildRequest();
  if (!message) return;
  if (!socket || socket.readyState !== WebSocket.OPEN) {
    showBanner("Not connected to the server yet; try again in a moment.");
    return;
  }
  rows.length = 0; seen.clear(); tbody.replaceChildren();
  $("summary").hidden = true; $("heatmap-wrap").hidden = true;
  $("results-empty").hidden = false;
  socket.send(JSON.stringify(message));
});

$("cancel-button").addEventListener("click", () => {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "cancel" }));
});

connect();
