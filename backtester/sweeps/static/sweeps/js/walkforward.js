// A walk-forward's folds on a time axis, the stitched out-of-sample equity
// against buy & hold, and the folds' table; canvases drawn once per result.
import { fmt } from "./heatmap.js";

const $ = (id) => document.getElementById(id);
const ms = (iso) => Date.parse(iso);
const day = (iso) => iso.slice(0, 10);

function sized(canvas, height) {
  const width = canvas.parentElement.clientWidth || 600;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.height = `${height}px`;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  g.font = "11px system-ui, sans-serif";
  return [g, width];
}

function drawFolds(canvas, folds) {
  const row = 22, left = 8, right = 8, top = 6, bottom = 22;
  const [g, width] = sized(canvas, top + row * folds.length + bottom);
  const t0 = ms(folds[0].train.start), t1 = ms(folds[folds.length - 1].test.end);
  const x = (iso) => left + ((ms(iso) - t0) / (t1 - t0 || 1)) * (width - left - right);
  folds.forEach((fold, k) => {
    const y = top + k * row;
    g.fillStyle = "#d1d5db";
    g.fillRect(x(fold.train.start), y + 3, x(fold.train.end) - x(fold.train.start), row - 6);
    const beat = (fold.return_pct ?? 0) >= (fold.buy_hold_return_pct ?? 0);
    g.fillStyle = beat ? "rgba(22, 163, 74, .75)" : "rgba(220, 38, 38, .7)";
    g.fillRect(x(fold.test.start), y + 3, Math.max(2, x(fold.test.end) - x(fold.test.start)), row - 6);
    g.fillStyle = "#111827";
    g.textBaseline = "middle";
    g.textAlign = "left";
    const label = fold.params
      ? Object.entries(fold.params).map(([n, v]) => `${n}=${v}`).join(", ")
      : "no choice";
    g.fillText(`${fold.fold}: ${label}`, x(fold.train.start) + 4, y + row / 2);
  });
  g.fillStyle = "#4b5563";
  g.textBaseline = "top";
  g.textAlign = "left";
  g.fillText(day(folds[0].train.start), left, top + row * folds.length + 5);
  g.textAlign = "right";
  g.fillText(day(folds[folds.length - 1].test.end), width - right, top + row * folds.length + 5);
}

function drawEquity(canvas, stitched) {
  const [g, width] = sized(canvas, 220);
  const left = 56, right = 8, top = 8, bottom = 22, height = 220;
  const values = [...stitched.equity, ...stitched.buy_hold];
  const lo = Math.min(...values), hi = Math.max(...values);
  const n = stitched.time.length;
  const x = (i) => left + (i / Math.max(1, n - 1)) * (width - left - right);
  const y = (v) => top + (1 - (v - lo) / (hi - lo || 1)) * (height - top - bottom);
  for (const [series, colour] of [[stitched.buy_hold, "#9ca3af"], [stitched.equity, "#1d4ed8"]]) {
    g.strokeStyle = colour;
    g.lineWidth = 1.6;
    g.beginPath();
    series.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
    g.stroke();
  }
  g.fillStyle = "#4b5563";
  g.textAlign = "right";
  g.textBaseline = "middle";
  g.fillText(Math.round(hi).toLocaleString("en-US"), left - 6, y(hi));
  g.fillText(Math.round(lo).toLocaleString("en-US"), left - 6, y(lo));
  g.textBaseline = "top";
  g.textAlign = "left";
  g.fillText(day(stitched.time[0]), left, height - bottom + 5);
  g.textAlign = "right";
  g.fillText(day(stitched.time[n - 1]), width - right, height - bottom + 5);
}

function cell(tag, text, className = "") {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

export function renderWalkForward(result, elapsed) {
  $("wf-wrap").hidden = false;
  const s = result.stitched;
  $("wf-summary").textContent =
    `${result.folds.length} folds of ${result.train_bars} train + ${result.test_bars} test bars · ` +
    `out-of-sample ${fmt(s.return_pct)}% vs buy & hold ${fmt(s.buy_hold_return_pct)}% · ${elapsed.toFixed(2)} s`;
  if (!result.folds.length) return;
  drawFolds($("wf-folds"), result.folds);
  drawEquity($("wf-equity"), s);
  const body = $("wf-table").querySelector("tbody");
  body.replaceChildren(
    ...result.folds.map((f) => {
      const tr = document.createElement("tr");
      tr.append(
        cell("th", String(f.fold)),
        cell("td", `${day(f.train.start)} → ${day(f.train.end)}`),
        cell("td", `${day(f.test.start)} → ${day(f.test.end)}`),
        cell("td", f.params ? Object.entries(f.params).map(([n, v]) => `${n}=${v}`).join(", ") : "–"),
        cell("td", fmt(f.in_sample.median_return_pct), "num"),
        cell("td", fmt(f.out_of_sample.median_return_pct), "num"),
        cell("td", fmt(f.return_pct), "num"),
        cell("td", fmt(f.buy_hold_return_pct), "num"),
      );
      return tr;
    }),
  );
}
