// The live run page: a form built from the strategy schemas, the websocket
// client, and a results table, heatmap and summary that fill in as results arrive.
import { DASH, plain, renderHeatmap, signed, tone } from "./common.js";

const fromScript = (id) => JSON.parse(document.getElementById(id).textContent);
const strategies = fromScript("strategies-data");
const coins = fromScript("coins-data");
const range = fromScript("range-data");
const byKey = Object.fromEntries(strategies.map((s) => [s.key, s]));
const names = Object.fromEntries(strategies.map((s) => [s.key, s.name]));
// Parameter pairs that must be strictly ordered, as the server checks them.
const ORDERED = {
  sma_crossover: [["fast", "slow"]],
  ema_crossover: [["fast", "slow"]],
  macd_crossover: [["fast", "slow"]],
  rsi_reversion: [["lower", "upper"]],
};
// Server error fields that have no input of their own.
const FIELD_ALIASES = { strategies: "strategy" };

const $ = (id) => document.getElementById(id);
const form = $("run-form");
const strategySelect = $("strategy");
const paramFields = $("param-fields");
const tbody = document.querySelector("#results tbody");

// ---- form ----------------------------------------------------------------------
for (const s of strategies) strategySelect.add(new Option(s.name, s.key));
strategySelect.add(new Option("All strategies (default parameters)", "all"));
const typed = {}; // strategy key -> {param: value typed by the user}

function renderParams() {
  const key = strategySelect.value;
  paramFields.replaceChildren();
  if (key === "all") {
    $("strategy-help").textContent =
      `Runs all ${strategies.length} strategies with their default parameters.`;
    $("params").hidden = true;
    return;
  }
  const spec = byKey[key];
  $("strategy-help").textContent = spec.description;
  $("params").hidden = false;
  for (const p of spec.params) {
    const id = `param-${p.name}`;
    const field = document.createElement("div");
    field.className = "field";
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = p.name;
    const input = document.createElement("input");
    Object.assign(input, {
      id, name: p.name, type: "number", required: true,
      min: p.min, max: p.max, step: p.type === "int" ? "1" : "0.1",
      value: typed[key]?.[p.name] ?? p.default,
    });
    input.inputMode = p.type === "int" ? "numeric" : "decimal";
    input.dataset.type = p.type;
    input.setAttribute("aria-describedby", `${id}-help`);
    input.addEventListener("input", () => {
      (typed[key] ??= {})[p.name] = input.value;
    });
    const help = document.createElement("p");
    help.className = "help";
    help.id = `${id}-help`;
    help.textContent = `${p.help} ${p.min}–${p.max}, default ${p.default}.`;
    const error = document.createElement("p");
    error.className = "field-error";
    error.dataset.errorFor = `params.${p.name}`;
    field.append(label, input, help, error);
    paramFields.append(field);
  }
}
strategySelect.addEventListener("change", () => { clearErrors(); renderParams(); });
renderParams();

const coinList = $("coin-list");
for (const c of coins) {
  const label = document.createElement("label");
  label.className = "coin";
  const box = document.createElement("input");
  Object.assign(box, { type: "checkbox", checked: true, value: c.symbol, name: "symbols" });
  label.append(box, document.createTextNode(c.symbol));
  if (c.first_bar) {
    label.title = `${c.name || c.symbol}: ${c.first_bar.slice(0, 10)} to ${c.last_bar.slice(0, 10)}`;
  }
  coinList.append(label);
}
const coinBoxes = () => [...coinList.querySelectorAll("input")];
const visibleBoxes = () => coinBoxes().filter((b) => !b.parentElement.hidden);
function updateCoinCount() {
  const n = coinBoxes().filter((b) => b.checked).length;
  $("coin-count").textContent = `${n} of ${coins.length}`;
}
coinList.addEventListener("change", updateCoinCount);
$("coins-all").addEventListener("click", () => {
  visibleBoxes().forEach((b) => (b.checked = true));
  updateCoinCount();
});
$("coins-none").addEventListener("click", () => {
  visibleBoxes().forEach((b) => (b.checked = false));
  updateCoinCount();
});
$("coin-filter").addEventListener("input", (event) => {
  const q = event.target.value.trim().toUpperCase();
  for (const label of coinList.children) {
    label.hidden = Boolean(q) && !label.textContent.toUpperCase().includes(q);
  }
});
updateCoinCount();

if (range.first && range.last) {
  $("range-help").textContent =
    `Data ${range.first.slice(0, 10)} to ${range.last.slice(0, 10)}`;
}
const chips = [...document.querySelectorAll(".quick .chip")];
function pressChip(chip) {
  chips.forEach((c) => c.setAttribute("aria-pressed", String(c === chip)));
}
for (const chip of chips) {
  chip.addEventListener("click", () => {
    const years = Number(chip.dataset.years);
    $("end").value = "";
    $("start").value = "";
    if (years && range.last) {
      // Relative to the latest bar, so "1Y" is the last year of data.
      const d = new Date(range.last);
      d.setUTCFullYear(d.getUTCFullYear() - years);
      $("start").value = d.toISOString().slice(0, 10);
    }
    pressChip(chip);
  });
}
for (const id of ["start", "end"]) $(id).addEventListener("input", () => pressChip(null));

// ---- errors ---------------------------------------------------------------------
function clearErrors() {
  document.querySelectorAll(".field-error").forEach((el) => (el.textContent = ""));
  document.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  showBanner("");
}

function showError(field, message) {
  const name = FIELD_ALIASES[field] ?? field;
  const el = name && document.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
  if (!el || el.closest("[hidden]")) return showBanner(message);
  el.textContent = el.textContent ? `${el.textContent} ${message}` : message;
  const input = el.parentElement.querySelector("input:not([type=checkbox]), select");
  if (input) input.setAttribute("aria-invalid", "true");
  return el;
}

function showBanner(message, { rerun = false, html = null } = {}) {
  $("banner-text").replaceChildren(html ?? document.createTextNode(message));
  $("rerun-button").hidden = !rerun;
  $("banner").hidden = !message && !html;
}

// ---- the request, validated as the server will --------------------------------------
function numberField(input, field, { int = false } = {}) {
  const text = input.value.trim();
  const value = Number(text);
  if (text === "" || !Number.isFinite(value)) {
    showError(field, "Enter a number.");
  } else if (int && !Number.isInteger(value)) {
    showError(field, "Enter a whole number.");
  } else if (value < Number(input.min) || value > Number(input.max)) {
    showError(field, `Must be between ${input.min} and ${input.max}.`);
  } else {
    return value;
  }
  return null;
}

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
    for (const input of paramFields.querySelectorAll("input")) {
      const value = numberField(input, `params.${input.name}`, { int: input.dataset.type === "int" });
      if (value === null) ok = false;
      else message.params[input.name] = value;
    }
    for (const [low, high] of ORDERED[key] ?? []) {
      const a = message.params[low], b = message.params[high];
      if (a !== undefined && b !== undefined && a >= b) {
        showError(`params.${low}`, `Must be less than ${high} (${b}).`);
        ok = false;
      }
    }
  }
  const symbols = coinBoxes().filter((b) => b.checked).map((b) => b.value);
  if (!coins.length) {
    showError("symbols", "There are no coins to run on yet.");
    ok = false;
  } else if (!symbols.length) {
    showError("symbols", "Pick at least one coin.");
    ok = false;
  } else if (symbols.length < coins.length) {
    message.symbols = symbols; // otherwise every active coin (the default)
  }
  const start = $("start").value, end = $("end").value;
  if (start) message.start = start;
  if (end) message.end = end;
  if (start && end && start >= end) {
    showError("end", "End must be after start.");
    ok = false;
  }
  message.interval = $("interval").value;
  for (const name of ["fee", "slippage_bps"]) {
    const value = numberField($(name), name);
    if (value === null) ok = false;
    else message[name] = value;
  }
  if (!ok) document.querySelector("[aria-invalid=true]")?.focus();
  return ok ? message : null;
}

// ---- results table ----------------------------------------------------------------
const rows = new Map(); // "SYMBOL|strategy" -> {data, values, tr}
let order = [];         // rows in display order
let sortKey = null, sortDir = -1;

function rowValues(data) {
  const m = data.metrics ?? {};
  const excess = m.total_return_pct != null && m.buy_hold_return_pct != null
    ? m.total_return_pct - m.buy_hold_return_pct : null;
  return {
    symbol: data.symbol, strategy: names[data.strategy] ?? data.strategy,
    total_return_pct: m.total_return_pct ?? null,
    buy_hold_return_pct: m.buy_hold_return_pct ?? null, excess,
    sharpe: m.sharpe ?? null, max_drawdown_pct: m.max_drawdown_pct ?? null,
    num_trades: m.num_trades ?? null, win_rate_pct: m.win_rate_pct ?? null,
  };
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
  cell(v.strategy, "text");
  if (data.metrics) {
    cell(signed(v.total_return_pct), tone(v.total_return_pct));
    cell(signed(v.buy_hold_return_pct), tone(v.buy_hold_return_pct));
    cell(signed(v.excess), tone(v.excess));
    cell(plain(v.sharpe));
    cell(plain(v.max_drawdown_pct));
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

// Add a result, or redraw it in place if the same coin and strategy arrives again.
function upsertRow(data) {
  const key = `${data.symbol}|${data.strategy}`;
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
  order.splice(i, 0, row);
  tbody.insertBefore(row.tr, order[i + 1]?.tr ?? null);
  $("results-empty").hidden = true;
}

function clearRows() {
  rows.clear();
  order = [];
  tbody.replaceChildren();
  $("results-empty").hidden = false;
}

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
function queueHeatmap() {
  if (heatmapQueued) return;
  heatmapQueued = true;
  requestAnimationFrame(() => {
    heatmapQueued = false;
    const cells = [...rows.values()].map((r) => ({
      symbol: r.data.symbol, strategy: r.data.strategy, value: r.values.total_return_pct,
    }));
    const several = new Set(cells.map((c) => c.strategy)).size > 1;
    $("heatmap-wrap").hidden = !several;
    if (several) renderHeatmap($("heatmap"), cells, names);
  });
}

// ---- progress and summary -------------------------------------------------------
let total = 0, completed = 0, startedAt = 0, finalElapsed = null, timer = null;
let activeRun = null, pending = false, lastRequest = null;

let note = "";
function setProgress(newNote = note) {
  note = newNote;
  const pct = total ? Math.floor((100 * completed) / total) : 0;
  $("progress-bar").style.width = `${pct}%`;
  $("progress").setAttribute("aria-valuenow", String(pct));
  const elapsed = finalElapsed ?? (startedAt ? (performance.now() - startedAt) / 1000 : 0);
  $("progress-text").textContent =
    `${completed} / ${total} · ${pct}% · ${elapsed.toFixed(2)} s${note ? ` · ${note}` : ""}`;
}

// Enable the buttons for the current state and tick the clock while a run is on.
function syncButtons() {
  $("run-button").disabled = pending || activeRun !== null;
  $("cancel-button").disabled = activeRun === null;
  clearInterval(timer);
  if (activeRun !== null) timer = setInterval(() => setProgress(), 100);
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

function renderSummary(summary, runId, elapsed) {
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
    stat("Best", pick(summary.best), "gain"),
    stat("Worst", pick(summary.worst), "loss"),
    stat("Server time", `${Number(elapsed).toFixed(2)} s`),
    linkBox,
  );
  $("summary").hidden = false;
}

// ---- websocket ------------------------------------------------------------------
let socket = null, attempt = 0, queued = null;

function setConnection(text, state) {
  $("connection").textContent = text;
  $("connection").className = `status ${state}`;
}

function send(message) {
  if (socket?.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(message));
  return true;
}

function startRequest(message) {
  lastRequest = message;
  pending = true;
  syncButtons();
  $("progress-text").textContent = "Starting…";
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/backtests/`);
  socket.addEventListener("open", () => {
    attempt = 0;
    setConnection("Connected", "ok");
    if (queued) {
      const message = queued;
      queued = null;
      clearErrors();
      startRequest(message);
      send(message);
    }
  });
  socket.addEventListener("message", (event) => handle(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    if (event.code === 4401) {
      const link = document.createElement("a");
      link.href = `${form.dataset.loginUrl}?next=${encodeURIComponent(location.pathname)}`;
      link.textContent = "Log in to run backtests.";
      showBanner("", { html: link });
      setConnection("Not logged in", "warn");
      return;
    }
    if (activeRun !== null || pending) {
      // The server stops a run whose socket closes: it will not resume.
      showBanner(
        activeRun !== null
          ? `The connection dropped, so the server stopped run #${activeRun} at ${completed} of ${total} results.`
          : "The connection dropped before the run started.",
        { rerun: true },
      );
      setProgress("interrupted");
      activeRun = null;
      pending = false;
      syncButtons();
    }
    // Exponential backoff with jitter, capped at 15 s.
    const delay = Math.min(15000, 500 * 2 ** attempt) * (0.8 + Math.random() * 0.4);
    attempt += 1;
    setConnection(`Disconnected; reconnecting in ${Math.ceil(delay / 1000)} s (attempt ${attempt})`, "warn");
    setTimeout(connect, delay);
  });
}

function handle(msg) {
  switch (msg.type) {
    case "start":
      pending = false;
      activeRun = msg.run_id;
      total = msg.total;
      completed = 0;
      finalElapsed = null;
      startedAt = performance.now();
      clearRows();
      $("summary").hidden = true;
      $("heatmap-wrap").hidden = true;
      $("progress").classList.remove("done", "stopped");
      // Jump back to empty rather than sliding down from the last run's 100%.
      $("progress-bar").style.transition = "none";
      $("progress-bar").style.width = "0";
      void $("progress-bar").offsetWidth;
      $("progress-bar").style.transition = "";
      syncButtons();
      setProgress("");
      // On a phone the results sit below the form: bring them into view.
      if (matchMedia("(max-width: 900px)").matches) {
        document.querySelector(".results-panel").scrollIntoView({ behavior: "smooth" });
      }
      break;
    case "result":
      if (activeRun === null) return; // a late message of a run we left
      completed = msg.completed;
      total = msg.total;
      upsertRow(msg.data);
      queueHeatmap();
      setProgress();
      break;
    case "complete":
      if (msg.run_id !== activeRun) return;
      activeRun = null;
      completed = total;
      finalElapsed = msg.elapsed_s;
      syncButtons();
      $("progress").classList.add("done");
      setProgress("done");
      renderSummary(msg.summary, msg.run_id, msg.elapsed_s);
      break;
    case "cancelled":
      activeRun = null;
      pending = false;
      finalElapsed = startedAt ? (performance.now() - startedAt) / 1000 : 0;
      syncButtons();
      $("progress").classList.add("stopped");
      setProgress("cancelled");
      break;
    case "error":
      if (msg.run_id !== undefined && msg.run_id === activeRun) {
        activeRun = null; // the run failed on the server
        finalElapsed = (performance.now() - startedAt) / 1000;
        $("progress").classList.add("stopped");
        setProgress("failed");
      } else if (pending) {
        // The server refused the request: show what the bar said before.
        if (startedAt) setProgress();
        else $("progress-text").textContent = "Idle";
      }
      pending = false;
      syncButtons();
      if (Array.isArray(msg.errors) && msg.errors.length) {
        for (const [field, message] of msg.errors) showError(field, message);
      } else {
        showError(msg.field, msg.message);
      }
      break;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const message = buildRequest();
  if (!message) return;
  if (!send(message)) {
    showBanner("Not connected to the server; the run starts as soon as the connection is back.");
    queued = message;
    return;
  }
  startRequest(message);
});

$("cancel-button").addEventListener("click", () => {
  if (!send({ type: "cancel" })) showBanner("Not connected: the server already stopped the run.");
});

$("rerun-button").addEventListener("click", () => {
  if (!lastRequest) return;
  clearErrors();
  if (send(lastRequest)) startRequest(lastRequest);
  else {
    queued = lastRequest;
    showBanner("Waiting for the connection; the run starts as soon as it is back.");
  }
});

connect();
