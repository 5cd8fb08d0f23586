"""Tests of the inbound assembly: core as a batch server → response policy → responder pools."""

from __future__ import annotations

import math

import numpy as np
import pytest

from masssim.classify import build_classifier
from masssim.classify.base import Classifier
from masssim.engine.inbound import (
    STATUS_NAMES,
    CoreServer,
    InboundResult,
    PoolSpec,
    plan_batches,
    simulate_inbound,
)
from masssim.engine.responders import LognormalHandleTime
from masssim.model.messages import Mentions, MentionStreamConfig, generate_mentions, training_corpus
from masssim.policies.response import (
    BotFirst,
    Decisions,
    build_response_policy,
    resolve_response_policy,
    response_policy_names,
)

DAY = 86_400.0
HORIZON = 3 * DAY  # Monday 00:00 to Thursday 00:00: ~6000 mentions with the default sources


@pytest.fixture(scope="module")
def cfg() -> MentionStreamConfig:
    return MentionStreamConfig(difficulty=0.1)


@pytest.fixture(scope="module")
def mentions(cfg: MentionStreamConfig) -> Mentions:
    return generate_mentions(cfg, HORIZON, np.random.default_rng(11))


@pytest.fixture(scope="module")
def keyword() -> Classifier:
    return build_classifier("keyword")


@pytest.fixture(scope="module")
def hashed(cfg: MentionStreamConfig) -> Classifier:
    corpus = training_corpus(cfg, 2500, np.random.default_rng(11), needle_share=0.3)
    model = build_classifier("hashed", {"bits": 14})
    model.fit(corpus.text, corpus.relevant, corpus.intent)  # type: ignore[attr-defined]
    return model


def pools(humans: int = 4, human_median_s: float = 300.0, bots: int = 50) -> list[PoolSpec]:
    return [
        PoolSpec("bot", bots, LognormalHandleTime(20.0, 0.3), kind="bot"),
        PoolSpec("human", humans, LognormalHandleTime(human_median_s, 0.5), discipline="priority"),
    ]


FAST = CoreServer(batch_size=1, replicas=1, a_s=0.0, b_s=0.0, max_wait_s=0.0)


def run(
    mentions: Mentions,
    classifier: Classifier,
    policy: str = "respond_all",
    params: dict[str, object] | None = None,
    server: CoreServer = FAST,
    pool_specs: list[PoolSpec] | None = None,
    seed: int = 5,
    **kwargs: float,
) -> InboundResult:
    return simulate_inbound(
        mentions,
        classifier,
        server,
        build_response_policy(policy, params),
        pools() if pool_specs is None else pool_specs,
        np.random.default_rng(seed),
        HORIZON,
        **kwargs,
    )


def check_consistent(r: InboundResult) -> None:
    s = r.summary
    counts = {name: r.count(name) for name in STATUS_NAMES}
    assert sum(counts.values()) == len(r) == s["volume"]
    assert s["classified"] == len(r) - counts["unclassified"]
    assert s["routed"] == s["classified"] - counts["ignored"]
    assert s["routed"] == counts["answered"] + counts["abandoned"] + counts["pending"] + counts["unroutable"]
    answered = r.status == STATUS_NAMES.index("answered")
    assert np.array_equal(~np.isnan(r.response_time_s), answered)
    assert np.all(r.answer_start_s[answered] >= r.classified_at_s[answered] - 1e-9)
    assert np.all(r.response_time_s[answered] >= r.classification_delay_s[answered] - 1e-9)
    over = answered & ~np.isnan(r.answer_end_s)
    assert np.all(r.answer_end_s[over] >= r.answer_start_s[over])
    abandoned = r.status == STATUS_NAMES.index("abandoned")
    assert np.array_equal(~np.isnan(r.abandon_s), abandoned)
    truth = r.quality.relevance
    assert truth.tp + truth.fn == s["needles"]
    relevant_answered = s["needles"] - s["missed_needles"]
    assert relevant_answered + s["false_alarms"] == counts["answered"]
    if s["routed"]:
        within = np.count_nonzero(answered & (r.response_time_s <= 60 * 60.0))
        assert s["sla_attainment"] == pytest.approx(within / s["routed"])
        assert s["abandonment"] == pytest.approx(counts["abandoned"] / s["routed"])
    assert sum(v["volume"] for v in r.by_source.values()) == len(r)
    assert sum(v["answered"] for v in r.by_source.values()) == counts["answered"]
    for name in r.pool_names:
        assert 0.0 <= s[f"utilisation_{name}"] <= 1.0 + 1e-9


# --- Registry --------------------------------------------------------------------------------------------


def test_registry_names_module_attr_and_errors() -> None:
    assert set(response_policy_names()) >= {"respond_all", "threshold", "bot_first"}
    assert resolve_response_policy("masssim.policies.response:BotFirst") is BotFirst
    assert isinstance(build_response_policy("bot_first", {"bot_resolution": {"praise": 1.0}}), BotFirst)
    with pytest.raises(LookupError, match="did you mean 'threshold'"):
        resolve_response_policy("treshold")
    with pytest.raises(ValueError, match="did you mean 'min_priority'"):
        build_response_policy("threshold", {"min_prority": 0.2})
    with pytest.raises(ValueError, match="mode"):
        build_response_policy("threshold", {"mode": "sometimes"})
    with pytest.raises(ValueError, match="unknown intent"):
        build_response_policy("bot_first", {"bot_resolution": {"anger": 0.5}})
    # a module:attr of the wrong kind is refused before it is called
    with pytest.raises(LookupError, match=r"without route\(\) or schedule_for\(\), not a response policy"):
        build_response_policy("builtins:dict")


def test_business_hours_mode_sets_human_schedules_only() -> None:
    policy = build_response_policy("threshold", {"mode": "business_hours", "open_hour": 8.0, "close_hour": 20.0})
    human = policy.schedule_for("human", 3)
    assert human[0] == 0 and human[8] == 3 and human[19] == 3 and human[20] == 0 and human[5 * 24 + 10] == 0
    assert np.all(policy.schedule_for("bot", 7) == 7)
    assert np.all(build_response_policy("threshold").schedule_for("human", 3) == 3)


# --- The core as a batch server -------------------------------------------------------------------------


def reference_batches(t: np.ndarray, server: CoreServer) -> np.ndarray:
    """Per-message end times by a plain event-by-event loop."""
    n = len(t)
    ends = np.empty(n)
    free = [0.0] * server.replicas
    i = 0
    while i < n:
        j = i
        while j + 1 < n and j + 1 - i < server.batch_size and t[j + 1] <= t[i] + server.max_wait_s:
            j += 1
        size = j - i + 1
        send = t[j] if size == server.batch_size else t[i] + server.max_wait_s
        free.sort()
        start = max(send, free[0])
        free[0] = start + server.a_s + server.b_s * size
        ends[i : j + 1] = free[0]
        i = j + 1
    return ends


@pytest.mark.parametrize("replicas", [1, 3])
def test_batch_plan_matches_a_plain_loop(replicas: int) -> None:
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.exponential(2.0, 3000))
    server = CoreServer(batch_size=8, replicas=replicas, a_s=1.0, b_s=0.7 * replicas, max_wait_s=5.0)
    plan = plan_batches(t, server)
    assert plan.size.sum() == len(t) and plan.size.max() <= 8
    assert np.all(t[plan.first + plan.size - 1] - t[plan.first] <= 5.0)
    ends = plan.end_s[plan.per_message(len(t))]
    np.testing.assert_allclose(ends, reference_batches(t, server))
    assert np.all(ends >= t)


# --- End to end -----------------------------------------------------------------------------------------


def test_fast_core_and_ample_agents_answer_everything_at_once(mentions: Mentions, keyword: Classifier) -> None:
    r = run(mentions, keyword, pool_specs=pools(humans=2000), patience_median_s=1e9)
    check_consistent(r)
    assert np.all(r.classification_delay_s == 0.0)
    assert r.count("answered") == len(r)  # every message routed and answered, the relevant ones included
    assert r.summary["missed_needles"] == 0
    assert np.all(r.response_time_s == 0.0)
    assert r.summary["response_time_s_p99"] == 0.0 and r.summary["sla_attainment"] == 1.0
    assert r.summary["abandonment"] == 0.0


def test_overloaded_core_delays_grow_over_the_horizon(mentions: Mentions, keyword: Classifier) -> None:
    rate = len(mentions) / HORIZON
    # Service of a full batch of 10 takes 10 / (0.85 rate): the core handles 85% of the average stream.
    slow = CoreServer(batch_size=10, replicas=1, a_s=0.0, b_s=1.0 / (0.85 * rate), max_wait_s=60.0)
    ok = CoreServer(batch_size=10, replicas=1, a_s=0.0, b_s=1.0 / (4.0 * rate), max_wait_s=60.0)
    assert slow.capacity_per_s() < rate < ok.capacity_per_s()
    r = run(mentions, keyword, server=slow, pool_specs=pools(humans=2000))
    good = run(mentions, keyword, server=ok, pool_specs=pools(humans=2000))
    check_consistent(r)
    check_consistent(good)
    delay = r.classification_delay_s
    quarter = (r.arrival_s // (HORIZON / 4)).astype(int)
    first = np.nanmedian(delay[quarter == 0])
    last = np.nanmedian(delay[quarter == 3])
    assert last > 3 * first and last - first > 6 * 3600.0  # the backlog keeps growing
    assert r.count("unclassified") > 0  # a backlog is left at the horizon
    # The same stream on a core with headroom: delay bounded by the batch wait and one service.
    assert np.nanmax(good.classification_delay_s) < 60.0 + 10 * ok.b_s * 3
    assert good.count("unclassified") < 20
    # Every answer is late, so the SLA suffers and customers abandon.
    assert r.summary["sla_attainment"] < good.summary["sla_attainment"]
    assert r.summary["abandonment"] > good.summary["abandonment"]


def test_respond_all_answers_haystack_threshold_filters_it(
    mentions: Mentions, keyword: Classifier, hashed: Classifier
) -> None:
    staffing = pools(humans=2, human_median_s=120.0)  # fewer than respond_all needs
    everyone = run(mentions, keyword, "respond_all", pool_specs=staffing)
    keyed = run(mentions, keyword, "threshold", pool_specs=staffing)
    learned = run(mentions, hashed, "threshold", pool_specs=staffing)
    for r in (everyone, keyed, learned):
        check_consistent(r)
    assert everyone.summary["routed"] == len(mentions)
    assert everyone.summary["false_alarms"] > 0
    assert learned.summary["f1"] > keyed.summary["f1"] + 0.3
    assert learned.summary["false_alarms"] < 0.1 * everyone.summary["false_alarms"]
    assert learned.summary["false_alarms"] < keyed.summary["false_alarms"]
    # With less haystack in the queue the needles are answered sooner and fewer are missed.
    assert learned.summary["missed_needles"] <= everyone.summary["missed_needles"]
    assert learned.summary["sla_attainment"] > everyone.summary["sla_attainment"]


def test_bot_first_escalations_reach_humans_with_the_clock_running(mentions: Mentions, hashed: Classifier) -> None:
    r = run(mentions, hashed, "bot_first", pool_specs=pools(humans=3))
    check_consistent(r)
    esc = r.escalated
    assert esc.sum() > 50
    assert np.all(r.first_pool[esc] == 0) and np.all(r.final_pool[esc] == 1)
    done = esc & (r.status == STATUS_NAMES.index("answered"))
    assert done.sum() > 0
    # The human starts after the bot has started (and finished); the wait is counted from the arrival.
    assert np.all(r.answer_start_s[done] > r.first_start_s[done])
    np.testing.assert_allclose(r.response_time_s[done], r.answer_start_s[done] - r.arrival_s[done])
    # Resolved by the bot: the bot's start is the answer.
    by_bot = ~esc & (r.status == STATUS_NAMES.index("answered"))
    assert by_bot.sum() > 50
    np.testing.assert_array_equal(r.answer_start_s[by_bot], r.first_start_s[by_bot])
    # Nothing but relevant-flagged messages is routed.
    assert np.all(r.decisions.respond == r.labels.relevant(0.5))
    # A bot that never resolves escalates every conversation it serves.
    never = run(mentions, hashed, "bot_first", {"bot_resolution": {}}, pool_specs=pools(humans=3))
    check_consistent(never)
    answered = never.status == STATUS_NAMES.index("answered")
    assert answered.sum() > 0 and np.all(never.escalated[answered]) and np.all(never.final_pool[answered] == 1)


def test_business_hours_nothing_starts_outside_opening_hours(mentions: Mentions, hashed: Classifier) -> None:
    bh = {"mode": "business_hours", "open_hour": 9.0, "close_hour": 17.0}
    r = run(mentions, hashed, "bot_first", bh, pool_specs=pools(humans=3), patience_median_s=1e9)
    check_consistent(r)
    human = r.final_pool == 1
    started = human & ~np.isnan(r.answer_start_s)
    assert started.sum() > 20
    hour = (r.answer_start_s[started] % DAY) / 3600.0
    assert np.all((hour >= 9.0) & (hour < 17.0 + 1e-9))
    # The bot is always on: it answers at night too.
    bot_hours = (r.first_start_s[~np.isnan(r.first_start_s)] % DAY) / 3600.0
    assert np.any((bot_hours < 9.0) | (bot_hours >= 17.0))
    # Messages escalated at night wait for the morning.
    always = run(mentions, hashed, "bot_first", pool_specs=pools(humans=3), patience_median_s=1e9)
    assert r.summary["response_time_s_p90"] > always.summary["response_time_s_p90"]


def test_unroutable_languages_and_policy_checks(mentions: Mentions, keyword: Classifier) -> None:
    specs = [
        PoolSpec("bot", 10, LognormalHandleTime(20.0), kind="bot"),
        PoolSpec("human", 500, LognormalHandleTime(60.0), languages=["en"]),
    ]
    r = run(mentions, keyword, pool_specs=specs)
    check_consistent(r)
    assert r.count("unroutable") == np.count_nonzero(mentions.language != 0)
    with pytest.raises(ValueError, match="pool"):
        run(mentions, keyword, "respond_all", {"pool": 2})


class _Silent:
    """A user's policy by module:attr contract: answers nothing."""

    def route(self, labels: object, mentions: Mentions) -> Decisions:
        n = len(mentions)
        return Decisions.of(np.zeros(n, bool))

    def schedule_for(self, kind: str, agents: int) -> np.ndarray:
        return np.full(168, agents)


def test_policy_that_answers_nothing_misses_every_needle(mentions: Mentions, keyword: Classifier) -> None:
    r = simulate_inbound(mentions, keyword, FAST, _Silent(), pools(), np.random.default_rng(0), HORIZON)
    check_consistent(r)
    assert r.count("ignored") == len(mentions)
    assert r.summary["missed_needles"] == mentions.relevant.sum() and r.summary["false_alarms"] == 0
    assert math.isnan(r.summary["sla_attainment"]) and math.isnan(r.summary["response_time_s_p50"])
