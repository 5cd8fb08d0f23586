"""A hashed n-gram linear classifier written for throughput.

Features (the "hashing trick", Weinberger et al. 2009): word unigrams and bigrams and character n-grams
(default 3 to 5 characters, over the normalised text, spaces included so word edges are marked) are hashed
into ``2**bits`` buckets. Each message's features weigh ``1/sqrt(count)``. One linear model scores all
buckets at once: a logistic output for relevance and a softmax over the six intents, trained jointly
(cross-entropies plus an L2 penalty) with full-batch L-BFGS — deterministic, no random state.

Hot path, with no Python object per n-gram: the batch is joined once (messages separated by NUL), lowered,
encoded to UTF-32 and viewed as a uint32 array of code points. Non-word characters become spaces and runs of
spaces collapse. A polynomial hash of every substring comes from one prefix sum modulo 2**64 (Karp-Rabin
style: ``h(s, e) = (S[e] - S[s]) * P**(e-1)`` with ``S[i] = sum_{j<i} c_j * P**-j``, P odd so invertible
mod 2**64), so all character n-grams and all words are hashed with a handful of vectorised passes. Each
raw hash is salted by kind and finalised with MurmurHash3's 64-bit finaliser ``fmix64`` (Austin Appleby,
public domain), whose top ``bits`` bits give the bucket. Features are placed in CSR order by a counting
placement (no sort), and scoring is one sparse-dense product.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator
from scipy.optimize import minimize

from masssim.classify.base import (
    INTENT_PRIORITY,
    N_INTENTS,
    ClassifierBase,
    ClassifierParams,
    Labels,
    check_targets,
    join_texts,
)
from masssim.classify.registry import register_classifier

_U64 = np.uint64
_P = 0x100000001B3  # FNV-1 64-bit prime (odd), used as the polynomial base
_P_INV = pow(_P, -1, 2**64)
_MASK64 = 2**64 - 1
_GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, for salts
_BIGRAM_MUL = _U64(0xC2B2AE3D27D4EB4F)  # an odd 64-bit constant (xxHash's PRIME64_2)
_SPACE = 32
_SEP = 0  # message separator code point

# Code-point classes for ASCII: 1 = word character, 2 = a one-character token ("?" "!"), 0 = separator.
_ASCII_CLASS = np.zeros(128, np.uint8)
for _c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
    _ASCII_CLASS[ord(_c)] = 1
_ASCII_CLASS[ord("?")] = 2
_ASCII_CLASS[ord("!")] = 2


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (avalanche), elementwise on a uint64 array (new array)."""
    h = h ^ (h >> _U64(33))
    h *= _U64(0xFF51AFD7ED558CCD)
    h ^= h >> _U64(33)
    h *= _U64(0xC4CEB9FE1A85EC53)
    h ^= h >> _U64(33)
    return h


def _salt(kind: int, seed: int) -> np.uint64:
    return _U64(((kind + 1) * _GOLDEN + seed * 0xD6E8FEB86659FD93) & _MASK64)


def _normalise(texts: Sequence[str]) -> np.ndarray:
    """Code points of the batch: lowered, non-word characters as single spaces, messages NUL-separated.

    Every message appears as `` w1 w2 ... `` (a space on each side) and the array ends with NUL.
    """
    joined = join_texts(texts, " \x00 ")
    if joined.count("\x00") != len(texts) - 1:  # a text contains NUL itself: slow but correct path
        joined = " \x00 ".join(t.replace("\x00", " ") for t in texts)
    buf = (" " + joined + " \x00").lower().encode("utf-32-le")
    cp = np.frombuffer(buf, dtype=np.uint32)
    ascii_ = cp < 128
    cls = np.ones(cp.shape, np.uint8)  # non-ASCII: a word character unless punctuation below
    cls[ascii_] = _ASCII_CLASS[cp[ascii_]]
    cls[(cp >= 0x2000) & (cp <= 0x206F)] = 0  # general punctuation
    cls[(cp >= 0x3000) & (cp <= 0x303F)] = 0  # CJK punctuation
    cls[(cp >= 0x80) & (cp <= 0xBF)] = 0  # Latin-1 punctuation, no-break space
    cls[cp == 0x060C] = 0  # Arabic comma
    norm = np.where(cls > 0, cp, np.uint32(_SPACE))
    norm[cp == 0x061F] = ord("?")  # Arabic question mark
    norm[cp == _SEP] = _SEP
    space = norm == _SPACE
    keep = np.ones(norm.shape, bool)
    keep[1:] = ~(space[1:] & space[:-1])
    return norm[keep]


def hash_features(
    texts: Sequence[str], bits: int = 18, char_min: int = 3, char_max: int = 5, word_ngrams: int = 2, seed: int = 0
) -> sp.csr_matrix:
    """Hashed feature matrix (float32 CSR, [len(texts), 2**bits]) of word and character n-grams."""
    n = len(texts)
    width = 1 << bits
    if n == 0:
        return sp.csr_matrix((0, width), dtype=np.float32)
    norm = _normalise(texts)
    length = norm.shape[0]
    # Exclusive prefix count of separators: the message of position i is zc[i] (NUL at i belongs to msg i).
    is_sep = norm == _SEP
    zc = np.zeros(length + 1, np.int32)
    np.cumsum(is_sep, out=zc[1:])
    # Polynomial prefix hash modulo 2**64 (uint64 arithmetic wraps).
    pw_inv = np.empty(length + 1, _U64)
    pw_inv[0] = 1
    np.cumprod(np.full(length, _P_INV, _U64), out=pw_inv[1:])
    pw = np.empty(length, _U64)
    pw[0] = 1
    np.cumprod(np.full(length - 1, _P, _U64), out=pw[1:])
    pref = np.zeros(length + 1, _U64)
    np.cumsum(norm.astype(_U64) * pw_inv[:length], out=pref[1:])

    def substring_hash(s: np.ndarray, e: np.ndarray) -> np.ndarray:
        return (pref[e] - pref[s]) * pw[e - 1]

    rows: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    kind = 0
    # Character n-grams within a message (no separator inside).
    for k in range(char_min, char_max + 1):
        if k > length:
            break
        # Every start at once by slicing (no gathers), then keep grams without a separator inside.
        ok = zc[k:] == zc[: length + 1 - k]
        h = (pref[k:] - pref[: length + 1 - k])[ok] * pw[k - 1 :][ok]
        rows.append(zc[: length + 1 - k][ok])
        keys.append(fmix64(h ^ _salt(kind, seed)))
        kind += 1
    # Word tokens: runs of word characters, and "?"/"!" alone.
    word = (norm != _SPACE) & ~is_sep & (norm != ord("?")) & (norm != ord("!"))
    punct = (norm == ord("?")) | (norm == ord("!"))
    prev_word = np.zeros(length, bool)
    prev_word[1:] = word[:-1]
    next_word = np.zeros(length, bool)
    next_word[:-1] = word[1:]
    starts = np.flatnonzero((word & ~prev_word) | punct)
    ends = np.flatnonzero((word & ~next_word) | punct) + 1
    tok_hash = substring_hash(starts, ends)
    tok_row = zc[starts]
    if word_ngrams >= 1:
        rows.append(tok_row)
        keys.append(fmix64(tok_hash ^ _salt(kind, seed)))
    kind += 1
    for g in range(2, word_ngrams + 1):
        if tok_hash.size < g:
            break
        same = tok_row[g - 1 :] == tok_row[: tok_row.size - g + 1]
        h = tok_hash[: tok_hash.size - g + 1].copy()
        for j in range(1, g):
            h = h * _BIGRAM_MUL + tok_hash[j : tok_hash.size - g + 1 + j]
        rows.append(tok_row[: tok_row.size - g + 1][same])
        keys.append(fmix64(h[same] ^ _salt(kind, seed)))
        kind += 1
    return _place_csr(rows, keys, n, bits)


def _place_csr(rows: list[np.ndarray], keys: list[np.ndarray], n: int, bits: int) -> sp.csr_matrix:
    """CSR matrix from per-kind (row, key) arrays, each sorted by row, by counting placement (no sort)."""
    counts = [np.bincount(r, minlength=n) for r in rows]
    total = np.sum(counts, axis=0) if counts else np.zeros(n, np.int64)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(total, out=indptr[1:])
    nnz = int(indptr[-1])
    indices = np.empty(nnz, np.int32)
    offset = indptr[:-1].copy()  # where the next kind's features of each row go
    shift = _U64(64 - bits)
    for r, key, c in zip(rows, keys, counts, strict=True):
        # Destination = offset of the row + rank within (row, kind) = arange + (offset - first index of row).
        first = np.zeros(n, np.int64)
        np.cumsum(c[:-1], out=first[1:])
        dest = np.arange(r.size, dtype=np.int64)
        dest += (offset - first)[r]
        indices[dest] = (key >> shift).astype(np.int32)
        offset += c
    weight = (1.0 / np.sqrt(np.maximum(total, 1))).astype(np.float32)
    data = np.repeat(weight, total)
    return sp.csr_matrix((data, indices, indptr), shape=(n, 1 << bits))


class HashedParams(ClassifierParams):
    bits: int = Field(default=18, ge=8, le=24, description="log2 of the number of hash buckets")
    char_min: int = Field(default=3, ge=1, le=10, description="shortest character n-gram")
    char_max: int = Field(default=5, ge=1, le=10, description="longest character n-gram (0 grams if < char_min)")
    word_ngrams: int = Field(default=2, ge=0, le=4, description="longest word n-gram (0: no word features)")
    l2: float = Field(default=1e-5, ge=0.0, description="L2 penalty on the weights")
    max_iter: int = Field(default=150, ge=1, description="L-BFGS iterations")
    seed: int = Field(default=0, ge=0, description="salt of the hash functions")

    @model_validator(mode="after")
    def _some_features(self) -> HashedParams:
        if self.word_ngrams == 0 and self.char_max < self.char_min:
            raise ValueError("no features: set word_ngrams >= 1 or char_max >= char_min")
        return self


@register_classifier("hashed")
class HashedClassifier(ClassifierBase):
    """Hashed word/character n-grams and a linear model: ``fit`` on a labelled corpus, then ``classify``."""

    Params = HashedParams
    params: HashedParams

    def __init__(self, params: HashedParams | None = None) -> None:
        super().__init__(params)
        self.weights: np.ndarray | None = None  # float32 [2**bits, 1 + N_INTENTS], C order
        self.bias: np.ndarray | None = None  # float32 [1 + N_INTENTS]
        self.fit_info: dict[str, float] = {}

    def featurize(self, texts: Sequence[str]) -> sp.csr_matrix:
        p = self.params
        return hash_features(texts, p.bits, p.char_min, p.char_max, p.word_ngrams, p.seed)

    def scores(self, x: sp.csr_matrix) -> np.ndarray:
        """Raw outputs [n, 1 + N_INTENTS]: relevance logit, then intent logits."""
        if self.weights is None or self.bias is None:
            raise RuntimeError("the hashed classifier must be fitted before classify (call fit first)")
        return np.asarray(x @ self.weights) + self.bias

    def classify(self, texts: Sequence[str]) -> Labels:
        x = self.featurize(texts)
        if x.shape[0] == 0:
            if self.weights is None:
                raise RuntimeError("the hashed classifier must be fitted before classify (call fit first)")
            return Labels.empty()
        return self.labels_from_scores(self.scores(x))

    @staticmethod
    def labels_from_scores(z: np.ndarray) -> Labels:
        prob = 1.0 / (1.0 + np.exp(-z[:, 0]))
        logits = z[:, 1:]
        intent = np.argmax(logits, axis=1).astype(np.int8)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        p_int = e / e.sum(axis=1, keepdims=True)
        # Priority: probability of relevance times the expected intent weight.
        priority = prob * (p_int @ INTENT_PRIORITY)
        return Labels(prob.astype(np.float32), intent, priority.astype(np.float32))

    def fit(self, texts: Sequence[str], relevant: np.ndarray, intent: np.ndarray) -> None:
        """Learn the weights on a labelled corpus (deterministic: full-batch L-BFGS from zero)."""
        rel, itn = check_targets(len(texts), relevant, intent)
        t0 = time.perf_counter()
        x = self.featurize(texts).astype(np.float64)
        n, width = x.shape
        if n == 0:
            raise ValueError("cannot fit on an empty corpus")
        k = 1 + N_INTENTS
        y_rel = rel.astype(np.float64)
        y_int = np.zeros((n, N_INTENTS))
        y_int[np.arange(n), itn] = 1.0
        xt = x.T.tocsr()
        l2 = self.params.l2

        def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w = theta[: width * k].reshape(width, k)
            b = theta[width * k :]
            z = np.asarray(x @ w) + b
            zr = z[:, 0]
            # Binary cross-entropy, stably: log(1 + e^z) - y z.
            loss_rel = np.logaddexp(0.0, zr) - y_rel * zr
            zi = z[:, 1:]
            m = zi.max(axis=1, keepdims=True)
            lse = m[:, 0] + np.log(np.exp(zi - m).sum(axis=1))
            loss_int = lse - (zi * y_int).sum(axis=1)
            loss = float((loss_rel + loss_int).mean() + 0.5 * l2 * np.dot(theta[: width * k], theta[: width * k]))
            r = np.empty((n, k))
            r[:, 0] = 1.0 / (1.0 + np.exp(-zr)) - y_rel
            r[:, 1:] = np.exp(zi - lse[:, None]) - y_int
            r /= n
            gw = np.asarray(xt @ r) + l2 * w
            gb = r.sum(axis=0)
            return loss, np.concatenate([gw.ravel(), gb])

        theta0 = np.zeros(width * k + k)
        res = minimize(loss_grad, theta0, jac=True, method="L-BFGS-B", options={"maxiter": self.params.max_iter})
        self.weights = np.ascontiguousarray(res.x[: width * k].reshape(width, k), dtype=np.float32)
        self.bias = res.x[width * k :].astype(np.float32)
        self.fit_info = {"loss": float(res.fun), "iterations": float(res.nit), "seconds": time.perf_counter() - t0}
