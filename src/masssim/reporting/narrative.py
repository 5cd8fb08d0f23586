"""Plain-language reading of a run's summary: a few sentences a strategist can forward.

Every sentence is computed from the summary (never written in advance), and a difference is called real
only when its paired 95% confidence interval excludes zero.
"""

from __future__ import annotations

from typing import Any

from masssim.estimation.holdout import MIN_HOLDOUT_BUYERS
from masssim.estimation.intervals import paired_difference, welch_difference
from masssim.model.metrics import INBOUND_METRICS, REGISTRY


def _bounds(metric: str) -> tuple[float | None, float | None]:
    return REGISTRY[metric].bounds if metric in REGISTRY else (None, None)


def money(value: float | None) -> str:
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1e6:
        return f"{sign}{value / 1e6:,.2f}M"
    if value >= 1e4:
        return f"{sign}{value / 1e3:,.1f}k"
    return sign + _small(value)


def count(value: float | None) -> str:
    """A count (customers, purchases), written as :func:`money` writes an amount: no currency is printed."""
    return money(value)


def _small(value: float) -> str:
    """A magnitude under 10,000: whole above 10, two significant digits below it, so that a nonzero end of an
    interval never prints as 0 (an interval from -0.12 to -0.10 called clear must not read "-0 to -0")."""
    if value >= 10 or value == 0 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2g}"


def _counted(value: float, one: str, many: str) -> str:
    """'1 customer', '2 customers', '0.3 customers' (means over replications need not be whole)."""
    return f"{count(value)} {one if count(value) == '1' else many}"


def _ci(stat: dict[str, Any], fmt: Any = money) -> str:
    if stat.get("ci_low") is None:
        return fmt(stat["mean"]) + " (one replication: no interval)"
    return f"{fmt(stat['mean'])} (95% CI {fmt(stat['ci_low'])} to {fmt(stat['ci_high'])})"


def _against_holdout(summary: dict[str, Any], arm: str, metric: str) -> str:
    """A holdout estimate with its interval: the bootstrap-t one of summary["holdout"] when the summary has
    it (each tail near 2.5% at small holdouts, masssim.estimation.holdout), else the t interval over replications."""
    holdout = (summary.get("holdout") or {}).get(arm)
    if holdout is None:
        return _ci(summary["arms"][arm][metric])
    stat = holdout[metric]
    if holdout["too_small"]:
        return f"{money(stat['mean'])} (the holdout is too small to give an interval: {_buyers(holdout)})"
    return f"{money(stat['mean'])} (95% bootstrap-t CI {money(stat['ci_low'])} to {money(stat['ci_high'])})"


def _buyers(holdout: dict[str, Any]) -> str:
    return (
        f"{_counted(holdout['holdout_buyers'], 'holdout customer', 'holdout customers')} bought, "
        f"at least {MIN_HOLDOUT_BUYERS} are needed"
    )


def read_summary(summary: dict[str, Any]) -> list[str]:
    """Sentences that read the result, best arm first."""
    arms: dict[str, Any] = summary["arms"]
    n = summary["replications"]
    lines: list[str] = []
    ranked = sorted(arms, key=lambda a: arms[a]["incremental_profit"]["mean"], reverse=True)
    best = ranked[0]
    lines.append(
        f"Over {n} replication{'s' if n != 1 else ''}, '{best}' has the highest estimate of incremental profit: "
        f"{_against_holdout(summary, best, 'incremental_profit')}, on {money(arms[best]['cost_total']['mean'])} "
        "of spend."
    )
    for arm in ranked:
        m = arms[arm]
        lines.append(
            f"'{arm}': incremental revenue {_against_holdout(summary, arm, 'incremental_revenue')} measured "
            f"against the holdout (the simulator's true figure: {money(m['incremental_revenue_true']['mean'])}); "
            f"ROI {m['roi']['mean']:.2f}; click rate {100 * m['click_rate']['mean']:.2f}% of delivered."
        )
        holdout = read_holdout(arm, (summary.get("holdout") or {}).get(arm))
        if holdout:
            lines.append(holdout)
    baseline = summary["baseline_arm"]
    for arm, diffs in summary.get("differences_vs_baseline", {}).items():
        d = diffs["incremental_profit"]
        if d.get("excludes_zero") is None:
            verdict = "cannot be judged from one replication"
        elif d["excludes_zero"]:
            verdict = "is better" if d["mean"] > 0 else "is worse"
            verdict += " and the difference is statistically clear (its 95% CI excludes zero)"
        else:
            verdict = "is not distinguishable from it with this many replications (the 95% CI includes zero)"
        lines.append(f"Against '{baseline}', '{arm}' {verdict}: paired difference in incremental profit {_ci(d)}.")
    fanatic_arms = [arm for arm in arms if arms[arm].get("fanatics", {}).get("mean", 0) > 0]
    if fanatic_arms:
        count_fanatics = count(arms[fanatic_arms[0]]["fanatics"]["mean"])
        parts = [
            f"'{arm}' {100 * arms[arm]['fanatic_match_rate']['mean']:.0f}% "
            f"(click rate {100 * arms[arm]['fanatic_click_rate']['mean']:.1f}%)"
            for arm in fanatic_arms
        ]
        lines.append(
            f"Fanatics (the {count_fanatics} treated customers with the strongest taste): the share of messages "
            "to them that carried the creative fitting their taste best was " + "; ".join(parts) + "."
        )
    over = [
        arm
        for arm in arms
        if arms[arm]["attributed_purchases"]["mean"] > 1.2 * max(arms[arm]["incremental_purchases_true"]["mean"], 0)
    ]
    if over:
        a = over[0]
        attributed = count(arms[a]["attributed_purchases"]["mean"])
        caused = count(arms[a]["incremental_purchases_true"]["mean"])
        lines.append(
            f"Attribution overstates what marketing caused: for '{a}', {attributed} purchases were attributed to "
            f"clicks but only {caused} were truly incremental."
        )
    return lines


def read_holdout(arm: str, holdout: dict[str, Any] | None) -> str | None:
    """Whether the holdout shows that ``arm`` changed purchases: judged on the bootstrap-t interval of the
    mean holdout estimate (masssim.estimation.holdout), whose tails stay near 2.5% at small holdouts; with fewer than
    MIN_HOLDOUT_BUYERS holdout buyers in all, the holdout is too small to tell. None for a summary written
    before these figures existed."""
    if holdout is None:
        return None
    if holdout["too_small"]:
        return f"The holdout is too small to tell whether '{arm}' changed purchases: {_buyers(holdout)}."
    stat = holdout["incremental_purchases"]
    low, high = stat["ci_low"], stat["ci_high"]
    verdict = (
        "clearly added purchases"
        if low > 0
        else "clearly lost purchases"
        if high < 0
        else "cannot be told apart from no effect"
    )
    return (
        f"Against the holdout, '{arm}' {verdict}: {count(low)} to {count(high)} extra purchases per replication "
        "(95% bootstrap-t interval)."
    )


def read_sweep(
    grid: dict[str, list[Any]], cells: list[dict[str, Any]], metric: str = "incremental_profit"
) -> list[str]:
    """Sentences that read a sweep: where ``metric`` is highest along the first swept parameter, for each arm
    and combination of the other parameters. A peak is called "inside the range" only when both neighbouring
    cells are clearly lower (paired 95% CIs: every cell uses the same seeds, so replication r of one cell
    pairs with replication r of another)."""
    if not grid or not cells:
        return []
    first = next(iter(grid))
    others = [p for p in grid if p != first]
    lines: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for cell in cells:
        for arm in cell["arms"]:
            key = (arm, *(repr(cell["overrides"][p]) for p in others))
            lines.setdefault(key, []).append(cell)
    out: list[str] = []
    name = metric.replace("_", " ")
    unit = REGISTRY[metric].unit if metric in REGISTRY else ""
    fmt = percent if unit == "share" else duration if unit == "seconds" else money if unit == "currency" else count

    def versus(a_cell: dict[str, Any], b_cell: dict[str, Any], arm: str) -> dict[str, Any]:
        a = a_cell["arms"][arm][metric].get("values") or []
        b = b_cell["arms"][arm][metric].get("values") or []
        paired = len(a) == len(b) and len(a) > 1
        return paired_difference(a, b, bounds=_bounds(metric)) if paired else welch_difference(a, b)

    for key, unordered in lines.items():
        arm = key[0]
        if len(unordered) < 2:
            continue
        members = sorted(unordered, key=lambda c: grid[first].index(c["overrides"][first]))
        stats = [c["arms"][arm][metric] for c in members]
        best = max(range(len(members)), key=lambda i: stats[i]["mean"])
        where = ", ".join(f"{p} = {members[0]['overrides'][p]}" for p in others)
        label = f"'{arm}'" + (f" ({where})" if where else "")
        value = members[best]["overrides"][first]
        sentence = f"For {label}, {name} is highest at {first} = {value}: {_ci(stats[best], fmt)}"
        neighbours = [i for i in (best - 1, best + 1) if 0 <= i < len(members)]
        clearly_lower = []
        for i in neighbours:
            diff = versus(members[best], members[i], arm)
            low = diff.get("ci_low")
            clearly_lower.append(low is not None and low > 0)
            sentence += f"; {_ci(diff, fmt)} more than at {first} = {members[i]['overrides'][first]}" + (
                " (clear: the 95% CI excludes zero)" if clearly_lower[-1] else " (not clearly different)"
            )
        if len(neighbours) == 2 and all(clearly_lower):
            sentence += ". The peak is inside the range: both neighbouring values are clearly lower."
        elif len(neighbours) == 2:
            sentence += ". Not a clear peak: a neighbouring value is not clearly lower."
        else:
            sentence += ". The highest value is at the edge of the swept range."
        out.append(sentence)
    return out


def read_sweep_arms(
    grid: dict[str, list[Any]], cells: list[dict[str, Any]], metric: str = "incremental_profit"
) -> list[str]:
    """For sweeps with several arms: in which cells each arm clearly beats or loses to the baseline arm
    (paired 95% CI of the difference excludes zero), and where they cannot be told apart."""
    if not cells:
        return []
    out: list[str] = []
    arms = list(cells[0].get("differences_vs_baseline", {}))
    baseline = next(iter(cells[0]["arms"]))
    name = metric.replace("_", " ")
    for arm in arms:
        wins: list[str] = []
        losses: list[str] = []
        ties: list[str] = []
        for cell in cells:
            diff = cell["differences_vs_baseline"][arm][metric]
            where = ", ".join(f"{p} = {cell['overrides'][p]}" for p in grid)
            if diff.get("excludes_zero"):
                (wins if diff["mean"] > 0 else losses).append(where)
            else:
                ties.append(where)
        parts = []
        if wins:
            parts.append(f"beats '{baseline}' on {name} at {'; '.join(wins)}")
        if losses:
            parts.append(f"loses to it at {'; '.join(losses)}")
        if ties:
            parts.append(f"cannot be told apart from it at {'; '.join(ties)}")
        out.append(f"'{arm}' " + ", ".join(parts) + " (paired 95% CIs).")
    return out


# ---------------------------------------------------------------- inbound


def percent(share: float | None, digits: int = 1) -> str:
    """A share (0.25) as a percentage ("25.0%")."""
    if share is None:
        return "n/a"
    return f"{100 * share:.{digits}f}%"


def duration(seconds: float | None) -> str:
    """A duration in the unit a reader would use: seconds, minutes, hours or days."""
    if seconds is None:
        return "n/a"
    sign, s = ("-" if seconds < 0 else ""), abs(seconds)
    if s == 0:
        return "0 s"
    steps = ((10, 1, "s", 2), (60, 1, "s", 1), (7200, 60, "min", 1), (172800, 3600, "h", 1))
    for limit, divisor, unit, digits in steps:
        if s < limit:
            return f"{sign}{s / divisor:.{digits}f} {unit}"
    return f"{sign}{s / 86400:.1f} days"


def has_inbound(summary: dict[str, Any]) -> bool:
    """Whether the run found any mention (the scenario has an [inbound] table): inbound_volume > 0."""
    return any((m.get("inbound_volume") or {}).get("mean", 0) > 0 for m in summary.get("arms", {}).values())


def _inbound_groups(arms: dict[str, Any]) -> list[list[str]]:
    """Arms grouped by identical inbound figures (without replies every arm shares one stream)."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for arm, m in arms.items():
        key = tuple((m.get(name) or {}).get("mean") for name in INBOUND_METRICS)
        groups.setdefault(key, []).append(arm)
    return list(groups.values())


def read_inbound(summary: dict[str, Any], sla_minutes: float | None = None) -> list[str]:
    """Sentences that read the inbound desk (find -> classify -> respond); empty without inbound.

    Arms with identical inbound figures (no replies to their own messages: they share one mention stream)
    are read once. ``sla_minutes`` (the scenario's ``inbound.sla_minutes``) is named when given.
    """
    if not has_inbound(summary):
        return []
    arms: dict[str, Any] = summary["arms"]
    groups = _inbound_groups(arms)
    lines: list[str] = []
    for group in groups:
        m = arms[group[0]]

        def mean(name: str, m: dict[str, Any] = m) -> float:
            return float((m.get(name) or {}).get("mean") or 0.0)

        if len(arms) == 1:
            who = ""
        elif len(group) == len(arms):
            who = " (the same for every arm)"
        else:
            who = " for " + " and ".join(f"'{arm}'" for arm in group)
        volume, needles, replies = mean("inbound_volume"), mean("inbound_needles"), mean("inbound_replies")
        found = (
            f"Inbound{who}: the desk found {count(volume)} mentions per replication, {count(needles)} of them "
            f"needles (truly about the brand: {percent(needles / volume if volume else 0.0)})"
        )
        if replies > 0:
            found += f", including {count(replies)} replies to our own messages"
        lines.append(found + ".")
        precision, recall = mean("classifier_precision"), mean("classifier_recall")
        lines.append(
            f"The classification core flagged {percent(recall, 0)} of the needles (recall) and {100 * precision:.0f} "
            f"of every 100 flags were right (precision; F1 {mean('classifier_f1'):.2f}). "
            f"{count(mean('missed_needles'))} needles were never answered (missed needles) and "
            f"{count(mean('false_alarms'))} irrelevant mentions were answered anyway (false alarms), taking agents' "
            "time from the needles."
        )
        sla = f" ({sla_minutes:g} minutes)" if sla_minutes is not None else ""
        lines.append(
            f"Of the mentions sent to a responder pool, {_ci(m['sla_attainment'], percent)} were answered within "
            f"the SLA{sla} and {percent(mean('abandonment_share'))} gave up waiting. Response times are for "
            f"answered messages only, so read them beside abandonment: median {duration(mean('response_time_p50_s'))}, "
            f"90th percentile {duration(mean('response_time_p90_s'))}, 99th {duration(mean('response_time_p99_s'))}."
        )
        outcome = (
            f"{percent(mean('satisfaction'))} of the settled needles left satisfied; conversations won "
            f"{count(mean('conversation_conversions'))} purchases ({money(mean('conversation_revenue'))} of revenue)"
        )
        churned = mean("churned_customers")
        if churned > 0:
            lost = mean("purchases_lost_to_churn")
            outcome += (
                f"; {_counted(churned, 'customer', 'customers')} left after an unanswered complaint, taking "
                f"{_counted(lost, 'purchase occasion', 'purchase occasions')} of our brand with them"
            )
        declared = mean("declarations_captured")
        if declared > 0:
            outcome += (
                f"; conversations captured the taste of {_counted(declared, 'customer', 'customers')} "
                f"({count(mean('customers_with_declared_taste'))} have declared taste at the end)"
            )
        lines.append(outcome[0].upper() + outcome[1:] + ".")
        staff = []
        hours, humans, bots = mean("agent_hours"), mean("utilisation_humans"), mean("utilisation_bots")
        if hours > 0:
            busy = f"Human agents were busy {percent(humans, 0)} of their {count(hours)} agent-hours on shift"
            if humans >= 0.85:
                busy += " (near capacity, where queues grow quickly)"
            staff.append(busy)
        if bots > 0:
            staff.append(f"bots {percent(bots, 0)} of theirs")
        cost = f"the inbound desk cost {money(mean('cost_inbound'))}"
        lines.append(("; ".join([*staff, cost]) if staff else cost[0].upper() + cost[1:]) + ".")
    if len(groups) > 1 and not inbound_first(summary):
        lines += read_inbound_differences(summary)
    return lines


def inbound_first(summary: dict[str, Any]) -> bool:
    """Whether a comparison is about the inbound desk: every compared variant changes only ``inbound.*``
    settings and the desk's figures differ. Its reading then opens with the inbound verdict, not with
    outbound profit (which such variants change only through the desk's cost)."""
    variants: dict[str, Any] = summary.get("variants") or {}
    changed = [path for info in variants.values() for path in info.get("changed") or []]
    if not changed or not has_inbound(summary):
        return False
    return all(path.startswith("inbound.") for path in changed) and len(_inbound_groups(summary["arms"])) > 1


def read_inbound_differences(summary: dict[str, Any]) -> list[str]:
    """Per compared strategy against the baseline: the needles' service (within the SLA, missed), the routed
    mentions within the SLA and the desk's cost, as paired differences."""
    baseline = summary.get("baseline_arm")
    lines = []

    def verdict(d: dict[str, Any]) -> str:
        if d.get("excludes_zero") is None:
            return "one replication: cannot be judged"
        return "clear: the 95% CI excludes zero" if d["excludes_zero"] else "could be chance"

    for arm, diffs in (summary.get("differences_vs_baseline") or {}).items():
        sla_d, missed_d = diffs.get("sla_attainment") or {}, diffs.get("missed_needles") or {}
        needle_d, cost_d = diffs.get("needle_sla_attainment") or {}, diffs.get("cost_inbound") or {}
        if not sla_d or not missed_d:
            continue
        sla_pp, missed = 100 * float(sla_d["mean"]), float(missed_d["mean"])
        line = f"Inbound, '{arm}' against '{baseline}': "
        if needle_d:
            needle_pp = 100 * float(needle_d["mean"])
            line += (
                f"{abs(needle_pp):.1f} percentage points {'more' if needle_pp >= 0 else 'fewer'} of the needles "
                f"answered within the SLA ({verdict(needle_d)}), "
            )
        line += (
            f"{count(abs(missed))} {'fewer' if missed <= 0 else 'more'} needles never answered "
            f"({verdict(missed_d)}) and {abs(sla_pp):.1f} points {'more' if sla_pp >= 0 else 'fewer'} of the routed "
            f"mentions within the SLA ({verdict(sla_d)})"
        )
        if cost_d:
            cost = float(cost_d["mean"])
            if cost == 0.0 and not cost_d.get("halfwidth"):
                line += ", at the same inbound cost"
            else:
                line += f", for {money(abs(cost))} {'more' if cost >= 0 else 'less'} inbound cost ({verdict(cost_d)})"
        lines.append(line + "; paired differences.")
    return lines


def read_comparison(summary: dict[str, Any]) -> list[str]:
    """The findings of a comparison, what it compares first: an inbound comparison opens with the desk's
    paired differences, then outbound profit."""
    lead = read_inbound_differences(summary) if inbound_first(summary) else []
    return lead + read_summary(summary)
