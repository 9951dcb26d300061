// A stored portfolio run: its metrics, charts, contributions and trades.
import { fromScript } from "../../backtester/js/common.js";
import { renderResult } from "./results.js";

const data = fromScript("portfolio-detail-data");
if (data.status === "complete" && data.equity) {
  renderResult(data, data.metric_info, data.urls.trades.replace("/0/", `/${data.portfolio_id}/`));
}
