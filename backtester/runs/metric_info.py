"""What each metric means: its label, unit and formula, as shown in tooltips on
the detail page (the README's metric table says the same)."""

from __future__ import annotations

from typing import NamedTuple


class MetricInfo(NamedTuple):
    key: str
    label: str
    unit: str  # "%", "bars", "hours", "ratio", "" (a count) or "USDT"
    digits: int
    help: str


METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("total_return_pct", "Return", "%", 2,
               "Final equity / starting equity (10,000) − 1, after fees."),
    MetricInfo("buy_hold_return_pct", "Buy & hold", "%", 2,
               "Last close / first close − 1 over the same bars, without fees."),
    MetricInfo("cagr_pct", "CAGR", "%", 2,
               "Compound annual growth over the calendar: (final / start)^(1 / years) "
               "− 1, years = (last bar − first bar + one interval) / 365 days; none "
               "under 30 days."),
    MetricInfo("volatility_ann_pct", "Volatility", "%", 2,
               "Standard deviation (ddof 1) of per-bar equity returns × √(bars a "
               "year), bars a year = bars / calendar years (8,760 hourly without "
               "gaps)."),
    MetricInfo("sharpe", "Sharpe", "ratio", 2,
               "Mean / standard deviation of per-bar equity returns × √(bars a "
               "year); risk-free rate 0."),
    MetricInfo("sortino", "Sortino", "ratio", 2,
               "Mean per-bar return / downside deviation (root mean square of the "
               "negative returns) × √(bars a year)."),
    MetricInfo("calmar", "Calmar", "ratio", 2, "CAGR % / max drawdown %."),
    MetricInfo("max_drawdown_pct", "Max drawdown", "%", 2,
               "Deepest fall of equity below its running peak, shown negative: "
               "min(equity / running peak − 1)."),
    MetricInfo("max_drawdown_duration", "Max DD duration", "bars", 0,
               "Longest run of consecutive bars below a previous equity peak."),
    MetricInfo("num_trades", "Trades", "", 0,
               "Round trips; a position still open on the last bar is closed at its "
               "close and counted."),
    MetricInfo("win_rate_pct", "Win rate", "%", 1,
               "Share of trades with a net return above 0."),
    MetricInfo("profit_factor", "Profit factor", "ratio", 2,
               "Gross profit / gross loss in money, fees included; none without a "
               "losing trade."),
    MetricInfo("expectancy_pct", "Expectancy", "%", 2,
               "Arithmetic mean of the trades' net returns."),
    MetricInfo("avg_trade_pct", "Average trade", "%", 2,
               "Geometric mean of the trades' net returns: (∏(1 + r))^(1/n) − 1."),
    MetricInfo("best_trade_pct", "Best trade", "%", 2, "Highest net trade return."),
    MetricInfo("worst_trade_pct", "Worst trade", "%", 2, "Lowest net trade return."),
    MetricInfo("avg_trade_duration", "Average duration", "bars", 1,
               "Mean bars held per trade: the bars a position is held during, the "
               "exit bar included when the trade ends within it or at its close."),
    MetricInfo("exposure_pct", "Exposure", "%", 1,
               "Share of bars with a position held: the trades' bars held / bars."),
    MetricInfo("final_equity", "Final equity", "USDT", 2,
               "Equity at the last close, after the fee of any closing sale."),
    MetricInfo("missing_bars", "Missing bars", "bars", 0,
               "Bars absent between the first and the last bar of the range (at the "
               "interval's spacing); they are not filled in."),
    MetricInfo("longest_gap_hours", "Longest gap", "hours", 1,
               "Longest stretch without a bar: time between two consecutive bars "
               "less one interval; a gap over 24 hours is flagged."),
)  # fmt: skip
