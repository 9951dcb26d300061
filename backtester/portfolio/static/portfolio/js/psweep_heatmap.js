// A portfolio sweep's heatmap: the sweeps app's Heatmap (one canvas, redrawn
// once per frame) with the account's metrics in its picker and tooltip, and a
// value picker for each axis past the second. Shared by the live page and a
// stored sweep's page.
import { Heatmap, fmt } from "../../sweeps/js/heatmap.js";

const $ = (id) => document.getElementById(id);
const pct = (v) => (v == null ? fmt(v) : `${fmt(v)}%`);
// [key, label, show]: what the tooltip lists for a cell.
export const LABELS = [
  ["total_return_pct", "Return", pct],
  ["benchmark_return_pct", "Benchmark", pct],
  ["sharpe", "Sharpe", (v) => fmt(v)],
  // A fall: shown negative, as on every page (the stored metric is its size).
  ["max_drawdown_pct", "Max drawdown", (v) => (v == null ? fmt(v) : `${fmt(-v)}%`)],
  ["num_trades", "Trades", (v) => String(v ?? "\u2013")],
  ["avg_positions", "Average positions", (v) => (v == null ? "\u2013" : v.toFixed(2))],
  ["rejected_signals", "Rejected signals", (v) => String(v ?? "\u2013")],
];

export class PortfolioHeatmap {
  // metrics: [{key, label, higher_is_better}]; objective: the key shown first.
  constructor(metrics, objective) {
    this.metrics = Object.fromEntries(metrics.map((m) => [m.key, m]));
    const select = $("psweep-metric");
    select.replaceChildren(...metrics.map((m) => new Option(m.label, m.key)));
    select.value = objective in this.metrics ? objective : metrics[0].key;
    select.addEventListener("change", () => this.map.setMetric(this.metric()));
    this.map = new Heatmap($("psweep-canvas"), $("psweep-tip"), { labels: LABELS });
  }

  metric() { return this.metrics[$("psweep-metric").value]; }

  // axes: {name: [values]} in grid order (the first across, the second up).
  setup(axes) {
    const names = Object.keys(axes);
    const fixed = {};
    const pickers = names.slice(2).map((name) => {
      const label = document.createElement("label");
      label.textContent = `${name} `;
      const select = document.createElement("select");
      for (const value of axes[name]) select.add(new Option(String(value), String(value)));
      fixed[name] = axes[name][0];
      select.addEventListener("change", () => {
        fixed[name] = axes[name][select.selectedIndex];
        this.map.setFixed({ ...fixed });
      });
      label.append(select);
      return label;
    });
    $("psweep-axis-pickers").replaceChildren(...pickers);
    this.map.setup(axes, this.metric(), { ...fixed });
  }

  add(cells) { this.map.add(cells); }

  // Outline the cell whose parameters are these (the best one).
  mark(params) {
    if (!params) return;
    const same = (c) => Object.keys(params).every((k) => c.params[k] === params[k]);
    const cell = [...this.map.cells.values()].find(same);
    if (cell) this.map.setBest(cell.index);
  }
}
