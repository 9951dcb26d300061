// The live sweep page: a form for two axes, the websocket, and a heatmap that
// fills in as combinations finish. Cell events are queued and handed to the
// heatmap, the progress bar and the best list once per animation frame.
import { Heatmap } from "./heatmap.js";
import { openCell, renderBest } from "./panels.js";
import { renderWalkForward } from "./walkforward.js";

const $ = (id) => document.getElementById(id);
const data = JSON.parse($("sweep-page-data").textContent);
const byKey = Object.fromEntries(data.strategies.map((s) => [s.key, s]));
const metrics = Object.fromEntries(data.metrics.map((m) => [m.key, m]));
const base = data.urls.base;
// Starting ranges per strategy (the SMA ones are the design's sweep S).
const PRESETS = {
  sma_crossover: { fast: [5, 50, 5], slow: [20, 200, 10] },
  ema_crossover: { fast: [5, 50, 5], slow: [20, 200, 10] },
  macd_crossover: { fast: [4, 20, 2], slow: [20, 60, 5], signal: [5, 15, 2] },
  rsi_reversion: { period: [5, 30, 5], lower: [15, 40, 5], upper: [60, 85, 5] },
  bollinger_reversion: { period: [10, 50, 5], std: [1, 3, 0.5] },
  donchian_breakout: { entry: [10, 60, 5], exit: [5, 30, 5] },
};

// ---- the form ---------------------------------------------------------------------
for (const s of data.strategies) $("strategy").add(new Option(s.name, s.key));
for (const m of data.metrics) $("metric").add(new Option(m.label, m.key));
for (const c of data.coins) {
  const label = document.createElement("label");
  label.className = "coin";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.value = c.symbol;
  box.checked = true;
  label.append(box, c.symbol);
  $("coin-list").append(label);
}
const coinBoxes = () => [...$("coin-list").querySelectorAll("input")];
function countCoins() {
  const n = coinBoxes().filter((b) => b.checked).length;
  $("coin-count").textContent = `${n} of ${data.coins.length}`;
}
$("coin-list").addEventListener("change", countCoins);
$("coins-all").addEventListener("click", () => { coinBoxes().forEach((b) => { b.checked = true; }); countCoins(); });
$("coins-none").addEventListener("click", () => { coinBoxes().forEach((b) => { b.checked = false; }); countCoins(); });
countCoins();

// Starting ranges of the risk settings, when one is an axis.
const RISK_PRESETS = {
  stop_loss_pct: [2, 10, 2], take_profit_pct: [5, 30, 5], trailing_stop_pct: [2, 10, 2],
  position_size: [0.25, 1, 0.25],
};
const riskAxes = new Set(data.risk_axes.map((f) => f.name));

function fillRange(axis) {
  const strategy = $("strategy").value;
  const name = $(`${axis}-param`).value;
  if (!name) return;
  const spec = byKey[strategy].params.find((p) => p.name === name);
  const preset = PRESETS[strategy]?.[name] ?? RISK_PRESETS[name]
    ?? [spec.min, Math.min(spec.max, spec.default * 2), spec.type === "int" ? 1 : 0.5];
  [$(`${axis}-start`).value, $(`${axis}-stop`).value, $(`${axis}-step`).value] = preset;
}

function renderAxes() {
  const params = byKey[$("strategy").value].params;
  for (const axis of ["x", "y"]) {
    const select = $(`${axis}-param`);
    select.replaceChildren();
    if (axis === "y") select.add(new Option("(none: one row)", ""));
    for (const p of params) select.add(new Option(p.name, p.name));
    for (const f of data.risk_axes) select.add(new Option(`${f.label} (risk)`, f.name));
  }
  $("x-param").value = params[0].name;
  $("y-param").value = params[1]?.name ?? "";
  fillRange("x");
  fillRange("y");
  syncY();
}
function syncY() {
  const none = !$("y-param").value;
  for (const id of ["y-start", "y-stop", "y-step"]) $(id).disabled = none;
}
$("strategy").addEventListener("change", renderAxes);
// Opened from the strategy editor (or a link): /sweeps/?strategy=KEY.
const asked = new URLSearchParams(window.location.search).get("strategy");
if (asked && byKey[asked]) $("strategy").value = asked;
$("x-param").addEventListener("change", () => fillRange("x"));
$("y-param").addEventListener("change", () => { fillRange("y"); syncY(); });
renderAxes();

function clearErrors() {
  document.querySelectorAll("[data-error-for]").forEach((e) => { e.textContent = ""; });
  document.querySelectorAll(".row-errors").forEach((e) => e.replaceChildren());
  document.querySelectorAll("#sweep-form [aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  $("banner").hidden = true;
}
// A server message names its field ("train_bars: ..."); under the field it need not.
function tidy(field, message) {
  for (const prefix of [field, field?.split(".").pop()]) {
    if (prefix && message.startsWith(`${prefix}: `)) {
      const rest = message.slice(prefix.length + 2);
      return rest.charAt(0).toUpperCase() + rest.slice(1);
    }
  }
  return message;
}
// Show a message by the input it is about. Fields sharing a row are too narrow
// for a sentence: theirs goes in the row's error line, full width, named by
// the field's label, and the input is marked invalid and described by it.
function showError(field, message) {
  let slot = document.querySelector(`[data-error-for="${field}"]`);
  if (!slot && field?.startsWith("grid.")) {
    const name = field.slice(5);
    slot = $(name === $("y-param").value ? "y-error" : "x-error");
  }
  if (!slot) slot = field?.startsWith("params.") ? $("x-error") : null;
  if (!slot) {
    showBanner(message);
    return;
  }
  const text = tidy(field, message);
  const input = slot.closest(".field")?.querySelector("input, select");
  input?.setAttribute("aria-invalid", "true");
  const shared = slot.closest(".row")?.nextElementSibling;
  if (input && shared?.classList.contains("row-errors")) {
    const line = document.createElement("p");
    line.className = "field-error";
    line.id = `${input.id}-error`;
    line.textContent = `${input.labels[0]?.textContent.trim() ?? field}: ${text}`;
    shared.append(line);
    input.setAttribute("aria-describedby", line.id);
  } else {
    slot.textContent = text;
  }
  (input ?? slot).scrollIntoView({ block: "center" });
}
function showBanner(message) {
  $("banner-text").textContent = message;
  $("banner").hidden = false;
}

function buildRequest() {
  const axis = (a) => ({
    start: Number($(`${a}-start`).value),
    stop: Number($(`${a}-stop`).value),
    step: Number($(`${a}-step`).value),
  });
  const grid = { [$("x-param").value]: axis("x") };
  const y = $("y-param").value;
  if (y) {
    if (y === $("x-param").value) {
      $("y-error").textContent = "Pick two different parameters.";
      return null;
    }
    grid[y] = axis("y");
  }
  const symbols = coinBoxes().filter((b) => b.checked).map((b) => b.value);
  if (!symbols.length) {
    showError("symbols", "Pick at least one coin.");
    return null;
  }
  const request = {
    type: "sweep",
    strategy: $("strategy").value,
    grid,
    objective: $("metric").value,
    fee: Number($("fee").value),
    interval: $("interval").value,
    slippage_bps: Number($("slippage_bps").value || 0),
  };
  // Risk settings that differ from the defaults, unless an axis varies them.
  for (const input of document.querySelectorAll("[data-risk]")) {
    const text = input.value.trim();
    if (text === "" || input.name in grid || text === input.dataset.default) continue;
    request[input.name] = input.tagName === "SELECT" ? text : Number(text);
  }
  if (symbols.length < data.coins.length) request.symbols = symbols;
  if ($("start").value) request.start = $("start").value;
  if ($("end").value) request.end = $("end").value;
  return request;
}

// ---- the settings in the address ----------------------------------------------------
// As on the run page: a sweep's settings are written to the address when it is
// sent (x=name:start:stop:step), so a reload or a shared link fills the form again.
const SCALARS = ["strategy", "objective", "fee", "interval", "slippage_bps", "start", "end"];

function toQuery(request) {
  const q = new URLSearchParams();
  for (const key of SCALARS) if (request[key] !== undefined) q.set(key, String(request[key]));
  const [x, y] = Object.entries(request.grid);
  for (const [axis, entry] of [["x", x], ["y", y]]) {
    if (entry) q.set(axis, [entry[0], entry[1].start, entry[1].stop, entry[1].step].join(":"));
  }
  if (request.symbols) q.set("symbols", request.symbols.join(","));
  for (const input of document.querySelectorAll("[data-risk]")) {
    if (request[input.name] !== undefined) q.set(input.name, String(request[input.name]));
  }
  return q;
}

function fromQuery(q) {
  if (!q.has("strategy") || !byKey[q.get("strategy")]) return;
  $("strategy").value = q.get("strategy");
  renderAxes();
  for (const axis of ["x", "y"]) {
    const [name, ...range] = (q.get(axis) ?? "").split(":");
    const select = $(`${axis}-param`);
    if (axis === "y" && !q.has("y")) select.value = "";
    if (!name || ![...select.options].some((o) => o.value === name)) continue;
    select.value = name;
    if (range.length === 3) {
      [$(`${axis}-start`).value, $(`${axis}-stop`).value, $(`${axis}-step`).value] = range;
    }
  }
  syncY();
  if (q.has("objective") && metrics[q.get("objective")]) $("metric").value = q.get("objective");
  for (const key of ["fee", "interval", "slippage_bps", "start", "end"]) {
    if (q.has(key)) $(key).value = q.get(key);
  }
  for (const input of document.querySelectorAll("[data-risk]")) {
    if (q.has(input.name)) input.value = q.get(input.name);
  }
  if (q.has("symbols")) {
    const wanted = new Set(q.get("symbols").split(","));
    coinBoxes().forEach((b) => { b.checked = wanted.has(b.value); });
    countCoins();
  }
}
fromQuery(new URLSearchParams(location.search));

// A finished walk-forward is stored: its link goes under the result and its
// number into the address, so a reload draws it again from the server.
function showStoredWalkForward(id, fresh) {
  if (fresh) {
    const url = new URL(location.href);
    url.searchParams.set("wf", String(id));
    history.replaceState(null, "", url);
  }
  const link = document.createElement("a");
  link.href = `${base}walk-forward/${id}/`;
  link.textContent = `Walk-forward #${id} (kept)`;
  $("wf-summary").append(" · ", link);
}
const storedWalkForward = Number(new URLSearchParams(location.search).get("wf"));
if (Number.isInteger(storedWalkForward) && storedWalkForward > 0) {
  fetch(`${base}walk-forward/${storedWalkForward}/export.json`)
    .then((response) => (response.ok ? response.json() : null))
    .then((stored) => {
      if (!stored) return;
      $("results-empty").hidden = true;
      renderWalkForward(stored.result, stored.walk_forward.elapsed_s ?? 0);
      showStoredWalkForward(storedWalkForward, false);
    });
}

// ---- progress, heatmap, best list --------------------------------------------------
const heatmap = new Heatmap($("heatmap-canvas"), $("heatmap-tip"), {
  onClick: (cell) => openCell(base, sweepId, cell, names),
});
let sweepId = null, names = [], total = 0, completed = 0, startedAt = 0;
let finalElapsed = null, active = false, pending = false, queue = [], frame = 0, timer = null;
const cells = [];

function metric() { return metrics[$("metric").value]; }

function setProgress(note = "") {
  const pct = total ? Math.floor((100 * completed) / total) : 0;
  $("progress-bar").style.width = `${pct}%`;
  $("progress").setAttribute("aria-valuenow", String(pct));
  const elapsed = finalElapsed ?? (startedAt ? (performance.now() - startedAt) / 1000 : 0);
  $("progress-text").textContent =
    `${completed} / ${total} combinations · ${pct}% · ${elapsed.toFixed(2)} s${note ? ` · ${note}` : ""}`;
}

function flush() {
  frame = 0;
  if (!queue.length) return;
  const batch = queue;
  queue = [];
  cells.push(...batch);
  heatmap.add(batch);
  completed = batch[batch.length - 1].completed;
  setProgress();
  renderBest($("best-list"), cells, metric(), names, (cell) => openCell(base, sweepId, cell, names));
}

$("metric").addEventListener("change", () => {
  heatmap.setMetric(metric());
  renderBest($("best-list"), cells, metric(), names, (cell) => openCell(base, sweepId, cell, names));
});

function syncButtons() {
  $("run-button").disabled = pending || active;
  $("cancel-button").disabled = !active;
  clearInterval(timer);
  if (active) timer = setInterval(() => setProgress(), 200);
}

// ---- websocket ----------------------------------------------------------------------
let socket = null, attempt = 0;
// The sweep this tab follows: it goes on on the server through a reload or a
// dropped connection, and the page attaches to it again (its cells so far,
// then the live ones).
const FOLLOWED = "btlab.sweep";
const followed = () => Number(sessionStorage.getItem(FOLLOWED)) || null;
const follow = (id) => (id ? sessionStorage.setItem(FOLLOWED, String(id)) : sessionStorage.removeItem(FOLLOWED));

function setConnection(text, state) {
  $("connection").textContent = text;
  $("connection").className = `status ${state}`;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/backtests/`);
  socket.addEventListener("open", () => {
    attempt = 0;
    setConnection("Connected", "ok");
    const id = followed();
    if (id) {
      pending = true;
      syncButtons();
      $("progress-text").textContent = `Following sweep #${id}…`;
      socket.send(JSON.stringify({ type: "attach", sweep_id: id }));
    }
  });
  socket.addEventListener("message", (event) => handle(JSON.parse(event.data)));
  socket.addEventListener("close", () => {
    if (active || pending) {
      showBanner("The connection dropped; the sweep goes on on the server, and this page follows it again when it reconnects.");
      setProgress("reconnecting");
      active = pending = false;
      syncButtons();
    }
    const delay = Math.min(15000, 500 * 2 ** attempt);
    attempt += 1;
    setConnection(`Disconnected; reconnecting in ${Math.ceil(delay / 1000)} s`, "warn");
    setTimeout(connect, delay);
  });
}

function handle(msg) {
  switch (msg.type) {
    case "sweep_start":
      pending = false;
      active = true;
      sweepId = msg.sweep_id;
      follow(sweepId);
      names = Object.keys(msg.axes);
      total = msg.combinations;
      completed = 0;
      finalElapsed = null;
      startedAt = performance.now() - 1000 * (msg.elapsed_s ?? 0);
      if (msg.attached) $("banner").hidden = true;
      cells.length = 0;
      queue = [];
      heatmap.setup(msg.axes, metric());
      $("results-empty").hidden = true;
      $("heatmap-wrap").hidden = false;
      $("best-wrap").hidden = false;
      $("cell-panel").hidden = true;
      $("sweep-summary").hidden = true;
      $("progress").classList.remove("done", "stopped");
      $("skipped-note").textContent = msg.skipped
        ? `${msg.skipped} invalid combination${msg.skipped === 1 ? "" : "s"} skipped.`
        : "";
      syncButtons();
      setProgress();
      break;
    case "cell":
      if (msg.sweep_id !== sweepId) break;
      queue.push(msg);
      if (!frame) frame = requestAnimationFrame(flush);
      break;
    case "sweep_complete":
      cancelAnimationFrame(frame);
      flush();
      follow(null);
      active = false;
      finalElapsed = msg.elapsed_s;
      $("progress").classList.add("done");
      if (msg.best) heatmap.setBest(msg.best.index);
      showSummary(msg);
      syncButtons();
      setProgress("done");
      break;
    case "cancelled":
      cancelAnimationFrame(frame);
      flush();
      follow(null);
      active = pending = false;
      finalElapsed = (performance.now() - startedAt) / 1000;
      $("progress").classList.add("stopped");
      syncButtons();
      setProgress("cancelled");
      break;
    case "walk_forward_start":
      $("progress-text").textContent =
        `Walking forward over ${msg.combinations} combinations…`;
      break;
    case "walk_forward_complete":
      pending = false;
      syncButtons();
      $("wf-button").disabled = false;
      $("progress-text").textContent = "Walk-forward done";
      $("results-empty").hidden = true;
      renderWalkForward(msg.result, msg.elapsed_s);
      if (msg.walk_forward_id) showStoredWalkForward(msg.walk_forward_id, true);
      break;
    case "notice":
      // The job goes on (a worker stopped and its part was sent again).
      showBanner(msg.message);
      break;
    case "error":
      pending = false;
      $("wf-button").disabled = false;
      if (msg.sweep_id !== undefined) active = false;
      // A failed sweep, or one this page can no longer attach to: stop following.
      if (msg.sweep_id !== undefined || msg.field === "sweep_id") follow(null);
      showError(msg.field, msg.message);
      syncButtons();
      if (!active) $("progress-text").textContent = "Idle";
      break;
    default:
      break;
  }
}

function showSummary(msg) {
  const box = $("sweep-summary");
  box.replaceChildren();
  const link = document.createElement("a");
  link.href = `${base}${msg.sweep_id}/`;
  link.textContent = `Sweep #${msg.sweep_id}`;
  box.append(link, ` · ${completed} combinations in ${msg.elapsed_s.toFixed(2)} s`);
  box.hidden = false;
}

$("sweep-form").addEventListener("submit", (event) => {
  event.preventDefault();
  clearErrors();
  const request = buildRequest();
  if (!request || socket?.readyState !== WebSocket.OPEN) {
    if (request) showBanner("Not connected yet; try again in a moment.");
    return;
  }
  pending = true;
  syncButtons();
  $("progress-text").textContent = "Starting…";
  history.replaceState(null, "", `?${toQuery(request)}`);
  socket.send(JSON.stringify(request));
});
$("wf-button").addEventListener("click", () => {
  clearErrors();
  const request = buildRequest();
  if (!request || socket?.readyState !== WebSocket.OPEN) return;
  request.type = "walk_forward";
  request.train_bars = Number($("train-bars").value);
  request.test_bars = Number($("test-bars").value);
  if ($("folds").value) request.folds = Number($("folds").value);
  $("wf-button").disabled = true;
  $("progress-text").textContent = "Starting the walk-forward…";
  socket.send(JSON.stringify(request));
});
$("cancel-button").addEventListener("click", () => {
  socket?.send(JSON.stringify({ type: "cancel" }));
});

connect();
