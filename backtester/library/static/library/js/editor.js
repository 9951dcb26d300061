// The strategy editor: a textarea with a line-number gutter and a highlighted
// copy of its text underneath; checked on the server as you type (debounced),
// problems shown at their line and column, a parameter panel from the param
// lines, a preview chart, and Save (a new version).
const $ = (id) => document.getElementById(id);
const data = JSON.parse($("editor-data").textContent);
const source = $("source");
const csrf = document.querySelector("#meta-form [name=csrfmiddlewaretoken]").value;
const KEYWORDS = new Set(["param", "int", "float", "in", "step", "long", "short", "when",
  "entry", "exit", "and", "or", "not"]);
const CHECK_DELAY_MS = 300;
let problems = [];
let params = [];
let savedKey = data.key;
let checkTimer = null;
let checkSeq = 0;

async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  let payload = null;
  try { payload = await response.json(); } catch { payload = { error: `server error ${response.status}` }; }
  return { ok: response.ok, status: response.status, payload };
}

// ---- highlighting and the gutter ---------------------------------------------------
const TOKEN = /(#.*$)|(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)(\s*\()?|(\s+|.)/g;

function highlightLine(line, lineNo) {
  const fragment = document.createDocumentFragment();
  const bad = new Set(problems.filter((p) => p.line === lineNo).map((p) => p.col));
  let col = 1;
  for (const match of line.matchAll(TOKEN)) {
    const [text, comment, number, word, call] = match;
    let cls = null;
    if (comment) cls = "tok-comment";
    else if (number) cls = "tok-number";
    else if (word && KEYWORDS.has(word)) cls = "tok-keyword";
    else if (word && call) cls = "tok-function";
    const shown = word ? word : text;
    const span = document.createElement("span");
    if (cls) span.className = cls;
    if (bad.has(col)) span.classList.add("tok-error");
    span.textContent = shown;
    fragment.append(span);
    if (word && call) fragment.append(document.createTextNode(call));
    col += text.length;
  }
  return fragment;
}

function render() {
  const lines = source.value.split("\n");
  const highlight = $("highlight");
  highlight.replaceChildren();
  lines.forEach((line, i) => {
    highlight.append(highlightLine(line, i + 1));
    highlight.append(document.createTextNode("\n"));
  });
  const badLines = new Set(problems.map((p) => p.line));
  const gutter = $("gutter");
  gutter.replaceChildren();
  lines.forEach((_, i) => {
    const number = document.createElement("span");
    number.textContent = String(i + 1);
    if (badLines.has(i + 1)) { number.className = "bad"; number.title = "a problem on this line"; }
    gutter.append(number, document.createTextNode("\n"));
  });
  syncScroll();
}

function syncScroll() {
  $("highlight").scrollTop = source.scrollTop;
  $("highlight").scrollLeft = source.scrollLeft;
  $("gutter").scrollTop = source.scrollTop;
}

// Move the caret to a 1-based line and column (a problem's place).
function goTo(line, col) {
  const lines = source.value.split("\n");
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i += 1) offset += lines[i].length + 1;
  offset += Math.max(0, col - 1);
  source.focus();
  source.setSelectionRange(offset, offset);
}

// ---- checking ----------------------------------------------------------------------
function showProblems() {
  const list = $("problems");
  list.replaceChildren();
  for (const p of problems) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "problem";
    button.dataset.line = p.line;
    button.dataset.col = p.col;
    button.textContent = `line ${p.line}, col ${p.col}: ${p.message}`;
    button.addEventListener("click", () => goTo(p.line, p.col));
    item.append(button);
    list.append(item);
  }
  source.setAttribute("aria-invalid", problems.length ? "true" : "false");
}

function renderParams() {
  const body = $("param-panel").querySelector("tbody");
  // Keep only the values typed over a default: an untouched one follows the
  // param line's new default.
  const kept = Object.fromEntries([...body.querySelectorAll("input")]
    .filter((i) => i.value !== i.dataset.default).map((i) => [i.name, i.value]));
  body.replaceChildren();
  for (const p of params) {
    const row = document.createElement("tr");
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = p.name;
    // The value to preview with comes right after the name, so a narrow
    // screen shows it without scrolling the table sideways.
    const input = document.createElement("input");
    input.name = p.name;
    input.inputMode = "decimal";
    input.dataset.default = String(p.default);
    input.value = kept[p.name] ?? input.dataset.default;
    input.setAttribute("aria-label", `Preview value of ${p.name}`);
    const value = document.createElement("td");
    value.append(input);
    row.append(name, value);
    [p.type, p.default, p.min, p.max, p.step ?? "–"].forEach((text, i) => {
      const cell = document.createElement("td");
      if (i >= 1) cell.className = "num";
      cell.textContent = String(text);
      row.append(cell);
    });
    body.append(row);
  }
}

async function check() {
  const seq = (checkSeq += 1);
  const { ok, payload } = await postJSON(data.urls.check, { source: source.value });
  if (seq !== checkSeq) return; // a newer check is on its way
  const status = $("check-status");
  if (!ok) {
    problems = [];
    status.className = "check-status bad";
    status.textContent = payload.error;
  } else if (payload.ok) {
    problems = [];
    params = payload.params;
    status.className = "check-status ok";
    status.textContent = `No problems: trades ${payload.directions.join(" or ")}.`;
    renderParams();
  } else {
    problems = payload.errors;
    status.className = "check-status bad";
    status.textContent = `${problems.length} problem${problems.length === 1 ? "" : "s"}`;
  }
  showProblems();
  render();
}

function scheduleCheck() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(check, CHECK_DELAY_MS);
}

source.addEventListener("input", () => { render(); scheduleCheck(); });
source.addEventListener("scroll", syncScroll);
// Tab indents; Escape first lets Tab move focus on (no keyboard trap).
let escaped = false;
source.addEventListener("keydown", (event) => {
  if (event.key === "Escape") { escaped = true; return; }
  if (event.key === "Tab" && !event.shiftKey && !escaped) {
    event.preventDefault();
    const { selectionStart: start, selectionEnd: end } = source;
    source.setRangeText("    ", start, end, "end");
    render();
    scheduleCheck();
    return;
  }
  escaped = false;
});

// ---- run / sweep links and saving ---------------------------------------------------
function setLinks() {
  for (const [id, base] of [["run-link", data.urls.run], ["sweep-link", data.urls.sweep]]) {
    const link = $(id);
    if (savedKey) {
      link.href = `${base}?strategy=${encodeURIComponent(savedKey)}`;
      link.removeAttribute("aria-disabled");
    } else {
      // No href: not a link yet, so neither Tab nor Enter lands on nothing.
      link.removeAttribute("href");
      link.setAttribute("aria-disabled", "true");
    }
  }
}

// After a save the page is the strategy's: its name and version in the
// heading and the key in the title, as the edit page renders them.
function showSaved(payload) {
  let badge = $("version-badge");
  if (!badge) {
    badge = document.createElement("span");
    badge.className = "badge";
    badge.id = "version-badge";
    $("editor-title").replaceChildren(`${$("name").value.trim() || payload.key} `, badge);
    document.title = document.title.replace(/^[^·]*/, `${payload.key} `);
  }
  badge.textContent = `v${payload.version}`;
}

$("save").addEventListener("click", async () => {
  const status = $("save-status");
  status.textContent = "Saving…";
  const { ok, payload } = await postJSON(data.urls.save, {
    key: $("key").value.trim(),
    source: source.value,
    name: $("name").value,
    shared: $("shared").checked,
  });
  for (const id of ["key", "name"]) $(id).removeAttribute("aria-invalid");
  if (!ok) {
    if (payload.errors) { problems = payload.errors; showProblems(); render(); }
    status.textContent = payload.error;
    // A refused key or name: mark that field and take the user to it.
    const field = ["key", "name"].includes(payload.field) ? $(payload.field) : null;
    if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
    return;
  }
  savedKey = payload.key;
  $("key").readOnly = true;
  status.textContent = `Saved version ${payload.version}.`;
  showSaved(payload);
  if (window.location.pathname !== payload.edit_url) window.history.replaceState(null, "", payload.edit_url);
  setLinks();
});

// ---- preview -----------------------------------------------------------------------
for (const coin of data.coins) $("preview-symbol").add(new Option(coin.symbol, coin.symbol));
function defaultRange() {
  const coin = data.coins.find((c) => c.symbol === $("preview-symbol").value);
  if (!coin) return;
  const end = new Date(`${coin.last_bar}T00:00:00Z`);
  const start = new Date(end);
  start.setUTCFullYear(start.getUTCFullYear() - 1);
  $("preview-start").value = start.toISOString().slice(0, 10);
  $("preview-end").value = "";
}
$("preview-symbol").addEventListener("change", defaultRange);
defaultRange();

function previewParams() {
  const out = {};
  for (const input of $("param-panel").querySelectorAll("input")) out[input.name] = input.value.trim();
  return out;
}

function drawPreview(result) {
  const css = getComputedStyle(document.documentElement);
  const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const t = result.trades;
  // SVG traces: WebGL ones compile shaders through eval, which the site's
  // Content-Security-Policy forbids; at most 4000 points draw fast enough.
  const traces = [
    { x: result.price.time, y: result.price.close, type: "scatter", mode: "lines",
      name: `${result.symbol} close`, line: { color: color("--chart-price", "#334155"), width: 1 } },
    { x: t.entry_time, y: t.entry_price, type: "scatter", mode: "markers", name: "entries",
      marker: { symbol: "triangle-up", size: 9, color: color("--gain", "#12703a") } },
    { x: t.exit_time, y: t.exit_price, type: "scatter", mode: "markers", name: "exits",
      marker: { symbol: "triangle-down", size: 9, color: color("--loss", "#b42318") } },
  ];
  // The page's colours (light or dark) on a transparent ground, as the run
  // detail chart draws.
  const axis = { gridcolor: color("--line", "#dde1e7"), color: color("--muted", "#596170") };
  window.Plotly.react($("preview-chart"), traces, {
    margin: { l: 60, r: 20, t: 10, b: 40 }, hovermode: "x unified",
    xaxis: { type: "date", ...axis }, yaxis: { title: { text: "price" }, ...axis },
    legend: { orientation: "h" },
    font: { family: getComputedStyle(document.body).fontFamily, color: color("--ink", "#16191f") },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
  }, { responsive: true, displaylogo: false });
  const metrics = $("preview-metrics");
  metrics.replaceChildren();
  const shown = {
    total_return_pct: "Return %", buy_hold_return_pct: "Buy & hold %", num_trades: "Trades",
    win_rate_pct: "Win rate %", max_drawdown_pct: "Max drawdown %", sharpe: "Sharpe",
  };
  for (const [key, label] of Object.entries(shown)) {
    const value = result.metrics[key];
    const box = document.createElement("div");
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = label;
    dd.textContent = value === null || value === undefined ? "–"
      : Number.isInteger(value) ? String(value) : value.toFixed(2);
    box.append(dt, dd);
    metrics.append(box);
  }
}

$("preview-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = $("preview-status");
  status.textContent = "Computing…";
  const { ok, payload } = await postJSON(data.urls.preview, {
    source: source.value,
    symbol: $("preview-symbol").value,
    start: $("preview-start").value,
    end: $("preview-end").value,
    direction: $("preview-direction").value,
    params: previewParams(),
  });
  if (!ok) { status.textContent = payload.error; return; }
  status.textContent = `${payload.symbol}: ${payload.bars} bars, ${payload.metrics.num_trades} trades.`;
  drawPreview(payload);
});

render();
setLinks();
check();
