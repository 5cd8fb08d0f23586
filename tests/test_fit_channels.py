"""``masssim fit channels`` by round trip: known rates -> a campaign log -> fit -> the rates back.

Two sources of logs:

* a log of single sends simulated from the engine's own rate definitions (masssim.engine.outbound, at zero
  fatigue and average affinity): delivered with P = delivery_rate; read with P = open_rate given delivery;
  a delivered, unread message recorded as opened with P = recorded_open_inflation; clicked with
  P = click_to_open and replied with P = reply_rate given a read; unsubscribed with P = unsubscribe_rate
  given delivery;
* a real masssim run (one wave, so no fatigue; affinity, warmth and creative quality switched off, so every
  read clicks with probability click_to_open), exported as a log of its sends with each one's outcomes as the
  run's policy observed them (tests/policies_for_tests.py's recording policy, through the policy interface).

Tolerances: Z = 4 standard errors of each estimate at the true rates: binomial for a proportion, divided by
(1 - iota) for the pre-fetch-corrected open rate, and by the delta method for click and reply rates per
estimated read (their relative variances add).
"""

from __future__ import annotations

import csv
import math
import tomllib
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

import masssim
from masssim.config.schema import CHANNEL_NAMES
from masssim.engine.sim import ArmSimulation, build_world
from masssim.fit.channels import channels_toml, fit_channels, read_log
from masssim.model import streams
from masssim.model.streams import replication_sequence, root_sequence

RECORDER = "policies_for_tests:RecordingPolicy"

Z = 4.0
TRUE = {
    "email": {
        "delivery_rate": 0.97,
        "open_rate": 0.22,
        "recorded_open_inflation": 0.35,
        "click_to_open": 0.12,
        "unsubscribe_rate": 0.004,
        "reply_rate": 0.0,
    },
    "messaging": {
        "delivery_rate": 0.95,
        "open_rate": 0.8,
        "recorded_open_inflation": 0.0,
        "click_to_open": 0.4375,
        "unsubscribe_rate": 0.005,
        "reply_rate": 0.05,
    },
}
SENDS = {"email": 60_000, "messaging": 20_000}


def simulate_log(path: Path, seed: int = 3) -> Path:
    rng = streams.generator(streams.root_sequence(seed))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", "channel", "sent_at", "delivered", "opened", "clicked", "unsubscribed", "replied"])
        for channel, rates in TRUE.items():
            n = SENDS[channel]
            delivered = rng.random(n) < rates["delivery_rate"]
            read = delivered & (rng.random(n) < rates["open_rate"])
            prefetch = delivered & ~read & (rng.random(n) < rates["recorded_open_inflation"])
            clicked = read & (rng.random(n) < rates["click_to_open"])
            replied = read & (rng.random(n) < rates["reply_rate"])
            unsubscribed = delivered & (rng.random(n) < rates["unsubscribe_rate"])
            style = (lambda b: "1" if b else "0") if channel == "email" else (lambda b: "TRUE" if b else "false")
            for i in range(n):
                writer.writerow(
                    [
                        f"c{i}",
                        channel,
                        f"2024-05-{1 + i % 28:02d}T10:{i % 60:02d}:00",
                        *(style(x[i]) for x in (delivered, read | prefetch, clicked, unsubscribed, replied)),
                    ]
                )
    return path


def se_proportion(p: float, n: float) -> float:
    return math.sqrt(p * (1 - p) / n)


def check_recovered(fits, sends: dict[str, int]) -> None:
    for channel, fit in fits.items():
        t = TRUE[channel]
        n = sends[channel]
        delivered = n * t["delivery_rate"]
        reads = delivered * t["open_rate"]
        iota = t["recorded_open_inflation"]
        recorded = t["open_rate"] + iota * (1 - t["open_rate"])
        se_open = se_proportion(recorded, delivered) / (1 - iota)
        tolerance = {
            "delivery_rate": se_proportion(t["delivery_rate"], n),
            "open_rate": se_open,
            "unsubscribe_rate": se_proportion(t["unsubscribe_rate"], delivered),
        }
        for name in ("click_to_open", "reply_rate"):
            p = t[name]
            relative = (1 - p) / (p * reads) if p > 0 else 0.0
            if iota > 0:
                relative += (se_open / t["open_rate"]) ** 2
            tolerance[name] = p * math.sqrt(relative) if p > 0 else 3.0 / reads  # p = 0: a few events at most
        for name, se in tolerance.items():
            rate = getattr(fit, name)
            assert abs(rate.value - t[name]) <= Z * se, (channel, name, rate, t[name], se)
            assert rate.ci_low <= rate.value <= rate.ci_high


def test_round_trip_from_the_engine_definitions(tmp_path: Path) -> None:
    log = read_log(simulate_log(tmp_path / "log.csv"))
    assert list(log.channels) == ["email", "messaging"]  # the scenario's order
    assert log.channels["email"].sent == SENDS["email"]
    fits = fit_channels(log)  # email: the channel's default pre-fetch share, 0.35, is the simulated one
    assert fits["email"].inflation == 0.35
    check_recovered(fits, SENDS)


def test_prefetch_ignored_overstates_reads(tmp_path: Path) -> None:
    """Taking email's recorded opens as reads (iota = 0) recovers the recorded rate, not the read rate: the
    assumption matters, which is why the table states it."""
    log = read_log(simulate_log(tmp_path / "log.csv"))
    fit = fit_channels(log, {"email": 0.0})["email"]
    recorded = 0.22 + 0.35 * 0.78
    assert abs(fit.open_rate.value - recorded) <= Z * se_proportion(recorded, SENDS["email"] * 0.97)
    assert fit.open_rate.value > 0.4


def test_table_is_valid_channel_sections(tmp_path: Path) -> None:
    log = read_log(simulate_log(tmp_path / "log.csv"))
    text = channels_toml(log, fit_channels(log))
    data = tomllib.loads(text)
    assert set(data["channels"]) == {"email", "messaging"}
    scenario = masssim.scenario_from_dict({"name": "fitted", **data})  # every field is ChannelConfig's
    assert scenario.channels.email.recorded_open_inflation == 0.35
    assert scenario.channels.messaging.reply_rate == pytest.approx(data["channels"]["messaging"]["reply_rate"])
    assert "95% CI" in text and "assumed, not estimated" in text


OUTCOME_KINDS = ("delivered", "open", "click", "unsubscribe", "reply")


def export_run_log(path: Path, scenario: masssim.Scenario) -> tuple[Path, dict[str, int]]:
    """Run each arm of ``scenario`` (a recording policy: one channel, every reachable customer, every
    feedback kept) and write its sends as a campaign log, each send's outcomes as the policy saw them:
    delivered, opened (recorded, pre-fetch included: the policy never sees a true read), clicked,
    unsubscribed, replied. An outcome belongs to the customer's latest delivered send before it. Returns the
    log and each channel's sends as the run counted them."""
    world = build_world(scenario, replication_sequence(root_sequence(scenario.seed), 0))
    sends: dict[str, int] = {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", "channel", "sent_at", "delivered", "opened", "clicked", "unsubscribed", "replied"])
        for arm in range(len(scenario.arms)):
            sim = ArmSimulation(scenario, world, arm)
            metrics = sim.run().metrics
            policy = sim.policy
            channel = CHANNEL_NAMES[policy.channel]
            sends[channel] = int(metrics["sends"])
            wave_times = np.array([time_s for time_s, _ in policy.plans])
            outcome: dict[str, set[tuple[int, int]]] = {}
            for kind in OUTCOME_KINDS:
                events = policy.events(kind)
                wave = np.searchsorted(wave_times, events["time_s"], side="right") - 1
                pairs = zip(wave.tolist(), events["customer"].tolist(), strict=True)
                if kind == "delivered":
                    outcome[kind] = set(pairs)
                    continue
                # A late outcome (a read days after delivery) can come after the customer's next send; it
                # belongs to the latest delivered send before it, as a real log's message id would say.
                owned = set()
                for latest, customer in pairs:
                    w = latest
                    while w >= 0 and (w, customer) not in outcome["delivered"]:
                        w -= 1
                    if w >= 0:
                        owned.add((w, customer))
                outcome[kind] = owned
            for wave, (time_s, plan) in enumerate(policy.plans):
                sent_at = (datetime(2024, 1, 1) + timedelta(seconds=time_s)).isoformat()
                for customer in plan.customer.tolist():
                    flags = (int((wave, customer) in outcome[kind]) for kind in OUTCOME_KINDS)
                    writer.writerow([customer, channel, sent_at, *flags])
    return path, sends


@pytest.mark.slow
def test_round_trip_from_a_masssim_run(tmp_path: Path) -> None:
    """A log exported from a real run gives back the rates the run was given: the fit reads each rate as the
    engine means it. The run has one wave (nobody is fatigued) and no affinity, warmth or creative-quality
    effects, so every read clicks with probability click_to_open: the engine's benchmark conditions."""
    channels = {name: {k: v for k, v in rates.items() if k != "reply_rate" or v > 0} for name, rates in TRUE.items()}
    for rates in channels.values():
        rates["reach"] = 1.0
    scenario = masssim.scenario_from_dict(
        {
            "name": "fit_channels_round_trip",
            "seed": 11,
            "replications": 1,
            "horizon_days": 7,  # reads come within hours (lognormal delays): almost none are cut off
            "population": {"customers": 25_000},
            "channels": channels,
            "schedule": {"wave_every_days": 365},  # one wave
            "response": {"affinity_click_beta": 0.0, "warmth_click_delta": 0.0},
            "creatives": {"quality_sd": 0.0},
            "arms": [
                {"name": "email", "policy": RECORDER, "channel": "email"},
                {"name": "messaging", "policy": RECORDER, "channel": "messaging"},
            ],
        }
    )
    path, sends = export_run_log(tmp_path / "run.csv", scenario)
    log = read_log(path)
    assert {name: counts.sent for name, counts in log.channels.items()} == sends  # every send is a row
    check_recovered(fit_channels(log), sends)


@pytest.mark.slow
def test_first_sends_measure_the_unfatigued_rates(tmp_path: Path) -> None:
    """Waves every 3 days with the engine's default fatigue (tau 3 days, kappa 0.15 on reads, gamma 0.1 on
    clicks): counting every send, the fitted open rate falls below the configured one by more than 4 of its
    standard errors (about 6% lower: exp(-kappa f) with f near 0.5 from the third wave on); counting each
    customer's first send only (--first-sends) recovers every rate within 4 standard errors."""
    email = {k: v for k, v in TRUE["email"].items() if k != "reply_rate"}
    scenario = masssim.scenario_from_dict(
        {
            "name": "fit_channels_fatigue",
            "seed": 12,
            "replications": 1,
            "horizon_days": 15,  # waves on days 0, 3, 6, 9, 12
            "population": {"customers": 40_000},
            "channels": {"email": {**email, "reach": 1.0}},
            "schedule": {"wave_every_days": 3},
            "response": {"affinity_click_beta": 0.0, "warmth_click_delta": 0.0},
            "creatives": {"quality_sd": 0.0},
            "arms": [{"name": "email", "policy": RECORDER, "channel": "email"}],
        }
    )
    path, sends = export_run_log(tmp_path / "waves.csv", scenario)
    every = fit_channels(read_log(path))["email"]
    assert every.counts.sent == sends["email"]
    se_every = se_proportion(0.22 + 0.35 * 0.78, every.counts.delivered) / (1 - 0.35)
    assert every.open_rate.value < 0.22 - Z * se_every, every.open_rate
    first = read_log(path, first_sends_only=True)
    assert first.channels["email"].sent == first.channels["email"].customers  # one send per customer
    check_recovered(fit_channels(first), {"email": first.channels["email"].sent})
