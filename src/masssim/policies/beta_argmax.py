"""The argmax of independent Beta draws over many creatives, grouped by posterior state (docs/model.md §6.4).

Thompson sampling with a large catalogue needs, per posterior draw, only which creative drew the largest
value. Creatives with the same posterior (same clicks and deliveries, above all the many never sent: all
Beta(1, 1)) are exchangeable, so they are handled as one group: the cost per persona and wave is
O(groups + rows · EXCEEDANCE_TARGET), not O(creatives).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from masssim.policies import compiled as switch
from masssim.policies.compiled import compiled

EXCEEDANCE_TARGET = 4  # values expected above the threshold per draw (none above it: about e^-4 of draws)


def posterior_groups(
    n_creatives: int, sent: np.ndarray, alpha_sent: np.ndarray, beta_sent: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Creatives grouped by identical Beta(alpha, beta) posterior.

    ``sent`` are the creatives with a posterior other than Beta(1, 1) (sorted), with their parameters; the
    others form one Beta(1, 1) group. Returns (alpha [G], beta [G], size [G], start [G], members [K]): group
    g's creatives are ``members[start[g] : start[g] + size[g]]``, in increasing index order.
    """
    order = np.lexsort((sent, beta_sent, alpha_sent))
    a, b = alpha_sent[order], beta_sent[order]
    new = np.ones(order.shape[0], bool)
    new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    first = np.flatnonzero(new)
    size = np.diff(np.append(first, order.shape[0]))
    unsent_mask = np.ones(n_creatives, bool)
    unsent_mask[sent] = False
    unsent = np.flatnonzero(unsent_mask)
    alpha = np.concatenate(([1.0], a[first])) if unsent.shape[0] else a[first]
    beta = np.concatenate(([1.0], b[first])) if unsent.shape[0] else b[first]
    sizes = np.concatenate(([unsent.shape[0]], size)) if unsent.shape[0] else size
    members = np.concatenate((unsent, sent[order]))
    start = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    return alpha, beta, sizes.astype(np.int64), start.astype(np.int64), members


def successes_on_lines(rng: np.random.Generator, p: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(line, position) of the successes of independent Bernoulli(``p[g]``) trials at every position
    0 .. ``length[g]`` − 1 of each line g, without drawing the trials: the gaps between successes are
    geometric. Costs O(lines + successes) draws."""
    line = np.flatnonzero((p > 0) & (length > 0))
    prob = p[line]
    end = length[line].astype(np.int64)
    position = np.zeros(line.shape[0], np.int64)  # first position of each line not yet decided
    out_line: list[np.ndarray] = []
    out_position: list[np.ndarray] = []
    active = np.arange(line.shape[0])
    while active.shape[0]:
        remaining = end[active] - position[active]
        mean = remaining * prob[active]
        # enough gaps to pass the line's end almost always; a line that falls short goes round again
        budget = np.minimum(np.ceil(mean + 6.0 * np.sqrt(mean) + 4.0), remaining + 1).astype(np.int64)
        gaps = rng.geometric(np.repeat(prob[active], budget))
        # A gap past the end ends the line; for tiny p numpy's draw can overflow int64 (negative).
        limit = np.repeat(remaining + 1, budget)
        gaps = np.where((gaps < 1) | (gaps > limit), limit, gaps)
        total = np.cumsum(gaps)
        ends = np.cumsum(budget)
        before = np.repeat(np.concatenate(([0], total[ends[:-1] - 1])), budget)
        local = total - before  # 1-based offset of each success from the line's position
        at = np.repeat(position[active], budget) + local - 1
        keep = at < np.repeat(end[active], budget)
        out_position.append(at[keep])
        out_line.append(np.repeat(line[active], budget)[keep])
        position[active] += local[ends - 1]
        active = active[position[active] < end[active]]
    if not out_line:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_line), np.concatenate(out_position)


def exceedance_threshold(alpha: np.ndarray, beta: np.ndarray, size: np.ndarray) -> float:
    """t with about EXCEEDANCE_TARGET values above it in one draw: Σ_g size_g · P(Beta(α_g, β_g) > t).

    A function of the posteriors only, never of the draws it is used for; any such t keeps the argmax exact.
    """
    target = min(float(EXCEEDANCE_TARGET), float(size.sum()) / 2.0)

    def excess(t: float) -> float:
        return float(np.dot(size, special.betaincc(alpha, beta, t))) - target

    return float(optimize.brentq(excess, 0.0, 1.0, xtol=1e-12, rtol=1e-10))


def inverse_survival(alpha: np.ndarray, beta: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x with P(Beta(α, β) > x) = y. In closed form where α = 1 (every creative never clicked, the most
    common), since the survival function of Beta(1, β) is (1 − x)^β; the incomplete beta elsewhere."""
    one = alpha == 1.0
    x = np.empty(y.shape[0])
    x[one] = -np.expm1(np.log(y[one]) / beta[one])
    x[~one] = special.betainccinv(alpha[~one], beta[~one], y[~one])
    return x


def grouped_posterior_argmax(
    rng: np.random.Generator,
    n_creatives: int,
    sent: np.ndarray,
    alpha_sent: np.ndarray,
    beta_sent: np.ndarray,
    rows: int,
) -> np.ndarray:
    """int32 [rows]: for each row, the argmax over creatives k of an independent draw X_k ~ Beta(α_k, β_k),
    where α_k, β_k are given for the creatives ``sent`` and are 1, 1 for every other creative — exactly
    in distribution, without drawing every X_k.

    Creatives with identical posteriors form a group (``posterior_groups``). A threshold t depends on the
    posteriors only (``exceedance_threshold``). In group g, the rows × size_g values are iid, each above t
    with probability P_g = P(Beta(α_g, β_g) > t): laid out as one line of rows · size_g trials, the
    exceedances are drawn with geometric gaps (``successes_on_lines``); each exceeding value is drawn from
    the posterior truncated to (t, 1) by the inverse survival function; a row's winner is its largest
    value above t. A row with nothing above t (probability about e^-16) has every value from its posterior
    truncated to (0, t]: a group's largest of size_g iid such values is F⁻¹(U^{1/size_g}) (F the
    truncated CDF), won by a member chosen uniformly (they are exchangeable), and the row's winner is the
    largest group maximum. Cost per call: O(groups + rows · EXCEEDANCE_TARGET).
    """
    alpha, beta, size, start, members = posterior_groups(n_creatives, sent, alpha_sent, beta_sent)
    threshold = exceedance_threshold(alpha, beta, size)
    above = special.betaincc(alpha, beta, threshold)
    group, position = successes_on_lines(rng, above, size * rows)
    row = position // size[group]
    creative = members[start[group] + position % size[group]]
    value = inverse_survival(alpha[group], beta[group], rng.random(row.shape[0]) * above[group])
    # each row's largest value (ties: lowest index), without sorting: a max then a min per row
    largest = np.full(rows, -np.inf)
    np.maximum.at(largest, row, value)
    top = value == largest[row]
    winner = np.full(rows, np.iinfo(np.int32).max, np.int64)
    np.minimum.at(winner, row[top], creative[top])
    winner = np.where(np.isfinite(largest), winner, -1).astype(np.int32)
    empty = np.flatnonzero(winner < 0)
    if empty.shape[0]:
        below = special.betainc(alpha, beta, threshold)
        shape = (empty.shape[0], alpha.shape[0])
        top = rng.random(shape) ** (1.0 / size)  # CDF value of each group's maximum, truncated to (0, t]
        best = np.argmax(special.betaincinv(alpha, beta, top * below), axis=1)
        member = (rng.random(empty.shape[0]) * size[best]).astype(np.int64)
        winner[empty] = members[start[best] + member]
    return winner


UNSENT_MARGIN = 10.0  # threshold 1 − UNSENT_MARGIN / m: the best never-sent value falls below it in e^-10 of draws


def unsent_creative(
    n_creatives: int,
    cell_segment: np.ndarray,
    cell_creative: np.ndarray,
    segment: np.ndarray,
    nth: np.ndarray,
) -> np.ndarray:
    """The ``nth`` (0-based) creative of each ``segment`` absent from the cells (sorted by segment, creative):
    with s_0 < s_1 < … the segment's present creatives, it is nth + #{i : s_i − i ≤ nth}."""
    first = np.concatenate(
        (
            [0],
            np.cumsum(np.bincount(cell_segment, minlength=int(segment.max(initial=0)) + 1)),
        )
    )
    runs = 1 + int(np.count_nonzero(segment[1:] != segment[:-1])) if segment.shape[0] else 0
    if switch.NUMBA is not None and runs * n_creatives <= 4 * (segment.shape[0] + cell_segment.shape[0]):
        # rows come grouped by segment: list each segment's never-sent creatives once, then look them up
        return _unsent_by_table_compiled(first, cell_creative, segment, nth, n_creatives)  # type: ignore[no-any-return]
    local = np.arange(cell_segment.shape[0]) - first[cell_segment]
    span = n_creatives + 1
    key = cell_segment.astype(np.int64) * span + (cell_creative - local)  # non-decreasing
    query = segment.astype(np.int64) * span + nth
    order = np.argsort(query)  # sorted queries search the cells far faster (memory locality)
    below = np.empty(query.shape[0], np.int64)
    below[order] = np.searchsorted(key, query[order], side="right")
    return nth + below - first[segment]


def _unsent_by_table(first, cell_creative, segment, nth, n_creatives):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``unsent_creative`` for rows in runs of one segment: at each run, the segment's never-sent creatives are
    listed in increasing order (one pass over the creatives beside its sorted cells); a row's answer is the
    ``nth`` of the list. The same creative as the search."""
    out = np.empty(segment.shape[0], np.int64)
    unsent = np.empty(n_creatives, np.int64)
    current = -1
    for t in range(segment.shape[0]):
        s = segment[t]
        if s != current:
            current = s
            at = first[s]
            count = 0
            for c in range(n_creatives):
                if at < first[s + 1] and cell_creative[at] == c:
                    at += 1
                else:
                    unsent[count] = c
                    count += 1
        out[t] = unsent[nth[t]]
    return out


_unsent_by_table_compiled = compiled(_unsent_by_table)


def fold_row_maxima(
    row: np.ndarray, value: np.ndarray, creative: np.ndarray, largest: np.ndarray, winner: np.ndarray
) -> None:
    """Fold values into each row's largest value and its creative, in place: after it, ``largest[r]`` is the
    largest value seen for row r (before and now) and ``winner[r]`` the lowest creative among the values
    equal to it (ties: lowest index). Start from -inf and the int32 maximum; fold in batches, in any order."""
    if switch.NUMBA is not None:  # one pass, no gathers: the rows' state stays where it is
        _fold_row_maxima_compiled(row, value, creative, largest, winner)
        return
    before = largest.copy()
    np.maximum.at(largest, row, value)
    winner[before != largest] = np.iinfo(np.int32).max  # a larger value arrived: the old winner is beaten
    best = value == largest[row]
    np.minimum.at(winner, row[best], creative[best])


def _fold_row_maxima(row, value, creative, largest, winner):  # type: ignore[no-untyped-def]  # pragma: no cover
    for t in range(row.shape[0]):
        r = row[t]
        if value[t] > largest[r]:
            largest[r] = value[t]
            winner[r] = creative[t]
        elif value[t] == largest[r] and creative[t] < winner[r]:
            winner[r] = creative[t]


_fold_row_maxima_compiled = compiled(_fold_row_maxima)


SMALL_STATE = 256  # cells with α and β below this are grouped by a 16-bit code (radix sorts, linear time)


def cells_by_posterior(segment: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """An order of cells (given sorted by segment, creative) that puts cells of the same segment and posterior
    together, creatives in increasing order within. Cells whose α or β reach SMALL_STATE stay apart, after
    their segment's others (a group of one is still a group of identical posteriors)."""
    if switch.NUMBA is not None:  # segment by segment: a counting sort over the few codes each one has
        return _posterior_order_compiled(segment, alpha, beta, SMALL_STATE)  # type: ignore[no-any-return]
    small = (alpha < SMALL_STATE) & (beta < SMALL_STATE)
    code = np.where(small, (alpha - 1.0) * SMALL_STATE + (beta - 1.0), SMALL_STATE * SMALL_STATE - 1.0)
    by_code = np.argsort(code.astype(np.uint16), kind="stable")
    segment_type = np.uint16 if segment.max(initial=0) < 1 << 16 else np.int64
    return by_code[np.argsort(segment[by_code].astype(segment_type), kind="stable")]


def _posterior_order(segment, alpha, beta, small_state):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``cells_by_posterior``'s order, run of segment by run: each run's cells are counted per 16-bit code
    (the codes it has, sorted), then placed code after code, in their given order within a code."""
    n = segment.shape[0]
    last = small_state * small_state - 1
    code = np.empty(n, np.int64)
    for t in range(n):
        if alpha[t] < small_state and beta[t] < small_state:
            code[t] = np.int64((alpha[t] - 1.0) * small_state + (beta[t] - 1.0))
        else:
            code[t] = last
    order = np.empty(n, np.int64)
    slot = np.zeros(last + 1, np.int64)  # per code: its count, then where its next cell goes
    seen = np.empty(last + 1, np.int64)
    lo = 0
    while lo < n:
        hi = lo + 1
        while hi < n and segment[hi] == segment[lo]:
            hi += 1
        distinct = 0
        for t in range(lo, hi):
            if slot[code[t]] == 0:
                seen[distinct] = code[t]
                distinct += 1
            slot[code[t]] += 1
        codes = np.sort(seen[:distinct])
        at = lo
        for j in range(distinct):
            size = slot[codes[j]]
            slot[codes[j]] = at
            at += size
        for t in range(lo, hi):
            order[slot[code[t]]] = t
            slot[code[t]] += 1
        for j in range(distinct):
            slot[codes[j]] = 0
        lo = hi
    return order


_posterior_order_compiled = compiled(_posterior_order)


def posterior_runs(
    cell_segment: np.ndarray, cell_creative: np.ndarray, cell_alpha: np.ndarray, cell_beta: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The cells of the segments ``keep`` (bool per segment) grouped by (segment, posterior), in
    ``cells_by_posterior``'s order: (creatives in that order, first position and size of each group, and each
    group's segment, α and β). A new group starts at a new segment or posterior, and at every cell whose α or
    β reaches SMALL_STATE (those stay groups of one)."""
    order = cells_by_posterior(cell_segment, cell_alpha, cell_beta)
    if switch.NUMBA is not None:  # one pass along the order, no copies of the cells' columns
        return _posterior_runs_compiled(order, cell_segment, cell_creative, cell_alpha, cell_beta, keep, SMALL_STATE)  # type: ignore[no-any-return]
    in_kept = keep[cell_segment]
    if not in_kept.all():  # usually every segment is kept: then no copy of the cells
        order = order[in_kept[order]]
    seg, cre, a, b = cell_segment[order], cell_creative[order], cell_alpha[order], cell_beta[order]
    new = np.ones(seg.shape[0], bool)
    new[1:] = (seg[1:] != seg[:-1]) | (a[1:] != a[:-1]) | (b[1:] != b[:-1]) | (a[1:] >= SMALL_STATE)
    new[1:] |= b[1:] >= SMALL_STATE
    start = np.flatnonzero(new)
    size = np.diff(np.append(start, seg.shape[0]))
    return cre, start, size, seg[start], a[start], b[start]


def _posterior_runs(order, segment, creative, alpha, beta, keep, small_state):  # type: ignore[no-untyped-def]  # pragma: no cover
    n = order.shape[0]
    cre = np.empty(n, creative.dtype)
    start = np.empty(n, np.int64)
    g_seg = np.empty(n, segment.dtype)
    g_a = np.empty(n)
    g_b = np.empty(n)
    at = 0
    groups = 0
    for t in range(n):
        i = order[t]
        s = segment[i]
        if not keep[s]:
            continue
        a, b = alpha[i], beta[i]
        if (
            at == 0
            or s != g_seg[groups - 1]
            or a != g_a[groups - 1]
            or b != g_b[groups - 1]
            or a >= small_state
            or b >= small_state
        ):
            start[groups] = at
            g_seg[groups] = s
            g_a[groups] = a
            g_b[groups] = b
            groups += 1
        cre[at] = creative[i]
        at += 1
    size = np.empty(groups, np.int64)
    for g in range(groups):
        size[g] = (start[g + 1] if g + 1 < groups else at) - start[g]
    return cre[:at].copy(), start[:groups].copy(), size, g_seg[:groups].copy(), g_a[:groups].copy(), g_b[:groups].copy()


_posterior_runs_compiled = compiled(_posterior_runs)


def thompson_argmax(
    rng: np.random.Generator,
    n_creatives: int,
    cell_segment: np.ndarray,
    cell_creative: np.ndarray,
    cell_alpha: np.ndarray,
    cell_beta: np.ndarray,
    draws: np.ndarray,
) -> np.ndarray:
    """int32 [Σ draws]: ``draws[s]`` argmaxes of independent posterior draws for each segment s, segment
    after segment, where creative k of segment s has posterior Beta(α, β) from its cell (sorted by
    segment, creative) or Beta(1, 1) if it has none — exactly in distribution.

    A segment with m never-sent creatives, m > 2 · UNSENT_MARGIN, is drawn with all such segments at once:
    the largest of its m never-sent values is U^{1/m} (the largest of m uniforms), won by one of them
    chosen uniformly; the other creatives' values above t = 1 − UNSENT_MARGIN / m are drawn sparsely as in
    ``grouped_posterior_argmax``. If the never-sent maximum exceeds t, every value below t is beaten and
    the winner is the largest of it and those above t; if not (probability (1 − UNSENT_MARGIN / m)^m ≤
    e^-10) and nothing exceeds t, each group's largest value below t is drawn (F⁻¹(U^{1/size}), as in
    ``grouped_posterior_argmax``). Other segments: ``grouped_posterior_argmax`` each.
    """
    n_segments = draws.shape[0]
    offset = np.concatenate(([0], np.cumsum(draws)))
    winner = np.empty(int(offset[-1]), np.int32)
    present = np.bincount(cell_segment, minlength=n_segments)
    cell_first = np.concatenate(([0], np.cumsum(present)))
    unsent = n_creatives - present
    fast = (draws > 0) & (unsent > 2 * UNSENT_MARGIN)
    for s in np.flatnonzero((draws > 0) & ~fast).tolist():
        cells = slice(int(cell_first[s]), int(cell_first[s + 1]))
        winner[offset[s] : offset[s + 1]] = grouped_posterior_argmax(
            rng,
            n_creatives,
            cell_creative[cells],
            cell_alpha[cells],
            cell_beta[cells],
            int(draws[s]),
        )
    segments = np.flatnonzero(fast)
    if not segments.shape[0]:
        return winner
    fast_draws = draws[segments]
    fast_first = np.zeros(n_segments, np.int64)  # first row of each fast segment among the fast rows
    fast_first[segments] = np.concatenate(([0], np.cumsum(fast_draws)[:-1]))
    row_segment = np.repeat(segments, fast_draws)
    rows = row_segment.shape[0]
    threshold = np.zeros(n_segments)
    threshold[segments] = 1.0 - UNSENT_MARGIN / unsent[segments]
    # the never-sent creatives: their largest value and which of them drew it
    m = unsent[row_segment].astype(np.float64)
    top = rng.random(rows) ** (1.0 / m)
    nth = np.minimum((rng.random(rows) * m).astype(np.int64), unsent[row_segment] - 1)
    choice = unsent_creative(n_creatives, cell_segment, cell_creative, row_segment, nth)
    # the other creatives, grouped by (segment, posterior); values above the segment's threshold
    cre, start, size, g_seg, g_a, g_b = posterior_runs(cell_segment, cell_creative, cell_alpha, cell_beta, fast)
    above = special.betaincc(g_a, g_b, threshold[g_seg])
    group, position = successes_on_lines(rng, above, size * draws[g_seg])
    row = fast_first[g_seg[group]] + position // size[group]
    creative = cre[start[group] + position % size[group]]
    value = inverse_survival(g_a[group], g_b[group], rng.random(row.shape[0]) * above[group])
    largest = np.full(rows, -np.inf)
    sent_winner = np.full(rows, np.iinfo(np.int32).max, np.int64)
    fold_row_maxima(row, value, creative, largest, sent_winner)
    # rows where every value is below the threshold: each group's largest value below it
    lost = np.flatnonzero((top <= threshold[row_segment]) & ~np.isfinite(largest))
    if lost.shape[0]:
        group_first = np.searchsorted(g_seg, np.arange(n_segments + 1))
        count = (group_first[1:] - group_first[:-1])[row_segment[lost]]
        lost_row = np.repeat(lost, count)
        lost_group = np.repeat(group_first[row_segment[lost]] - np.cumsum(count) + count, count) + np.arange(
            lost_row.shape[0]
        )
        below = special.betainc(g_a[lost_group], g_b[lost_group], threshold[g_seg[lost_group]])
        cdf = rng.random(lost_row.shape[0]) ** (1.0 / size[lost_group])
        lost_value = special.betaincinv(g_a[lost_group], g_b[lost_group], cdf * below)
        member = np.minimum(
            (rng.random(lost_row.shape[0]) * size[lost_group]).astype(np.int64),
            size[lost_group] - 1,
        )
        fold_row_maxima(lost_row, lost_value, cre[start[lost_group] + member], largest, sent_winner)
    fast_winner = np.where(largest > top, sent_winner, choice)
    fast_rows = np.repeat(offset[segments] - fast_first[segments], fast_draws) + np.arange(rows)
    winner[fast_rows] = fast_winner
    return winner
