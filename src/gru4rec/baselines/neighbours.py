"""What the session-kNN baselines (:mod:`~gru4rec.baselines.sknn`,
:mod:`~gru4rec.baselines.vsknn`) share: the session index, the candidate pool and its
sampling, the choice of the k nearest neighbours and the sum of their items (BASELINES.md
§3).

**Session index.** The training sessions are numbered by *recency rank*: by the time of
their last event, latest first; equal end times keep log (session-id) order, so the rank is
a total order and every choice below is deterministic. The index holds session -> its
distinct items (CSR, sessions by rank) and item -> the ranks of its sessions (ascending).

**Pool and sampling.** The pool of a prefix is the union of the sessions of *all* its items.
``sample_size`` M > 0 keeps M sessions of it: 'recent' the M most recent (lowest ranks),
'random' M drawn uniformly with the model's generator; ``sample_size=0`` keeps the whole
pool. The reference sorts the whole pool by end time at every call (equal times in set
order, i.e. arbitrary). Here the M most recent come without that sort: the M lowest ranks
of a union of ascending lists are among the first M of every list, and none lies above
the M-th rank of any list at least M long. So each prefix item contributes at most that
part of its list; grouping the parts by session gives the pool's first M sessions and, for
each, *every* prefix item it contains (|I(n) ∩ P|), because a session among the first M of
the union is among the first M of every list that holds it. 'random' reads whole lists.

**Neighbours.** Of the sampled sessions with similarity > 0, the k most similar (k at most
2**20); equal similarities go to the more recent session (the reference's order among
equals is the order of a set, i.e. arbitrary).

**Speed.** Prefixes are scored in chunks of 32. With the compiled kernels loaded (see
:mod:`~gru4rec.baselines.knn_kernel`; not with ``GRU4REC_NATIVE=0``), C computes, bit-equal
to the numpy path: for 'recent' sampling and a similarity other than 'random', a chunk's
pools, similarities and top-k in one call (a heap merge of the ascending session lists that
stops at the M-th candidate, a quickselect of the k-th best similarity), and always the
neighbours' item grouping and sums. Otherwise numpy, vectorised: grouping is one SIMD ``np.sort`` of
integer keys whose bit fields (prefix | session | pair, or prefix | item | source) make a
plain sort a stable group-by, several times faster than a stable argsort or
``np.unique(return_inverse=True)``; the keys are int32 where the fields fit. Every sum runs
over one prefix's entries in a fixed order, so a prefix's scores never depend on the rest
of the batch (only the random draws do, through the model's generator).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from gru4rec.baselines import knn_kernel
from gru4rec.baselines.base import Baseline, TrainLog, check_state
from gru4rec.baselines.knn_kernel import Neighbours
from gru4rec.baselines.params import Param, choice, integer
from gru4rec.baselines.sparse import SparseRows

if TYPE_CHECKING:  # pragma: no cover
    from gru4rec.kernels.wrappers import Kernels

__all__ = ["KNN_PARAMS", "ItemSums", "Neighbours", "Pool", "SessionIndex", "SessionKNN",
           "flatten", "sample_pool", "top_k"]

_MAX_K = 2 ** 20  # bounds the bit fields of the sort keys
KNN_PARAMS: dict[str, Param] = {
    "k": Param(100, integer(1, _MAX_K), "number of neighbour sessions"),
    "sample_size": Param(1000, integer(0), "sessions of the pool considered (0: all)"),
    "sampling": Param("recent", choice("recent", "random"),
                      "which sessions of the pool: the most recent, or uniformly drawn"),
}
_CHUNK = 32  # prefixes per pass: small bit fields (int32 keys), arrays that stay in cache
_KEY_BITS = 62  # bits of a non-negative int64 sort key
_INT32_BITS = 31  # Speed: int32 keys where they fit, half the bytes and twice the lanes


def _bits(n: int) -> int:
    """Bits of a field that holds 0 .. n - 1."""
    return max(n - 1, 1).bit_length()


@dataclass(frozen=True)
class SessionIndex:
    """The training sessions, numbered by recency rank (0 = the latest end time).

    Attributes:
        session_indptr: (S + 1,) int64; session r holds ``session_items[indptr[r]:indptr[r+1]]``.
        session_items: (nnz,) distinct items of each session, ascending (int32 where the
            item indices fit).
        item_indptr: (n_items + 1,) int64 row starts of the item -> sessions lists.
        item_sessions: (nnz,) int32 (int64 from 2**31 sessions on) ranks of each item's
            sessions, ascending.
        item_keys: (nnz,) int64 ``item * S + rank``, ascending (cut-offs by searchsorted).
    """

    session_indptr: np.ndarray
    session_items: np.ndarray
    item_indptr: np.ndarray
    item_sessions: np.ndarray
    item_keys: np.ndarray

    @property
    def n_sessions(self) -> int:
        return int(self.session_indptr.shape[0] - 1)

    @property
    def session_sizes(self) -> np.ndarray:
        """(S,) |I(n)|, distinct items per session."""
        return np.diff(self.session_indptr)

    @classmethod
    def build(cls, log: TrainLog) -> SessionIndex:
        """Index the sessions of ``log`` (none empty)."""
        n_sess, n_items = log.n_sessions, log.n_items
        by_rank = np.lexsort((np.arange(n_sess), -log.end_time()))
        rank = np.empty(n_sess, dtype=np.int64)
        rank[by_rank] = np.arange(n_sess)
        pairs = np.unique(rank[log.session_of()] * n_items + log.items)
        indptr = np.zeros(n_sess + 1, dtype=np.int64)
        np.cumsum(np.bincount(pairs // n_items, minlength=n_sess), out=indptr[1:])
        return cls.from_sessions(indptr, pairs % n_items, n_items)

    @classmethod
    def from_sessions(cls, indptr: np.ndarray, items: np.ndarray, n_items: int
                      ) -> SessionIndex:
        """The index from its session -> items CSR (sessions by rank).

        Raises:
            ValueError: the arrays are not such a CSR over ``n_items`` items.
        """
        _check_csr(indptr, items, n_items)
        n_sess = len(indptr) - 1
        owner = np.repeat(np.arange(n_sess, dtype=np.int64), np.diff(indptr))
        order = np.argsort(items, kind="stable")  # stable: each item's ranks stay ascending
        item_indptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(items, minlength=n_items), out=item_indptr[1:])
        ranks = owner[order]
        # Speed: int32 copies where they fit, so the batched gathers read half the bytes
        return cls(indptr, _compact(items, n_items), item_indptr, _compact(ranks, n_sess),
                   items[order] * max(n_sess, 1) + ranks)


def _compact(values: np.ndarray, high: int) -> np.ndarray:
    """``values`` (all < high) as int32 when that holds them, else int64."""
    return values.astype(np.int32 if high <= 2 ** 31 else np.int64)


def _check_csr(indptr: np.ndarray, items: np.ndarray, n_items: int) -> None:
    """ValueError unless (indptr, items) is a CSR of distinct ascending items < n_items."""
    if indptr.dtype != np.int64 or items.dtype != np.int64 or indptr.ndim != 1 \
            or items.ndim != 1 or len(indptr) < 1:
        raise ValueError("session_indptr and session_items must be 1-d int64 arrays")
    lengths = np.diff(indptr)
    if indptr[0] != 0 or indptr[-1] != len(items) or np.any(lengths < 0):
        raise ValueError("session_indptr does not delimit session_items")
    if len(items) and (items.min() < 0 or items.max() >= n_items):
        raise ValueError("session_items holds indices outside the item ids")
    keys = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths) * n_items + items
    if np.any(keys[1:] <= keys[:-1]):
        raise ValueError("session_items are not distinct and ascending per session")


def flatten(prefixes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The B prefixes as (T,) rows, (T,) items and (T,) 0-based positions counted from the
    end (0 = the last item)."""
    lengths = np.array([len(p) for p in prefixes], dtype=np.int64)
    rows = np.repeat(np.arange(len(prefixes), dtype=np.int64), lengths)
    items = np.concatenate(prefixes) if len(prefixes) else np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    return rows, items.astype(np.int64), np.repeat(ends, lengths) - 1 - np.arange(len(rows))


def row_starts(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """(n_rows + 1,) where each row's run begins in the ascending (N,) ``rows``."""
    found = np.searchsorted(rows, np.arange(n_rows, dtype=rows.dtype))
    return np.asarray(np.r_[found, len(rows)], dtype=np.int64)


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(starts[i], starts[i] + lengths[i])`` over (N,) ranges."""
    ends = np.cumsum(lengths)
    out = np.repeat(starts - ends + lengths, lengths)
    out += np.arange(len(out))
    return out


def _runs(keys: np.ndarray, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each run of equal ``keys >> shift`` begins in the sorted (N,) ``keys``, and
    ``keys >> shift``."""
    high = keys >> shift
    if not len(keys):
        return np.zeros(0, dtype=np.int64), high
    new = np.empty(len(keys), dtype=bool)
    new[0] = True
    np.not_equal(high[1:], high[:-1], out=new[1:])
    return np.flatnonzero(new), high


@dataclass(frozen=True)
class Pool:
    """The sampled sessions (candidates) of a chunk of prefixes.

    Candidate c's entries, the (prefix, item) pairs it shares, are ``packed[first[c]:
    ends[c]]``: sorted bit fields prefix | session rank | pair, pairs ascending. Only the
    rows are decoded up front (the rest is needed for some candidates only).

    Attributes:
        row: (C,) prefix of each candidate; ascending, then by recency rank.
    """

    row: np.ndarray
    packed: np.ndarray
    first: np.ndarray
    ends: np.ndarray
    s_bits: int
    p_bits: int

    def overlap(self) -> np.ndarray:
        """(C,) number of prefix items each candidate contains, |I(n) ∩ P|."""
        return np.asarray(self.ends - self.first)

    def session(self, which: np.ndarray) -> np.ndarray:
        """(K,) recency rank of the candidates ``which`` (K,)."""
        # int64: numpy indexes several times slower with int32 index arrays
        found: np.ndarray = (self.packed[self.first[which]] >> self.p_bits) \
            & ((1 << self.s_bits) - 1)
        return found.astype(np.int64)

    def last(self) -> np.ndarray:
        """(C,) the highest pair index each candidate shares."""
        return self._pair(self.ends - 1)

    def weight(self, weights: np.ndarray, last: np.ndarray) -> np.ndarray:
        """(C,) the sum of the (P,) pair ``weights`` over each candidate's shared pairs, given
        (C,) ``last`` (:meth:`last`); a running sum in pair order, so equal sets of pairs
        give bit-equal sums (ties stay ties)."""
        out = weights[last]
        counts = self.ends - self.first
        multi = np.flatnonzero(counts > 1)  # Speed: most candidates share one item only
        if len(multi):
            first, counts = self.first[multi], counts[multi]
            total = np.zeros(len(multi))
            for j in range(int(counts.max())):  # one step per shared pair, all candidates
                live = np.flatnonzero(counts > j) if j > 1 else slice(None)  # all have 2
                total[live] += weights[self._pair(first[live] + j)]
            out[multi] = total
        return np.asarray(out)

    def _pair(self, entries: np.ndarray) -> np.ndarray:
        """(N,) int64 pair index of the (N,) ``entries``."""
        pairs: np.ndarray = self.packed[entries] & ((1 << self.p_bits) - 1)
        return pairs.astype(np.int64)


def sample_pool(index: SessionIndex, pair_row: np.ndarray, pair_item: np.ndarray,
                n_rows: int, sample_size: int, sampling: str, rng: np.random.Generator
                ) -> Pool:
    """The sampled pool of each of n_rows prefixes, from its distinct (prefix, item) pairs
    (P,), sorted by ``pair_row``: the ``sample_size`` most recent sessions ('recent') or a
    uniform draw of them ('random'); the whole pool when ``sample_size`` is 0 or not less
    than the pool."""
    packed, s_bits, p_bits = _entries(index, pair_row, pair_item, n_rows, sample_size
                                      if sampling == "recent" else 0)
    first, _ = _runs(packed, p_bits)
    ends = np.r_[first[1:], len(packed)] if len(first) else first
    # each prefix's span of candidates: n_rows searches, no pass over the candidates
    bounds = (np.arange(n_rows, dtype=np.int64) << (s_bits + p_bits)).astype(packed.dtype)
    c_start = np.asarray(np.searchsorted(first, np.r_[np.searchsorted(packed, bounds),
                                                      len(packed)]))
    spans = list(zip(c_start[:-1].tolist(), c_start[1:].tolist(), strict=True))
    if sample_size and max((b - a for a, b in spans), default=0) > sample_size:
        first, ends, spans = _sample(first, ends, spans, sample_size, sampling, rng)
    # Speed: rows from the spans (a repeat of long runs), not decoded from the keys
    row = np.repeat(np.arange(n_rows, dtype=np.int64), [b - a for a, b in spans])
    return Pool(row, packed, first, np.asarray(ends, dtype=np.int64), s_bits, p_bits)


def _entries(index: SessionIndex, pair_row: np.ndarray, pair_item: np.ndarray, n_rows: int,
             recent: int) -> tuple[np.ndarray, int, int]:
    """(E,) sorted bit fields prefix | session rank | pair of each pair's sessions (only
    those that can be among the ``recent`` most recent of the prefix's pool, when > 0), and
    the bits of the session and pair fields."""
    start = index.item_indptr[pair_item]
    take = index.item_indptr[pair_item + 1] - start
    if recent:
        take = _recent_cut(index, pair_row, pair_item, start, take, recent, n_rows)
    s_bits, p_bits = _bits(index.n_sessions), _bits(len(pair_row))
    if _bits(n_rows) + s_bits + p_bits > _KEY_BITS:
        raise ValueError("too many sessions and prefix items for one chunk")
    kind = np.int32 if _bits(n_rows) + s_bits + p_bits <= _INT32_BITS else np.int64
    # Speed: a memcpy per pair (a few per prefix) beats a vectorised ragged gather.
    packed: np.ndarray = np.concatenate(
        [index.item_sessions[a:a + n] for a, n in zip(start.tolist(), take.tolist(),
                                                      strict=True)]
        + [index.item_sessions[:0]]).astype(kind, copy=False)
    packed <<= p_bits
    head: np.ndarray = (pair_row << (s_bits + p_bits)) | np.arange(len(pair_row))
    packed += np.repeat(head.astype(kind), take)
    packed.sort()  # one SIMD sort groups the entries by (prefix, session), pairs ascending
    return packed, s_bits, p_bits


def _sample(first: np.ndarray, ends: np.ndarray, spans: list[tuple[int, int]], m: int,
            sampling: str, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """``first`` and ``ends`` (C,) of the m candidates kept per prefix (given its span
    of them): its first m ('recent') or m drawn uniformly ('random'), all where it has at
    most m; and the new spans."""
    if sampling == "recent":  # Speed: one memcpy per prefix
        cut = [slice(a, min(b, a + m)) for a, b in spans]
        first = np.concatenate([first[x] for x in cut])
        ends = np.concatenate([ends[x] for x in cut])
    else:
        keep = np.ones(len(first), dtype=bool)
        for a, b in spans:  # one draw per crowded prefix
            if b - a > m:
                keep[a:b] = False
                keep[a + rng.choice(b - a, m, replace=False)] = True
        first, ends = first[keep], ends[keep]
    sizes = np.cumsum([min(b - a, m) for a, b in spans]).tolist()
    return first, ends, list(zip([0] + sizes[:-1], sizes, strict=True))


def _recent_cut(index: SessionIndex, pair_row: np.ndarray, pair_item: np.ndarray,
                start: np.ndarray, take: np.ndarray, m: int, n_rows: int) -> np.ndarray:
    """(P,) how much of each pair's list can hold one of its prefix's m most recent
    sessions: at most m, and only ranks up to the m-th of the prefix's long lists."""
    bound = np.full(n_rows, index.n_sessions, dtype=np.int64)
    long = take >= m
    np.minimum.at(bound, pair_row[long], index.item_sessions[start[long] + m - 1])
    keys = pair_item * index.n_sessions + bound[pair_row]
    upto = np.searchsorted(index.item_keys, keys, side="right") - start
    return np.asarray(np.minimum(np.minimum(take, m), upto))


def top_k(row: np.ndarray, sim: np.ndarray, k: int, n_rows: int) -> np.ndarray:
    """Indices (ascending) of the neighbours: per row, of the candidates with ``sim`` > 0,
    the k largest; ties to the earlier candidate (the more recent session).

    Args:
        row: (C,) row of each candidate, ascending, candidates of a row by recency.
        sim: (C,) similarity of each candidate.
    """
    starts = row_starts(row, n_rows).tolist()
    keep = sim > 0
    for a, b in zip(starts[:-1], starts[1:], strict=True):  # a few numpy calls per crowded row
        if b - a <= k:
            continue
        # Speed: the k-th largest by an O(n) selection, then the ties in order; no sort
        part = sim[a:b]
        cut = max(float(np.partition(part, b - a - k)[b - a - k]), 0.0)
        np.greater(part, cut, out=keep[a:b])
        room = k - int(np.count_nonzero(keep[a:b]))
        if cut > 0 and room > 0:
            keep[a + np.flatnonzero(part == cut)[:room]] = True
    return np.flatnonzero(keep)


@dataclass(frozen=True)
class ItemSums:
    """Sums per (prefix, item) of values given per *source*: source s (a neighbour session,
    or a reminded prefix item) adds ``values[s]`` to each item of its run of ``cols``, in
    row ``rows[s]``. The stored entries are the (prefix, item) pairs some source reaches.

    Attributes:
        keys: (nnz,) ``row << c_bits | item`` of every stored entry, ascending.
        packed: (N,) sorted bit fields prefix | item | source of every (source, item).
        first: (nnz,) where each stored entry's run begins in ``packed``.
    """

    keys: np.ndarray
    packed: np.ndarray
    first: np.ndarray
    n_rows: int
    n_cols: int
    c_bits: int
    k_bits: int

    @classmethod
    def of(cls, rows: np.ndarray, sizes: np.ndarray, cols: np.ndarray, n_rows: int,
           n_cols: int) -> ItemSums:
        """The sums of (K,) sources in ``rows`` with (K,) ``sizes`` items each, given one
        after the other in (N,) ``cols``."""
        c_bits, k_bits = cls.fields(n_rows, n_cols, len(rows))
        head = (rows.astype(np.int64) << (c_bits + k_bits)) | np.arange(len(rows))
        packed = np.repeat(head, sizes)
        packed |= cols.astype(np.int64) << k_bits
        packed.sort()  # stable group-by: entries of an item ascend by source
        first, keys = _runs(packed, k_bits)
        return cls(keys[first], packed, first, n_rows, n_cols, c_bits, k_bits)

    @staticmethod
    def fields(n_rows: int, n_cols: int, n_sources: int) -> tuple[int, int]:
        """The bits of the item and source fields of the keys (ValueError: too many)."""
        c_bits, k_bits = _bits(n_cols), _bits(n_sources)
        if _bits(n_rows) + c_bits + k_bits > _KEY_BITS:
            raise ValueError("too many items and neighbours for one chunk")
        return c_bits, k_bits

    def sum(self, values: np.ndarray, factor: np.ndarray | None = None,
            kernels: Kernels | None = None) -> np.ndarray:
        """(nnz,) per stored entry, the sum (in source order) of the (K,) ``values`` of the
        sources that reach it, each times ``factor`` (n_cols,) of the item when given; in
        C (the same sums) with float64 arrays when ``kernels`` are given."""
        if kernels is not None and values.dtype == np.float64 and (
                factor is None or factor.dtype == np.float64):
            return kernels.knn_item_sums(self.packed, self.first, np.ascontiguousarray(values),
                                         factor, self.c_bits, self.k_bits)
        if not len(self.first):
            return np.zeros(0)
        each = values[self.packed & ((1 << self.k_bits) - 1)]
        if factor is not None:
            each = each * factor[(self.packed >> self.k_bits) & ((1 << self.c_bits) - 1)]
        return np.asarray(np.add.reduceat(each, self.first))

    def find(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(N,) stored positions of the entries (rows, cols) (N,), -1 where not stored."""
        want = (rows.astype(np.int64) << self.c_bits) | cols
        pos = np.minimum(np.searchsorted(self.keys, want), max(len(self.keys) - 1, 0))
        found = self.keys[pos] == want if len(self.keys) else np.zeros(len(want), bool)
        return np.where(found, pos, -1)

    def matrix(self, data: np.ndarray, drop: np.ndarray | None = None) -> SparseRows:
        """The (n_rows, n_cols) matrix holding (nnz,) ``data``, without the stored positions
        ``drop``."""
        keys = self.keys
        if drop is not None and len(drop):
            keep = np.ones(len(keys), dtype=bool)
            keep[drop] = False
            keys, data = keys[keep], data[keep]
        indptr = row_starts(keys >> self.c_bits, self.n_rows)
        return SparseRows(indptr, keys & ((1 << self.c_bits) - 1), data, self.n_cols)


def neighbour_items(index: SessionIndex, sessions: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(N,) the items of the given (K,) sessions, one session after the other, and (K,)
    how many each has."""
    start = index.session_indptr[sessions]
    sizes = index.session_indptr[sessions + 1] - start
    return index.session_items[ranges(start, sizes)], sizes


def stack_rows(parts: list[SparseRows], n_cols: int) -> SparseRows:
    """The rows of ``parts`` one after the other."""
    if len(parts) == 1:
        return parts[0]
    ends = np.cumsum([p.indptr[-1] for p in parts])
    indptr = np.concatenate([[0]] + [p.indptr[1:] + e - p.indptr[-1]
                                     for p, e in zip(parts, ends, strict=True)])
    return SparseRows(indptr.astype(np.int64), np.concatenate([p.indices for p in parts]),
                      np.concatenate([p.data for p in parts]), n_cols)


class SessionKNN(Baseline):
    """The session-kNN estimators' shared part: the session index as the learned state
    (saved as its session -> items CSR), and scoring in chunks of prefixes.

    Subclasses set ``PARAMS`` (with :data:`KNN_PARAMS`) and score one chunk in
    :meth:`_score_chunk`.
    """

    PARAMS: ClassVar[dict[str, Param]] = dict(KNN_PARAMS)
    index_: SessionIndex

    def _fit(self, log: TrainLog) -> None:
        self.index_ = SessionIndex.build(log)

    def _score(self, prefixes: list[np.ndarray]) -> SparseRows:
        # chunks of at most _CHUNK prefixes whose items fit the pool's key with the ranks
        room = 1 << (_KEY_BITS - _bits(self.index_.n_sessions) - _bits(_CHUNK))
        ends = np.cumsum([len(p) for p in prefixes])
        parts, lo = [], 0
        while lo < len(prefixes):
            base = int(ends[lo - 1]) if lo else 0
            hi = min(lo + _CHUNK, max(int(np.searchsorted(ends, base + room, "right")), lo + 1))
            parts.append(self._score_chunk(prefixes[lo:hi]))
            lo = hi
        if not parts:
            return SparseRows.empty(0, len(self.item_index_))
        return stack_rows(parts, len(self.item_index_))

    @abstractmethod
    def _score_chunk(self, prefixes: list[np.ndarray]) -> SparseRows:
        """(B, n_items) scores of at most ``_CHUNK`` prefixes."""

    def _pool(self, pair_row: np.ndarray, pair_item: np.ndarray, n_rows: int) -> Pool:
        """The sampled pool of the (P,) (prefix, item) pairs (see :func:`sample_pool`)."""
        return sample_pool(self.index_, pair_row, pair_item, n_rows,
                           self.params["sample_size"], self.params["sampling"], self._rng)

    def _pool_kernels(self, similarity: str) -> Kernels | None:
        """The compiled kernels where they compute the neighbours ('recent' sampling, not
        'random' ``similarity``), else None."""
        if self.params["sampling"] != "recent" or similarity == "random":
            return None
        return knn_kernel.native()

    def _neighbour_sums(self, found: Neighbours, n_rows: int,
                        extra: tuple[np.ndarray, np.ndarray] | None = None) -> ItemSums:
        """The item sums whose sources are the neighbours ``found`` (K,) (in that order),
        then one source per (row, item) pair of ``extra`` (E,) (reminded items)."""
        n_cols, kernels = len(self.item_index_), knn_kernel.native()
        if kernels is not None:
            n_extra = 0 if extra is None else len(extra[0])
            c_bits, k_bits = ItemSums.fields(n_rows, n_cols, len(found.row) + n_extra)
            packed, first, keys = knn_kernel.item_groups(kernels, self.index_, found, extra,
                                                         n_rows, n_cols, c_bits, k_bits)
            return ItemSums(keys, packed, first, n_rows, n_cols, c_bits, k_bits)
        cols, sizes = neighbour_items(self.index_, found.session)
        rows = found.row
        if extra is not None:
            rows, cols = np.r_[rows, extra[0]], np.r_[cols, extra[1]]
            sizes = np.r_[sizes, np.ones(len(extra[0]), dtype=np.int64)]
        return ItemSums.of(rows, sizes, cols, n_rows, n_cols)

    def _state(self) -> dict[str, np.ndarray]:
        return {"session_indptr": self.index_.session_indptr,
                "session_items": self.index_.session_items.astype(np.int64)}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        check_state(state, ["session_indptr", "session_items"])
        self.index_ = SessionIndex.from_sessions(
            state["session_indptr"], state["session_items"], len(self.item_index_))
