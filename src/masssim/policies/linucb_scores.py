"""linucb's choice when customers have continuous CRM scores (docs/model.md §6.4, "Continuous CRM scores").

With categorical observables only, customers share a few thousand contexts and ``LinUCBPolicy.best_creatives``
scores each distinct context once. CRM scores make every customer's context distinct, but only in the m score
columns ``S``: a customer's context is ``x_i = x_u + P s_i``, where the *unit* ``u`` is the customer's
(profile, history) and ``x_u`` its context with the score columns zero, and ``s_i`` the customer's m scores.
So, for creative k with ``θ_k`` and ``W_k = A_k⁻¹``,

    θ_k·x_i          = a_uk + θ_kS·s_i                         a_uk = θ_k·x_u
    x_iᵀ W_k x_i     = c_uk + 2 v_uk·s_i + s_iᵀ W_kSS s_i       c_uk = x_uᵀ W_k x_u,  v_uk = (W_k x_u)_S

the same score (the terms are regrouped, exact up to float rounding) at O(m²) per (customer, creative) once
O(D²) is paid per (unit, creative). Which creatives can win is found in three steps, each of which discards
only creatives that cannot be a customer's argmax:

1. *Coarse groups* of units (runs of one profile, at most ``UNITS_PER_GROUP`` units and ``CUSTOMERS_PER_GROUP``
   customers unless one unit is larger): a box over the group's contexts bounds every creative's score,
   ``UB_k = θ_k·c + |θ_k|·r + α·ρ_k·max|x|`` (§6.4), one [groups, K] pass; the ``SEED_CREATIVES`` creatives
   with the highest bounds are scored exactly on every customer of the group and the lowest over the group of
   a customer's best seed score is a threshold every customer's winner reaches. Creatives with ``UB_k`` at or
   above it are the group's candidates. Each unit then keeps those whose same bound over the unit's box reaches
   the lowest best seed score of the unit's customers, and computes their coefficients (by matrix products for
   every creative when most pairs are candidates, as at the first scored wave, when creatives are close).
2. *Cells*: inside a unit, customers are in Morton (Z-) order of their scores, so a run of them lies in a small
   box of score space (centre ``c``, half-width ``r``). Over the box each candidate's score lies in
   ``[LB, UB]`` from the coefficients (linear terms by ``|·|·r``, ``s ᵀ W_SS s`` by Gershgorin bounds of
   ``W_SS``'s eigenvalues times the extreme ``|s|²``); every customer's best score is at least the largest
   ``LB``, so a candidate whose ``UB`` is below it cannot win there. A cell keeps its survivors and is halved
   until it has at most ``LEAF_CUSTOMERS`` customers or one survivor.
3. *Leaves*: each customer's score of each survivor, exactly; the argmax, ties to the lowest index.

Bounds and thresholds carry a relative slack of ``ROUNDING_SLACK`` (far above float64 rounding; near a square
root's zero, ``α·sqrt(slack)``), so rounding never discards the winner. The updates ``A_k += Σ x xᵀ`` use the
same split (``pair_sums``: messages per (creative, unit), their summed scores and summed products of scores).
The loops are compiled with numba; without numba ``available()`` is False and the policy scores customer by
customer as before (the same choices up to rounding).
"""

from __future__ import annotations

import numpy as np

from masssim.policies.compiled import NUMBA, compiled

SEED_CREATIVES = 4  # creatives scored exactly on every customer of a coarse group to set its threshold
UNITS_PER_GROUP = 512  # at most this many units (profile, history) share a coarse bound box
CUSTOMERS_PER_GROUP = 32768  # ... and at most this many customers, unless a single unit is larger
LEAF_CUSTOMERS = 64  # a cell this small is scored exactly, customer by customer
ROUNDING_SLACK = 1e-9  # relative slack on every bound: far above float64 rounding, far below score gaps
MORTON_BITS = 16  # bits of the Morton code of a customer's scores (split evenly over the m scores)
MAX_DEPTH = 64  # cells are halved: 64 levels cover any population
DENSE_SHARE = 0.25  # when this share of (unit, creative) pairs are candidates, coefficients by matrix products
DENSE_UNITS = 32  # units whose coefficients for every creative are held at once ([units, K, m + 2] floats)
NO_DENSE = (np.zeros((0, 0)), np.zeros((0, 0)), np.zeros((0, 0, 0)))


def available() -> bool:
    """True when the compiled scorer can run (numba importable and not switched off)."""
    return NUMBA is not None


# --------------------------------------------------------------------------------------------------------------
# Static order: Morton code of the scores
# --------------------------------------------------------------------------------------------------------------


def _interleave(binned, bits):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    n, m = binned.shape
    code = np.zeros(n, np.int64)
    for i in range(n):
        c = 0
        for b in range(bits - 1, -1, -1):
            for j in range(m):
                c = (c << 1) | ((binned[i, j] >> b) & 1)
        code[i] = c
    return code


_interleave_compiled = compiled(_interleave)


def morton_codes(scores: np.ndarray) -> np.ndarray:
    """int64 Z-order code of each row of ``scores`` [n, m] (standard normal CRM scores): each score is cut into
    ``2^b`` equal bins over [-4.5, 4.5] (b = MORTON_BITS // m, at least 1) and the bins' bits are interleaved,
    so customers close in the code are close in score space."""
    m = scores.shape[1]
    bits = max(1, MORTON_BITS // max(m, 1))
    levels = 1 << bits
    binned = np.clip(((scores + 4.5) * (levels / 9.0)).astype(np.int64), 0, levels - 1)
    return _interleave_compiled(binned, bits)


def _counting_order(code, n_codes):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Stable counting sort: the order that sorts ``code`` (0 <= code < n_codes), rows of a code in order."""
    counts = np.zeros(n_codes + 1, np.int64)
    for i in range(code.shape[0]):
        counts[code[i] + 1] += 1
    for c in range(n_codes):
        counts[c + 1] += counts[c]
    order = np.empty(code.shape[0], np.int64)
    for i in range(code.shape[0]):
        at = counts[code[i]]
        counts[code[i]] = at + 1
        order[at] = i
    return order


_counting_order_compiled = compiled(_counting_order)


def _planned_codes(score_order, planned, history, profile_of):  # type: ignore[no-untyped-def]  # pragma: no cover
    """The planned customers in Morton order and a dense code of each one's (profile, sends, opens, clicks):
    mixed radix with this wave's maxima, so that codes sort as the (profile, history) keys do."""
    n = 0
    top_profile = top_sends = top_opens = top_clicks = 0
    for t in range(score_order.shape[0]):
        i = score_order[t]
        if planned[i]:
            n += 1
            key = history[i]
            top_profile = max(top_profile, profile_of[i])
            top_sends = max(top_sends, (key >> 32) & 0xFFFF)
            top_opens = max(top_opens, (key >> 16) & 0xFFFF)
            top_clicks = max(top_clicks, key & 0xFFFF)
    customers = np.empty(n, np.int64)
    code = np.empty(n, np.int64)
    at = 0
    for t in range(score_order.shape[0]):
        i = score_order[t]
        if planned[i]:
            key = history[i]
            c = profile_of[i] * (top_sends + 1) + ((key >> 32) & 0xFFFF)
            c = c * (top_opens + 1) + ((key >> 16) & 0xFFFF)
            customers[at] = i
            code[at] = c * (top_clicks + 1) + (key & 0xFFFF)
            at += 1
    return customers, code


_planned_codes_compiled = compiled(_planned_codes)


def planned_by_unit(
    score_order: np.ndarray, planned: np.ndarray, history: np.ndarray, profile_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(planned customers sorted by (profile, history) and, within a unit, in Morton order of their scores;
    int64 start of each unit, the last entry their number). ``history`` and ``profile_of`` are per customer."""
    customers, code = _planned_codes_compiled(score_order, planned, history, profile_of)
    by_unit = stable_order(code)
    customers, code = customers[by_unit], code[by_unit]
    new_unit = np.ones(code.shape[0], bool)
    new_unit[1:] = code[1:] != code[:-1]
    return customers, np.append(np.flatnonzero(new_unit), code.shape[0]).astype(np.int64)


def stable_order(code: np.ndarray) -> np.ndarray:
    """The stable order that sorts int64 ``code`` (>= 0): a counting sort when the codes are dense enough."""
    n_codes = int(code.max()) + 1 if code.shape[0] else 1
    if NUMBA is not None and n_codes <= 4 * code.shape[0] + (1 << 16):
        return _counting_order_compiled(code, n_codes)
    return np.argsort(code, kind="stable")


def _run_sums(creative, code, scores):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Runs of equal (creative, code) in messages already sorted by them: per run its creative, code, first
    row, messages, summed scores [P, m] and summed products of scores [P, m, m] (in row order)."""
    n, m = creative.shape[0], scores.shape[1]
    pairs = 0
    for t in range(n):
        if t == 0 or creative[t] != creative[t - 1] or code[t] != code[t - 1]:
            pairs += 1
    pair_creative = np.empty(pairs, np.int64)
    pair_code = np.empty(pairs, np.int64)
    pair_row = np.empty(pairs, np.int64)
    count = np.zeros(pairs)
    summed = np.zeros((pairs, m))
    products = np.zeros((pairs, m, m))
    p = -1
    for t in range(n):
        if t == 0 or creative[t] != creative[t - 1] or code[t] != code[t - 1]:
            p += 1
            pair_creative[p] = creative[t]
            pair_code[p] = code[t]
            pair_row[p] = t
        count[p] += 1.0
        for a in range(m):
            summed[p, a] += scores[t, a]
            for b in range(m):
                products[p, a, b] += scores[t, a] * scores[t, b]
    return pair_creative, pair_code, pair_row, count, summed, products


_run_sums_compiled = compiled(_run_sums)


def _pair_sums_sorted(creative, code, n_codes, n_creatives, customer, held):  # type: ignore[no-untyped-def]
    """Messages grouped by (creative, unit code) by two stable counting sorts (code, then creative), the
    messages' arrays gathered in that order so that the sums run through memory in order."""
    order = stable_order(code)
    order = order[stable_order(creative[order])]
    scores = np.take(held, customer[order], axis=0).astype(np.float64)
    pair_creative, pair_code, pair_row, count, summed, products = _run_sums_compiled(
        creative[order], code[order], scores
    )
    return pair_creative, pair_code, order[pair_row], count, summed, products


def _pair_sums_dense(creative, code, n_codes, present, customer, held):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``_pair_sums_sorted`` with a table [creatives present x codes] instead of sorting: for batches whose present
    creatives are few (after the first scored wave). ``present[c]`` is the rank of creative c among those
    present. Sums are taken in message order, as by the stable sorts, so the results are the same."""
    n, m = creative.shape[0], held.shape[1]
    n_present = 0
    for c in range(present.shape[0]):
        if present[c] >= 0:
            n_present += 1
    cells = n_present * n_codes
    first = np.full(cells, -1, np.int64)
    count = np.zeros(cells)
    summed = np.zeros((cells, m))
    products = np.zeros((cells, m, m))
    for i in range(n):
        cell = present[creative[i]] * n_codes + code[i]
        if first[cell] < 0:
            first[cell] = i
        count[cell] += 1.0
        row = customer[i]
        for a in range(m):
            x = np.float64(held[row, a])
            summed[cell, a] += x
            for b in range(m):
                products[cell, a, b] += x * np.float64(held[row, b])
    pairs = 0
    for cell in range(cells):
        if first[cell] >= 0:
            pairs += 1
    pair_creative = np.empty(pairs, np.int64)
    pair_code = np.empty(pairs, np.int64)
    pair_message = np.empty(pairs, np.int64)
    out_count = np.empty(pairs)
    out_summed = np.empty((pairs, m))
    out_products = np.empty((pairs, m, m))
    p = 0
    for cell in range(cells):
        if first[cell] >= 0:
            pair_creative[p] = creative[first[cell]]
            pair_code[p] = cell % n_codes
            pair_message[p] = first[cell]
            out_count[p] = count[cell]
            out_summed[p] = summed[cell]
            out_products[p] = products[cell]
            p += 1
    return pair_creative, pair_code, pair_message, out_count, out_summed, out_products


_pair_sums_dense_compiled = compiled(_pair_sums_dense)
DENSE_PAIR_CELLS = 1 << 18  # at most this many (creative present, unit code) cells: a table, not a sort


def pair_sums(
    creative: np.ndarray, code: np.ndarray, n_creatives: int, customer: np.ndarray, held: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Delivered messages grouped by (creative, unit code), sorted: (creative, code, one message, messages,
    Σ s [P, m], Σ s sᵀ [P, m, m]) per pair, ``s`` the message's customer's scores (``held[customer]``, float32
    [N, m], summed in float64). ``code`` >= 0 is a dense code of the message's unit."""
    n_codes = int(code.max()) + 1 if code.shape[0] else 1
    creative, customer = creative.astype(np.int64), customer.astype(np.int64)
    seen = np.bincount(creative, minlength=n_creatives) > 0
    n_present = int(seen.sum())
    if n_present * n_codes <= DENSE_PAIR_CELLS:
        present = np.where(seen, np.cumsum(seen) - 1, -1).astype(np.int64)
        return _pair_sums_dense_compiled(creative, code, n_codes, present, customer, held)
    return _pair_sums_sorted(creative, code, n_codes, n_creatives, customer, held)


# --------------------------------------------------------------------------------------------------------------
# The compiled scorer
# --------------------------------------------------------------------------------------------------------------


def _choose(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    group_units,  # int64 [G + 1]: first unit of each coarse group
    unit_rows,  # int64 [U + 1]: first (sorted) customer of each unit
    unit_x,  # float64 [U, D]: unit contexts, score columns zero
    scores,  # float64 [n, m]: customers' scores, sorted
    cand_ptr,  # int64 [G + 1]: candidates of group g are cand[cand_ptr[g]:cand_ptr[g + 1]], ascending
    cand,  # int64 [...]
    theta,  # float64 [K, D]
    inverse,  # float64 [K, D, D]: A_k⁻¹ (symmetric, as the packed widths evaluate it)
    radius,  # float64 [K]: ρ_k, xᵀA_k⁻¹x <= ρ_k²|x|²
    unit_floor,  # float64 [U]: a score every customer's winner in the unit reaches (-inf: none known)
    score_cols,  # int64 [m]: the score columns S of a context
    dense_a,  # float64 [U, K] θ_k·x_u for every unit and creative, or [0, 0]: computed here, per candidate
    dense_c,  # float64 [U, K] x_uᵀW_k x_u (with dense_a)
    dense_v,  # float64 [U, K, m] (W_k x_u)_S (with dense_a)
    alpha,
    slack,
    leaf,
    out_best,  # int32 [n]
    out_score,  # float64 [n]
):
    m = score_cols.shape[0]
    d = unit_x.shape[1]
    for g in range(group_units.shape[0] - 1):
        c_lo, c_hi = cand_ptr[g], cand_ptr[g + 1]
        nc = c_hi - c_lo
        if nc == 0:
            continue
        ks = cand[c_lo:c_hi]
        # per candidate: θ_S, W_SS and Gershgorin bounds of W_SS's eigenvalues (unit-independent)
        b_s = np.empty((nc, m))
        w_ss = np.empty((nc, m, m))
        g_hi = np.empty(nc)
        g_lo = np.empty(nc)
        for j in range(nc):
            k = ks[j]
            top, bottom = -np.inf, np.inf
            for p in range(m):
                b_s[j, p] = theta[k, score_cols[p]]
                off = 0.0
                for q in range(m):
                    w_ss[j, p, q] = inverse[k, score_cols[p], score_cols[q]]
                    if q != p:
                        off += abs(w_ss[j, p, q])
                top = max(top, w_ss[j, p, p] + off)
                bottom = min(bottom, w_ss[j, p, p] - off)
            g_hi[j] = top
            g_lo[j] = bottom
        a = np.empty(nc)
        c0 = np.empty(nc)
        v = np.empty((nc, m))
        scale = np.empty(nc)  # magnitude of a score's terms, for the rounding slack
        wx = np.empty(d)
        keep = np.empty((MAX_DEPTH + 1, nc), np.int64)
        kept = np.empty(MAX_DEPTH + 1, np.int64)
        stack_lo = np.empty(MAX_DEPTH * 2 + 2, np.int64)
        stack_hi = np.empty(MAX_DEPTH * 2 + 2, np.int64)
        stack_depth = np.empty(MAX_DEPTH * 2 + 2, np.int64)
        lo_box = np.empty(m)
        hi_box = np.empty(m)
        ub = np.empty(nc)
        unit_lo = np.empty(m)
        unit_hi = np.empty(m)
        for u in range(group_units[g], group_units[g + 1]):
            xu = unit_x[u]
            # the unit's box in score space and its longest context, for a cheap first bound (D-long products)
            s2_max = 0.0
            for p in range(m):
                unit_lo[p] = np.inf
                unit_hi[p] = -np.inf
            for i in range(unit_rows[u], unit_rows[u + 1]):
                s2 = 0.0
                for p in range(m):
                    x = scores[i, p]
                    unit_lo[p] = min(unit_lo[p], x)
                    unit_hi[p] = max(unit_hi[p], x)
                    s2 += x * x
                s2_max = max(s2_max, s2)
            x2 = s2_max
            for p in range(d):
                x2 += xu[p] * xu[p]
            longest = np.sqrt(x2)
            count = 0
            for j in range(nc):
                k = ks[j]
                lin = 0.0
                size = 0.0
                for p in range(d):
                    lin += theta[k, p] * xu[p]
                    size += abs(theta[k, p] * xu[p])
                bound = lin
                for p in range(m):
                    centre = 0.5 * (unit_lo[p] + unit_hi[p])
                    half = 0.5 * (unit_hi[p] - unit_lo[p])
                    t = theta[k, score_cols[p]]
                    bound += t * centre + abs(t) * half
                    size += abs(t) * (abs(centre) + half)
                width = alpha * radius[k] * longest
                bound += width + slack * (1.0 + size + width)
                if bound >= unit_floor[u]:
                    keep[0, count] = j
                    count += 1
            dense = dense_a.shape[0] > 0
            for t in range(count):  # coefficients of the creatives that pass
                j = keep[0, t]
                k = ks[j]
                if dense:
                    a[j] = dense_a[u, k]
                    c0[j] = dense_c[u, k]
                    mag = abs(c0[j])
                    for p in range(m):
                        v[j, p] = dense_v[u, k, p]
                        mag += abs(v[j, p])
                    scale[j] = abs(a[j]) + mag
                    continue
                lin = 0.0
                for p in range(d):
                    lin += theta[k, p] * xu[p]
                quad = 0.0
                for p in range(d):
                    acc = 0.0
                    for q in range(d):
                        acc += inverse[k, p, q] * xu[q]
                    wx[p] = acc
                    quad += xu[p] * acc
                a[j] = lin
                c0[j] = quad
                mag = abs(quad)
                for p in range(m):
                    v[j, p] = wx[score_cols[p]]
                    mag += abs(v[j, p])
                scale[j] = abs(lin) + mag
            kept[0] = count  # at least the winner's creative passes: its bound reaches the floor
            top = 0
            stack_lo[0] = unit_rows[u]
            stack_hi[0] = unit_rows[u + 1]
            stack_depth[0] = 0
            while top >= 0:
                lo, hi, depth = stack_lo[top], stack_hi[top], stack_depth[top]
                top -= 1
                count = kept[depth]
                if count > 1:
                    # the cell's box in score space and its extreme squared norms
                    s2_lo, s2_hi = np.inf, 0.0
                    for p in range(m):
                        lo_box[p] = np.inf
                        hi_box[p] = -np.inf
                    for i in range(lo, hi):
                        s2 = 0.0
                        for p in range(m):
                            x = scores[i, p]
                            lo_box[p] = min(lo_box[p], x)
                            hi_box[p] = max(hi_box[p], x)
                            s2 += x * x
                        s2_lo = min(s2_lo, s2)
                        s2_hi = max(s2_hi, s2)
                    best_lb = -np.inf
                    for t in range(count):
                        j = keep[depth, t]
                        lin_c, lin_r, q_c, q_r, size = a[j], 0.0, c0[j], 0.0, scale[j]
                        for p in range(m):
                            centre = 0.5 * (lo_box[p] + hi_box[p])
                            half = 0.5 * (hi_box[p] - lo_box[p])
                            lin_c += b_s[j, p] * centre
                            lin_r += abs(b_s[j, p]) * half
                            q_c += 2.0 * v[j, p] * centre
                            q_r += 2.0 * abs(v[j, p]) * half
                            size += (abs(b_s[j, p]) + abs(v[j, p])) * (abs(centre) + half)
                        q_hi = q_c + q_r + (g_hi[j] * s2_hi if g_hi[j] >= 0 else g_hi[j] * s2_lo)
                        q_lo = q_c - q_r + (g_lo[j] * s2_lo if g_lo[j] >= 0 else g_lo[j] * s2_hi)
                        size += max(abs(g_hi[j]), abs(g_lo[j])) * s2_hi
                        # rounding: of the linear terms, relative; of a square root near 0, sqrt(δq)
                        margin = slack * (1.0 + size) + alpha * np.sqrt(slack * (1.0 + size))
                        ub[t] = lin_c + lin_r + alpha * np.sqrt(max(q_hi, 0.0)) + margin
                        lb = lin_c - lin_r + alpha * np.sqrt(max(q_lo, 0.0)) - margin
                        best_lb = max(best_lb, lb)
                    survivors = 0
                    for t in range(count):
                        if ub[t] >= best_lb:
                            keep[depth + 1, survivors] = keep[depth, t]
                            survivors += 1
                    kept[depth + 1] = survivors
                    depth += 1
                    count = survivors
                if count > 1 and hi - lo > leaf and depth < MAX_DEPTH:
                    mid = (lo + hi) // 2  # the two halves of a Morton-ordered run: two smaller boxes
                    top += 1
                    stack_lo[top], stack_hi[top], stack_depth[top] = mid, hi, depth
                    top += 1
                    stack_lo[top], stack_hi[top], stack_depth[top] = lo, mid, depth
                    continue
                for i in range(lo, hi):  # exact scores of the survivors; ties: lowest index (ascending, strict >)
                    best_k, best_score = -1, -np.inf
                    for t in range(count):
                        j = keep[depth, t]
                        k = ks[j]
                        lin = a[j]
                        quad = c0[j]
                        for p in range(m):
                            x = scores[i, p]
                            lin += b_s[j, p] * x
                            row = 0.0
                            for q in range(m):
                                row += w_ss[j, p, q] * scores[i, q]
                            quad += x * (2.0 * v[j, p] + row)
                        value = lin + alpha * np.sqrt(max(quad, 0.0))
                        if value > best_score or best_k < 0:
                            best_k, best_score = k, value
                    out_best[i] = best_k
                    out_score[i] = best_score


_choose_compiled = compiled(_choose)


# --------------------------------------------------------------------------------------------------------------
# One wave's choice
# --------------------------------------------------------------------------------------------------------------


def coarse_groups(unit_profile: np.ndarray, unit_rows: np.ndarray) -> np.ndarray:
    """int64 first unit of each coarse group (last entry: the number of units): runs of one profile, cut
    when a group would exceed UNITS_PER_GROUP units or CUSTOMERS_PER_GROUP customers."""
    n_units = unit_profile.shape[0]
    starts = [0]
    units, customers = 0, 0
    sizes = np.diff(unit_rows)
    profile = unit_profile.tolist()
    for u, size in enumerate(sizes.tolist()):
        if units and (
            profile[u] != profile[u - 1] or units >= UNITS_PER_GROUP or customers + size > CUSTOMERS_PER_GROUP
        ):
            starts.append(u)
            units, customers = 0, 0
        units += 1
        customers += size
    starts.append(n_units)
    return np.asarray(starts, np.int64)


def choose_creatives(
    unit_x: np.ndarray,
    unit_rows: np.ndarray,
    unit_profile: np.ndarray,
    scores: np.ndarray,
    score_cols: np.ndarray,
    theta: np.ndarray,
    inverse: np.ndarray,
    widths: np.ndarray,
    radius: np.ndarray,
    eligible: np.ndarray,
    alpha: float,
    chunk_elements: int,
) -> np.ndarray:
    """int32 argmax over creatives of every (sorted) customer's score (ties: lowest index).

    ``unit_x`` [U, D] unit contexts (score columns zero); ``unit_rows`` [U + 1] first customer of each unit in
    ``scores`` [n, m] (a unit's customers in Morton order of their scores); ``score_cols`` the columns S;
    ``theta`` [K, D], ``inverse`` [K, D, D] the model (``widths`` [D(D+1)/2, K] its packed upper triangles,
    off-diagonal entries doubled, as ``LinUCBPolicy.packed``); ``radius`` ρ_k with ``xᵀA_k⁻¹x <= ρ_k²|x|²``;
    ``eligible`` the creatives that may win (one never-delivered creative stands for all of them).
    """
    n, k = scores.shape[0], theta.shape[0]
    groups = coarse_groups(unit_profile, unit_rows)
    n_groups = groups.shape[0] - 1
    first_row = unit_rows[groups]
    # the box of each group's contexts: unit columns from the units, score columns from the customers
    lo = np.minimum.reduceat(unit_x, groups[:-1], axis=0)
    hi = np.maximum.reduceat(unit_x, groups[:-1], axis=0)
    lo[:, score_cols] = np.minimum.reduceat(scores, first_row[:-1], axis=0)
    hi[:, score_cols] = np.maximum.reduceat(scores, first_row[:-1], axis=0)
    unit_norm2 = np.einsum("ij,ij->i", unit_x, unit_x)
    unit_of_row = np.repeat(np.arange(unit_x.shape[0]), np.diff(unit_rows))
    norm2 = unit_norm2[unit_of_row] + np.einsum("ij,ij->i", scores, scores)  # |x_i|² (x_u is 0 on S)
    longest = np.sqrt(np.maximum.reduceat(norm2, first_row[:-1]))
    centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    width_bound = (1.0 + ROUNDING_SLACK) * alpha * radius
    magnitude = np.abs(theta)
    best = np.empty(n, np.int32)
    best_score = np.empty(n)
    n_seeds = min(SEED_CREATIVES, k)
    step = max(1, chunk_elements // k)
    upper, lower = np.triu_indices(theta.shape[1])
    score_inverse = None
    for g0 in range(0, n_groups, step):
        g1 = min(n_groups, g0 + step)
        bound = centre[g0:g1] @ theta.T
        bound += half[g0:g1] @ magnitude.T
        bound += ROUNDING_SLACK * ((np.abs(centre[g0:g1]) + half[g0:g1]) @ magnitude.T)
        bound += longest[g0:g1, None] * width_bound
        bound[:, ~eligible] = -np.inf
        seeds = np.sort(np.argpartition(bound, k - n_seeds, axis=1)[:, k - n_seeds :], axis=1)
        ok = np.take_along_axis(bound, seeds, axis=1) > -np.inf
        seed_ptr = np.concatenate(([0], np.cumsum(ok.sum(axis=1)))).astype(np.int64)
        part_groups = groups[g0 : g1 + 1]
        rows = slice(int(unit_rows[part_groups[0]]), int(unit_rows[part_groups[-1]]))
        part_units = slice(int(part_groups[0]), int(part_groups[-1]))
        local_groups = part_groups - part_groups[0]
        local_rows = unit_rows[part_units.start : part_units.stop + 1] - unit_rows[part_units.start]
        args = (local_rows, unit_x[part_units], scores[rows])
        no_floor = np.full(local_rows.shape[0] - 1, -np.inf)
        _choose_compiled(
            local_groups, *args, seed_ptr, seeds[ok].astype(np.int64), theta, inverse, radius, no_floor,
            score_cols, *NO_DENSE, alpha, ROUNDING_SLACK, 1 << 62, best[rows], best_score[rows],
        )  # fmt: skip
        # every customer's winner scores at least the lowest, over its group (its unit), of the best seed score
        floor = np.minimum.reduceat(best_score[rows], first_row[g0:g1] - first_row[g0])
        floor -= ROUNDING_SLACK * (1.0 + np.abs(floor))
        unit_floor = np.minimum.reduceat(best_score[rows], local_rows[:-1])
        unit_floor -= ROUNDING_SLACK * (1.0 + np.abs(unit_floor))
        group_of, creative = np.nonzero(bound >= floor[:, None])
        cand_ptr = np.searchsorted(group_of, np.arange(g1 - g0 + 1)).astype(np.int64)
        creative = creative.astype(np.int64)
        units_per_group = np.diff(local_groups)
        pairs = int(np.dot(units_per_group, np.diff(cand_ptr)))
        if pairs < DENSE_SHARE * k * units_per_group.sum():
            _choose_compiled(
                local_groups, *args, cand_ptr, creative, theta, inverse, radius, unit_floor, score_cols,
                *NO_DENSE, alpha, ROUNDING_SLACK, LEAF_CUSTOMERS, best[rows], best_score[rows],
            )  # fmt: skip
            continue
        # Most (unit, creative) pairs are candidates (the first scored wave: creatives close together): their
        # coefficients for every creative by matrix products, a few units at a time
        if score_inverse is None:
            score_inverse = np.ascontiguousarray(np.swapaxes(inverse[:, score_cols, :], 0, 1))  # [m, K, D]
        h0 = 0
        while h0 < g1 - g0:
            h1 = h0 + 1
            while h1 < g1 - g0 and local_groups[h1 + 1] - local_groups[h0] <= DENSE_UNITS:
                h1 += 1
            u0, u1 = int(local_groups[h0]), int(local_groups[h1])
            batch_x = args[1][u0:u1]
            dense_v = np.empty((u1 - u0, k, score_cols.shape[0]))
            for b in range(score_cols.shape[0]):
                dense_v[:, :, b] = batch_x @ score_inverse[b].T
            r0, r1 = int(local_rows[u0]), int(local_rows[u1])
            _choose_compiled(
                local_groups[h0 : h1 + 1] - u0, local_rows[u0 : u1 + 1] - r0, batch_x, args[2][r0:r1],
                cand_ptr[h0 : h1 + 1] - cand_ptr[h0], creative[cand_ptr[h0] : cand_ptr[h1]], theta, inverse,
                radius, unit_floor[u0:u1], score_cols, batch_x @ theta.T,
                (batch_x[:, upper] * batch_x[:, lower]) @ widths, dense_v,
                alpha, ROUNDING_SLACK, LEAF_CUSTOMERS, best[rows][r0:r1], best_score[rows][r0:r1],
            )  # fmt: skip
            h0 = h1
    return best
