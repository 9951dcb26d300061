// The live run page: the websocket client between the form and the results.
import { $ } from "./common.js";
import {
  applyQuery, buildRequest, clearErrors, focusFirstError, showBanner, showDropped, showError,
  toQuery,
} from "./form.js";
import { clearRows, queueHeatmap, renderSummary, setRun, upsertRow } from "./results.js";

const form = $("run-form");

// ---- progress and summary -------------------------------------------------------
let total = 0, completed = 0, startedAt = 0, finalElapsed = null, timer = null;
let activeRun = null, pending = false, lastRequest = null, warnedFor = null;
// The seqs (1..total) of the results shown for the current run: a result the
// page already has is not counted twice, and a gap at the end is asked for.
let shownRun = null, seqs = new Set();
// The run Back/Forward asked to show (0: none), null when following the form's
// own runs: messages of a run attached before a later Back are let go.
let viewRun = null;
// The run this tab follows, kept across a reload (per tab, like the page).
const RUN_KEY = "btlab.activeRun";
const forget = () => sessionStorage.removeItem(RUN_KEY);

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
      return;
    }
    // A run this tab started goes on on the server through a reload or a
    // dropped connection: follow it again (stored results first, then live).
    // Else the run of the settings in the address, as shown before a reload.
    const following = activeRun ?? (Number(sessionStorage.getItem(RUN_KEY) || 0)
      || addressRun());
    if (following) send({ type: "attach", run_id: following });
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
    if (activeRun !== null) {
      // The run goes on on the server; the page follows it again on reconnect.
      showBanner(`The connection dropped; run #${activeRun} goes on on the server and this page picks it up again when the connection is back.`);
      setProgress("reconnecting");
    } else if (pending) {
      showBanner("The connection dropped before the run started.", { rerun: true });
      setProgress("interrupted");
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
  if (viewRun !== null && msg.type !== "error" && msg.run_id !== undefined
      && msg.run_id !== viewRun) return;
  switch (msg.type) {
    case "start":
      if (msg.attached) showBanner("");
      else {
        // The address names the run its settings made, so Back and a reload
        // show that run with them (see showAddressRun).
        const url = new URL(location.href);
        url.searchParams.set("run", String(msg.run_id));
        history.replaceState(history.state, "", url);
      }
      if (msg.cached_from) {
        showBanner(`Same settings and data as run #${msg.cached_from}: its stored results are shown (tick Recompute to compute again).`);
      }
      pending = false;
      activeRun = msg.run_id;
      sessionStorage.setItem(RUN_KEY, String(msg.run_id));
      setRun(msg.run_id, true);
      shownRun = msg.run_id;
      seqs = new Set();
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
      // At once, not smoothly: rows arriving during a smooth scroll change the
      // page's height under it, and it used to stop short of the results.
      if (matchMedia("(max-width: 900px)").matches && !msg.attached) {
        document.querySelector(".results-panel").scrollIntoView({ block: "start" });
      }
      break;
    case "result":
      // A late message of a run we left, or one we already show.
      if (msg.run_id !== shownRun || seqs.has(msg.seq)) return;
      seqs.add(msg.seq);
      if (activeRun !== null) {
        completed = seqs.size;
        total = msg.total;
      }
      upsertRow(msg.data);
      queueHeatmap();
      setProgress();
      break;
    case "complete": {
      if (msg.run_id !== activeRun) return;
      forget();
      setRun(msg.run_id, false);
      activeRun = null;
      // The server sends every stored result before "complete"; should one
      // still be missing, ask for it (results are numbered 1..n).
      const stored = msg.summary?.results ?? 0;
      const missing = [];
      for (let seq = 1; seq <= stored; seq += 1) if (!seqs.has(seq)) missing.push(seq);
      if (missing.length) send({ type: "resend", run_id: msg.run_id, seqs: missing });
      completed = total;
      finalElapsed = msg.elapsed_s;
      syncButtons();
      $("progress").classList.add("done");
      setProgress("done");
      renderSummary(msg.summary, msg.run_id, msg.elapsed_s);
      break;
    }
    case "notice":
      // The job goes on (a worker stopped and its part was sent again).
      showBanner(msg.message);
      break;
    case "cancelled":
      forget();
      if (activeRun !== null) setRun(activeRun, false);
      activeRun = null;
      pending = false;
      finalElapsed = startedAt ? (performance.now() - startedAt) / 1000 : 0;
      syncButtons();
      $("progress").classList.add("stopped");
      setProgress("cancelled");
      break;
    case "error":
      if (msg.field === "run_id") {
        forget(); // the run to follow is gone (deleted, or not this user's)
        activeRun = null;
        syncButtons();
        $("progress-text").textContent = "Idle";
        return;
      }
      if (msg.run_id !== undefined && msg.run_id === activeRun) {
        forget();
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
      focusFirstError();
      break;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const message = buildRequest();
  if (!message) return;
  const { warning } = message;
  delete message.warning;
  if (warning && warnedFor !== JSON.stringify(message)) {
    warnedFor = JSON.stringify(message); // the same request again runs
    showBanner(warning);
    return;
  }
  showDropped([]); // the settings sent are the form's own now
  viewRun = null; // follow the run this starts
  // The settings go into the address: shareable, and Back shows them exactly.
  const query = `?${toQuery(message)}`;
  if (query !== location.search) history.pushState({ run: true }, "", query);
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

// The form shows what the address says: on load (a shared link, "Edit & re-run"),
// on Back/Forward, and when the browser restores the page from its cache.
const fromAddress = () => showDropped(applyQuery(new URLSearchParams(location.search)));
fromAddress();

function addressRun() {
  const id = Number(new URLSearchParams(location.search).get("run"));
  return Number.isInteger(id) && id > 0 ? id : 0;
}

// Back or Forward: the results follow the settings the form now shows. A run
// still going on this connection keeps the panel (the server runs one at a
// time per connection); else the address's run is attached again, and settings
// no run was made with get an empty panel.
function showAddressRun() {
  if (pending || (activeRun !== null && viewRun === null)) return;
  const id = addressRun();
  if (id === (viewRun ?? shownRun)) return;
  viewRun = id;
  if (activeRun !== null) {
    // A run attached by an earlier Back, still being replayed: let it go.
    forget();
    activeRun = null;
    syncButtons();
  }
  if (id && send({ type: "attach", run_id: id })) return;
  shownRun = null;
  seqs = new Set();
  total = completed = 0;
  startedAt = 0;
  finalElapsed = null;
  clearRows();
  $("summary").hidden = true;
  $("heatmap-wrap").hidden = true;
  $("progress").classList.remove("done", "stopped");
  $("progress-bar").style.width = "0";
  $("progress").setAttribute("aria-valuenow", "0");
  $("progress-text").textContent = "Idle";
}

window.addEventListener("popstate", () => {
  fromAddress();
  showAddressRun();
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted) fromAddress();
});

// Leaving stops nothing a server has: only a request still waiting to be sent
// (no connection yet) would be lost, so only then does the browser ask.
window.addEventListener("beforeunload", (event) => {
  if (queued || (pending && activeRun === null)) event.preventDefault();
});

connect();
