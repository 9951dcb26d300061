// A stored sweep: its heatmap (two axes; a selector for each further axis), the
// metric to colour by, the best cells and a cell's coins on click.
import { Heatmap } from "./heatmap.js";
import { openCell, renderBest } from "./panels.js";

const $ = (id) => document.getElementById(id);
const data = JSON.parse($("sweep-detail-data").textContent);
const metrics = Object.fromEntries(data.metrics.map((m) => [m.key, m]));
const names = Object.keys(data.axes);
const open = (cell) => openCell(data.urls.base, data.sweep_id, cell, names);

for (const m of data.metrics) $("metric").add(new Option(m.label, m.key));
$("metric").value = data.objective in metrics ? data.objective : data.metrics[0].key;
const metric = () => metrics[$("metric").value];

// Axes past the second: fixed at a value picked here.
const fixed = {};
for (const name of names.slice(2)) {
  const label = document.createElement("label");
  label.textContent = `${name} `;
  const select = document.createElement("select");
  select.dataset.axis = name;
  for (const value of data.axes[name]) select.add(new Option(String(value), String(value)));
  fixed[name] = data.axes[name][0];
  select.addEventListener("change", () => {
    fixed[name] = data.axes[name][select.selectedIndex];
    heatmap.setFixed({ ...fixed });
  });
  label.append(select);
  $("axis-pickers").append(label);
}

const heatmap = new Heatmap($("heatmap-canvas"), $("heatmap-tip"), { onClick: open });
heatmap.setup(data.axes, metric(), { ...fixed });
heatmap.add(data.cells);
if (data.best_index !== null) heatmap.setBest(data.best_index);
renderBest($("best-list"), data.cells, metric(), names, open);
$("metric").addEventListener("change", () => {
  heatmap.setMetric(metric());
  renderBest($("best-list"), data.cells, metric(), names, open);
});
