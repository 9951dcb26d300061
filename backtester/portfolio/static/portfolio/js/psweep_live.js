// The portfolio page's sweep mode: the grid fields (a max_positions axis, one
// strategy parameter axis, the objective), the request they make, and the
// live heatmap filled cell by cell as the socket's `cell` messages arrive.
import { $ } from "../../backtester/js/common.js";
import { PortfolioHeatmap } from "./psweep_heatmap.js";

export class SweepMode {
  constructor(data, byKey) {
    this.data = data;
    this.byKey = byKey;
    this.heatmap = null;
    this.best = null;
    for (const key of data.objectives) $("objective").add(new Option(key, key));
    for (const input of document.querySelectorAll("input[name=mode]")) {
      input.addEventListener("change", () => this.show());
    }
    if (new URLSearchParams(location.search).get("mode") === "sweep") {
      document.querySelector("input[name=mode][value=sweep]").checked = true;
    }
    this.show();
  }

  get on() { return document.querySelector("input[name=mode]:checked").value === "sweep"; }

  show() {
    $("sweep-axes").hidden = !this.on;
    $("run-button").textContent = this.on ? "Run sweep" : "Run portfolio";
    $("max-positions").closest(".field").hidden = this.on && $("axis-max-positions").value.trim() !== "";
  }

  // The strategy's parameters as axis choices, the first one's range as values.
  strategyChanged(spec) {
    $("axis-param").replaceChildren(new Option("(none)", ""),
      ...spec.params.map((p) => new Option(p.name, p.name)));
    const first = spec.params[0];
    $("axis-param").value = first ? first.name : "";
    $("axis-values").value = first ? axisGuess(first) : "";
  }

  // The portfolio message turned into a portfolio_sweep one.
  message(base) {
    const grid = {};
    const positions = $("axis-max-positions").value.trim();
    if (positions) grid.max_positions = positions;
    const name = $("axis-param").value;
    const values = $("axis-values").value.trim();
    if (name && values) grid[name] = values;
    const params = { ...base.params };
    delete params[name];
    const message = { ...base, type: "portfolio_sweep", grid, params, objective: $("objective").value };
    if (positions) delete message.max_positions;
    return message;
  }

  start(msg) {
    $("psweep-results").hidden = false;
    $("psweep-best").textContent = "";
    if (!this.heatmap) {
      this.heatmap = new PortfolioHeatmap(this.data.sweep_metrics, msg.objective ?? $("objective").value);
    }
    this.heatmap.setup(msg.axes);
  }

  cell(msg) {
    this.heatmap?.add([{ index: msg.index, params: msg.params, metrics: msg.metrics }]);
  }

  complete(msg) {
    const link = this.data.urls.sweep_detail.replace("/0/", `/${msg.sweep_id}/`);
    const best = msg.best
      ? Object.entries(msg.best.params).map(([k, v]) => `${k}=${v}`).join(", ")
      : "none";
    $("psweep-best").replaceChildren(`Best: ${best}. Saved as `,
      Object.assign(document.createElement("a"), { href: link, textContent: `portfolio sweep #${msg.sweep_id}` }), ".");
    if (msg.best) this.heatmap?.map.setBest(msg.best.index);
  }
}

// A short range around a parameter's default: five values at most.
function axisGuess(p) {
  const lo = p.min ?? -Infinity, hi = p.max ?? Infinity;
  const raw = Math.abs(p.default) / 5 || 1;
  const step = p.type === "int" ? Math.max(1, Math.round(raw)) : Number(raw.toPrecision(2));
  const start = Math.max(lo, p.default - 2 * step);
  const stop = Math.min(hi, start + 4 * step);
  return `${Number(start.toPrecision(6))}:${Number(stop.toPrecision(6))}:${step}`;
}
