"""Item-KNN: the items that co-occur most with the current item (BASELINES.md §1).

Fit. With n_s(i) the number of times session s has item i and supp_i the training events of
item i, the event-level co-occurrence of two items is

    c_ij = sum_s n_s(i) * n_s(j)   (repeats multiply; c_ii = 0),

and their similarity is

    sim(i, j) = c_ij / ((supp_i + lmbd)**alpha * (supp_j + lmbd)**(1 - alpha)).

alpha = 0.5 gives a regularised cosine, alpha = 1 the confidence of the rule i -> j; the
similarity is asymmetric when alpha != 0.5. Each item keeps the ``n_sims`` most similar items.

Predict. After the prefix x_1..x_c, s_j = sim(x_c, j) for the j kept in x_c's row and 0 for
the others: only the last item counts. An empty prefix scores every item 0. Scores are not
normalised (normalising would not change the ranking).

Differences from the reference, and why:

* Ties at the ``n_sims`` boundary are cut by ascending item index (the order of first
  appearance in the training file); the reference's full argsort leaves them arbitrary.
* Only items with c_ij > 0 are stored. The reference can keep zero-similarity entries when an
  item has fewer than ``n_sims`` co-occurring items; they score 0 either way.
* The reference builds one dense row and argsorts it per item, O(|C|^2 log |C|). Here the
  co-occurrences are counted from the distinct items of each session (every ordered pair of
  distinct items weighted by n_s(i) * n_s(j), which is the same sum), vectorised over chunks
  of sessions, and only rows longer than ``n_sims`` are sorted.
* An unknown current item raises KeyError in the reference; here prefixes hold known items
  only (``recommend`` skips unknown ids and counts them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np

from gru4rec.baselines.base import Baseline, Scores, TrainLog, check_state
from gru4rec.baselines.params import Param, integer, number
from gru4rec.baselines.sparse import SparseRows, group_sum

__all__ = ["ItemKNN", "cooccurrence", "session_items", "similarity"]

# ordered item pairs made per chunk of sessions: bounds the temporaries (under ten 8-byte arrays
# of this length, ~300 MB) however long the log; smaller chunks cost more merging
_PAIR_BUDGET = 4_000_000


class ItemKNN(Baseline):
    """Item-to-item similarity from session co-occurrence; scores the neighbours of the last
    item of the prefix.

    Parameters: ``n_sims`` (100: neighbours kept per item), ``lmbd`` (20: support
    regularisation), ``alpha`` (0.5: 0.5 cosine, 1 confidence).

    Learned state: ``sims_``, the (n_items, n_items) :class:`SparseRows` of kept
    similarities (row i: the neighbours of item i, columns ascending).
    """

    name = "itemknn"
    PARAMS: ClassVar[dict[str, Param]] = {
        "n_sims": Param(100, integer(1), "similar items kept per item"),
        "lmbd": Param(20.0, number(0.0), "regularisation added to the supports"),
        "alpha": Param(0.5, number(0.0, 1.0), "exponent of the first item's support "
                       "(0.5: regularised cosine, 1: confidence)"),
    }
    sims_: SparseRows

    def _fit(self, log: TrainLog) -> None:
        p = self.params
        sims = similarity(cooccurrence(log), log.support(), p["lmbd"], p["alpha"])
        self.sims_ = sims.top_per_row(p["n_sims"])  # ties: by column

    def _score(self, prefixes: list[np.ndarray]) -> Scores:
        s = self.sims_
        # row n_rows of the padded matrix is empty: the scores of an empty prefix, so one
        # take_rows serves every prefix
        last = np.array([p[-1] if len(p) else s.n_rows for p in prefixes], dtype=np.int64)
        padded = SparseRows(np.r_[s.indptr, s.indptr[-1]], s.indices, s.data, s.n_cols)
        return padded.take_rows(last)

    def _state(self) -> dict[str, np.ndarray]:
        return {"indptr": self.sims_.indptr, "indices": self.sims_.indices,
                "data": self.sims_.data}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        check_state(state, ["indptr", "indices", "data"])
        n = len(self.item_index_)
        indptr, indices = state["indptr"].astype(np.int64), state["indices"].astype(np.int64)
        data = state["data"].astype(np.float64)
        if indptr.shape != (n + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise ValueError("indptr does not match the item ids")
        if indices.shape != (indptr[-1],) or data.shape != indices.shape:
            raise ValueError("indices and data must hold indptr[-1] entries each")
        if len(indices) and (indices.min() < 0 or indices.max() >= n):
            raise ValueError("indices hold item indices outside the catalogue")
        if np.any(np.diff(indptr) > self.params["n_sims"]):
            raise ValueError("a row holds more than n_sims similarities")
        self.sims_ = SparseRows(indptr, indices, data, n)


def session_items(log: TrainLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (session, item) pairs of the log, sorted by session then item.

    Returns:
        sessions (E,) int64, items (E,) int64, counts (E,) int64 = n_s(i).
    """
    keys, counts = np.unique(log.session_of() * log.n_items + log.items, return_counts=True)
    return keys // log.n_items, keys % log.n_items, counts.astype(np.int64)


def cooccurrence(log: TrainLog, budget: int = _PAIR_BUDGET) -> SparseRows:
    """(n_items, n_items) c_ij = sum_s n_s(i) n_s(j) for i != j, the stored entries > 0.

    Every ordered pair of distinct items of a session is made once, weighted by
    n_s(i) n_s(j); sessions are processed in chunks of at most ``budget`` pairs (one longer
    session forms a chunk alone) and the partial sums are added at the end.
    """
    sess, items, counts = session_items(log)
    m = np.bincount(sess, minlength=log.n_sessions)  # distinct items per session
    starts = np.zeros(log.n_sessions + 1, dtype=np.int64)
    np.cumsum(m, out=starts[1:])
    n = log.n_items
    parts = []
    for lo, hi in _chunks(m * m, budget):
        left, right = _pairs(sess, starts, m, int(starts[lo]), int(starts[hi]))
        # summed per chunk: the partial matrices are far smaller than the pair lists
        parts.append(group_sum(items[left] * n + items[right],
                               (counts[left] * counts[right]).astype(np.float64)))
    keys, sums = parts[0] if len(parts) == 1 else \
        group_sum(np.concatenate([k for k, _ in parts]), np.concatenate([v for _, v in parts]))
    rows = keys // n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return SparseRows(indptr, keys - rows * n, sums, n)


def _chunks(weights: np.ndarray, budget: int) -> Iterator[tuple[int, int]]:
    """Consecutive ranges [lo, hi) of ``weights`` (S,) whose sums stay within ``budget``,
    except a single entry above it, which forms a range alone."""
    cum = np.cumsum(weights)
    lo = 0
    while lo < len(weights):
        base = int(cum[lo - 1]) if lo else 0
        hi = max(int(np.searchsorted(cum, base + budget, side="right")), lo + 1)
        yield lo, hi
        lo = hi


def _pairs(sess: np.ndarray, starts: np.ndarray, m: np.ndarray, a: int, b: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair (left, right), left != right, of distinct-item entries in the same
    session, for the entries a..b-1 (whole sessions) of ``sess`` (E,).

    Returns:
        left (P,), right (P,) int64 entry positions.
    """
    entry = np.arange(a, b, dtype=np.int64)
    reps = m[sess[entry]]  # each entry pairs with every entry of its session
    left = np.repeat(entry, reps)
    first = np.cumsum(reps) - reps
    right = np.repeat(starts[sess[entry]] - first, reps) + np.arange(len(left))
    keep = left != right  # c_ii = 0
    return left[keep], right[keep]


def similarity(counts: SparseRows, support: np.ndarray, lmbd: float, alpha: float
               ) -> SparseRows:
    """sim(i, j) = c_ij / ((supp_i + lmbd)**alpha * (supp_j + lmbd)**(1 - alpha)) on the
    stored entries of ``counts`` (n_items, n_items); ``support`` (n_items,) events per item."""
    base = support.astype(np.float64) + lmbd
    first, second = np.power(base, alpha), np.power(base, 1.0 - alpha)
    denom = first[counts.row_ids()] * second[counts.indices]
    return SparseRows(counts.indptr, counts.indices, counts.data / denom, counts.n_cols)
