"""The compiled kernels against their numpy twins, and the in-flight events' memory.

The numpy twins define what each kernel does; the compiled loops must give the same integers and the same
floats to the bit, on arbitrary inputs (Hypothesis), and a whole run must give the same summary either way.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from masssim.engine import kernels, organic
from masssim.engine.events import PendingEvents
from masssim.engine.organic import stable_time_order
from masssim.engine.state import Recorder

needs_numba = pytest.mark.skipif(not kernels.COMPILED, reason="numba is not installed: only the numpy path exists")


def _compiled(name: str):  # type: ignore[no-untyped-def]
    """The compiled loop, given float16 bits where it reads half precision (as the engine calls it)."""
    loop = kernels._compiled(getattr(kernels, f"_{name}_loop"))
    return kernels._with_half_arguments(loop, *kernels.HALF_ARGUMENTS.get(name, ()))


@needs_numba
@settings(max_examples=60, deadline=None, derandomize=True)
@given(n_customers=st.integers(1, 400), share=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_touch_matches_numpy(n_customers: int, share: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    customer = np.flatnonzero(rng.random(n_customers) < share).astype(np.int32)
    rng.shuffle(customer)
    grow = np.exp(rng.random(customer.shape[0]).astype(np.float32))
    stored = rng.random(n_customers).astype(np.float32) * 3
    week = rng.integers(0, 255, n_customers).astype(np.uint8)
    sends = rng.choice(np.array([0, 7, 65_534, 65_535], np.uint16), n_customers)
    copies = [a.copy() for a in (stored, week, sends)]
    fast = _compiled("touch")(stored, grow, week, sends, customer)
    slow = kernels.touch_numpy(*copies[:1], grow, copies[1], copies[2], customer)
    np.testing.assert_array_equal(fast[0], slow[0])  # one division and one addition each: exactly rounded
    assert fast[1] == slow[1] == (float(slow[0].max()) if customer.shape[0] else 0.0)  # the greatest fatigue
    for a, b in zip((stored, week, sends), copies, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sends.max(initial=0) <= 65_535


SCRIPT = """
import hashlib, json, masssim
s = masssim.scenario_from_dict({"name": "kernels", "replications": 2, "horizon_days": 10,
    "population": {"customers": 30000},
    "arms": [{"name": "b", "policy": "broadcast"}, {"name": "o", "policy": "oracle"}]})
r = masssim.run(s, seed=5)
print(hashlib.sha256(json.dumps(r.summary, sort_keys=True).encode()).hexdigest())
"""


@needs_numba
def test_a_run_gives_the_same_summary_on_either_path() -> None:
    digests = {}
    for path in ("numba", "numpy"):
        env = {**os.environ, kernels.KERNELS_ENV: path}
        out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
        digests[path] = out.stdout.strip()
    assert digests["numba"] == digests["numpy"]
    assert len(digests["numba"]) == 64


def test_in_flight_events_are_released_as_they_mature() -> None:
    """A batch whose early part has been released gives that memory back before its last event is due."""
    pending = PendingEvents(900.0)
    n = 1 << 18
    times = np.sort(np.random.default_rng(1).random(n) * 86_400.0 * 10)  # ten days of reads
    times[-1] = 86_400.0 * 60  # one very late read keeps the batch alive
    pending.add(("read", "open"), np.arange(n, dtype=np.int32), np.zeros(n, np.int32), 0, times, ascending=True)
    full = pending.nbytes()
    released = 0
    for day in range(1, 11):
        out = pending.release(day * 86_400.0)
        released += out["read"]["customer"].shape[0]
        np.testing.assert_array_equal(out["read"]["customer"], out["open"]["customer"])
        assert (out["read"]["channel"] == 0).all()
    assert released == n - 1
    assert len(pending) == 1
    assert pending.nbytes() < full / 100  # only the late read (and no released rows) is still held
    last = pending.release(86_400.0 * 60)
    assert last["open"]["time_s"].tolist() == [86_400.0 * 60]
    assert len(pending) == 0


@needs_numba
@settings(max_examples=60, deadline=None, derandomize=True)
@given(n_customers=st.integers(1, 300), n_rows=st.integers(0, 300), bit=st.integers(0, 3), cap=st.integers(0, 5))
def test_sendable_matches_numpy(n_customers: int, n_rows: int, bit: int, cap: int) -> None:
    rng = np.random.default_rng(n_customers * 1000 + n_rows)
    customer = rng.integers(0, n_customers, n_rows).astype(np.int32)
    contactable = rng.random(n_customers) < 0.8
    optin = rng.integers(0, 16, n_customers).astype(np.uint8)
    week = rng.integers(0, 7, n_customers).astype(np.uint8)
    fast = _compiled("sendable")(customer, contactable, optin, week, bit, cap)
    slow = kernels.sendable_numpy(customer, contactable, optin, week, bit, cap)
    np.testing.assert_array_equal(fast[0], slow[0])
    assert fast[1:] == slow[1:]
    assert fast[1] + fast[2] + int(fast[0].sum()) == n_rows


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n_customers=st.integers(1, 300),
    n_rows=st.integers(0, 300),
    segments=st.integers(1, 20),
    creatives=st.integers(1, 40),
    bit=st.integers(0, 3),
    cap=st.integers(0, 5),
)
def test_rule_rows_match_numpy(
    n_customers: int, n_rows: int, segments: int, creatives: int, bit: int, cap: int
) -> None:
    """A shard's rule rows in one pass: the same rows, creatives, refusals, region counts and creatives used as
    the choice's gather, sendable and the counts apart, whatever share of the rows is refused."""
    rng = np.random.default_rng(n_customers * 7919 + n_rows * 31 + segments)
    customer = np.sort(rng.choice(n_customers, min(n_rows, n_customers), replace=False)).astype(np.int32)
    segment = rng.integers(0, segments, customer.shape[0]).astype(np.int32)
    choice = rng.integers(0, creatives, segments).astype(np.int32)
    contactable = rng.random(n_customers) < 0.8
    optin = rng.integers(0, 16, n_customers).astype(np.uint8)
    week = rng.integers(0, 7, n_customers).astype(np.uint8)
    region = rng.integers(0, 6, n_customers).astype(np.uint8)
    args = (customer, segment, choice, contactable, optin, week, bit, cap, region, 6, creatives)
    fast = _compiled("rule_rows")(customer.copy(), *args[1:])  # it writes the rows kept over the customers
    slow = kernels.rule_rows_numpy(*args)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)
    assert fast[1].dtype == slow[1].dtype == np.int32
    ok, unreachable, capped = kernels.sendable_numpy(customer, contactable, optin, week, bit, cap)
    assert (fast[2], fast[3]) == (unreachable, capped)
    np.testing.assert_array_equal(fast[0], customer[ok])
    np.testing.assert_array_equal(fast[1], choice[segment[ok]])
    assert int(fast[4].sum()) == fast[0].shape[0]


def test_memory_in_flight_stays_flat_after_the_first_days() -> None:
    """Daily waves for 24 days: the outcomes in flight (reads spread over days by their delay, recorded opens,
    deliveries reported to a learning policy) reach a steady level within a few days and stay there; they are
    not kept per wave until the wave's slowest outcome is due."""
    import masssim
    from masssim.engine.sim import ArmSimulation, build_world
    from masssim.model.streams import replication_sequence, root_sequence

    scenario = masssim.scenario_from_dict(
        {
            "name": "flat",
            "horizon_days": 24,
            "population": {"customers": 200_000},
            # A long-tailed read delay keeps a few of each wave's reads pending for many days.
            "channels": {"email": {"open_delay_sigma": 2.5}},
            "arms": [{"name": "b", "policy": "broadcast"}],
        }
    )
    world = build_world(scenario, replication_sequence(root_sequence(1), 0))
    sim = ArmSimulation(scenario, world, 0)
    per_day: dict[int, int] = {}

    def sample(share: float) -> None:
        day = int(share * 24 + 1e-9)
        per_day[day] = max(per_day.get(day, 0), sum(shard.pending.nbytes() for shard in sim.shards))

    sim.run(sample)
    early = max(per_day[d] for d in range(2, 5))
    late = max(per_day[d] for d in range(5, 24))
    assert early > 0
    # Flat: a steady state, with room for day-to-day noise in who reads when (not growth with the waves).
    assert late < 1.25 * early, (early, late)
    # And far below what whole waves would hold: every send of the horizon kept until its last outcome.
    assert late < 0.1 * 24 * 200_000 * 16


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n=st.integers(0, 2000),
    seed=st.integers(0, 2**16),
    d=st.integers(1, 16),
    offsets=st.lists(st.floats(-12, 14, allow_nan=False), min_size=1, max_size=6),
    window=st.booleans(),
)
def test_read_outcomes_match_numpy(n: int, seed: int, d: int, offsets: list[float], window: bool) -> None:
    rng = np.random.default_rng(seed)
    customers, creatives = 500, 30
    t = rng.random(n) * 86_400.0 * 30
    reader = rng.integers(0, customers, n).astype(np.int32)
    creative = rng.integers(0, creatives, n).astype(np.int32)
    fatigue = (rng.random(n) * 4).astype(np.float32)
    jitter = rng.random(n, dtype=np.float32) if window else None
    region = rng.integers(0, len(offsets), customers).astype(np.uint8)
    region_rel = np.array(offsets) * 3600.0
    start = rng.integers(0, 24, customers).astype(np.uint8)
    hours = rng.integers(1, 25, customers).astype(np.uint8)
    taste = rng.standard_normal((customers, d)).astype(np.float32)
    directions = rng.standard_normal((creatives, d)).astype(np.float32)
    quality = rng.standard_normal(creatives).astype(np.float32)
    warmth = rng.standard_normal(customers).astype(np.float32)
    coefficients = np.array([-1.8, 1.1, 0.4, 0.3], np.float32)
    args = (t, reader, creative, fatigue, jitter, region, region_rel, start, hours)
    args += (taste, directions, quality, warmth, coefficients)
    fast_at, fast_logit = _compiled("read_outcomes")(*args)
    slow_at, slow_logit = kernels.read_outcomes_numpy(*args)
    # The same IEEE operations in the same order: equal to the bit.
    np.testing.assert_array_equal(fast_at, slow_at)
    np.testing.assert_array_equal(fast_logit, slow_logit)
    assert fast_logit.dtype == np.float32
    assert (fast_at >= t).all()
    if not window:
        np.testing.assert_array_equal(fast_at, t)


@needs_numba
@settings(max_examples=60, deadline=None, derandomize=True)
@given(n_targets=st.integers(1, 50), n=st.integers(0, 500), seed=st.integers(0, 2**16))
def test_scatter_adds_match_numpy(n_targets: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_targets, n).astype(np.int32)  # repeated indices on purpose
    values = rng.standard_normal(n).astype(np.float32)
    stock = [rng.random(n_targets).astype(np.float32) for _ in range(2)]
    stock[1] = stock[0].copy()
    _compiled("scatter_add")(stock[0], idx, values)
    kernels.scatter_add_numpy(stock[1], idx, values)
    np.testing.assert_array_equal(stock[0], stock[1])  # the same additions in the same order
    for dtype in (np.uint8, np.uint16):
        counters = [rng.integers(200, 256, n_targets).astype(dtype)]
        counters.append(counters[0].copy())
        _compiled("increment")(counters[0], idx)
        kernels.increment_numpy(counters[1], idx)
        np.testing.assert_array_equal(counters[0], counters[1])  # wraps at the top like numpy


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n=st.integers(0, 3000),
    seed=st.integers(0, 2**16),
    rate=st.sampled_from([1.0, 0.99, 0.5]),
    read=st.floats(0.0, 0.5),
    inflation=st.floats(0.0, 1.0),
    unsub=st.floats(0.0, 0.2),
)
def test_split_sends_matches_numpy(n: int, seed: int, rate: float, read: float, inflation: float, unsub: float) -> None:
    rng = np.random.default_rng(seed)
    u, u_unsub = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    bound = np.float32(np.floor(rate * read * 2**24) / 2**24)  # on the uniforms' grid, so rows can equal it
    top = np.float32(bound + inflation * (rate - bound))
    draw = kernels.send_draw_numpy(u, u_unsub)
    # The draw gives back the uniforms it was made of (so the lists below are those of u and u_unsub).
    np.testing.assert_array_equal(kernels.send_uniform_numpy(draw), u)
    np.testing.assert_array_equal(kernels.unsubscribe_uniform_numpy(draw), u_unsub)
    args = (draw, np.float32(rate), bound, top, np.float32(unsub))
    # Rows exactly on a threshold: a uniform equal to a rate is not below it, on either path.
    draw[: n // 8] = kernels.send_draw_numpy(np.full(n // 8, bound), u_unsub[: n // 8])
    u[: n // 8] = bound
    fast = kernels.split_sends(*args)  # the compiled loop (numba is installed)
    slow = kernels.split_sends_numpy(*args)
    assert (fast[0] is None) == (slow[0] is None)
    for a, b in zip(fast, slow, strict=True):
        if a is not None:
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype == np.int32
    delivered = u < np.float32(rate)
    np.testing.assert_array_equal(slow[1], np.flatnonzero(u < bound))
    np.testing.assert_array_equal(slow[3], np.flatnonzero(delivered & (u_unsub < np.float32(unsub))))


def test_a_sends_draw_splits_into_two_independent_uniforms() -> None:
    """The send's uniform and the unsubscribe's come from disjoint bits of one float64 draw: the first is a
    float32 uniform on the grid of 2^-24, the second a uniform on the grid of 2^-29, both in [0, 1), and the
    two are independent. From a fixed seed, 2^21 draws: each mean within 4.5 standard errors of 1/2, their
    correlation within 4.5/sqrt(n) of 0, and the 16 x 16 joint histogram passes a chi-squared test at 1e-4
    (so would any uniform pair, 1 seed in 10,000). A draw's thresholds give the send's comparisons exactly."""
    n = 1 << 21
    draw = np.random.default_rng(2026).random(n)
    u, w = kernels.send_uniform_numpy(draw), kernels.unsubscribe_uniform_numpy(draw)
    assert u.dtype == np.float32
    for x, bits in ((u, 24), (w, 29)):
        assert ((x >= 0) & (x < 1)).all()
        np.testing.assert_array_equal(x * 2.0**bits, np.floor(x * 2.0**bits))  # on its grid
        assert abs(float(x.mean()) - 0.5) < 4.5 * np.sqrt(1 / 12 / n)
    for rate in (0.0, 0.2, 0.35, 0.981, float(u[7]), float(u[7]) + 2**-25, 1.0):
        below = draw < kernels.send_threshold(np.float32(rate))
        np.testing.assert_array_equal(below, u < np.float32(rate))
    assert abs(float(np.corrcoef(u, w)[0, 1])) < 4.5 / np.sqrt(n)
    joint = np.bincount((u * 16).astype(np.int64) * 16 + (w * 16).astype(np.int64), minlength=256)
    assert scipy.stats.chisquare(joint).pvalue > 1e-4
    # The low bits are a uniform too, not a copy of the high ones: u's last bits against w's first.
    assert abs(float(np.corrcoef((u * 2**24) % 16, (w * 16).astype(np.int64))[0, 1])) < 4.5 / np.sqrt(n)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    times=st.lists(st.sampled_from([0.0, 1.5, 2.0, 86_400.0, 3e5]) | st.floats(0.0, 1e6), max_size=600),
)
def test_occasions_are_ordered_as_a_stable_sort_would(times: list[float]) -> None:
    """The occasions' time order (a fast sort, then ties put back in position order) is the stable sort's,
    sorted whole and, for more rows than a slot holds, slot by slot (slots of 8 rows here)."""
    time_s = np.array(times, np.float64)
    want = np.argsort(time_s, kind="stable")
    for slot_rows in (organic.SLOT_ROWS, 8):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(organic, "SLOT_ROWS", slot_rows)
            order, sorted_time = stable_time_order(time_s)
        np.testing.assert_array_equal(order, want)
        np.testing.assert_array_equal(sorted_time, time_s[want])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    times=st.lists(st.sampled_from([0.0, 1.5, 2.0, 86_400.0]) | st.floats(0.0, 1e6), min_size=1, max_size=400),
    slots=st.integers(1, 40),
)
def test_slot_order_is_a_stable_sort_by_slot(times: list[float], slots: int) -> None:
    """Rows grouped by slot, each slot's rows in their order; the compiled loop gives the numpy twin's."""
    time_s = np.array(times, np.float64)
    low, high = float(time_s.min()), float(time_s.max())
    scale = slots / (high - low) if high > low else 0.0
    order, starts = kernels.slot_order_numpy(time_s, low, scale, slots)
    slot = np.minimum(((time_s - low) * scale).astype(np.int64), slots - 1)
    np.testing.assert_array_equal(order, np.argsort(slot, kind="stable"))
    np.testing.assert_array_equal(np.diff(starts), np.bincount(slot, minlength=slots))
    if kernels.COMPILED:
        for a, b in zip(_compiled("slot_order")(time_s, low, scale, slots), (order, starts), strict=True):
            np.testing.assert_array_equal(a, b)


def _near_multiples_of_24() -> st.SearchStrategy[float]:
    """Values where a floor modulo by 24 is hardest: next to multiples of 24, tiny, negative, and large."""
    k = st.integers(-2_000, 200_000)
    step = st.integers(-4, 4)
    near = st.builds(
        lambda k, s: float(np.nextafter(24.0 * k, np.inf if s > 0 else -np.inf)) if s else 24.0 * k, k, step
    )
    ulps = st.builds(lambda k, s: float(24.0 * k + s * np.spacing(24.0 * k + 1.0)), k, step)
    return (
        near | ulps | st.floats(-1e7, 1e9, allow_nan=False) | st.floats(-1e-300, 1e-300) | st.sampled_from([-0.0, 0.0])
    )


@needs_numba
@settings(max_examples=400, deadline=None, derandomize=True)
@given(x=_near_multiples_of_24())
def test_floor_mod_is_numpys_modulo_to_the_bit(x: float) -> None:
    fast = kernels._floor_mod_compiled(x, 24.0)
    slow = np.mod(np.float64(x), 24.0)
    assert np.float64(fast).tobytes() == slow.tobytes(), (x, fast, slow)
    assert kernels._floor_mod(x, 24.0) == slow  # the Python text of the kernel, too


@needs_numba
@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(0, 3000), regions=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_release_groups_and_creatives_used_match_numpy(n: int, regions: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    customers = 5000
    customer = rng.choice(customers, size=min(n, customers), replace=False).astype(np.int32)
    region = rng.integers(0, regions, customers).astype(np.uint8)
    rank_of_region = rng.permutation(regions).astype(np.uint8)
    fast = _compiled("release_groups")(customer, region, rank_of_region)
    slow = kernels.release_groups_numpy(customer, region, rank_of_region)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    count = int(rng.integers(1, 60))
    creative = rng.integers(0, count, customer.shape[0]).astype(np.int32)
    np.testing.assert_array_equal(
        _compiled("creatives_used")(creative, count), kernels.creatives_used_numpy(creative, count)
    )


@needs_numba
@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    customers=st.lists(st.integers(0, 5000), min_size=1, max_size=2000),
    offset=st.sampled_from([0, 64, 4096]),
    shift=st.integers(0, 12),
)
def test_chunk_run_starts_match_numpy(customers: list[int], offset: int, shift: int) -> None:
    customer = np.array(customers, np.int32)
    fast = _compiled("chunk_run_starts")(customer, offset, shift)
    np.testing.assert_array_equal(fast, kernels.chunk_run_starts_numpy(customer, offset, shift))
    assert fast.dtype == np.int64


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    picked=st.lists(st.integers(0, 4999), max_size=1500, unique=True),
    size=st.sampled_from([1, 7, 64, 256, 4096]),
    shard=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_increasing_customers_draw_what_any_order_of_finding_chunks_draws(
    picked: list[int], size: int, shard: int, seed: int
) -> None:
    """Customers that increase (a plan's, as the policies list them) find their chunks' rows by binary search:
    the draws are the same as the rows' chunks found by a pass, for power-of-two chunks and others, from a
    shard's first row as from the population's; and ``kernels.increasing`` says which columns increase."""
    from masssim.engine.chunks import ChunkDraws, ChunkLayout, Draw

    offset = shard * size * (5000 // (4 * size)) if size < 5000 else 0
    layout = ChunkLayout(5000 + offset, size).shifted(offset) if offset else ChunkLayout(5000, size)
    customer = np.array(sorted(picked), np.int32)
    assert kernels.increasing(customer) and kernels.increasing_numpy(customer)
    seq = np.random.SeedSequence(seed)
    by_pass = ChunkDraws(seq, layout)
    by_search = ChunkDraws(seq, layout)
    for kind in (Draw.SEND, Draw.READ_DELAY):
        want = by_pass.random(customer, kind, np.float32, by_pass.segments(customer))
        got = by_search.random(customer, kind, np.float32, by_search.segments(customer, increasing=True))
        np.testing.assert_array_equal(got, want)
    # Each chunk once, in order, as one slice of rows that all belong to it, the slices covering every row.
    segments = by_search.segments(customer, increasing=True)
    assert [c for c, _, _ in segments] == sorted({int(c) for c in layout.of(customer)})
    covered = 0
    for chunk, rows, count in segments:
        assert isinstance(rows, slice) and rows.start == covered and rows.stop - rows.start == count > 0
        assert np.all(layout.of(customer[rows]) == chunk)
        covered = rows.stop
    assert covered == customer.shape[0]
    if customer.shape[0] > 1:
        swapped = customer.copy()
        swapped[[0, -1]] = swapped[[-1, 0]]
        assert not kernels.increasing(swapped) and not kernels.increasing_numpy(swapped)


@needs_numba
@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    n=st.integers(0, 2000),
    seed=st.integers(0, 2**16),
    epoch=st.floats(0.0, 3e8),
    tau=st.floats(3_600.0, 1e8),
)
def test_growth_exponents_match_numpy(n: int, seed: int, epoch: float, tau: float) -> None:
    departure = epoch + np.random.default_rng(seed).random(n) * 40 * 86_400.0
    fast = _compiled("growth_exponents")(departure, epoch, 1.0 / tau)
    slow = kernels.growth_exponents_numpy(departure, epoch, 1.0 / tau)
    np.testing.assert_array_equal(fast, slow)  # a subtraction, a product and a rounding: exactly rounded
    assert fast.dtype == np.float32


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n=st.integers(0, 800),
    seed=st.integers(0, 2**16),
    share=st.floats(0.0, 1.0),
    until_days=st.floats(0.0, 12.0),
    all_rows=st.booleans(),
    shift_s=st.sampled_from([0.0, 60.0, 0.1]),
)
def test_day_counts_of_rows_are_the_counts_of_the_gathered_times(
    n: int, seed: int, share: float, until_days: float, all_rows: bool, shift_s: float
) -> None:
    """Sends and deliveries are counted per day from their rows and departures, in any order, without gathering
    or building their times (departure + latency): on both kernel paths, the counts of those times sorted and
    cut at each day's end (a time on a day's end counts in the day it ends; the last day takes the rest)."""
    rng = np.random.default_rng(seed)
    time_s = rng.random(n) * 12 * 86_400.0
    time_s[: n // 3] = np.round(time_s[: n // 3] / 86_400.0) * 86_400.0 - shift_s  # some arrive on day edges
    rng.shuffle(time_s)
    rows = None if all_rows else np.flatnonzero(rng.random(n) < share)
    until_s = until_days * 86_400.0
    days = 10
    slow = kernels.day_counts_numpy(time_s, rows, shift_s, until_s, days)
    if kernels.COMPILED:
        np.testing.assert_array_equal(_compiled("day_counts")(time_s, rows, shift_s, until_s, days), slow)
    shifted = np.sort((time_s if rows is None else time_s[rows]) + shift_s)
    arrived = shifted[: int(np.searchsorted(shifted, until_s, side="right"))]
    ends = np.searchsorted(arrived, np.arange(1, days) * 86_400.0, side="right")
    np.testing.assert_array_equal(slow, np.diff(np.concatenate(([0], ends, [arrived.shape[0]]))))
    assert slow.dtype == np.int64
    # The recorder's shortcut (every time in one day, found from the span's ends) gives the same counts; a
    # span within one day is what most blocks have, so the times are also squeezed into one.
    recorder = Recorder(days * 86_400.0)
    for times in (time_s, 3 * 86_400.0 + time_s / 50.0):
        if n:
            span = (float(times.min()), float(times.max()))
            expected = kernels.day_counts_numpy(times, rows, shift_s, until_s, days)
            np.testing.assert_array_equal(recorder.day_counts(times, rows, shift_s, until_s, span=span), expected)


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(customers=st.lists(st.integers(-3, 60), min_size=1, max_size=80), n_customers=st.integers(1, 60))
def test_plan_customer_check_matches_numpy(customers: list[int], n_customers: int) -> None:
    customer = np.array(customers, np.int64)
    # as drawn, and sorted (strictly increasing when nobody repeats: the compiled loop's one-pass case)
    for column in (customer, np.sort(customer), np.unique(customer)):
        fast = _compiled("check_plan_customers")(column, n_customers)
        assert fast == kernels.check_plan_customers_numpy(column, n_customers)


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n_customers=st.integers(1, 60),
    n=st.integers(0, 400),
    n_brands=st.integers(1, 12),
    seed=st.integers(0, 2**16),
    with_gone=st.booleans(),
    marketed=st.booleans(),
)
def test_tally_brands_matches_numpy(
    n_customers: int, n: int, n_brands: int, seed: int, with_gone: bool, marketed: bool
) -> None:
    from masssim.model.market import MarketTally, mask_dtype

    rng = np.random.default_rng(seed)
    # float16, as the population stores them (MarketTally.add reads what it is given)
    brand_prob = rng.dirichlet(np.full(n_brands, 0.5), n_customers).astype(np.float16)
    customer = rng.integers(0, n_customers, n).astype(np.int32)  # repeated customers on purpose
    uniform = rng.random(n)
    p0 = brand_prob[customer, 0].astype(np.float64)
    # Our probability: unchanged (no adstock) for some rows, raised for others; exact ties with p0 included.
    lifted = p0 + (1.0 - p0) * rng.random(n) * (rng.random(n) < 0.7)
    uniform[: n // 8] = lifted[: n // 8]  # uniforms exactly at p0' (a rival's slice edge)
    bought = (uniform < lifted) & (rng.random(n) < 0.9)
    gone = rng.random(n) < 0.3 if with_gone else None
    if gone is not None:
        bought &= ~gone
    arguments = (lifted, bought, gone) if marketed else (None, None, None)  # None: the market without marketing
    results = []
    for kernel in (_compiled("tally_brands"), kernels.tally_brands_numpy):
        masks = np.ones(n_customers, mask_dtype(n_brands))  # the same starting bits for both
        purchases = np.arange(n_brands, dtype=np.int64)
        kernel(customer, brand_prob, uniform, *arguments, masks, purchases)
        results.append((masks, purchases))
    if not marketed:  # what the model's own tally counts (MarketTally.add, occasions all inside its window)
        tally = MarketTally(n_customers, n_brands, window_s=1.0)
        tally.brands_bought[:] = 1
        tally.purchases[:] = np.arange(n_brands)
        tally.add(customer, np.zeros(n), brand_prob, uniform)
        results.append((tally.brands_bought, tally.purchases))
    for masks, purchases in results[1:]:
        np.testing.assert_array_equal(results[0][0], masks)
        np.testing.assert_array_equal(results[0][1], purchases)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    sizes=st.lists(st.integers(0, 700), min_size=1, max_size=12),
    chunk_size=st.sampled_from([4, 16, 64]),
    seed=st.integers(0, 2**16),
)
def test_buffered_draws_are_the_chunk_streams_in_row_order(sizes: list[int], chunk_size: int, seed: int) -> None:
    """A buffered kind (rows in no order, a few at a time) hands each chunk's stream out in row order: the
    same values as drawing every chunk's rows straight from its stream, whatever the call sizes (some
    calls need more values of one chunk than a buffer holds, which widens the buffers)."""
    from masssim.engine.chunks import BUFFERED_KINDS, ChunkDraws, ChunkLayout, Draw
    from masssim.model.streams import chunk_sequence, generator

    layout = ChunkLayout(20 * chunk_size, chunk_size)
    seq = np.random.SeedSequence(seed)
    rng = np.random.default_rng(seed)
    calls = [rng.integers(0, layout.n, size) for size in sizes]  # repeated customers, any order
    kind = Draw.DIRECT_START
    assert kind in BUFFERED_KINDS
    draws = ChunkDraws(seq, layout)
    got = np.concatenate([draws.random(rows, kind) for rows in calls])
    rows = np.concatenate(calls)
    expected = np.empty(rows.shape[0])
    chunk = layout.of(rows)
    for k in np.unique(chunk).tolist():
        stream = generator(chunk_sequence(chunk_sequence(seq, k), int(kind)))
        expected[chunk == k] = stream.random(int((chunk == k).sum()))
    np.testing.assert_array_equal(got, expected)
    # The compiled hand-out and its numpy twin agree on the same buffers.
    counts = np.bincount(chunk[:100], minlength=layout.count)
    width = int(counts.max(initial=0)) + 2
    values = rng.random((layout.count, width))
    cursor = width - counts - rng.integers(0, 3, layout.count)  # each buffer holds enough, some to spare
    cursor = np.maximum(cursor, 0).astype(np.int64)
    results = []
    for hand_out in (kernels.hand_out, kernels.hand_out_numpy):
        c = cursor.copy()
        results.append((hand_out(chunk[:100], values, c), c))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_tally_brands_takes_marketing_whole_or_not_at_all() -> None:
    """The compiled loop reads p_ours, bought_ours and gone one by one; its numpy twin refuses a mixture, so no
    caller can rely on a combination the two would count differently."""
    brand_prob = np.full((3, 2), 0.5, np.float32)
    customer, uniform = np.array([0, 2], np.int32), np.array([0.2, 0.7])
    masks, purchases = np.zeros(3, np.uint8), np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="all None"):
        kernels.tally_brands_numpy(customer, brand_prob, uniform, uniform, None, None, masks, purchases)
    with pytest.raises(ValueError, match="all None"):
        kernels.tally_brands_numpy(customer, brand_prob, uniform, None, None, np.zeros(2, bool), masks, purchases)


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    size=st.integers(1, 40),
    n_values=st.integers(0, 200),
    n_rows=st.integers(0, 400),
    seed=st.integers(0, 2**16),
    rows_kind=st.sampled_from([None, np.int32, np.int64]),
)
def test_counts_match_numpy(size: int, n_values: int, n_rows: int, seed: int, rows_kind: type | None) -> None:
    """Counts of all values (a bucket's channels, int8) or of the values at some rows (a wave's regions, uint8,
    rows repeated on purpose), as numpy's bincount gives them."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, size, n_values).astype(np.uint8 if rows_kind else np.int8)
    rows = None if rows_kind is None or n_values == 0 else rng.integers(0, n_values, n_rows).astype(rows_kind)
    arguments = (values, size) if rows is None else (values, size, rows)
    fast = _compiled("counts")(*arguments)
    slow = kernels.counts_numpy(*arguments)
    assert fast.dtype == slow.dtype and fast.shape == (size,)
    np.testing.assert_array_equal(fast, slow)


@needs_numba
def test_half_decoding_is_numpys_conversion_for_every_finite_float16() -> None:
    # Every bit pattern but exponent 31 (infinities and NaN, which the population never stores): zeros of
    # both signs, subnormals, normals. Compared as float32 bits, so -0.0 and +0.0 are told apart.
    bits = np.arange(1 << 16, dtype=np.uint16)
    finite = bits[(bits & 0x7C00) != 0x7C00]
    expected = finite.view(np.float16).astype(np.float32)
    decoded = np.array([kernels._half_compiled(b) for b in finite], np.float32)
    np.testing.assert_array_equal(decoded.view(np.uint32), expected.view(np.uint32))


def test_kernels_read_taste_and_brand_probabilities_at_half_precision() -> None:
    # Given float32 (as tests and plug-ins may), both paths round to float16 first, as the population stores.
    values = np.array([[0.1, -1.0 / 3.0]], np.float32)
    assert kernels.as_half(values).dtype == np.float16
    np.testing.assert_array_equal(kernels.half_bits(values).view(np.float16), values.astype(np.float16))
    stored = values.astype(np.float16)
    assert kernels.as_half(stored) is stored  # the population's own arrays are not copied


@needs_numba
@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    n=st.integers(0, 300),
    n_rows=st.integers(0, 300),
    seed=st.integers(0, 2**16),
    segmented=st.booleans(),
    every=st.booleans(),
)
def test_delivered_buckets_matches_numpy(n: int, n_rows: int, seed: int, segmented: bool, every: bool) -> None:
    """A block's delivered rows by release bucket, with their creatives and segments (engine/delivery_cells.py)."""
    rng = np.random.default_rng(seed)
    bucket_s = 900.0
    # Departures in any order, some a latency before a bucket edge exactly, others anywhere.
    on_edge = rng.random(n) < 0.3
    times = np.where(on_edge, rng.integers(0, 200, n) * bucket_s - 60.0, rng.random(n) * 200 * bucket_s)
    creative = rng.integers(0, 20_000, n).astype(np.int32)
    customer = rng.integers(0, 50, n).astype(np.int32)
    segment_of = rng.integers(0, 7, 50).astype(np.int32) if segmented else np.empty(0, np.int32)
    rows = None if every else (np.unique(rng.integers(0, n, n_rows)) if n else np.empty(0, np.int64))
    fast = _compiled("delivered_buckets")(rows, times, 60.0, bucket_s, creative, customer, segment_of)
    slow = kernels.delivered_buckets_numpy(rows, times, 60.0, bucket_s, creative, customer, segment_of)
    for got, expected in zip(fast[:4], slow[:4], strict=True):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    assert fast[4] == slow[4]
    # Each delivery's bucket is the first edge at or after its time, found by the products themselves; the
    # buckets ascend, and within one the deliveries keep their order.
    picked = slice(None) if rows is None else rows
    arrival = (times + 60.0)[picked]
    first_edge = np.searchsorted(np.arange(300) * bucket_s, arrival, side="left")  # the first edge >= each
    order = np.argsort(first_edge, kind="stable")
    assert np.all(np.diff(slow[0]) > 0)
    np.testing.assert_array_equal(np.repeat(slow[0], np.diff(slow[1])), first_edge[order])
    np.testing.assert_array_equal(slow[2], creative[picked][order])


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    rates=st.lists(st.sampled_from([0.0, 0.0, 1e-3, 0.5, 1.0, 2.5, 40.0]), min_size=1, max_size=300),
    n_points=st.integers(0, 400),
    seed=st.integers(0, 2**16),
    offset=st.integers(0, 2**20),
    wide=st.booleans(),
)
def test_occasion_rows_give_each_point_to_the_row_whose_share_holds_it(
    rates: list[float], n_points: int, seed: int, offset: int, wide: bool
) -> None:
    """A week's occasions go to the customer whose stretch of the running sum of rates holds them: the
    compiled loop, the numpy twin and a plain search agree, a customer with no rate gets none, and the
    running total is the same sum on both paths (the engine's points stay below it)."""
    rate = np.array(rates, np.float32)
    total = kernels.rate_total(rate)
    assert total == kernels.rate_total_numpy(rate)
    rng = np.random.default_rng(seed)
    points = np.minimum(np.sort(rng.random(n_points)) * total, np.nextafter(total, 0.0))
    if total == 0.0:
        points = points[:0]
    dtype = np.int64 if wide else np.int32
    running = np.cumsum(rate.astype(np.float64))
    want = np.array([offset + int(np.argmax(running > p)) for p in points], dtype)
    for got in (
        kernels.occasion_rows_numpy(rate, points, offset, dtype),
        kernels.occasion_rows(rate, points, offset, dtype),
    ):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == dtype
        assert np.all(rate[got - offset] > 0)
