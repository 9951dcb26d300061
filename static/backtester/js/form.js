// The run form: built from the strategy schemas, checked as the server checks it.
import { $, demoTag, fromScript, riskLabel } from "./common.js";

const strategies = fromScript("strategies-data");
const coins = fromScript("coins-data");
const range = fromScript("range-data");
const byKey = Object.fromEntries(strategies.map((s) => [s.key, s]));
// Cross-parameter rules, as published with each strategy's schema (the very
// checks the server applies): rule name -> (params, check) -> [field, message] | null.
const RULES = {
  less_than: (params, { low, high }) => {
    const a = params[low], b = params[high];
    return a !== undefined && b !== undefined && a >= b
      ? [low, `Must be less than ${high} (${b}).`] : null;
  },
  // A close lies at most sqrt(n - 1) deviations below the mean of its window.
  below_sqrt_window: (params, { period, std }) => {
    const n = params[period], k = params[std];
    if (n === undefined || k === undefined) return null;
    const limit = Math.sqrt(n - 1);
    return k >= limit
      ? [std, `Must be less than √(${period} − 1) = ${limit.toPrecision(4)}.`]
      : null;
  },
};
// Server error fields that have no input of their own.
const FIELD_ALIASES = { strategies: "strategy" };

const form = $("run-form");
const strategySelect = $("strategy");
const paramFields = $("param-fields");

// ---- fields ----------------------------------------------------------------------
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
  if (c.synthetic) label.append(demoTag());
  if (c.first_bar) {
    label.title = `${c.name || c.symbol}: ${c.first_bar.slice(0, 10)} to ${c.last_bar.slice(0, 10)}`
      + (c.synthetic ? " (synthetic demo prices)" : "");
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

// ---- risk: empty stop fields are off; the summary says what is on ------------------
const riskInputs = [...document.querySelectorAll("[data-risk]")];
function riskValues() {
  const risk = {};
  for (const input of riskInputs) {
    const text = input.value.trim();
    if (text === "") continue;
    risk[input.name] = input.tagName === "SELECT" ? text : Number(text);
  }
  return risk;
}
function updateRiskState() {
  $("risk-state").textContent = riskLabel(riskValues()) || "off";
}
for (const input of riskInputs) {
  input.addEventListener("input", updateRiskState);
  input.addEventListener("change", updateRiskState);
}
if (riskInputs.length) updateRiskState();

// ---- errors ---------------------------------------------------------------------
export function clearErrors() {
  document.querySelectorAll(".field-error").forEach((el) => (el.textContent = ""));
  document.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  showBanner("");
}

export function showError(field, message) {
  const name = FIELD_ALIASES[field] ?? field;
  const el = name && document.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
  if (!el || el.closest("[hidden]")) return showBanner(message);
  const group = el.closest("details");
  if (group) group.open = true;
  // Shown under its own field, a server message need not name it again
  // ("start: must be ..." reads "Must be ..." under Start).
  for (const prefix of [field, name, field?.split(".").pop()]) {
    if (prefix && message.startsWith(`${prefix}: `)) {
      message = message.slice(prefix.length + 2);
      message = message.charAt(0).toUpperCase() + message.slice(1);
      break;
    }
  }
  el.textContent = el.textContent ? `${el.textContent} ${message}` : message;
  if (name === "symbols") {
    // The coins themselves are what to fix, not the filter box.
    $("coin-list").setAttribute("aria-invalid", "true");
    return el;
  }
  const input = el.parentElement.querySelector("input:not([type=checkbox]), select");
  if (input) input.setAttribute("aria-invalid", "true");
  return el;
}

// Bring the first problem into view above the sticky Run bar and focus what fixes it.
export function focusFirstError() {
  const invalid = document.querySelector("[aria-invalid=true]");
  if (!invalid) return;
  const target = invalid.id === "coin-list"
    ? invalid.querySelector("label:not([hidden]) input") : invalid;
  target?.focus({ preventScroll: true });
  const error = invalid.closest("fieldset, .field")?.querySelector(".field-error:not(:empty)");
  (error ?? invalid).scrollIntoView({ block: "center" });
}

export function showBanner(message, { rerun = false, html = null } = {}) {
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

// A risk value with the schema's bounds, which may be open ("0 < stop < 100").
function riskNumber(input) {
  const text = input.value.trim();
  const value = Number(text);
  const min = Number(input.min), max = Number(input.max);
  const minOpen = "minOpen" in input.dataset, maxOpen = "maxOpen" in input.dataset;
  if (!Number.isFinite(value)) {
    showError(input.name, "Enter a number, or leave it empty.");
  } else if (minOpen ? value <= min : value < min) {
    showError(input.name, `Must be ${minOpen ? "above" : "at least"} ${min}.`);
  } else if (maxOpen ? value >= max : value > max) {
    showError(input.name, `Must be ${maxOpen ? "below" : "at most"} ${max}.`);
  } else {
    return value;
  }
  return null;
}

// Bars a strategy needs before it can hold a position: its longest window
// (MACD: the slow EMA, then the signal line's own EMA on top of it).
function warmup(key, params) {
  if (key === "macd_crossover") return params.slow + params.signal;
  const windows = Object.entries(params)
    .filter(([name]) => ["fast", "slow", "period", "entry", "exit"].includes(name))
    .map(([, value]) => value);
  return windows.length ? Math.max(...windows) : 0;
}

function defaults(key) {
  return Object.fromEntries(byKey[key].params.map((p) => [p.name, p.default]));
}

// A range none of the chosen coins has a bar in cannot run (the server refuses
// it too); a range shorter than the warm-up runs but cannot trade: say so first.
function rangeProblem(symbols, start, end, message) {
  const HOUR = 3_600_000;
  const chosen = coins.filter((c) => c.first_bar && (!symbols.length || symbols.includes(c.symbol)));
  if (!chosen.length) return null;
  const lo = start ? Date.parse(`${start}T00:00:00Z`) : -Infinity;
  const hi = end ? Date.parse(`${end}T00:00:00Z`) : Infinity;
  const spans = chosen.map((c) => [Date.parse(c.first_bar), Date.parse(c.last_bar) + HOUR]);
  const inside = spans.filter(([first, last]) => first < hi && last > lo);
  if (!inside.length) {
    const day = (ms) => new Date(ms).toISOString().slice(0, 10);
    return { error: `No prices in this range: the data of these coins runs from `
      + `${day(Math.min(...spans.map((s) => s[0])))} to ${day(Math.max(...spans.map((s) => s[1])) - HOUR)}.` };
  }
  const hours = Math.max(...inside.map(([first, last]) => (Math.min(hi, last) - Math.max(lo, first)) / HOUR));
  // Bars of the chosen interval the range holds (minutes per bar: 1m ... 1d).
  const MINUTES = { "1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440 };
  const bars = Math.floor((hours * 60) / (MINUTES[message.interval] ?? 60));
  const keys = message.strategy ? [message.strategy] : Object.keys(byKey);
  const need = Math.max(...keys.map((k) => warmup(k, message.params && message.strategy ? message.params : defaults(k))));
  if (bars <= need) {
    const unit = { "1d": "daily", "1h": "hourly" }[message.interval] ?? `${message.interval}`;
    return { warning: `This range holds at most ${bars} ${unit} bars, but the strategy needs ${need} `
      + `bars of warm-up before it can trade: it will make no trades. Press Run again to run it anyway.` };
  }
  return null;
}

export function buildRequest() {
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
    for (const check of byKey[key].checks ?? []) {
      // A rule this page does not know is still applied by the server.
      const problem = RULES[check.rule]?.(message.params, check);
      if (problem) {
        showError(`params.${problem[0]}`, problem[1]);
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
  if (ok && (start || end)) {
    const problem = rangeProblem(symbols, start, end, message);
    if (problem?.error) {
      showError("start", problem.error);
      ok = false;
    } else if (problem?.warning) {
      message.warning = problem.warning; // said before sending (run.js)
    }
  }
  for (const name of ["fee", "slippage_bps"]) {
    const value = numberField($(name), name);
    if (value === null) ok = false;
    else message[name] = value;
  }
  if ($("no_cache")?.checked) message.no_cache = true;
  // Only the settings that differ from the defaults are sent: a request without
  // them is today's long, all-in run.
  for (const input of riskInputs) {
    const text = input.value.trim();
    if (text === "") continue;
    if (input.tagName === "SELECT") {
      if (text !== input.dataset.default) message[input.name] = text;
      continue;
    }
    if (input.dataset.default !== "" && Number(text) === Number(input.dataset.default)) continue;
    const value = riskNumber(input);
    if (value === null) ok = false;
    else message[input.name] = value;
  }
  if (!ok) focusFirstError();
  return ok ? message : null;
}

// ---- the settings in the URL -----------------------------------------------------------
// A run's settings are written to the address when it is sent, so a link shares
// them and Back shows exactly what was run: the form is rebuilt from the URL,
// never left as the browser restored it.
const NOT_SCALAR = new Set(["type", "strategy", "strategies", "params", "symbols", "no_cache"]);

export function toQuery(message) {
  const query = new URLSearchParams();
  query.set("strategy", message.strategy ?? "all");
  for (const [name, value] of Object.entries(message.params ?? {})) query.set(`p.${name}`, value);
  if (message.symbols) query.set("symbols", message.symbols.join(","));
  for (const [name, value] of Object.entries(message)) {
    if (!NOT_SCALAR.has(name) && value !== null && value !== undefined && typeof value !== "object") {
      query.set(name, String(value));
    }
  }
  return query;
}

// A day as the date inputs take it; anything else (2024-13-45) they would blank.
const isDay = (text) => /^\d{4}-\d{2}-\d{2}$/.test(text)
  && !Number.isNaN(Date.parse(`${text}T00:00:00Z`))
  && new Date(`${text}T00:00:00Z`).toISOString().slice(0, 10) === text;
// Keys of the address that are not form inputs but are understood.
const ADDRESS_ONLY = new Set(["strategy", "symbols", "start", "end", "run", "sort"]);

// Fill the form from the address; return what it had to drop, as [value, why]
// pairs, so the page can say so rather than silently run other settings.
export function applyQuery(query) {
  clearErrors();
  const dropped = [];
  const key = query.get("strategy");
  strategySelect.value = key === "all" || byKey[key] ? key : strategies[0].key;
  const chosen = strategySelect.value;
  if (key !== null && key !== chosen) {
    dropped.push([`strategy=${key}`, `no such strategy; showing ${byKey[chosen].name}`]);
  }
  if (chosen !== "all") {
    typed[chosen] = {};
    const names = new Set(byKey[chosen].params.map((p) => p.name));
    for (const [name, value] of query) {
      if (!name.startsWith("p.")) continue;
      const param = name.slice(2);
      if (!names.has(param)) {
        dropped.push([`${name}=${value}`, `not a parameter of ${byKey[chosen].name}`]);
      } else if (value.trim() === "" || !Number.isFinite(Number(value))) {
        dropped.push([`${name}=${value}`, "not a number; the default is used"]);
      } else {
        typed[chosen][param] = value;
      }
    }
  }
  renderParams();
  const wanted = query.has("symbols") ? new Set(query.get("symbols").split(",")) : null;
  const known = new Set(coins.map((c) => c.symbol));
  for (const symbol of wanted ?? []) {
    if (!known.has(symbol)) dropped.push([symbol, "no such coin"]);
  }
  $("coin-filter").value = "";
  for (const box of coinBoxes()) {
    box.checked = wanted ? wanted.has(box.value) : true;
    box.parentElement.hidden = false;
  }
  updateCoinCount();
  for (const name of ["start", "end"]) {
    const value = query.get(name) ?? "";
    const ok = value === "" || isDay(value);
    if (!ok) dropped.push([`${name}=${value}`, "not a day (YYYY-MM-DD); left empty"]);
    $(name).value = ok ? value : "";
  }
  const years = [...chips].find((chip) => {
    const n = Number(chip.dataset.years);
    if (!n) return !$("start").value && !$("end").value;
    if ($("end").value || !range.last) return false;
    const d = new Date(range.last);
    d.setUTCFullYear(d.getUTCFullYear() - n);
    return $("start").value === d.toISOString().slice(0, 10);
  });
  pressChip(years ?? null);
  // Every other setting has an input of the same name (fee, slippage_bps and
  // whatever the form grows); one missing from the URL takes its default.
  for (const input of form.querySelectorAll("input[name], select[name]")) {
    if (NOT_SCALAR.has(input.name) || ["start", "end"].includes(input.name)) continue;
    if (input.closest("#param-fields")) continue;
    let value = query.get(input.name);
    const label = input.labels?.[0]?.textContent.trim().toLowerCase() ?? input.name;
    if (input.tagName === "SELECT" && value !== null
        && ![...input.options].some((o) => o.value === value)) {
      dropped.push([`${input.name}=${value}`, `not a choice of ${label}; the default is used`]);
      value = null;
    } else if (input.type === "number" && value !== null
        && (value.trim() === "" || !Number.isFinite(Number(value)))) {
      dropped.push([`${input.name}=${value}`, `${label} is not a number; the default is used`]);
      value = null;
    }
    if (input.type === "checkbox") input.checked = value === null ? input.defaultChecked : value === "true";
    else if (input.tagName === "SELECT") {
      const fallback = [...input.options].find((o) => o.defaultSelected) ?? input.options[0];
      input.value = value ?? fallback?.value ?? "";
    } else input.value = value ?? input.defaultValue;
  }
  if (riskInputs.length) updateRiskState();
  const inputs = new Set([...form.querySelectorAll("[name]")].map((i) => i.name));
  for (const [name, value] of query) {
    if (!name.startsWith("p.") && !ADDRESS_ONLY.has(name) && !inputs.has(name)) {
      dropped.push([`${name}=${value}`, "not a setting"]);
    }
  }
  return dropped;
}

// List what a link asked for that the form could not take, and why.
export function showDropped(dropped) {
  const notice = $("url-notice");
  if (!notice) return;
  const list = notice.querySelector("ul");
  list.replaceChildren(...dropped.map(([value, why]) => {
    const item = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = value;
    item.append(code, `: ${why}`);
    return item;
  }));
  notice.hidden = !dropped.length;
}
