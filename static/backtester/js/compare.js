// Compare runs: the equity of each run's result on one coin, on one chart.
import { $, fromScript } from "./common.js";

const series = fromScript("compare-data");
const utc = (ms) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");

async function draw() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  const colors = [v("--accent"), v("--chart-1"), v("--chart-2"), v("--chart-3")];
  const loaded = await Promise.all(series.map(async (s) => {
    const response = await fetch(s.url);
    const data = await response.json();
    if (!response.ok) throw new Error(`${s.label}: ${data.error || response.statusText}`);
    return data;
  }));
  const traces = loaded.map((data, i) => ({
    type: "scatter", mode: "lines", name: series[i].label, x: data.time.map(utc),
    y: data.strategy_equity, line: { color: colors[i % colors.length], width: 1.6 },
    hovertemplate: "%{y:,.0f}",
  }));
  traces.push({ type: "scatter", mode: "lines", name: "Buy & hold", x: loaded[0].time.map(utc),
    y: loaded[0].buy_hold, line: { color: v("--muted"), width: 1.2, dash: "dot" },
    hovertemplate: "%{y:,.0f}" });
  const values = traces.flatMap((t) => t.y).filter((y) => y > 0);
  const axis = { gridcolor: v("--line"), color: v("--muted"), automargin: true };
  await Plotly.newPlot("compare-chart", traces, {
    font: { family: getComputedStyle(document.body).fontFamily, size: 12, color: v("--ink") },
    margin: { l: 60, r: 12, t: 34, b: 30 }, paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)", hovermode: "x unified",
    legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom" },
    xaxis: { type: "date", ...axis },
    // Log over a decade or more, labelled at the powers of ten only.
    yaxis: Math.max(...values) / Math.min(...values) > 10
      ? { type: "log", dtick: 1, minor: { ticks: "outside", ticklen: 3, showgrid: false },
        title: { text: "Equity" }, ...axis }
      : { type: "linear", title: { text: "Equity" }, ...axis },
  }, { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] });
  $("chart-status").hidden = true;
  $("compare-chart").dataset.loaded = "1";
}

if (!window.Plotly) {
  $("chart-status").textContent = "Could not load the charts: the chart library did not load.";
} else {
  draw().catch((error) => {
    $("chart-status").textContent = `Could not load the charts: ${error.message}`;
    $("chart-status").classList.add("chart-error");
  });
}
