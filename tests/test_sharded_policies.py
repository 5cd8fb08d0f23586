"""Every built-in policy sharded: the coordinator gathers the view columns the policy reads, and the results are
one process's bytes (docs/model.md §16.5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import masssim
from masssim.config.errors import ScenarioError
from masssim.engine.sharded import ShardWorker, in_process, sharding_problem, simulate_sharded_replication
from masssim.engine.sim import simulate_replication
from masssim.model.streams import replication_sequence, root_sequence
from masssim.policies.registry import targeting_names
from test_sharded_engine import CHUNK, _digest, _scenario
from test_sharded_inbound import inbound_scenario, pools_digest

# Every built-in policy that plans on the coordinator of a sharded run, with segments where it has them
# (the personas are clustered on the gathered observables). With 3,000 customers in chunks of 512, shards of
# 2 and 3 span several chunks each.
LEARNERS = [
    {"name": "oracle", "policy": "oracle"},
    {"name": "epsilon_greedy", "policy": "epsilon_greedy", "segments": 3},
    {"name": "thompson", "policy": "thompson", "segments": 2},
    {"name": "linucb", "policy": "linucb"},
    {"name": "micro", "policy": "micro", "segments": 4, "recluster_every_waves": 2},
    {"name": "individual", "policy": "individual"},
    {"name": "uplift", "policy": "uplift", "segments": 3},
    {"name": "response", "policy": "response", "segments": 2},
]
# The policies that read the observables, for a population with CRM scores (broadcast and segments then plan
# on the coordinator too: their personas need not be a function of the profile).
SCORE_READERS = [
    {"name": "broadcast", "policy": "broadcast"},
    {"name": "segments", "policy": "segments", "segments": 3},
    {"name": "epsilon_greedy", "policy": "epsilon_greedy", "segments": 2},
    {"name": "linucb", "policy": "linucb"},
    {"name": "micro", "policy": "micro", "segments": 3, "recluster_every_waves": 2},
    {"name": "uplift", "policy": "uplift", "segments": 2},
]
SEQ = replication_sequence(root_sequence(11), 0)


def learners_scenario(arms: list[dict[str, Any]], crm_scores: int = 0) -> masssim.Scenario:
    """Declared taste at the start (5% of customers, read by ``individual``), no budget (every wave sends)."""
    population = {"customers": 3_000, "declared_taste_share": 0.05, "crm_scores": crm_scores}
    return _scenario(arms=arms, population=population, horizon_days=8, budget_total=None)


def _arm_digests(outcomes: dict[str, Any]) -> dict[str, str]:
    return {name: _digest({name: outcome}) for name, outcome in outcomes.items()}


def _sharded(scenario: masssim.Scenario, shards: int, threads: int = 1) -> dict[str, Any]:
    def open_group(*args: Any) -> Any:
        return in_process(*args, threads=threads)

    return simulate_sharded_replication(scenario, SEQ, open_group, shards, chunk_size=CHUNK)


def test_every_built_in_policy_is_covered() -> None:
    tested = {arm["policy"] for arm in LEARNERS + SCORE_READERS} | {"none", "random"}  # test_sharded_engine
    assert tested == set(targeting_names())


@pytest.mark.parametrize(("arms", "crm_scores"), [(LEARNERS, 0), (SCORE_READERS, 2)], ids=["codes", "crm_scores"])
def test_each_policy_sharded_gives_the_bytes_of_one_process(arms: list[dict[str, Any]], crm_scores: int) -> None:
    scenario = learners_scenario(arms, crm_scores)
    assert sharding_problem(scenario) is None
    one = simulate_replication(scenario, SEQ, chunk_size=CHUNK)
    for name, outcome in one.items():  # every arm sent and got clicks: there is something to compare
        assert outcome.metrics["sends"] > 1_000 and outcome.metrics["clicks"] > 50, name
    reference = _arm_digests(one)
    for shards, threads in ((2, 1), (3, 1), (3, 2)):  # 3 shards on 2 threads: the shards' calls overlap
        assert _arm_digests(_sharded(scenario, shards, threads)) == reference, f"{shards} shards, {threads} threads"


def test_a_wrong_gathered_column_gives_other_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not blind: each gathered column, made wrong on the shards, changes the arms that read it."""
    arms = [LEARNERS[0], SCORE_READERS[3], LEARNERS[5]]  # oracle, linucb, individual
    scenario = learners_scenario(arms, crm_scores=2)
    reference = _arm_digests(simulate_replication(scenario, SEQ, chunk_size=CHUNK))
    assert _arm_digests(_sharded(scenario, 2)) == reference
    wrong = {
        "latent_taste": ("oracle", lambda right: -right),
        "crm_scores": ("linucb", lambda right: right[::-1].copy()),
        "starting_declarations": ("individual", lambda right: (right[0], -right[1])),
    }
    for method, (arm, mutate) in wrong.items():
        original = getattr(ShardWorker, method)
        monkeypatch.setattr(ShardWorker, method, lambda self, o=original, m=mutate: m(o(self)))
        got = _arm_digests(_sharded(scenario, 2))
        monkeypatch.undo()
        assert got[arm] != reference[arm], method
        assert all(got[other] == reference[other] for other in got if other != arm), method


def _record_plans(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every plan ``individual`` makes, as bytes (customers and creatives), in order."""
    from masssim.policies.learning_segments import IndividualPolicy

    plans: list[bytes] = []
    plan = IndividualPolicy.plan

    def recorded(self: IndividualPolicy, wave: Any) -> Any:
        made = plan(self, wave)
        plans.append(made.customer.tobytes() + made.creative.tobytes())
        return made

    monkeypatch.setattr(IndividualPolicy, "plan", recorded)
    return plans


def test_taste_captured_in_conversations_is_one_process_taste(monkeypatch: pytest.MonkeyPatch) -> None:
    """With [inbound], ``individual`` reads the taste customers declare in conversations: the coordinator
    asks the shards for the new declarers' latent taste and draws the noise as one process does. Same plans
    each wave, same bytes; wrong taste from the shards gives other plans."""
    scenario = inbound_scenario(arms=[{"name": "individual", "policy": "individual"}])
    plans = _record_plans(monkeypatch)
    one = simulate_replication(scenario, SEQ, chunk_size=CHUNK)
    assert one["individual"].metrics["declarations_captured"] > 50
    reference, reference_plans = pools_digest(one), list(plans)
    for shards in (2, 3):
        plans.clear()
        assert pools_digest(_sharded(scenario, shards)) == reference, f"{shards} shards"
        assert plans == reference_plans
    # Not blind: the captured taste decides creatives (declarers who are reachable get theirs at the next wave).
    right = ShardWorker.declarers_taste
    monkeypatch.setattr(ShardWorker, "declarers_taste", lambda self, customers: -right(self, customers))
    plans.clear()
    _sharded(scenario, 2)
    assert plans[0] == reference_plans[0] and plans != reference_plans


def test_a_policy_reading_a_column_it_did_not_name_stops_with_one_line(tmp_path: Path) -> None:
    arms = [{"name": "narrow", "policy": "policies_for_tests:NarrowViewPolicy"}]
    scenario = learners_scenario(arms)
    simulate_replication(scenario, SEQ, chunk_size=CHUNK)  # one process has every column
    with pytest.raises(ScenarioError) as error:
        _sharded(scenario, 2)
    assert str(error.value) == (
        "<scenario>: arms[0].policy: policy 'policies_for_tests:NarrowViewPolicy' (arm 'narrow') read "
        "CustomerView.sends, which a sharded run gathers only for a policy whose view_columns names 'history'; "
        "allowed: view_columns naming 'history' (docs/model.md §6.1), or a run without --shards"
    )
    misnamed = _scenario(arms=[{"name": "m", "policy": "policies_for_tests:MisnamedColumnsPolicy"}])
    assert sharding_problem(misnamed) == (
        "arms[0].policy: policy 'policies_for_tests:MisnamedColumnsPolicy' (arm 'm') names view columns "
        "'purchases' that do not exist; allowed: declared_taste, history, observables"
    )
    from test_bad_input import one_line_error, write

    text = 'name = "x"\nhorizon_days = 4\n[population]\ncustomers = 800\n[[arms]]\nname = "narrow"\n'
    path = write(tmp_path, text + 'policy = "policies_for_tests:NarrowViewPolicy"\n')
    one_line_error(("run", path, "-q", "-r", "1", "--shards", "2", "-o", str(tmp_path / "out")), "CustomerView.sends")
    assert not (tmp_path / "out").exists()


def test_opens_are_counted_per_customer_only_for_a_policy_that_names_history(tmp_path: Path) -> None:
    """A policy that names its view columns without "history" never reads each customer's count of recorded
    opens, so the engine does not keep it (most of a bucket's events are recorded opens): the day's count is
    unchanged, and reading ``view.opens`` anyway stops with one line, in one process too."""
    history = _scenario(arms=[{"name": "b", "policy": "policies_for_tests:HistoryBroadcastPolicy"}])
    narrow = _scenario(arms=[{"name": "b", "policy": "broadcast"}])
    counted = simulate_replication(history, SEQ, chunk_size=CHUNK)["b"].metrics
    only_days = simulate_replication(narrow, SEQ, chunk_size=CHUNK)["b"].metrics
    assert only_days["opens_recorded"] == counted["opens_recorded"] > 0
    reading = learners_scenario([{"name": "narrow", "policy": "policies_for_tests:NarrowOpensPolicy"}])
    with pytest.raises(ScenarioError) as error:
        simulate_replication(reading, SEQ, chunk_size=CHUNK)
    assert str(error.value) == (
        "<scenario>: arms[0].policy: policy 'policies_for_tests:NarrowOpensPolicy' (arm 'narrow') read "
        "CustomerView.opens, which the engine counts only for a policy whose view_columns names 'history'; "
        "allowed: view_columns naming 'history' (docs/model.md §6.1)"
    )


def test_only_what_a_policy_reads_is_gathered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The coordinator asks the shards for a column only when an arm reads it (docs/model.md §16.5)."""
    from masssim.engine.sharded import InProcessShards

    calls: list[tuple[str, tuple[Any, ...]]] = []
    call = InProcessShards.call

    def counted(self: InProcessShards, method: str, args: dict[int, tuple[Any, ...]]) -> list[Any]:
        calls.extend((method, a) for a in args.values())
        return call(self, method, args)

    monkeypatch.setattr(InProcessShards, "call", counted)
    gathered = {"crm_scores", "latent_taste", "starting_declarations"}
    for arms, crm, expected in (
        ([LEARNERS[1]], 2, {"crm_scores"}),  # epsilon_greedy's personas: the observables, no history
        ([{"name": "eps", "policy": "epsilon_greedy"}], 2, set()),  # one segment: no observables
        ([LEARNERS[5]], 2, {"starting_declarations"}),  # individual: declared taste only
        ([LEARNERS[0]], 2, {"latent_taste"}),
    ):
        calls.clear()
        _sharded(learners_scenario(arms, crm), 2)
        assert {method for method, _ in calls} & gathered == expected, arms
        refreshed = {a[0] for method, a in calls if method == "dynamic_view"}
        assert refreshed == {("optin",)}, arms  # none of them reads the counters
    calls.clear()
    _sharded(learners_scenario([LEARNERS[3]]), 2)  # linucb reads the counters
    assert {a[0] for method, a in calls if method == "dynamic_view"} == {("optin", "sends", "opens", "clicks")}
    assert np.all([method != "crm_scores" for method, _ in calls])  # no CRM scores in this population
