// A stored portfolio sweep: its heatmap, coloured by a chosen metric.
import { fromScript } from "../../backtester/js/common.js";
import { PortfolioHeatmap } from "./psweep_heatmap.js";

const data = fromScript("psweep-detail-data");
const heatmap = new PortfolioHeatmap(data.metrics, data.objective);
heatmap.setup(data.axes);
heatmap.add(data.cells);
heatmap.mark(data.best_params);
