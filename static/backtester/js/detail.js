// Run detail charts: price with trades, equity vs buy & hold, drawdown.
const request = JSON.parse(document.getElementById("chart-request").textContent);
const status = document.getElementById("chart-status");
const layout = (title, extra = {}) => ({
  title: { text: title, font: { size: 14 } },
  margin: { l: 55, r: 15, t: 35, b: 35 },
  xaxis: { type: "date" },
  legend: { orientation: "h", y: -0.15 },
  ...extra,
});
const config = { responsive: true, displaylogo: false };

async function load() {
  const params = new URLSearchParams({ symbol: request.symbol, strategy: request.strategy });
  const response = await fetch(`${request.url}?${params}`);
  const data = await response.json();
  if (!response.ok) {
    status.textContent = data.error || "Could not load the charts.";
    return;
  }
  const time = data.time.map((t) => new Date(t));
  Plotly.newPlot("price-chart", [
    { x: time, y: data.close, name: `${data.symbol} close`, type: "scatter", mode: "lines", line: { color: "#334155", width: 1 } },
    { x: data.entries.time.map((t) => new Date(t)), y: data.entries.price, name: "Entry", type: "scatter", mode: "markers",
      marker: { symbol: "triangle-up", color: "#16a34a", size: 7, opacity: 0.8 } },
    { x: data.exits.time.map((t) => new Date(t)), y: data.exits.price, name: "Exit", type: "scatter", mode: "markers",
      marker: { symbol: "triangle-down", color: "#dc2626", size: 7, opacity: 0.8 } },
  ], layout("Price, entries ▲ and exits ▼", { yaxis: { type: "log" } }), config);
  Plotly.newPlot("equity-chart", [
    { x: time, y: data.equity, name: "Strategy", type: "scatter", mode: "lines", line: { color: "#2553c7" } },
    { x: time, y: data.buy_hold, name: "Buy & hold", type: "scatter", mode: "lines", line: { color: "#9ca3af", dash: "dot" } },
  ], layout("Equity (start 10,000)"), config);
  Plotly.newPlot("drawdown-chart", [
    { x: time, y: data.drawdown_pct, name: "Drawdown %", type: "scatter", mode: "lines", fill: "tozeroy", line: { color: "#b42318" } },
  ], layout("Drawdown %"), config);
  status.textContent = "";
}

load().catch((error) => { status.textContent = `Could not load the charts: ${error}`; });
