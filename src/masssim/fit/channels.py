"""``masssim fit channels``: each channel's response rates estimated from a campaign log.

A log is one row per send:

========================  ==============================================================================
column                    meaning
========================  ==============================================================================
``customer``              who was sent the message (any identifier)
``channel``               email, sms, messaging or paid_social (the scenario's channels)
``sent_at``               when it was sent: an ISO date and time such as 2024-03-31T09:30:00
``delivered``             1 if the message was delivered (0/1 or true/false)
``opened``                1 if an open was recorded (as the platform records it, pre-fetch included)
``clicked``               1 if the customer clicked
``unsubscribed``          1 if the customer unsubscribed after this message (optional column)
``replied``               1 if the customer replied (optional column)
========================  ==============================================================================

Each rate is the one the engine means (masssim.engine.outbound), so a fitted table reproduces the log's
figures when simulated:

* ``delivery_rate`` = delivered / sent;
* ``open_rate`` = P(read | delivered). A platform's recorded opens also count messages fetched by a mail
  client's privacy feature without being read: the engine records a delivered, unread message as opened with
  probability ``recorded_open_inflation`` (iota), so recorded opens per delivered = o + iota (1 - o), and
  o = (recorded - iota) / (1 - iota). iota is not in a log; it is the channel's default (email 0.35, the
  others 0) unless given (``--recorded-open-inflation email=0`` when the log's opens are real reads only),
  and the table states it;
* ``click_to_open`` = P(click | read) = clicks / reads, reads = delivered x o (= recorded opens when iota = 0);
* ``unsubscribe_rate`` = P(unsubscribe | delivered);
* ``reply_rate`` = P(reply | read).

A row cannot contradict itself: a message not delivered was not opened, clicked, replied to, nor did it
lead to an unsubscribe (the row is refused, naming its line). A click or a reply means the message was read,
so such a row counts as opened even when the platform recorded no open (image blocking hides opens), and
the command says how many rows that was.

Intervals are Wilson score intervals (scipy.stats.binomtest) for the observed proportions, mapped through
the pre-fetch correction; for click-to-open and reply rate under pre-fetch (iota > 0) the number of reads is
itself estimated, and the interval treats it as known (it is then a little too narrow).

The engine's rates are benchmarks for a customer with no fatigue and average affinity; a log averages over
the customers and creatives actually sent. docs/model.md ("Fitting to your own data") says what that means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from masssim.config.errors import ScenarioError
from masssim.config.schema import CHANNEL_DEFAULTS, CHANNEL_NAMES
from masssim.fit.table import FLAG_ALLOWED, TIME_ALLOWED, codes, parse_flag, parse_time, read_table

LOG_COLUMNS = ("customer", "channel", "sent_at", "delivered", "opened", "clicked")
OPTIONAL_LOG_COLUMNS = ("unsubscribed", "replied")
OUTCOMES = ("delivered", "opened", "clicked", "unsubscribed", "replied")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Rate:
    """A fitted rate with its 95% interval, from ``successes`` out of ``trials``."""

    value: float
    ci_low: float
    ci_high: float
    successes: float
    trials: float


def wilson(successes: int, trials: int) -> Rate:
    """The proportion and its Wilson score interval (NaN when there were no trials)."""
    if trials <= 0:
        return Rate(math.nan, math.nan, math.nan, successes, trials)
    ci = stats.binomtest(successes, trials).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return Rate(successes / trials, float(ci.low), float(ci.high), successes, trials)


@dataclass(frozen=True)
class ChannelCounts:
    sent: int
    delivered: int
    opened: int  # recorded opens (clicks and replies without a recorded open counted as opens)
    clicked: int
    unsubscribed: int | None  # None: the log has no such column
    replied: int | None
    customers: int
    opens_implied: int  # rows counted as opened only because of a click or a reply


@dataclass(frozen=True)
class CampaignLog:
    file: str
    channels: dict[str, ChannelCounts]  # in the scenario's channel order
    first: datetime
    last: datetime
    rows: int  # sends in the file
    first_sends_only: bool = False  # counts keep only each customer's first send on each channel


def first_sends(customer: np.ndarray, channel: np.ndarray, sent_at: list[datetime]) -> np.ndarray:
    """Rows that are each (customer, channel)'s earliest send (the first row in the file on a tie)."""
    epoch = datetime(1970, 1, 1)  # the times are naive UTC (parse_time)
    when = np.array([(moment - epoch).total_seconds() for moment in sent_at])
    order = np.lexsort((np.arange(when.shape[0]), when, channel, customer))
    pair = customer[order] * (int(channel.max()) + 1) + channel[order]
    first = np.ones(order.shape[0], bool)
    first[1:] = pair[1:] != pair[:-1]
    keep = np.zeros(order.shape[0], bool)
    keep[order[first]] = True
    return keep


def read_log(path: str | Path, *, first_sends_only: bool = False) -> CampaignLog:
    """Read a campaign log CSV (columns in the module docstring) into counts per channel.

    ``first_sends_only``: count only each customer's first send on each channel. A customer's later
    messages meet them fatigued (the engine lowers reads, clicks and raises unsubscribes with fatigue), so
    the first sends are the ones that measure the rates the engine means: those of a customer not yet
    fatigued (if the log starts with the campaign).
    """
    table = read_table(path, LOG_COLUMNS, OPTIONAL_LOG_COLUMNS, what="one send")
    file = table.file
    channel_names, channel_code = codes(table.columns["channel"])
    for name in channel_names:
        if name not in CHANNEL_NAMES:
            line = table.line[table.columns["channel"].index(name)]
            raise ScenarioError(
                "unknown channel", file=f"{file}:{line}", field="channel", value=name, allowed=", ".join(CHANNEL_NAMES)
            )
    sent_at = table.parsed("sent_at", parse_time, TIME_ALLOWED)
    flags = {
        name: np.array(table.parsed(name, parse_flag, FLAG_ALLOWED), dtype=bool)
        for name in OUTCOMES
        if name in table.columns
    }
    delivered = flags["delivered"]
    for name in ("opened", "clicked", *OPTIONAL_LOG_COLUMNS):
        if name not in flags:
            continue
        contradiction = np.flatnonzero(flags[name] & ~delivered)
        if contradiction.shape[0]:
            line = table.line[int(contradiction[0])]
            raise ScenarioError(
                f"{name} is 1 but delivered is 0",
                file=f"{file}:{line}",
                field=name,
                value=table.columns[name][int(contradiction[0])],
                allowed=f"{name} = 0 on a row whose message was not delivered",
            )
    read_evidence = flags["clicked"] | flags.get("replied", np.zeros_like(delivered))
    opened = flags["opened"] | read_evidence
    implied = read_evidence & ~flags["opened"]
    _, customer_code = codes(table.columns["customer"])
    kept = first_sends(customer_code, channel_code, sent_at) if first_sends_only else np.ones(len(table), bool)
    out: dict[str, ChannelCounts] = {}
    for name in CHANNEL_NAMES:
        if name not in channel_names:
            continue
        rows = (channel_code == channel_names.index(name)) & kept
        out[name] = ChannelCounts(
            sent=int(rows.sum()),
            delivered=int(delivered[rows].sum()),
            opened=int(opened[rows].sum()),
            clicked=int(flags["clicked"][rows].sum()),
            unsubscribed=int(flags["unsubscribed"][rows].sum()) if "unsubscribed" in flags else None,
            replied=int(flags["replied"][rows].sum()) if "replied" in flags else None,
            customers=int(np.unique(customer_code[rows]).shape[0]),
            opens_implied=int(implied[rows].sum()),
        )
    return CampaignLog(
        file=file,
        channels=out,
        first=min(sent_at),
        last=max(sent_at),
        rows=len(table),
        first_sends_only=first_sends_only,
    )


@dataclass(frozen=True)
class ChannelFit:
    counts: ChannelCounts
    inflation: float  # recorded_open_inflation assumed
    delivery_rate: Rate
    recorded_open_rate: Rate  # recorded opens per delivered, as the platform reports it
    open_rate: Rate  # P(read | delivered), pre-fetch removed
    click_to_open: Rate
    unsubscribe_rate: Rate | None
    reply_rate: Rate | None
    warnings: list[str] = field(default_factory=list)


def _unprefetch(q: float, iota: float) -> float:
    """P(read | delivered) from recorded opens per delivered q: (q - iota) / (1 - iota), kept in [0, 1]."""
    if math.isnan(q):
        return q
    return min(max((q - iota) / (1.0 - iota), 0.0), 1.0) if iota < 1 else math.nan


def fit_channel(name: str, counts: ChannelCounts, inflation: float | None = None) -> ChannelFit:
    """The rates of one channel (see the module docstring for what each means)."""
    iota = float(CHANNEL_DEFAULTS[name].get("recorded_open_inflation", 0.0)) if inflation is None else inflation
    warnings: list[str] = []
    delivery = wilson(counts.delivered, counts.sent)
    recorded = wilson(counts.opened, counts.delivered)
    open_rate = Rate(
        _unprefetch(recorded.value, iota),
        _unprefetch(recorded.ci_low, iota),
        _unprefetch(recorded.ci_high, iota),
        counts.opened,
        counts.delivered,
    )
    if counts.delivered and recorded.value < iota:
        warnings.append(
            f"{name}: recorded opens ({recorded.value:.1%} of delivered) are fewer than the pre-fetch share "
            f"assumed ({iota:.0%}); if the log's opens are real reads, give --recorded-open-inflation {name}=0"
        )
    # Reads: recorded opens when nothing is pre-fetched; else estimated as delivered x o, and never fewer than
    # the clicks and replies, each of which is a read.
    reads = counts.opened if iota == 0 else round(counts.delivered * open_rate.value) if counts.delivered else 0
    floor = max(counts.clicked, counts.replied or 0)
    if reads < floor:
        warnings.append(
            f"{name}: {floor:,} clicks or replies but only {reads:,} reads once pre-fetch is removed; "
            f"reads are taken as {floor:,} (is --recorded-open-inflation {name}={iota:g} too high?)"
        )
        reads = floor
    if counts.opens_implied:
        warnings.append(
            f"{name}: {counts.opens_implied:,} rows with a click or a reply but no recorded open were counted as opened"
        )
    return ChannelFit(
        counts=counts,
        inflation=iota,
        delivery_rate=delivery,
        recorded_open_rate=recorded,
        open_rate=open_rate,
        click_to_open=wilson(counts.clicked, reads),
        unsubscribe_rate=None if counts.unsubscribed is None else wilson(counts.unsubscribed, counts.delivered),
        reply_rate=None if counts.replied is None else wilson(counts.replied, reads),
        warnings=warnings,
    )


def fit_channels(log: CampaignLog, inflation: dict[str, float] | None = None) -> dict[str, ChannelFit]:
    inflation = inflation or {}
    unknown = [name for name in inflation if name not in CHANNEL_NAMES]
    if unknown:
        raise ScenarioError(
            "unknown channel",
            field="--recorded-open-inflation",
            value=unknown[0],
            allowed=", ".join(CHANNEL_NAMES),
        )
    return {name: fit_channel(name, counts, inflation.get(name)) for name, counts in log.channels.items()}


# --- the scenario tables --------------------------------------------------------------------------------

# Field of scenario.ChannelConfig -> attribute of ChannelFit.
RATE_FIELDS = {
    "delivery_rate": "delivery_rate",
    "open_rate": "open_rate",
    "click_to_open": "click_to_open",
    "unsubscribe_rate": "unsubscribe_rate",
    "reply_rate": "reply_rate",
}


def channels_table(fits: dict[str, ChannelFit]) -> dict[str, Any]:
    """``[channels.<name>]`` tables (scenario.ChannelConfig's field names): the rates the log can tell;
    a rate with no trials (nothing delivered, or no reads) is left to the channel's default."""
    out: dict[str, Any] = {}
    for name, fit in fits.items():
        table: dict[str, Any] = {}
        for field_name, attribute in RATE_FIELDS.items():
            rate: Rate | None = getattr(fit, attribute)
            if rate is not None and math.isfinite(rate.value):
                table[field_name] = float(f"{rate.value:.6g}")
        if "open_rate" in table:
            table["recorded_open_inflation"] = fit.inflation
        out[name] = table
    return {"channels": out}


def _rate_comment(field_name: str, rate: Rate | None) -> str | None:
    if rate is None or not math.isfinite(rate.value):
        return None
    return f"{field_name} {rate.value:.4g} [95% CI {rate.ci_low:.4g} to {rate.ci_high:.4g}]"


def channels_toml(log: CampaignLog, fits: dict[str, ChannelFit]) -> str:
    """The tables as TOML text, headed by comments: the log, each rate's interval and the assumptions."""
    import tomli_w

    lines = [
        f"# masssim fit channels {Path(log.file).name}: {log.rows:,} sends from {log.first:%Y-%m-%d %H:%M} to "
        f"{log.last:%Y-%m-%d %H:%M}"
        + (", counting only each customer's first send on each channel." if log.first_sends_only else "."),
    ]
    for name, fit in fits.items():
        c = fit.counts
        lines.append(
            f"# {name}: {c.sent:,} sends to {c.customers:,} customers; {c.delivered:,} delivered, "
            f"{c.opened:,} recorded opens, {c.clicked:,} clicks"
            + (f", {c.unsubscribed:,} unsubscribes" if c.unsubscribed is not None else "")
            + (f", {c.replied:,} replies" if c.replied is not None else "")
            + "."
        )
        shown = [_rate_comment(field_name, getattr(fit, attribute)) for field_name, attribute in RATE_FIELDS.items()]
        lines.append("#   " + "; ".join(s for s in shown if s))
        lines.append(
            f"#   recorded_open_inflation {fit.inflation:g} is assumed, not estimated (the share of delivered, "
            "unread messages recorded as opened)"
        )
        lines.extend(f"# warning: {w}" for w in fit.warnings)
    lines.append("")
    return "\n".join(lines) + tomli_w.dumps(channels_table(fits))


def _cell(rate: Rate | None) -> str:
    if rate is None:
        return "(no column)"
    if not math.isfinite(rate.value):
        return "(none to count)"
    return f"{_percent(rate.value)} [{_percent(rate.ci_low)}, {_percent(rate.ci_high)}]"


def _percent(x: float) -> str:
    """Three significant digits: 21.3%, 0.261%, 100%."""
    return f"{100 * x:.3g}%"


def fit_rows(fits: dict[str, ChannelFit]) -> tuple[list[str], list[list[str]]]:
    """Each channel's rates with their 95% intervals, as text for a table: a column per channel (at most four)
    and a row per figure, so the table fits a terminal."""
    header = ["figure \\ channel", *fits]
    figures: list[tuple[str, Any]] = [
        ("sends", lambda f: f"{f.counts.sent:,}"),
        ("delivery_rate (delivered / sent)", lambda f: _cell(f.delivery_rate)),
        ("recorded opens / delivered", lambda f: _cell(f.recorded_open_rate)),
        ("pre-fetch assumed (recorded_open_inflation)", lambda f: f"{f.inflation:.0%}"),
        ("open_rate (read / delivered)", lambda f: _cell(f.open_rate)),
        ("click_to_open (click / read)", lambda f: _cell(f.click_to_open)),
        ("unsubscribe_rate (per delivered)", lambda f: _cell(f.unsubscribe_rate)),
        ("reply_rate (reply / read)", lambda f: _cell(f.reply_rate)),
    ]
    return header, [[label, *(show(fit) for fit in fits.values())] for label, show in figures]
