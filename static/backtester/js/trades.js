// The trade list of the selected result: paged (a page size, a page to jump
// to), sorted and filtered on the server; a click on a trade hands its times to
// `onPick` (the figure zooms to it).
import { $, signed } from "./common.js";

// Exit reasons: the label, the legend name and the marker of each.
export const EXIT_MARKERS = Object.fromEntries([
  ["signal", "signal", "●", "circle", "--chart-price"],
  ["stop_loss", "stop", "■", "square", "loss"],
  ["take_profit", "target", "◆", "diamond", "--chart-3"],
  ["trailing_stop", "trailing", "✚", "cross", "--chart-1"],
  ["end", "end", "○", "circle-open", "muted"],
  ["liquidation", "liquidation", "✖", "x", "ink"],
].map(([reason, label, glyph, symbol, color]) =>
  [reason, { label, name: `Exit: ${label} ${glyph}`, symbol, color }]));

// Trade times come as UTC ISO text; one without a zone is read as UTC too.
const epoch = (iso) => Date.parse(/(Z|[+-]\d\d:?\d\d)$/.test(iso) ? iso : `${iso}Z`);
const money = (v) => v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const price = (v) => (Math.abs(v) >= 1000 ? money(v) : Number(v.toPrecision(6)).toString());
const when = (iso) => iso.slice(0, 16).replace("T", " ");

export class TradeList {
  constructor(request, onPick = null) {
    this.request = request;
    this.onPick = onPick;
    this.pages = 1;
    this.state = { page: 1, per_page: 50, sort: "n", outcome: "", side: "", reason: "" };
    this.table = $("trades");
    this.reasonsFilled = false;
  }

  bind() {
    for (const [id, key] of [["trade-outcome", "outcome"], ["trade-side", "side"], ["trade-reason", "reason"]]) {
      $(id)?.addEventListener("change", (event) => {
        this.state[key] = event.target.value;
        this.state.page = 1;
        this.load();
      });
    }
    $("trades-prev")?.addEventListener("click", () => this.go(this.state.page - 1));
    $("trades-next")?.addEventListener("click", () => this.go(this.state.page + 1));
    $("trades-first")?.addEventListener("click", () => this.go(1));
    $("trades-last")?.addEventListener("click", () => this.go(this.pages));
    // A page typed in: Enter or leaving the box goes there (out of range: the end).
    const jump = $("trades-goto");
    jump?.addEventListener("change", () => this.go(Number(jump.value)));
    jump?.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        this.go(Number(jump.value));
      }
    });
    $("trades-per-page")?.addEventListener("change", (event) => {
      // Keep the first trade shown in view at the new size.
      const first = (this.state.page - 1) * this.state.per_page;
      this.state.per_page = Number(event.target.value);
      this.state.page = Math.floor(first / this.state.per_page) + 1;
      this.load();
    });
    this.table.tBodies[0].addEventListener("click", (event) => {
      const tr = event.target.closest("tr");
      if (!tr?.dataset.entry || !this.onPick) return;
      for (const row of this.table.tBodies[0].rows) row.removeAttribute("aria-current");
      tr.setAttribute("aria-current", "true");
      this.onPick(tr.dataset.entry, tr.dataset.exit);
    });
    for (const th of this.table.tHead.rows[0].cells) {
      th.querySelector("button")?.addEventListener("click", () => {
        const key = th.dataset.key;
        const now = this.state.sort;
        if (now.replace("-", "") === key) this.state.sort = now.startsWith("-") ? key : `-${key}`;
        else this.state.sort = key === "return_pct" || key === "fees" ? `-${key}` : key;
        this.state.page = 1;
        this.load();
      });
    }
  }

  go(page) {
    const wanted = Number.isFinite(page) ? Math.round(page) : this.state.page;
    this.state.page = Math.min(Math.max(1, wanted), this.pages);
    if ($("trades-goto")) $("trades-goto").value = String(this.state.page);
    // Leaving the box after Enter fires "change" again: the page is shown already.
    if (this.state.page !== this.shownPage) this.load();
  }

  async load() {
    const q = new URLSearchParams({ symbol: this.request.symbol, strategy: this.request.strategy,
      params: JSON.stringify(this.request.params ?? {}) });
    for (const [k, v] of Object.entries(this.state)) if (v !== "") q.set(k, String(v));
    const response = await fetch(`${this.request.trades_url}?${q}`, { headers: { Accept: "application/json" } });
    const data = await response.json();
    if (!response.ok) {
      $("trades-page").textContent = data.error || response.statusText;
      return;
    }
    this.state.page = data.page;
    this.render(data);
  }

  render(data) {
    const body = this.table.tBodies[0];
    const rows = data.rows.map((t) => {
      const tr = document.createElement("tr");
      tr.dataset.entry = new Date(epoch(t.entry_time)).toISOString();
      tr.dataset.exit = new Date(epoch(t.exit_time)).toISOString();
      tr.title = "Show this trade on the chart";
      const cells = [
        [String(t.n), "num"], [when(t.entry_time), ""], [when(t.exit_time), ""],
        [`${t.side === "short" ? "▼" : "▲"} ${t.side}`, `side-${t.side}`],
        [price(t.entry_price), "num"], [price(t.exit_price), "num"],
        [signed(t.return_pct), `num ${t.return_pct > 0 ? "gain" : t.return_pct < 0 ? "loss" : ""}`],
        [String(t.bars_held), "num"], [money(t.fees), "num"],
        [EXIT_MARKERS[t.exit_reason]?.label ?? t.exit_reason, `reason reason-${t.exit_reason}`],
        // Bars missing while the trade was held (its own column, so it is seen).
        [t.gap ? "gap" : "", t.gap ? "gap-flag" : ""],
      ];
      for (const [text, cls] of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.append(td);
      }
      return tr;
    });
    body.replaceChildren(...rows);
    const key = this.state.sort.replace("-", "");
    for (const th of this.table.tHead.rows[0].cells) {
      if (th.dataset.key === key) th.setAttribute("aria-sort", this.state.sort.startsWith("-") ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    }
    const filtered = data.count === data.total ? "" : ` of ${data.total.toLocaleString("en-US")}`;
    $("trades-page").textContent = data.count
      ? `Page ${data.page} of ${data.pages} · ${data.count.toLocaleString("en-US")}${filtered} trades`
      : "No trades match.";
    $("trades-count").textContent = `(${data.total.toLocaleString("en-US")})`;
    this.pages = data.pages;
    this.shownPage = data.page;
    $("trades-prev").disabled = data.page <= 1;
    $("trades-next").disabled = data.page >= data.pages;
    for (const [id, off] of [["trades-first", data.page <= 1], ["trades-last", data.page >= data.pages]]) {
      if ($(id)) $(id).disabled = off;
    }
    const jump = $("trades-goto");
    if (jump) {
      jump.max = String(data.pages);
      jump.value = String(data.page);
      $("trades-pages").textContent = `of ${data.pages}`;
    }
    const select = $("trade-reason");
    if (select && !this.reasonsFilled) {
      this.reasonsFilled = true;
      for (const reason of data.reasons) {
        const option = document.createElement("option");
        option.value = reason;
        option.textContent = EXIT_MARKERS[reason]?.label ?? reason;
        select.append(option);
      }
    }
    // Only offered when the result has trades on both sides.
    $("trade-side").closest("label").hidden = data.sides.length < 2 && !this.state.side;
  }
}

