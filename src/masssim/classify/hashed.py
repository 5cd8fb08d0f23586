"""A hashed n-gram linear classifier written for throughput.

Features (the "hashing trick", Weinberger et al. 2009): byte n-grams of the normalised UTF-8 text (one kind
by default, 4-grams; ``char_min..char_max`` bytes, which are characters for ASCII text) and word unigrams
and bigrams are hashed into ``2**bits`` buckets. Each message's features weigh ``1/sqrt(count)``. One linear
model scores all buckets at once: a logistic output for relevance and a softmax over the six intents,
trained jointly with full-batch L-BFGS — deterministic, no random state — on the relevance cross-entropy
of every message plus the intent cross-entropy of the relevant ones (the intent of a haystack message is
never acted on, and learning it costs intent accuracy on the needles), plus an L2 penalty.
``fit`` and ``classify`` use the same featuriser.

Hot path (docs/model.md §13 has the profile), in chunks of ``CHUNK`` messages so that temporaries stay in
cache, with no Python object per n-gram:

1. *Encode*: the chunk is joined with a separator (a space, ``max(char_max - 2, 1)`` marker bytes 0x02, a
   space), encoded to UTF-8 and passed through one 256-byte ``bytes.translate`` table: ASCII upper case to
   lower; letters, digits and the marker kept; "?" and "!" to the bytes 4 and 5 (below the space, so they
   count in byte n-grams but are not word bytes); every other ASCII byte (NUL included) to a space. Only if
   the chunk is not pure ASCII, two lookup tables indexed by code point fix the 2- and 3-byte sequences of
   the blocks that need it (Unicode lower case where it keeps the UTF-8 length; general and CJK
   punctuation, Latin-1 symbols and the Arabic comma to spaces; the Arabic question mark to "?"). One
   boolean pass keeps one space of each run. A text that contains the marker byte itself takes a slower
   path that replaces it by a space first.
2. *Hash*: an unaligned ``uint32`` (``uint64`` for grams of 5 to 8 bytes) view of the bytes at every offset
   holds the next four (eight) bytes, little-endian. A ``k``-byte gram's bucket is multiply-shift hashing
   (Dietzfelbinger et al. 1997) of the low ``k`` bytes in one multiplication and one shift:
   ``(window * (A_k << (32 - 8k))) mod 2**32 >> (32 - bits)`` (the shifted multiplier discards the other
   bytes). With the separator's spaces, a gram starting in a message reaches at most into the constant
   separator after it, and the grams starting in the separator before a message see only that message:
   features never depend on the rest of the batch. Words are runs of bytes above the space; a word's key
   is its first eight bytes masked to its length (longer words fold further eight-byte chunks in), a
   bigram's key combines two word keys, and both are multiply-shift hashed in 64 bits. The odd multipliers
   ``A`` derive from ``seed`` through MurmurHash3's 64-bit finaliser ``fmix64`` (Austin Appleby, public
   domain).
3. *Score*: gram buckets are laid out per byte offset and word buckets per token, so each message's
   features are contiguous and a CSR matrix needs no placement: its ``indptr`` is the messages' separator
   offsets (token offsets for words). A word n-gram slot that would cross into the next message points to
   an extra all-zero weight row. Two sparse-dense products with float32 weights padded to 8 columns
   (32-byte rows), then the row scale ``1/sqrt(count)`` (the count follows from the message's byte and
   token counts) and the bias; the labels are computed column by column.

:func:`hash_features` builds the same features as a canonical CSR matrix (for fitting and inspection).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

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

CHUNK = 8192  # messages per chunk in classify: the chunk's temporaries fit in the L2/L3 caches

_U64 = np.uint64
_MASK64 = 2**64 - 1
_GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / golden ratio
_MARK = 2  # the separator between messages is a space, max(char_max - 2, 1) of these bytes, a space
_SPACE = 0x20
_KIND_WORD = 16  # kind numbers of word n-grams start here (character n-gram kinds are their length)
_HIGH = 1 if sys.byteorder == "little" else 0  # index of the high uint32 half of a uint64
_LEN_MASKS = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [_MASK64], dtype=_U64)

# bytes.translate table: ASCII A-Z to lower case; letters, digits and the separator byte kept; "?" and
# "!" to the bytes 4 and 5 (below the space, so that one comparison tells word bytes); other ASCII bytes
# (control characters, NUL, punctuation, symbols) to a space; bytes >= 0x80 unchanged.
_ASCII_TABLE = bytearray(range(256))
for _b in range(128):
    _ch = chr(_b)
    if "A" <= _ch <= "Z":
        _ASCII_TABLE[_b] = _b + 32
    elif _ch == "?":
        _ASCII_TABLE[_b] = 4
    elif _ch == "!":
        _ASCII_TABLE[_b] = 5
    elif not (_ch.isascii() and _ch.isalnum()) and _b != _MARK:
        _ASCII_TABLE[_b] = _SPACE
_ASCII_TRANSLATE = bytes(_ASCII_TABLE)


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (avalanche), elementwise on a uint64 array (new array)."""
    h = h ^ (h >> _U64(33))
    h *= _U64(0xFF51AFD7ED558CCD)
    h ^= h >> _U64(33)
    h *= _U64(0xC4CEB9FE1A85EC53)
    h ^= h >> _U64(33)
    return h


def _multiplier(kind: int, seed: int) -> int:
    """An odd 64-bit multiplier for one feature kind, derived from the seed by fmix64."""
    x = np.array([((kind + 1) * _GOLDEN + seed * 0xD6E8FEB86659FD93) & _MASK64], dtype=_U64)
    return int(fmix64(x)[0]) | 1


# --- Non-ASCII normalisation tables (built on first use) -------------------------------------------------

_TABLES: dict[str, np.ndarray] = {}


def _is_punct(cp: int) -> bool:
    return 0x80 <= cp <= 0xBF or cp == 0x060C or 0x2000 <= cp <= 0x206F or 0x3000 <= cp <= 0x303F


def _replacement(cp: int, size: int) -> bytes | None:
    """UTF-8 bytes (``size`` of them) that replace code point ``cp``, or None to keep it."""
    if cp == 0x061F:  # Arabic question mark
        return bytes([_ASCII_TRANSLATE[ord("?")], _SPACE])
    if _is_punct(cp):
        return b" " * size
    ch = chr(cp)
    low = ch.lower()
    if low != ch and len(low) == 1:
        enc = low.encode("utf-8")
        if len(enc) == size:
            return enc
    return None


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replacement of every 2-byte (uint16: byte 0 low) and 3-byte (uint32) code point, identity if none,
    and which lead bytes have any replacement (bool [256])."""
    if not _TABLES:
        cp2 = np.arange(0x800, dtype=np.uint32)
        t2 = ((0xC0 | (cp2 >> 6)) | ((0x80 | (cp2 & 0x3F)) << 8)).astype(np.uint16)
        cp3 = np.arange(0x10000, dtype=np.uint32)
        t3 = (0xE0 | (cp3 >> 12)) | ((0x80 | ((cp3 >> 6) & 0x3F)) << 8) | ((0x80 | (cp3 & 0x3F)) << 16)
        needs = np.zeros(256, bool)
        for cp in range(0x80, 0x10000):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            size = 2 if cp < 0x800 else 3
            rep = _replacement(cp, size)
            if rep is not None:
                value = int.from_bytes(rep, "little")
                if size == 2:
                    t2[cp] = value
                    needs[0xC0 | (cp >> 6)] = True
                else:
                    t3[cp] = value
                    needs[0xE0 | (cp >> 12)] = True
        _TABLES["t2"], _TABLES["t3"], _TABLES["needs"] = t2, t3, needs
    return _TABLES["t2"], _TABLES["t3"], _TABLES["needs"]


def _fix_non_ascii(a: np.ndarray) -> None:
    """Lower case and punctuation of the 2- and 3-byte UTF-8 sequences of ``a``, in place."""
    t2, t3, needs = _tables()
    lead = np.flatnonzero(a >= 0xC2)  # lead bytes of multi-byte sequences (continuation bytes are < 0xC2)
    first = a[lead]
    keep = needs[first]  # only the leads whose block has any replacement (not Telugu, most of Arabic, ...)
    lead, first = lead[keep], first[keep]
    two = first <= 0xDF
    l2 = lead[two]
    if l2.size:
        cp = ((first[two].astype(np.uint32) & 0x1F) << 6) | (a[l2 + 1] & 0x3F)
        rep = t2[cp]
        a[l2] = rep & 0xFF
        a[l2 + 1] = rep >> 8
    l3 = lead[~two]
    if l3.size:
        cp = ((first[~two].astype(np.uint32) & 0x0F) << 12) | ((a[l3 + 1].astype(np.uint32) & 0x3F) << 6)
        cp |= a[l3 + 2] & 0x3F
        rep = t3[cp]
        a[l3] = rep & 0xFF
        a[l3 + 1] = (rep >> 8) & 0xFF
        a[l3 + 2] = rep >> 16


# --- The featuriser ---------------------------------------------------------------------------------------


@dataclass
class _Chunk:
    """Hashed features of a chunk of messages, laid out for CSR products (int32 indices)."""

    n: int
    char_idx: np.ndarray | None  # [rows_end * n_char_kinds]: bucket per byte offset and kind
    char_ptr: np.ndarray | None  # [n + 1]
    word_idx: np.ndarray | None  # [tokens * word_ngrams]: bucket per token and n-gram length (null row if none)
    word_ptr: np.ndarray | None  # [n + 1]
    count: np.ndarray  # [n] features per message (null slots excluded)


class Featurizer:
    """Hashed byte n-grams and word n-grams of message batches (see the module docstring)."""

    def __init__(
        self, bits: int = 18, char_min: int = 4, char_max: int = 4, word_ngrams: int = 2, seed: int = 0
    ) -> None:
        if not 1 <= bits <= 30:
            raise ValueError("bits must be in 1..30")
        if char_max > 8:
            raise ValueError("character n-grams are at most 8 bytes long")
        self.bits = bits
        self.width = 1 << bits
        self.null = self.width  # index of the all-zero weight row
        self.kinds = list(range(char_min, char_max + 1)) if char_max >= char_min else []
        self.word_ngrams = word_ngrams
        pad = max(char_max - 2, 1) if self.kinds else 1
        self.sep_len = pad
        self.sep = " " + chr(_MARK) * pad + " "
        # Grams of up to 4 bytes are hashed in 32-bit arithmetic (twice the throughput), longer ones in 64.
        self.char_mult = [
            np.uint32((_multiplier(k, seed) << (32 - 8 * k)) & 0xFFFFFFFF)
            if k <= 4
            else _U64((_multiplier(k, seed) << (64 - 8 * k)) & _MASK64)
            for k in self.kinds
        ]
        self.word_mult = [_U64(_multiplier(_KIND_WORD + g, seed)) for g in range(word_ngrams + 1)]
        self.fold_mult = _U64(_multiplier(99, seed))  # folds eight-byte chunks of long words
        self.gram_mult = _U64(_multiplier(98, seed))  # combines word keys into an n-gram key
        self.shift32 = np.uint32(32 - bits)

    # -- normalisation ---------------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Normalised bytes of the batch (8 zero bytes of padding at the end) and the n + 1 separator offsets.

        Message i occupies ``[starts[i], starts[i + 1])``, its leading separator included.
        """
        n = len(texts)
        sep = self.sep
        if isinstance(texts, str | bytes):
            join_texts(texts, sep)  # raises the clear TypeError
        try:
            joined = sep.join(["", *texts, ""])  # separators around every message, no big concatenation
        except TypeError:
            join_texts(texts, sep)  # raises the clear TypeError naming the bad item
            raise
        raw = joined.encode("utf-8", "surrogatepass").translate(_ASCII_TRANSLATE)
        a = np.frombuffer(raw, np.uint8, offset=1)  # from the first marker on (the leading space is no row's)
        if not raw.isascii():
            a = a.copy()
            _fix_non_ascii(a)
        space = a == _SPACE
        keep = np.ones(a.size, bool)
        np.logical_not(space[1:] & space[:-1], out=keep[1:])  # one space of each run
        m = int(np.count_nonzero(keep))
        out = np.zeros(m + 8, np.uint8)
        out[:m] = a[keep]
        marks = np.flatnonzero(out == _MARK)
        if marks.size != (n + 1) * self.sep_len:  # a text contains the marker byte itself: slow but correct path
            return self.encode([t.replace(chr(_MARK), " ") for t in texts])
        return out, marks[:: self.sep_len]

    # -- hashing ---------------------------------------------------------------------------------------

    def _bucket(self, prod: np.ndarray, out: np.ndarray) -> None:
        """Top ``bits`` bits of uint64 products, into an int32 array (via the high 32-bit halves)."""
        high = prod.view(np.uint32)[_HIGH::2]  # the high half of each uint64
        np.right_shift(high, self.shift32, out=out.view(np.uint32))

    def chunk(self, texts: Sequence[str]) -> _Chunk:
        n = len(texts)
        a, starts = self.encode(texts)
        end = int(starts[-1])  # offset of the final separator: no message's gram starts there or after
        windows = np.ndarray((end,), dtype=_U64, buffer=a, offset=0, strides=(1,))
        rowlen = np.diff(starts)
        count = np.zeros(n, np.int64)
        char_idx: np.ndarray | None = None
        char_ptr: np.ndarray | None = None
        kk = len(self.kinds)
        if kk:
            idx2 = np.empty((end, kk), np.int32)
            windows32 = np.ndarray((end,), dtype=np.uint32, buffer=a, offset=0, strides=(1,))
            for j, mult in enumerate(self.char_mult):
                col = idx2[:, j].view(np.uint32)
                if isinstance(mult, np.uint32):  # (4-byte window * multiplier) mod 2**32, top bits
                    np.multiply(windows32, mult, out=col)
                    np.right_shift(col, self.shift32, out=col)
                else:
                    prod = np.multiply(windows, mult)  # unaligned reads: cheaper than a copy
                    self._bucket(prod, idx2[:, j])
            char_idx = idx2.reshape(-1)
            char_ptr = (starts * kk).astype(np.int32)
            count += kk * rowlen
        word_idx = word_ptr = None
        g_max = self.word_ngrams
        if g_max:
            word_idx, word_ptr, tokens = self._words(a, starts, windows)
            for g in range(1, g_max + 1):
                count += np.maximum(tokens - g + 1, 0)
        return _Chunk(n, char_idx, char_ptr, word_idx, word_ptr, count)

    def _words(self, a: np.ndarray, starts: np.ndarray, windows: np.ndarray) -> tuple[np.ndarray, ...]:
        """Word n-gram buckets [tokens, word_ngrams] (flattened), their CSR indptr and the tokens per message.

        A token is a maximal run of word bytes: not a space, a separator byte or "?" "!" (these mark
        questions and exclamations in the byte n-grams only).
        """
        end = int(starts[-1])
        word = a[: end + 1] > _SPACE  # "?" and "!" were translated below the space: not word bytes
        edge = np.flatnonzero(word[1:] != word[:-1]) + 1  # runs of word bytes start and end in turn
        ts = edge[0::2]
        length = edge[1::2] - ts
        key = windows[ts] & _LEN_MASKS[np.minimum(length, 8)]
        more = np.flatnonzero(length > 8)
        offset = 8
        while more.size:  # fold the next eight bytes of the longer words in
            rest = length[more] - offset
            chunk = windows[ts[more] + offset] & _LEN_MASKS[np.minimum(rest, 8)]
            key[more] = key[more] * self.fold_mult + chunk
            more = more[rest > 8]
            offset += 8
        tok_ptr = np.searchsorted(ts, starts)
        tokens = np.diff(tok_ptr)
        t = ts.size
        g_max = self.word_ngrams
        idx = np.empty((t, g_max), np.int32)
        prod = np.empty(t, _U64)
        gram = key
        for g in range(1, g_max + 1):
            col = idx[:, g - 1]
            if g > 1:  # gram[i] = key[i] * M**(g-1) + ... + key[i + g - 1]
                gram = gram[: t - g + 1] * self.gram_mult
                gram += key[g - 1 :]
                np.multiply(gram, self.word_mult[g], out=prod[: t - g + 1])
                self._bucket(prod[: t - g + 1], col[: t - g + 1])
                col[t - g + 1 :] = self.null
                for d in range(1, g):  # the last g - 1 tokens of a message start no g-gram
                    col[(tok_ptr[1:] - d)[tokens >= d]] = self.null
            else:
                np.multiply(gram, self.word_mult[g], out=prod)
                self._bucket(prod, col)
        return idx.reshape(-1), (tok_ptr * g_max).astype(np.int32), tokens

    # -- matrices ----------------------------------------------------------------------------------------

    def matrices(self, c: _Chunk) -> list[sp.csr_matrix]:
        """The chunk's CSR matrices [n, 2**bits + 1] (ones; the last column is the null slot)."""
        shape = (c.n, self.width + 1)
        mats = []
        for idx, ptr in ((c.char_idx, c.char_ptr), (c.word_idx, c.word_ptr)):
            if idx is not None and ptr is not None:
                mats.append(sp.csr_matrix((_ones(idx.size), idx[: ptr[-1]], ptr), shape=shape))
        return mats

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Canonical float32 CSR [n, 2**bits]: each feature occurrence weighs 1/sqrt(count of the message)."""
        n = len(texts)
        if n == 0:
            return sp.csr_matrix((0, self.width), dtype=np.float32)
        parts = []
        for lo in range(0, n, CHUNK):
            c = self.chunk(texts[lo : lo + CHUNK])
            x = sp.csr_matrix((c.n, self.width + 1), dtype=np.float32)
            for m in self.matrices(c):
                x = x + m
            norm = (1.0 / np.sqrt(np.maximum(c.count, 1))).astype(np.float32)
            x = sp.csr_matrix(sp.diags(norm) @ x)
            x = x[:, : self.width]
            x.eliminate_zeros()
            parts.append(x)
        out = sp.vstack(parts, format="csr") if len(parts) > 1 else parts[0]
        return sp.csr_matrix(out, dtype=np.float32)


_ONES: dict[str, np.ndarray] = {"ones": np.ones(0, np.float32)}


def _ones(size: int) -> np.ndarray:
    """A read-only float32 array of ones (shared, grown on demand)."""
    if _ONES["ones"].size < size:
        ones = np.ones(max(size, 2 * _ONES["ones"].size), np.float32)
        ones.flags.writeable = False
        _ONES["ones"] = ones
    return _ONES["ones"][:size]


def hash_features(
    texts: Sequence[str], bits: int = 18, char_min: int = 4, char_max: int = 4, word_ngrams: int = 2, seed: int = 0
) -> sp.csr_matrix:
    """Hashed feature matrix (float32 CSR, [len(texts), 2**bits]) of byte and word n-grams."""
    return Featurizer(bits, char_min, char_max, word_ngrams, seed).features(texts)


class HashedParams(ClassifierParams):
    bits: int = Field(default=18, ge=8, le=24, description="log2 of the number of hash buckets")
    char_min: int = Field(default=4, ge=1, le=8, description="shortest byte n-gram (characters for ASCII)")
    char_max: int = Field(default=4, ge=1, le=8, description="longest byte n-gram (no such grams if < char_min)")
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
    """Hashed byte/word n-grams and a linear model: ``fit`` on a labelled corpus, then ``classify``."""

    Params = HashedParams
    params: HashedParams

    def __init__(self, params: HashedParams | None = None) -> None:
        super().__init__(params)
        p = self.params
        self.featurizer = Featurizer(p.bits, p.char_min, p.char_max, p.word_ngrams, p.seed)
        self._w8: np.ndarray | None = None  # float32 [2**bits + 1, 8]: weights padded to 32-byte rows
        self.bias: np.ndarray | None = None  # float32 [1 + N_INTENTS]
        self.fit_info: dict[str, float] = {}

    @property
    def weights(self) -> np.ndarray | None:
        """float32 [2**bits + 1, 1 + N_INTENTS]; the last row (the null slot's) is zero."""
        return None if self._w8 is None else self._w8[:, : 1 + N_INTENTS]

    @weights.setter
    def weights(self, value: np.ndarray | None) -> None:
        if value is None:
            self._w8 = None
            return
        value = np.asarray(value, np.float32)
        w8 = np.zeros((value.shape[0], 8), np.float32)
        w8[:, : value.shape[1]] = value
        self._w8 = w8

    def featurize(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self.featurizer.features(texts)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Raw outputs [n, 8] (float32): relevance logit, the intent logits, then a zero column."""
        w, b = self._w8, self.bias
        if w is None or b is None:
            raise RuntimeError("the hashed classifier must be fitted before classify (call fit first)")
        if isinstance(texts, str | bytes):
            join_texts(texts, "")  # raises the clear TypeError
        n = len(texts)
        z = np.empty((n, w.shape[1]), np.float32)
        b8 = np.zeros(w.shape[1], np.float32)
        b8[: b.size] = b
        for lo in range(0, n, CHUNK):
            c = self.featurizer.chunk(texts[lo : lo + CHUNK])
            part = z[lo : lo + c.n]
            mats = self.featurizer.matrices(c)
            part[:] = mats[0] @ w
            for m in mats[1:]:
                part += m @ w
            part *= (1.0 / np.sqrt(np.maximum(c.count, 1))).astype(np.float32)[:, None]
            part += b8
        return z

    def classify(self, texts: Sequence[str]) -> Labels:
        z = self.scores(texts)
        if z.shape[0] == 0:
            return Labels.empty()
        return self.labels_from_scores(z)

    @staticmethod
    def labels_from_scores(z: np.ndarray) -> Labels:
        """Labels from raw outputs [n, >= 1 + N_INTENTS] (column-wise: one pass per output, no per-row work)."""
        zt = np.ascontiguousarray(z[:, : 1 + N_INTENTS].T, dtype=np.float32)  # [1 + N_INTENTS, n]
        prob = np.exp(-zt[0])
        prob += 1.0
        np.reciprocal(prob, out=prob)
        logits = zt[1:]
        top = logits[0].copy()
        intent = np.zeros(zt.shape[1], np.int8)
        for j in range(1, N_INTENTS):  # argmax, the first maximum winning ties
            better = logits[j] > top
            np.copyto(intent, np.int8(j), where=better)
            np.maximum(top, logits[j], out=top)
        e = np.exp(logits - top)
        # Priority: probability of relevance times the expected intent weight.
        priority = prob * ((INTENT_PRIORITY @ e) / e.sum(axis=0))
        return Labels(prob, intent, priority.astype(np.float32))

    def fit(self, texts: Sequence[str], relevant: np.ndarray, intent: np.ndarray) -> None:
        """Learn the weights on a labelled corpus (deterministic: full-batch L-BFGS from zero)."""
        rel, itn = check_targets(len(texts), relevant, intent)
        t0 = time.perf_counter()
        x_all = self.featurize(texts).astype(np.float64)
        n, full_width = x_all.shape
        if n == 0:
            raise ValueError("cannot fit on an empty corpus")
        # Only buckets that occur in the corpus are optimised: an unused bucket's gradient is its L2 term
        # alone, so its optimum (and every L-BFGS iterate from zero) is exactly 0. With 2**18 buckets and a
        # few thousand messages this makes the problem tens of times smaller, with the same solution.
        used = np.unique(x_all.indices)
        x = x_all[:, used].tocsr()
        width = used.shape[0]
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
            loss_int = (lse - (zi * y_int).sum(axis=1)) * y_rel  # intent: relevant messages only
            loss = float((loss_rel + loss_int).mean() + 0.5 * l2 * np.dot(theta[: width * k], theta[: width * k]))
            r = np.empty((n, k))
            r[:, 0] = 1.0 / (1.0 + np.exp(-zr)) - y_rel
            r[:, 1:] = (np.exp(zi - lse[:, None]) - y_int) * y_rel[:, None]
            r /= n
            gw = np.asarray(xt @ r) + l2 * w
            gb = r.sum(axis=0)
            return loss, np.concatenate([gw.ravel(), gb])

        theta0 = np.zeros(width * k + k)
        res = minimize(loss_grad, theta0, jac=True, method="L-BFGS-B", options={"maxiter": self.params.max_iter})
        weights = np.zeros((full_width + 1, k), np.float32)  # the extra last row is the null slot's (always 0)
        weights[used] = res.x[: width * k].reshape(width, k)
        self.weights = weights
        self.bias = res.x[width * k :].astype(np.float32)
        self.fit_info = {"loss": float(res.fun), "iterations": float(res.nit), "seconds": time.perf_counter() - t0}
