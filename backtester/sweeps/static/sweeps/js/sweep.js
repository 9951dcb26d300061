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

function fillRange(axis) {
  const strategy = $("strategy").value;
  const name = $(`${axis}-param`).value;
  if (!name) return;
  const spec = byKey[strategy].params.find((p) => p.name === name);
  const preset = PRESETS[strategy]?.[name]
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
  $("banner").hidden = true;
}
function showError(field, message) {
  let slot = document.querySelector(`[data-error-for="${field}"]`);
  if (!slot && field?.startsWith("grid.")) {
    const name = field.slice(5);
    slot = $(name === $("y-param").value ? "y-error" : "x-error");
  }
  if (!slot) slot = field?.startsWith("params.") ? $("x-error") : null;
  if (slot) slot.textContent = message;
  else showBanner(message);
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
  };
  if (symbols.length < data.coins.length) request.symbols = symbols;
  if ($("start").value) request.start = $("start").value;
  if ($("end").value) request.end = $("end").value;
  return request;
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
