"""The conversation desk inside a shared clock, conversation outcomes, and the loop back to outbound."""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np
import pytest
import simpy

import masssim
from masssim.classify import build_classifier
from masssim.engine.conversations import COMPLAINT, PURCHASE, OutcomeModel, decide
from masssim.engine.inbound import CoreServer, InboundDesk, PoolSpec, plan_batches
from masssim.engine.responders import LognormalHandleTime
from masssim.model.messages import Mentions, MentionStreamConfig, generate_mentions
from masssim.policies.response import build_response_policy

DAY = 86_400.0


def _slice(m: Mentions, sel: slice) -> Mentions:
    fields = {}
    for f in dataclasses.fields(m):
        value = getattr(m, f.name)
        fields[f.name] = value if f.name == "bursts_s" else value[sel]
    return Mentions(**fields)


def _desk(env: simpy.Environment, server: CoreServer, horizon: float) -> InboundDesk:
    return InboundDesk(
        env,
        build_classifier("keyword"),
        server,
        build_response_policy("respond_all", {"pool": 0}),
        [PoolSpec("bot", 1000, LognormalHandleTime(10.0, 0.1), kind="bot")],
        np.random.default_rng(3),
        horizon,
    )


@pytest.mark.parametrize(
    "server",
    [
        CoreServer(batch_size=16, replicas=1, a_s=0.5, b_s=0.05, max_wait_s=30.0),
        CoreServer(batch_size=64, replicas=3, a_s=2.0, b_s=0.1, max_wait_s=5.0),  # overloaded at peaks
    ],
)
def test_dynamic_core_batches_like_the_vectorised_plan_even_when_registered_piecewise(server: CoreServer) -> None:
    """The desk batches on the arrivals known so far; a later registration (a reply) can still fill a batch
    that is open. Registering the stream in 40 pieces, each at its first arrival, must give exactly the
    classification times of plan_batches on the whole stream."""
    horizon = 2 * DAY
    mentions = generate_mentions(MentionStreamConfig(), horizon, np.random.default_rng(8))
    expected = plan_batches(mentions.time_s, server)
    expected_done = expected.end_s[expected.per_message(len(mentions))]
    expected_done = np.where(expected_done < horizon, expected_done, np.nan)

    whole_env = simpy.Environment()
    whole = _desk(whole_env, server, horizon)
    whole.register(mentions)
    whole_env.run(until=horizon)

    env = simpy.Environment()
    piecewise = _desk(env, server, horizon)
    bounds = np.linspace(0, len(mentions), 41).astype(int)

    def feeder() -> Any:
        for lo, hi in itertools.pairwise(bounds):
            start = float(mentions.time_s[lo])
            yield env.timeout(start - env.now)
            piecewise.register(_slice(mentions, slice(lo, hi)))

    env.process(feeder())
    env.run(until=horizon)
    # Equal up to float rounding: plan_batches sums service times with a cumulative sum (Lindley).
    np.testing.assert_allclose(whole.cols.classified_at, expected_done, rtol=1e-12, atol=0)
    np.testing.assert_allclose(piecewise.cols.classified_at, expected_done, rtol=1e-12, atol=0)


def test_registering_in_the_past_is_refused() -> None:
    env = simpy.Environment()
    desk = _desk(env, CoreServer(), DAY)
    mentions = generate_mentions(MentionStreamConfig(), DAY, np.random.default_rng(1))
    env.run(until=3600.0)
    with pytest.raises(ValueError, match="not in the past"):
        desk.register(mentions)


def test_outcome_probabilities_follow_the_model() -> None:
    """Shares of satisfied, converted, churned and declared against the formulas, within 4 binomial SE."""
    model = OutcomeModel(
        satisfaction_max=0.8,
        satisfaction_half_life_s=600.0,
        conversion_max=0.4,
        conversion_half_life_s=300.0,
        churn_after_unanswered_complaint=0.25,
        declare_share=0.6,
    )
    n = 200_000
    rng = np.random.default_rng(12)
    wait = np.full(n, 600.0)
    answered = np.arange(n) % 2 == 0
    intent = np.where(np.arange(n) % 4 < 2, PURCHASE, COMPLAINT).astype(np.int8)
    author = np.where(np.arange(n) % 8 < 4, 7, -1)  # half customers, half strangers
    relevant = np.ones(n, bool)
    out = decide(model, np.arange(n), answered, wait, relevant, intent, author, rng)

    def check(mask: np.ndarray, flags: np.ndarray, p: float) -> None:
        k = int(mask.sum())
        share = flags[mask].mean()
        assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / k) + 1e-12, (share, p)

    check(answered, out.satisfied, 0.8 * 0.5)
    check(~answered, out.satisfied, 0.0)
    check(answered & (intent == PURCHASE), out.converted, 0.4 * 0.25)
    check(answered & (intent == COMPLAINT), out.converted, 0.0)
    check(~answered & (intent == COMPLAINT) & (author >= 0), out.churned, 0.25)
    check(~answered & (author < 0), out.churned, 0.0)  # strangers cannot leave our customer base
    check(answered & (intent == COMPLAINT), out.churned, 0.0)
    check(answered & (author >= 0), out.declared, 0.6)
    check(answered & (author < 0), out.declared, 0.0)
    check(~answered, out.declared, 0.0)
    haystack = decide(model, np.arange(n), answered, wait, ~relevant, intent, author, rng)
    assert not (haystack.satisfied.any() or haystack.converted.any() or haystack.churned.any())


# -- the loop inside masssim run ---------------------------------------------------------------------


def loop_scenario(**inbound: Any) -> dict[str, Any]:
    return {
        "name": "loop",
        "seed": 3,
        "replications": 2,
        "horizon_days": 10,
        "population": {"customers": 6_000},
        "schedule": {"channel": "messaging", "wave_every_days": 2},
        "arms": [{"name": "broadcast", "policy": "broadcast"}, {"name": "individual", "policy": "individual"}],
        "inbound": {
            "mentions": {"sources": [{"name": "social", "base_rate_per_hour": 10.0}]},
            "response_policy": "respond_all",
            "response_params": {"pool": 1},
            **inbound,
        },
    }


def values(result: masssim.RunResult, arm: str, metric: str) -> np.ndarray:
    return np.asarray(result.summary["arms"][arm][metric]["values"], dtype=float)


def test_replies_on_conversational_channels_enter_the_inbound_stream() -> None:
    on = masssim.run(masssim.scenario_from_dict(loop_scenario()))
    off = masssim.run(masssim.scenario_from_dict(loop_scenario(replies={"enabled": False})))
    for arm in ("broadcast", "individual"):
        replies = values(on, arm, "replies")
        assert np.all(replies > 50)
        np.testing.assert_array_equal(values(on, arm, "inbound_replies"), replies)
        np.testing.assert_array_equal(values(on, arm, "inbound_volume") - replies, values(off, arm, "inbound_volume"))
        assert np.all(values(off, arm, "inbound_replies") == 0)


def test_answered_conversations_capture_declared_taste_and_complaints_left_unanswered_churn() -> None:
    captured = masssim.run(masssim.scenario_from_dict(loop_scenario(outcomes={"declare_share": 1.0})))
    none = masssim.run(masssim.scenario_from_dict(loop_scenario(outcomes={"declare_share": 0.0})))
    for arm in ("broadcast", "individual"):
        got = values(captured, arm, "declarations_captured")
        assert np.all(got > 100)
        np.testing.assert_array_equal(values(captured, arm, "customers_with_declared_taste"), got)
        assert np.all(values(none, arm, "customers_with_declared_taste") == 0)
    # No human on shift: every complaint routed to the humans is abandoned; with churn certain, authors leave.
    nobody = [
        {"name": "bot", "kind": "bot", "agents": 5, "handle_time_median_minutes": 0.5},
        {"name": "human", "kind": "human", "agents": 0, "handle_time_median_minutes": 6.0},
    ]
    churn = masssim.run(
        masssim.scenario_from_dict(
            loop_scenario(pools=nobody, outcomes={"churn_after_unanswered_complaint": 1.0, "conversion_max": 0.0})
        )
    )
    for arm in ("broadcast", "individual"):
        assert np.all(values(churn, arm, "churned_customers") > 20)
        assert np.all(values(churn, arm, "satisfaction") == 0)
        assert np.all(values(churn, arm, "conversation_conversions") == 0)
        assert np.all(values(churn, arm, "cost_inbound") > 0)
    # Customers who left buy nothing afterwards: some purchases are lost (a few an arm here, so summed).
    assert sum(values(churn, arm, "purchases_lost_to_churn").sum() for arm in ("broadcast", "individual")) > 0


def test_conversions_are_purchases_and_inbound_costs_join_the_total() -> None:
    result = masssim.run(masssim.scenario_from_dict(loop_scenario(outcomes={"conversion_max": 1.0})))
    for arm in ("broadcast", "individual"):
        conv = values(result, arm, "conversation_conversions")
        ours = values(result, arm, "conversation_purchases")
        assert np.all(conv > 0) and np.all(ours <= conv)
        np.testing.assert_allclose(values(result, arm, "conversation_revenue"), conv * 30.0)  # market.price default
        total = values(result, arm, "cost_total")
        parts = sum(values(result, arm, m) for m in ("cost_sends", "cost_media", "cost_creatives", "cost_inbound"))
        np.testing.assert_allclose(total, parts)
        # Default pools: 10 humans always on at 30 an hour over 10 days, bots at 0.10 a conversation.
        assert np.all(values(result, arm, "agent_hours") == 10 * 24 * 10)
        # The keyword core flags haystack, respond_all answers it: agents spend paid time on false alarms.
        false_cost = values(result, arm, "false_alarm_cost")
        assert np.all(values(result, arm, "false_alarms") > 0)
        assert np.all(false_cost > 0) and np.all(false_cost < values(result, arm, "cost_inbound"))
        missed = values(result, arm, "missed_needles")
        assert np.all(
            values(result, arm, "missed_purchase_intents") + values(result, arm, "missed_complaints") <= missed
        )


def test_individual_targeting_uses_the_taste_conversations_capture() -> None:
    """Customers whose taste a conversation captured get, at their next wave, the creative closest to it."""
    from masssim.engine.sim import ArmSimulation, build_world
    from masssim.model.streams import replication_sequence, root_sequence
    from masssim.policies.learning_segments import _DECLARED

    for share, expect_some in ((1.0, True), (0.0, False)):
        scenario = masssim.scenario_from_dict(loop_scenario(outcomes={"declare_share": share}))
        world = build_world(scenario, replication_sequence(root_sequence(3), 0))
        sim = ArmSimulation(scenario, world, 1)
        sim.run()
        assert sim.declared is not None and sim.view.declared_row is sim.declared.row
        captured = np.flatnonzero(sim.declared.row >= 0)
        chose_declared = np.flatnonzero(sim.policy.mode == _DECLARED)  # type: ignore[attr-defined]
        if expect_some:
            assert captured.shape[0] > 100 and sim.view.declared_version > 1
            # Every declared-rule choice is for a captured customer, and most captured customers who can be
            # reached on the channel got one (the rest were captured after the last wave).
            assert np.isin(chose_declared, captured).all()
            reachable = captured[sim.view.reachable(sim.policy.channel)[captured]]  # type: ignore[attr-defined]
            assert chose_declared.shape[0] > 0.6 * reachable.shape[0]
            taste = world.population.taste[captured]
            noise = sim.declared.taste[sim.declared.row[captured]] - taste
            sd = scenario.population.declared_taste_noise_sd
            assert abs(noise.std() - sd) < 0.05 * sd + 1e-9
        else:
            assert captured.shape[0] == 0 and chose_declared.shape[0] == 0


def test_handle_times_per_intent() -> None:
    """A pool's median per predicted intent: complaints take twelve times as long as the rest here."""
    from masssim.config.schema import PoolConfig
    from masssim.engine.conversation_loop import _handle_times

    pool = PoolConfig(
        name="human", agents=3, handle_time_median_minutes=1.0, handle_time_median_minutes_by_intent={"complaint": 12.0}
    )
    samplers = _handle_times(pool)
    assert isinstance(samplers, dict)
    rng = np.random.default_rng(1)
    complaint = np.median(samplers["complaint"].sample(rng, 20_000))
    other = np.median(samplers["default"].sample(rng, 20_000))
    # Median of 20,000 lognormal draws with sigma 0.6: relative SE about 1.25 * 0.6 / sqrt(20000) < 1%.
    assert abs(complaint / 720.0 - 1) < 0.03 and abs(other / 60.0 - 1) < 0.03


def test_inbound_clock_follows_the_scenarios_reference_time_zone() -> None:
    """t = 0 is Monday 00:00 in reference_utc_offset_hours: a team in that zone opens at 9 on the clock,
    and a source in that zone has its diurnal curve read at the clock's hour."""
    from masssim.engine.conversation_loop import build_desk
    from masssim.model.messages import SourceConfig, stranger_rate_per_hour

    data = loop_scenario(response_params={"mode": "business_hours", "utc_offset_hours": 3.0})
    data["reference_utc_offset_hours"] = 3.0
    scenario = masssim.scenario_from_dict(data)
    desk = build_desk(simpy.Environment(), scenario, build_classifier("keyword"), np.random.SeedSequence(1))
    monday = desk.pools[1].schedule[:24]
    assert list(np.flatnonzero(monday)) == list(range(9, 17))
    times = np.arange(0, 7 * DAY, 3600.0)
    here = MentionStreamConfig(sources=[SourceConfig(name="social", base_rate_per_hour=10.0, utc_offset_hours=3.0)])
    utc = MentionStreamConfig(sources=[SourceConfig(name="social", base_rate_per_hour=10.0, utc_offset_hours=0.0)])
    none = np.zeros((0, 2))
    np.testing.assert_array_equal(
        stranger_rate_per_hour(here, times, none, reference_utc_offset_hours=3.0),
        stranger_rate_per_hour(utc, times, none),
    )


def test_needle_service_figures_count_true_needles_only() -> None:
    from masssim.engine.inbound import ANSWERED, simulate_inbound

    horizon = 2 * DAY
    mentions = generate_mentions(MentionStreamConfig(), horizon, np.random.default_rng(8))
    result = simulate_inbound(
        mentions,
        build_classifier("keyword"),
        CoreServer(),
        build_response_policy("respond_all", {"pool": 1}),
        [
            PoolSpec("bot", 5, LognormalHandleTime(30.0, 0.3), kind="bot"),
            PoolSpec("human", 3, LognormalHandleTime(300.0, 0.5)),
        ],
        np.random.default_rng(2),
        horizon,
        sla_minutes=30.0,
    )
    s = result.summary
    needle = mentions.relevant
    on_time = needle & (result.status == ANSWERED) & (result.response_time_s <= 1800.0)
    assert s["needle_sla_attainment"] == on_time.sum() / needle.sum()
    answered_needles = result.response_time_s[needle & (result.status == ANSWERED)]
    assert s["needle_response_time_s_p90"] == np.percentile(answered_needles, 90)
    # Answering every haystack post too, the queue is long: the needles' own figures show what it costs them.
    assert 0 < s["needle_sla_attainment"] < 1


def test_pools_are_summarised_by_name(tmp_path: Any) -> None:
    """summary.json has per-pool figures (utilisation, agent-hours, conversations, cost), and the report a table."""
    result = masssim.run(masssim.scenario_from_dict(loop_scenario()))
    pools = result.summary["pools"]
    for arm in ("broadcast", "individual"):
        human = pools[arm]["human"]
        assert human["agent_hours"]["mean"] == 10 * 24 * 10
        assert human["cost"]["mean"] == 10 * 24 * 10 * 30.0
        assert 0 < human["utilisation"]["mean"] < 1
        # The humans are the only human pool: their utilisation is the arm's human utilisation.
        assert human["utilisation"]["values"] == result.summary["arms"][arm]["utilisation_humans"]["values"]
    run_dir = result.save(tmp_path)
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Responder pools" in html and "Pool human" in html


def _write_messages(path: Any, n_rel: int, n_hay: int, language: str = "en") -> None:
    import json

    rows = [
        {
            "text": f"my order {i} never arrived, please help",
            "relevant": True,
            "intent": "complaint",
            "language": language,
        }
        for i in range(n_rel)
    ]
    rows += [
        {"text": f"cleaning the windows of office {i} today", "relevant": False, "language": "en"} for i in range(n_hay)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")


def test_users_labelled_messages_feed_the_stream_and_train_the_classifier(tmp_path: Any) -> None:
    """With inbound.messages the stream's texts are the stream share of the user's file, the classifier is
    fitted on the other share (disjoint), and the needle share stays the scenario's."""
    from masssim.engine.conversation_loop import user_messages
    from masssim.engine.sim import build_world
    from masssim.model.streams import replication_sequence, root_sequence
    from masssim.scenario.load import load_scenario

    _write_messages(tmp_path / "mine.jsonl", 40, 60)
    scenario_file = tmp_path / "s.toml"
    scenario_file.write_text(
        'name = "mine"\nseed = 2\nreplications = 1\nhorizon_days = 2\n[population]\ncustomers = 2000\n'
        '[[arms]]\nname = "b"\npolicy = "broadcast"\n'
        '[inbound]\nclassifier = "hashed"\n[inbound.classifier_params]\nbits = 12\n'
        '[inbound.messages]\npath = "mine.jsonl"\n',
        encoding="utf-8",
    )
    scenario = load_scenario(scenario_file)
    assert scenario.inbound is not None
    seq = replication_sequence(root_sequence(2), 0)
    split = user_messages(scenario.inbound, seq)
    assert split is not None
    train, stream = split
    assert len(train) == 50 and len(stream) == 50 and not set(train.text) & set(stream.text)
    world = build_world(scenario, seq)
    assert world.inbound is not None
    mentions = world.inbound.mentions
    assert set(mentions.text) <= set(stream.text)
    truth = dict(zip(stream.text, stream.relevant.tolist(), strict=True))
    assert [truth[t] for t in mentions.text] == mentions.relevant.tolist()
    # Strangers' needles at the scenario's needle share (5%); customers' mentions are all needles.
    strangers = mentions.author < 0
    share = mentions.relevant[strangers].mean()
    k = int(strangers.sum())
    assert abs(share - 0.05) < 4 * math.sqrt(0.05 * 0.95 / k)
    result = masssim.run(scenario)
    assert result.summary["arms"]["b"]["classifier_f1"]["mean"] > 0.9  # these two kinds are easy to tell apart


@pytest.mark.parametrize(
    ("rows", "language", "words"),
    [((40, 1), "en", "at least 2 of each"), ((40, 40), "de", "language 'de'")],
)
def test_unusable_user_messages_are_named(tmp_path: Any, rows: tuple[int, int], language: str, words: str) -> None:
    from masssim.config.errors import ScenarioError

    _write_messages(tmp_path / "mine.jsonl", *rows, language=language)
    data = loop_scenario(messages={"path": str(tmp_path / "mine.jsonl")})
    with pytest.raises(ScenarioError) as info:
        masssim.scenario_from_dict(data)
    assert info.value.field == "inbound.messages.path" and words in str(info.value)
    with pytest.raises(ScenarioError) as missing:
        masssim.scenario_from_dict(loop_scenario(messages={"path": str(tmp_path / "absent.jsonl")}))
    assert missing.value.field == "inbound.messages.path" and "not found" in str(missing.value)


def test_customers_who_left_buy_nothing_more_and_are_counted_once() -> None:
    """With every unanswered complaint churning its author and every answered purchase intent converting,
    a churned customer's later conversions are blocked (and counted as lost), churned_customers counts
    customers, and the metric equals the loop's churned set."""
    from masssim.engine.sim import ArmSimulation, build_world
    from masssim.model.streams import replication_sequence, root_sequence

    data = {
        "name": "churn",
        "seed": 3,
        "replications": 1,
        "horizon_days": 14,
        "population": {"customers": 3000, "voice_posts_per_year": 400.0},
        "schedule": {"channel": "messaging", "wave_every_days": 2},
        "arms": [{"name": "b", "policy": "broadcast"}],
        "inbound": {
            "mentions": {"sources": [{"name": "social", "base_rate_per_hour": 10.0}]},
            "response_policy": "bot_first",
            "response_params": {"relevance_threshold": 0.0, "bot_resolution": {"purchase": 1.0}},
            "pools": [
                {"name": "bot", "kind": "bot", "agents": 50, "handle_time_median_minutes": 0.5},
                {"name": "human", "kind": "human", "agents": 0, "handle_time_median_minutes": 6.0},
            ],
            "outcomes": {"churn_after_unanswered_complaint": 1.0, "conversion_max": 1.0},
        },
    }
    scenario = masssim.scenario_from_dict(data)
    sim = ArmSimulation(scenario, build_world(scenario, replication_sequence(root_sequence(3), 0)), 0)
    metrics = sim.run().metrics
    loop = sim.loop
    assert loop is not None
    churned = int(np.count_nonzero(loop.churn))
    assert metrics["churned_customers"] == churned and 0 < churned <= 3000
    assert loop.blocked_conversions > 0  # the setting makes conversions after churn common
    # Every conversion by one of our customers that was not blocked became a purchase.
    assert metrics["conversation_purchases"] <= metrics["conversation_conversions"]
    assert metrics["purchases_lost_to_churn"] >= loop.blocked_conversions
    # Churned customers have no opt-in left and were churned at a time within the horizon.
    gone = np.flatnonzero(loop.churn)
    assert np.all(sim.state.optin[gone] == 0) and np.all(loop.churn_at[gone] <= 14 * DAY)


def test_an_organic_churn_after_a_reply_churn_makes_the_cause_organic() -> None:
    from masssim.engine.conversation_loop import ConversationLoop
    from masssim.engine.sim import ArmSimulation, build_world
    from masssim.model.streams import replication_sequence, root_sequence

    scenario = masssim.scenario_from_dict(loop_scenario())
    sim = ArmSimulation(scenario, build_world(scenario, replication_sequence(root_sequence(3), 0)), 0)
    assert sim.world.inbound is not None and sim.declared is not None
    loop = ConversationLoop(
        simpy.Environment(),
        scenario,
        sim.world.inbound,
        sim.world.population,
        sim.world.contactable,
        sim.state,
        sim.recorder,
        sim.view,
        sim.declared,
        sim.world.replication_seq,
        np.random.default_rng(0),
    )
    loop._churn(np.array([5, 7]), np.array([True, True]), np.array([10.0, 11.0]))
    assert loop.churn[5] == 1 and loop.churn[7] == 1 and loop.churn_at[5] == 10.0
    loop._churn(np.array([5]), np.array([False]), np.array([20.0]))
    assert loop.churn[5] == 2 and loop.churn_at[5] == 10.0 and loop.churn[7] == 1
    loop._churn(np.array([6, 6]), np.array([True, False]), np.array([1.0, 2.0]))
    assert loop.churn[6] == 2 and loop.churn_at[6] == 1.0
    gone, gone_anyway = loop.churn_filter(np.array([5, 6, 7, 8]))
    assert gone.tolist() == [True, True, True, False] and gone_anyway.tolist() == [True, True, False, False]
