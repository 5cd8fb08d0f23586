"""The one metric registry: name, unit and a one-line definition for every reported figure.

The JSON summary, the CSV time series, the HTML report and ``docs/model.md`` all read this table, so they
cannot disagree. A metric is either a *total* over the horizon (summed in the engine) or *derived* from
totals (a ratio or a difference), computed once per replication by :func:`derive`. The inbound metrics are
totals set per replication from the inbound summary (:data:`INBOUND_SUMMARY_KEYS`); 0 when inbound is off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from masssim.config.schema import CHANNEL_NAMES
from masssim.model.messages import SOURCES


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    definition: str
    kind: Literal["total", "derived"] = "total"
    in_timeseries: bool = False  # also recorded per day

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """The range the metric can take: intervals and error bars stay inside it (see masssim.estimation.intervals)."""
        if self.name in SIGNED:
            return (None, None)
        if self.unit == "share":
            return (0.0, 1.0)
        # Every other figure counts something (messages, customers, seconds, hours, money spent).
        return (0.0, None)

    @property
    def range_text(self) -> str:
        low, high = self.bounds
        if low is None:
            return "any"
        return f"[{low:g}, {high:g}]" if high is not None else f">= {low:g}"


# Metrics that can fall below 0: estimates of an effect (more or fewer purchases than without marketing)
# and what follows from them. Every other metric is a count, a time, a cost or a share.
SIGNED: frozenset[str] = frozenset(
    {
        "incremental_purchases",
        "incremental_purchases_low",
        "incremental_purchases_high",
        "incremental_purchases_true",
        "incremental_revenue",
        "incremental_revenue_true",
        "incremental_profit",
        "roi",
        "attribution_overstatement",
    }
)

# Figures per responder pool (engine/conversation_loop.py): utilisation is a share, the rest are >= 0.
POOL_BOUNDS: dict[str, tuple[float | None, float | None]] = {"utilisation": (0.0, 1.0)}


def pool_bounds(figure: str) -> tuple[float | None, float | None]:
    return POOL_BOUNDS.get(figure, (0.0, None))


# What is reported per channel: each figure gets one total per channel, named by channel_metric.
CHANNEL_FIGURES: tuple[str, ...] = ("sends", "delivered", "reads", "clicks", "unsubscribes", "replies", "cost")


def channel_metric(figure: str, channel: str) -> str:
    """The name of ``figure`` (one of CHANNEL_FIGURES) counted on ``channel`` alone, e.g. clicks_messaging."""
    return f"{figure}_{channel}"


_METRICS: tuple[Metric, ...] = (
    Metric("customers_treated", "customers", "customers outside the holdout (eligible to be contacted)"),
    Metric("customers_holdout", "customers", "customers in the randomised holdout, never contacted"),
    Metric("sends", "messages", "messages sent (or paid impressions bought)", in_timeseries=True),
    Metric("delivered", "messages", "messages delivered to the customer", in_timeseries=True),
    Metric(
        "reads",
        "messages",
        "messages actually read (true opens, not observable in practice)",
        in_timeseries=True,
    ),
    Metric(
        "opens_recorded",
        "messages",
        "opens as the channel records them, including privacy pre-fetch that was never read",
        in_timeseries=True,
    ),
    Metric("clicks", "clicks", "clicks on a message", in_timeseries=True),
    Metric(
        "unsubscribes",
        "opt-outs",
        "channel opt-outs caused by a message (one per customer and channel)",
        in_timeseries=True,
    ),
    Metric(
        "replies",
        "messages",
        "replies on conversational channels (with [inbound], each starts a conversation)",
        in_timeseries=True,
    ),
    Metric("deferred_quiet_hours", "messages", "sends held back until the end of the channel's quiet hours"),
    Metric("blocked_frequency_cap", "messages", "planned contacts dropped by the weekly frequency cap"),
    Metric("blocked_not_reachable", "messages", "planned contacts to held-out or opted-out customers, dropped"),
    Metric("blocked_budget", "messages", "planned contacts dropped because the budget ran out"),
    Metric(
        "blocked_horizon_end",
        "messages",
        "sends whose departure (local send hour, quiet hours, capacity queue) fell after the horizon, dropped",
    ),
    Metric(
        "refused_small_audience",
        "messages",
        "paid contacts refused because the audience was below the minimum",
    ),
    Metric("customers_reached", "customers", "distinct customers sent at least one message"),
    Metric(
        "sends_to_light_buyers",
        "messages",
        "sends to light and non-buyers of our brand: customers whose brand-choice probability for us is below "
        "its population median",
    ),
    Metric("creatives_used", "creatives", "distinct creatives put into use (each pays its production cost)"),
    Metric(
        "fanatics",
        "customers",
        "treated customers among the top share by taste strength, the norm of theta (diagnostics)",
    ),
    Metric("fanatic_sends", "messages", "sends to fanatics (diagnostics)"),
    Metric(
        "fanatic_sends_matched",
        "messages",
        "sends to fanatics of the catalogue creative that fits their taste best (diagnostics)",
    ),
    Metric("fanatic_clicks", "clicks", "clicks by fanatics (diagnostics)"),
    Metric("purchases_treated", "purchases", "purchases of our brand by treated customers", in_timeseries=True),
    Metric("purchases_holdout", "purchases", "purchases of our brand by holdout customers", in_timeseries=True),
    Metric(
        "holdout_buyers",
        "customers",
        "holdout customers who bought our brand at least once; below 5 the reading calls the holdout too small to "
        "tell (masssim.estimation.holdout.MIN_HOLDOUT_BUYERS)",
    ),
    Metric(
        "attributed_purchases",
        "purchases",
        "purchases of our brand within the attribution window after a click (last-click attribution)",
        in_timeseries=True,
    ),
    Metric(
        "incremental_purchases_true",
        "purchases",
        "true extra purchases of our brand caused by marketing, from the simulator's counterfactual",
        in_timeseries=True,
    ),
    Metric("cost_sends", "currency", "per-message charges of non-paid channels", in_timeseries=True),
    Metric(
        "cost_media",
        "currency",
        "paid-media charges (CPM with the narrow-audience premium)",
        in_timeseries=True,
    ),
    Metric("cost_creatives", "currency", "production cost of the creatives put into use", in_timeseries=True),
    Metric(
        "channel_fallbacks",
        "messages",
        "planned contacts a channel of the arm's channel order did not take, passed on to the next channel "
        "(a contact passed on twice counts twice)",
    ),
    # Per channel: the same figures as the totals above, for the messages of one channel (they add up to them).
    *(
        Metric(channel_metric(figure, channel), unit, f"{definition} on {channel}", in_timeseries=True)
        for channel in CHANNEL_NAMES
        for figure, unit, definition in (
            ("sends", "messages", "messages sent (or paid impressions bought)"),
            ("delivered", "messages", "messages delivered"),
            ("reads", "messages", "messages actually read (true opens)"),
            ("clicks", "clicks", "clicks on messages sent"),
            ("unsubscribes", "opt-outs", "opt-outs caused by messages sent"),
            ("replies", "messages", "replies to messages sent"),
            (
                "cost",
                "currency",
                "per-message or paid-media charges (creative production not included) of messages sent",
            ),
        )
    ),
    # Inbound (find -> classify -> respond), per replication; all 0 when the scenario has no [inbound] table.
    Metric("inbound_volume", "messages", "mentions found over the horizon (inbound; 0 when inbound is off)"),
    Metric("inbound_needles", "messages", "mentions that truly concern the brand (ground truth; inbound)"),
    Metric("classifier_precision", "share", "share of mentions the core flags relevant that truly are (inbound)"),
    Metric("classifier_recall", "share", "share of truly relevant mentions the core flags relevant (inbound)"),
    Metric("classifier_f1", "share", "harmonic mean of classifier_precision and classifier_recall (inbound)"),
    Metric(
        "classification_delay_p50_s",
        "seconds",
        "median wait from arrival to the end of the mention's core batch (inbound; 0 if none classified)",
    ),
    Metric("classification_delay_p90_s", "seconds", "90th percentile of the classification delay (inbound)"),
    Metric("classification_delay_p99_s", "seconds", "99th percentile of the classification delay (inbound)"),
    Metric(
        "response_time_p50_s",
        "seconds",
        "median arrival-to-answer time of answered mentions (inbound; 0 if none answered)",
    ),
    Metric("response_time_p90_s", "seconds", "90th percentile of the response time of answered mentions (inbound)"),
    Metric("response_time_p99_s", "seconds", "99th percentile of the response time of answered mentions (inbound)"),
    Metric(
        "sla_attainment",
        "share",
        "routed mentions answered within inbound.sla_minutes of arrival / routed mentions, haystack included "
        "(inbound; see needle_sla_attainment)",
    ),
    Metric(
        "needle_response_time_p50_s",
        "seconds",
        "median arrival-to-answer time of answered needles (true relevant messages; inbound)",
    ),
    Metric("needle_response_time_p90_s", "seconds", "90th percentile of the response time of answered needles"),
    Metric("needle_response_time_p99_s", "seconds", "99th percentile of the response time of answered needles"),
    Metric(
        "needle_sla_attainment",
        "share",
        "needles answered within inbound.sla_minutes / all needles (a missed needle is never on time; inbound)",
    ),
    Metric("abandonment_share", "share", "routed mentions whose author gave up waiting / routed mentions (inbound)"),
    Metric("missed_needles", "messages", "truly relevant mentions never answered (inbound)"),
    Metric("false_alarms", "messages", "irrelevant mentions answered by a pool (inbound)"),
    Metric(
        "false_alarm_cost",
        "currency",
        "what false alarms cost: agents' busy hours on them x cost per agent-hour + their per-conversation charges",
    ),
    Metric("missed_purchase_intents", "messages", "true purchase intents never answered: sales lost (inbound)"),
    Metric("missed_complaints", "messages", "true complaints never answered: each may churn its author (inbound)"),
    Metric("escalations", "messages", "conversations a first pool (the bot) passed on to another pool (inbound)"),
    Metric("inbound_replies", "messages", "replies to outbound messages that entered the inbound stream (inbound)"),
    Metric("resolutions", "conversations", "conversations whose settling answer was finished by the horizon (inbound)"),
    Metric(
        "satisfaction",
        "share",
        "satisfied needles / settled needles: answered ones by chance decaying with the wait (inbound)",
    ),
    Metric(
        "conversation_conversions",
        "purchases",
        "purchases won in conversations, strangers included, not by customers who had left (inbound)",
    ),
    Metric(
        "conversions_from_replies",
        "purchases",
        "conversation_conversions in conversations started by replies to outbound messages (inbound)",
    ),
    Metric("churned_customers", "customers", "customers who left after an unanswered complaint (inbound)"),
    Metric(
        "declarations_captured",
        "customers",
        "customers without declared taste before whose taste an answered conversation captured (inbound)",
    ),
    Metric(
        "customers_with_declared_taste",
        "customers",
        "customers with declared taste at the horizon: declared before the run or captured (inbound)",
    ),
    Metric("utilisation_bots", "share", "busy time of bot pools / bot-hours on shift (inbound)"),
    Metric("utilisation_humans", "share", "busy time of human pools / agent-hours on shift (inbound)"),
    Metric("agent_hours", "hours", "human agent-hours on shift over the horizon (inbound)"),
    Metric(
        "cost_inbound",
        "currency",
        "agent-hours x cost per agent-hour + conversations x cost per conversation + classification (inbound)",
    ),
    Metric(
        "conversation_purchases",
        "purchases",
        "purchases by our customers won in conversations (counted in purchases_treated / purchases_holdout)",
    ),
    Metric(
        "purchases_lost_to_churn",
        "purchases",
        "purchases a churned customer would have made: occasions, click-started and conversation ones (inbound)",
    ),
    *(
        Metric(
            f"response_time_{q}_s_{source}",
            "seconds",
            f"{label} arrival-to-answer time of answered {source} messages (inbound; 0 if none)",
        )
        for source in SOURCES
        for q, label in (("p50", "median"), ("p90", "90th percentile"), ("p99", "99th percentile"))
    ),
    # Derived from the totals above, per replication.
    Metric("cost_total", "currency", "cost_sends + cost_media + cost_creatives + cost_inbound", "derived"),
    Metric("conversation_revenue", "currency", "conversation_conversions x price (inbound)", "derived"),
    Metric(
        "incremental_purchases",
        "purchases",
        "holdout estimate: treated purchases - holdout purchases x (treated customers / holdout customers)",
        "derived",
    ),
    Metric(
        "incremental_purchases_se",
        "purchases",
        "standard error of the holdout estimate within one replication: n_T x sqrt(s_T^2/n_T + s_H^2/n_H), "
        "s^2 the variance of purchases per customer in the treated (T) and holdout (H) groups",
        "derived",
    ),
    Metric(
        "incremental_purchases_low",
        "purchases",
        "lower end of the 95% bootstrap-t interval of incremental_purchases within one replication, resampling "
        "the customers of the treated and holdout groups (each tail near 2.5% even at small holdouts)",
        "derived",
    ),
    Metric(
        "incremental_purchases_high",
        "purchases",
        "upper end of the 95% bootstrap-t interval of incremental_purchases within one replication",
        "derived",
    ),
    Metric("incremental_revenue", "currency", "incremental_purchases x price (holdout estimate)", "derived"),
    Metric("incremental_revenue_true", "currency", "incremental_purchases_true x price", "derived"),
    Metric("attributed_revenue", "currency", "attributed_purchases x price", "derived"),
    Metric(
        "incremental_profit",
        "currency",
        "incremental_revenue x gross margin share - cost_total (holdout estimate)",
        "derived",
    ),
    Metric("roi", "ratio", "incremental_profit / cost_total (0 when nothing was spent)", "derived"),
    Metric("contact_frequency", "messages", "sends / customers_reached: how concentrated the contacts are", "derived"),
    Metric("light_buyer_send_share", "share", "sends_to_light_buyers / sends", "derived"),
    Metric("delivery_rate", "share", "delivered / sends", "derived"),
    Metric("open_rate_recorded", "share", "opens_recorded / delivered", "derived"),
    Metric("read_rate", "share", "reads / delivered", "derived"),
    Metric("click_rate", "share", "clicks / delivered", "derived"),
    Metric("unsubscribe_rate", "share", "unsubscribes / delivered", "derived"),
    Metric(
        "fanatic_match_rate",
        "share",
        "fanatic_sends_matched / fanatic_sends: how often a fanatic got the creative made for someone like them",
        "derived",
    ),
    Metric("fanatic_click_rate", "share", "fanatic_clicks / fanatic_sends", "derived"),
    Metric(
        "attribution_overstatement",
        "ratio",
        "attributed_purchases / incremental_purchases_true (above 1: attribution claims more than marketing caused)",
        "derived",
    ),
)

# Inbound metric -> key of InboundResult.summary (engine/inbound.py).
INBOUND_SUMMARY_KEYS: dict[str, str] = {
    "inbound_volume": "volume",
    "inbound_needles": "needles",
    "classifier_precision": "precision",
    "classifier_recall": "recall",
    "classifier_f1": "f1",
    "classification_delay_p50_s": "classification_delay_s_p50",
    "classification_delay_p90_s": "classification_delay_s_p90",
    "classification_delay_p99_s": "classification_delay_s_p99",
    "response_time_p50_s": "response_time_s_p50",
    "response_time_p90_s": "response_time_s_p90",
    "response_time_p99_s": "response_time_s_p99",
    "sla_attainment": "sla_attainment",
    "abandonment_share": "abandonment",
    "missed_needles": "missed_needles",
    "false_alarms": "false_alarms",
    "escalations": "escalated",
    "inbound_replies": "replies",
    "resolutions": "resolutions",
    "needle_response_time_p50_s": "needle_response_time_s_p50",
    "needle_response_time_p90_s": "needle_response_time_s_p90",
    "needle_response_time_p99_s": "needle_response_time_s_p99",
    "needle_sla_attainment": "needle_sla_attainment",
    "missed_purchase_intents": "missed_purchase_intents",
    "missed_complaints": "missed_complaints",
    "satisfaction": "satisfaction",
    "conversation_conversions": "conversions",
    "conversions_from_replies": "conversions_from_replies",
    "churned_customers": "churned",
    "declarations_captured": "declarations",
    "utilisation_bots": "utilisation_bots",
    "utilisation_humans": "utilisation_humans",
}
# Response time by source ("by channel"): metric response_time_<q>_s_<source> <- summary key.
for _source in SOURCES:
    for _q in ("p50", "p90", "p99"):
        INBOUND_SUMMARY_KEYS[f"response_time_{_q}_s_{_source}"] = f"response_time_s_{_q}_{_source}"


# Every metric that is 0 without an [inbound] table (those from the summary and those the loop sets).
INBOUND_METRICS: tuple[str, ...] = (
    *INBOUND_SUMMARY_KEYS,
    "agent_hours",
    "cost_inbound",
    "false_alarm_cost",
    "declarations_captured",
    "customers_with_declared_taste",
    "conversation_purchases",
    "purchases_lost_to_churn",
    "conversation_revenue",
)


def inbound_metrics(summary: dict[str, float]) -> dict[str, float]:
    """The inbound metrics from an inbound summary; an undefined figure (NaN: nothing to measure) is 0."""
    out = {}
    for name, key in INBOUND_SUMMARY_KEYS.items():
        value = float(summary.get(key, 0.0))
        out[name] = value if math.isfinite(value) else 0.0
    return out


REGISTRY: dict[str, Metric] = {m.name: m for m in _METRICS}
TOTALS: tuple[str, ...] = tuple(m.name for m in _METRICS if m.kind == "total")
TIMESERIES: tuple[str, ...] = tuple(m.name for m in _METRICS if m.in_timeseries)
ALL: tuple[str, ...] = tuple(m.name for m in _METRICS)


def _sample_variance(total: float, squares: float, n: float) -> float:
    if n < 2:
        return 0.0
    mean = total / n
    return max(0.0, (squares - n * mean * mean) / (n - 1))


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def derive(
    totals: dict[str, float],
    *,
    price: float,
    margin_share: float,
    purchase_squares: tuple[float, float] = (0.0, 0.0),
    holdout_interval: tuple[float, float] | None = None,
) -> dict[str, float]:
    """Every metric of one arm in one replication, from its totals. Keys follow the registry's order.

    ``purchase_squares``: sums of squared per-customer purchase counts in the treated and holdout groups.
    ``holdout_interval``: the bootstrap-t interval of the holdout estimate (masssim.estimation.holdout); without it the
    interval is the estimate itself.
    """
    t = dict(totals)
    n_t, n_h = t["customers_treated"], t["customers_holdout"]
    var_t = _sample_variance(t["purchases_treated"], purchase_squares[0], n_t)
    var_h = _sample_variance(t["purchases_holdout"], purchase_squares[1], n_h)
    t["incremental_purchases_se"] = n_t * math.sqrt(var_t / n_t + var_h / n_h) if n_t > 1 and n_h > 1 else 0.0
    t["cost_total"] = t["cost_sends"] + t["cost_media"] + t["cost_creatives"] + t["cost_inbound"]
    t["conversation_revenue"] = t["conversation_conversions"] * price
    scale = _ratio(t["customers_treated"], t["customers_holdout"])
    t["incremental_purchases"] = t["purchases_treated"] - t["purchases_holdout"] * scale
    low, high = holdout_interval if holdout_interval is not None else (t["incremental_purchases"],) * 2
    t["incremental_purchases_low"], t["incremental_purchases_high"] = low, high
    t["incremental_revenue"] = t["incremental_purchases"] * price
    t["incremental_revenue_true"] = t["incremental_purchases_true"] * price
    t["attributed_revenue"] = t["attributed_purchases"] * price
    t["incremental_profit"] = t["incremental_revenue"] * margin_share - t["cost_total"]
    t["roi"] = _ratio(t["incremental_profit"], t["cost_total"])
    t["contact_frequency"] = _ratio(t["sends"], t["customers_reached"])
    t["light_buyer_send_share"] = _ratio(t["sends_to_light_buyers"], t["sends"])
    t["delivery_rate"] = _ratio(t["delivered"], t["sends"])
    t["open_rate_recorded"] = _ratio(t["opens_recorded"], t["delivered"])
    t["read_rate"] = _ratio(t["reads"], t["delivered"])
    t["click_rate"] = _ratio(t["clicks"], t["delivered"])
    t["unsubscribe_rate"] = _ratio(t["unsubscribes"], t["delivered"])
    t["fanatic_match_rate"] = _ratio(t["fanatic_sends_matched"], t["fanatic_sends"])
    t["fanatic_click_rate"] = _ratio(t["fanatic_clicks"], t["fanatic_sends"])
    t["attribution_overstatement"] = _ratio(t["attributed_purchases"], t["incremental_purchases_true"])
    return {name: float(t[name]) for name in ALL}


# The market section's figures (masssim.model.market; docs/model.md 5.5): per replication, over the market
# window, for every brand (the category figures for the category), in the world without marketing (summary
# ``market``) and under each arm's marketing (``market.by_arm``). Not arm metrics: they describe every brand.
MARKET_FIGURES: tuple[Metric, ...] = (
    Metric("share", "share", "the brand's purchases / all category purchases", "derived"),
    Metric("penetration", "share", "customers who bought the brand at least once / all customers", "derived"),
    Metric("purchases_per_buyer", "purchases", "the brand's purchases / its buyers (purchase frequency)", "derived"),
    Metric("bought_a_rival", "share", "of the brand's buyers, the share who bought another brand too", "derived"),
    Metric(
        "duplication",
        "share",
        "per pair (j, k): of brand j's buyers, the share who also bought brand k (duplication of purchase)",
        "derived",
    ),
    Metric("category.penetration", "share", "customers who bought any brand / all customers", "derived"),
    Metric("category.purchases_per_buyer", "purchases", "category purchases / category buyers", "derived"),
    Metric(
        "category.purchases_per_customer",
        "purchases",
        "category purchases / all customers (by_arm only: grows with click-started purchases)",
        "derived",
    ),
    Metric(
        "change",
        "as the figure",
        "by_arm only: the figure under the arm's marketing minus the same replication's figure without "
        "marketing, mean and 95% t interval over replications (not given for duplication)",
        "derived",
    ),
)


def market_markdown_table() -> str:
    """The market figures as a Markdown table (pasted into docs/model.md 5.5; a test keeps them in sync)."""
    lines = ["| figure | unit | definition |", "| --- | --- | --- |"]
    lines += [f"| `{m.name}` | {m.unit} | {m.definition} |" for m in MARKET_FIGURES]
    return "\n".join(lines)


def markdown_table() -> str:
    """The registry as a Markdown table (pasted into docs/model.md; a test keeps them in sync)."""
    lines = ["| metric | unit | range | definition |", "| --- | --- | --- | --- |"]
    lines += [f"| `{m.name}` | {m.unit} | {m.range_text} | {m.definition} |" for m in _METRICS]
    return "\n".join(lines)
