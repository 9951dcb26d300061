// The live portfolio page: a form (strategy, parameters from the schema, slots,
// rank, stops, basket), the websocket, per-coin progress while the signals
// compute, then the account's charts, contributions and trades.
import { $, fromScript } from "../../backtester/js/common.js";
import { SweepMode } from "./psweep_live.js";
import { renderResult } from "./results.js";

const data = fromScript("portfolio-page-data");
const STOP_LABELS = { stop_loss_pct: "Stop %", take_profit_pct: "Target %", trailing_stop_pct: "Trail %" };
const byKey = Object.fromEntries(data.strategies.map((s) => [s.key, s]));
let socket = null;
let attempt = 0;
let active = null; // the running portfolio's id (or sweep's, in sweep mode)
// The job this tab follows: a reload or a dropped connection attaches to it.
const FOLLOWED = "portfolio.followed";
const followed = () => JSON.parse(sessionStorage.getItem(FOLLOWED) || "null");
const follow = (kind, id) => (id
  ? sessionStorage.setItem(FOLLOWED, JSON.stringify({ kind, id }))
  : sessionStorage.removeItem(FOLLOWED));
let pending = false;
let last = null; // the `portfolio` message of the active run
let startedAt = 0;

// ---- the form ---------------------------------------------------------------------
for (const s of data.strategies) $("strategy").add(new Option(s.name, s.key));
for (const r of data.ranks) $("rank").add(new Option(r, r));
function field(id, label, attrs) {
  const wrap = document.createElement("div");
  wrap.className = "field param-field";
  const lab = document.createElement("label");
  lab.htmlFor = id;
  lab.textContent = label;
  const input = document.createElement("input");
  input.id = id;
  input.type = "number";
  input.step = "any";
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) input[k] = v;
  wrap.append(lab, input);
  return wrap;
}
const sweep = new SweepMode(data, byKey);
function renderParams() {
  const spec = byKey[$("strategy").value];
  $("params").replaceChildren(...spec.params.map((p) =>
    field(`param-${p.name}`, p.name, { value: p.default, min: p.min, max: p.max, title: p.help })));
  sweep.strategyChanged(spec);
}
$("strategy").addEventListener("change", renderParams);
renderParams();
$("stops").replaceChildren(...data.stops.map((s) =>
  field(`stop-${s.name}`, STOP_LABELS[s.name] ?? s.name,
    { placeholder: "off", min: 0, title: s.help })));
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
  $("coin-count").textContent = `${coinBoxes().filter((b) => b.checked).length} of ${data.coins.length}`;
}
$("coin-list").addEventListener("change", countCoins);
$("coins-all").addEventListener("click", () => { coinBoxes().forEach((b) => { b.checked = true; }); countCoins(); });
$("coins-none").addEventListener("click", () => { coinBoxes().forEach((b) => { b.checked = false; }); countCoins(); });
countCoins();

function clearErrors() {
  for (const node of document.querySelectorAll(".field-error")) node.textContent = "";
  $("banner").hidden = true;
}
function showError(field, message) {
  let key = field?.startsWith("params.") ? "params" : field;
  if (key?.startsWith("grid.") && key !== "grid.max_positions") key = "grid.param";
  const slot = key && document.querySelector(`[data-error-for="${key}"]`);
  if (slot) slot.textContent = message;
  else { $("banner").hidden = false; $("banner-text").textContent = message; }
}

function request() {
  const spec = byKey[$("strategy").value];
  const params = {};
  for (const p of spec.params) {
    const value = $(`param-${p.name}`).value.trim();
    if (value !== "") params[p.name] = Number(value);
  }
  const message = { type: "portfolio", strategy: spec.key, params,
    max_positions: Number($("max-positions").value), rank: $("rank").value };
  for (const s of data.stops) {
    const value = $(`stop-${s.name}`).value.trim();
    if (value !== "") message[s.name] = Number(value);
  }
  const symbols = coinBoxes().filter((b) => b.checked).map((b) => b.value);
  if (symbols.length < data.coins.length) message.symbols = symbols;
  if ($("start").value) message.start = $("start").value;
  if ($("end").value) message.end = $("end").value;
  if ($("fee").value !== "") message.fee = Number($("fee").value);
  return message;
}

function syncButtons() {
  $("run-button").disabled = Boolean(active || pending) || socket?.readyState !== WebSocket.OPEN;
  $("cancel-button").disabled = !active;
}
function setProgress(completed, total, text) {
  const pct = total ? Math.round((100 * completed) / total) : 0;
  $("progress").setAttribute("aria-valuenow", String(pct));
  $("progress-bar").style.width = `${pct}%`;
  $("progress-text").textContent = text ?? `${completed} / ${total} coins' signals`;
}

$("portfolio-form").addEventListener("submit", (event) => {
  event.preventDefault();
  clearErrors();
  if (!coinBoxes().some((b) => b.checked)) { showError("symbols", "Pick at least one coin."); return; }
  pending = true;
  syncButtons();
  socket.send(JSON.stringify(sweep.on ? sweep.message(request()) : request()));
});
$("cancel-button").addEventListener("click", () => socket?.send(JSON.stringify({ type: "cancel" })));

function handle(msg) {
  if (msg.portfolio === true) { handleSweep(msg); syncButtons(); return; }
  switch (msg.type) {
    case "start":
      if (msg.portfolio_id === undefined) return;
      pending = false;
      active = msg.portfolio_id;
      follow("run", active);
      $("psweep-results").hidden = true;
      last = null;
      startedAt = performance.now();
      $("results-empty").hidden = true;
      $("portfolio-results").hidden = true;
      delete $("portfolio-results").dataset.ready;
      $("run-link").hidden = true;
      setProgress(0, msg.total);
      break;
    case "progress":
      if (msg.portfolio_id === active) setProgress(msg.completed, msg.total, `${msg.completed} / ${msg.total} coins' signals (${msg.symbol})`);
      break;
    case "portfolio":
      if (msg.portfolio_id === active) last = msg;
      break;
    case "complete": {
      const id = msg.portfolio_id;
      active = null;
      follow(null);
      setProgress(1, 1, `done in ${msg.elapsed_s.toFixed(2)} s`);
      const link = $("run-link");
      const href = data.urls.detail.replace("/0/", `/${id}/`);
      link.replaceChildren("Saved as ", Object.assign(document.createElement("a"), { href, textContent: `portfolio #${id}` }), ".");
      link.hidden = false;
      if (last) renderResult(last, data.metrics, data.urls.trades.replace("/0/", `/${id}/`));
      break;
    }
    case "cancelled":
      active = null;
      follow(null);
      setProgress(0, 1, "cancelled");
      break;
    case "error":
      pending = false;
      // The followed job failed, or is gone: stop following it.
      if (msg.portfolio_id !== undefined || ["portfolio_id", "portfolio_sweep_id"].includes(msg.field)) follow(null);
      if (msg.portfolio_id !== undefined) active = null;
      showError(msg.field, msg.message);
      break;
    default:
      return;
  }
  syncButtons();
}

// The sweep messages (each marked `portfolio: true`): start, cells, the end.
function handleSweep(msg) {
  switch (msg.type) {
    case "sweep_start":
      pending = false;
      active = msg.sweep_id;
      follow("sweep", active);
      startedAt = performance.now();
      $("results-empty").hidden = true;
      $("portfolio-results").hidden = true;
      $("run-link").hidden = true;
      sweep.start(msg);
      setProgress(0, msg.combinations, `0 / ${msg.combinations} cells`);
      break;
    case "cell":
      if (msg.sweep_id !== active) return;
      sweep.cell(msg);
      setProgress(msg.completed, msg.combinations, `${msg.completed} / ${msg.combinations} cells`);
      break;
    case "sweep_complete":
      active = null;
      follow(null);
      setProgress(1, 1, `done in ${msg.elapsed_s.toFixed(2)} s`);
      sweep.complete(msg);
      break;
    case "cancelled":
      active = null;
      follow(null);
      setProgress(0, 1, "cancelled");
      break;
    case "error":
      pending = false;
      active = null;
      follow(null);
      showError(msg.field, msg.message);
      break;
    default:
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/backtests/`);
  socket.addEventListener("open", () => {
    attempt = 0;
    $("connection").textContent = "Connected";
    $("connection").className = "status ok";
    // A job this tab started and has not seen end: follow it again.
    const job = followed();
    if (job && !active) {
      pending = true;
      socket.send(JSON.stringify(job.kind === "sweep"
        ? { type: "attach", portfolio_sweep_id: job.id }
        : { type: "attach", portfolio_id: job.id }));
    }
    syncButtons();
  });
  socket.addEventListener("message", (event) => handle(JSON.parse(event.data)));
  socket.addEventListener("close", () => {
    if (active || pending) {
      showError(null, "The connection dropped; the run goes on on the server and is saved in the portfolio history.");
      active = null;
      pending = false;
    }
    const delay = Math.min(15000, 500 * 2 ** attempt);
    attempt += 1;
    $("connection").textContent = `Disconnected; reconnecting in ${Math.ceil(delay / 1000)} s`;
    $("connection").className = "status warn";
    syncButtons();
    setTimeout(connect, delay);
  });
}
connect();
