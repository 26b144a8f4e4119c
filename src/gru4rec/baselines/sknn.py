"""SKNN: session-based k nearest neighbours (session-rec's ``ContextKNN``, BASELINES.md §3).

The prefix is taken as a set P of items. Its candidate sessions are the pool of every
prefix item's training sessions, sampled as in :mod:`~gru4rec.baselines.neighbours`
('recent': the ``sample_size`` most recent). Each sampled session n, with A = I(n) its
distinct items and B = P, gets a similarity:

* ``jaccard`` |A∩B| / |A∪B|;  ``tanimoto`` |A∩B| / (|A| + |B| − |A∩B|) (the same value);
* ``cosine`` |A∩B| / (√|A|·√|B|);  ``binary`` 2|A∩B| / (2|A∩B| + |A| + |B|);
* ``random`` uniform in [0, 1) from the model's generator.

The k most similar sessions with similarity > 0 are the neighbours N_k, and

    s_j = Σ_{n ∈ N_k, j ∈ I(n)} sim(n)     (prefix items are not removed).

``remind``: for q, e in enumerate(prefix[-3:], start=1) (repeats processed again)
s_e <- 5·(s_e + 5) + q/100. ``pop_boost`` β > 0: s_j += β·pop_j, with pop_j the number of
neighbours containing j over the largest such number of the prefix. ``normalize``: each row
divided by its maximum where that is > 0 (rank-preserving).

Deviations from the reference, and why:

* cosine is the intended formula; the reference's operator precedence multiplies it by |B|
  (constant per prefix, so the ranking differs only with ``remind`` or ``pop_boost``).
* Equal similarities: the more recent session wins a neighbour slot (the reference keeps
  the order of a set, i.e. arbitrary); equal end times: the session earlier in the log is
  the more recent.
* Reminder-only items with ``pop_boost`` get pop 0 (the reference crashes on them).
* jaccard works on any Python (the reference's calls ``time.clock()``, gone since 3.8).
* Not offered: ``extend`` (adds test sessions to the model during the evaluation, stamped
  with the wall-clock time). Sampling other than 'recent' / 'random' is refused (the
  reference crashes on it later). Unknown items are skipped by ``recommend`` (the reference
  crashes); a prefix with no known item scores 0 everywhere.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from gru4rec.baselines import knn_kernel
from gru4rec.baselines.base import unsupported
from gru4rec.baselines.knn_kernel import Neighbours
from gru4rec.baselines.neighbours import KNN_PARAMS, ItemSums, Pool, SessionKNN, flatten, top_k
from gru4rec.baselines.params import Param, boolean, choice, number
from gru4rec.baselines.sparse import SparseRows

__all__ = ["SKNN"]

_SIMILARITIES = ("jaccard", "cosine", "tanimoto", "binary", "random")
_REMIND_LAST = 3  # the reference reminds of the last three clicks


class SKNN(SessionKNN):
    """Session-based kNN over sets of items (module docstring: formulas and deviations).

    Parameters: ``k`` (100), ``sample_size`` (1000; 0: the whole pool), ``sampling``
    ('recent' or 'random'), ``similarity`` (jaccard, cosine, tanimoto, binary, random),
    ``remind`` (False), ``pop_boost`` (0), ``normalize`` (True); ``extend`` is refused.
    """

    name = "sknn"
    PARAMS: ClassVar[dict[str, Param]] = {
        **KNN_PARAMS,
        "similarity": Param("jaccard", choice(*_SIMILARITIES), "session similarity"),
        "remind": Param(False, boolean, "boost the last three prefix items"),
        "pop_boost": Param(0.0, number(0), "weight of the neighbour popularity added"),
        "extend": Param(False, boolean, "not supported"),
        "normalize": Param(True, boolean, "divide each row by its maximum"),
    }

    def __init__(self, *, seed: int = 42, **params: Any) -> None:
        super().__init__(seed=seed, **params)
        unsupported(self.name, self.params, {
            "extend": "it adds test sessions to the model during the evaluation, stamped "
                      "with the wall-clock time"})

    def _score_chunk(self, prefixes: list[np.ndarray]) -> SparseRows:
        n_rows, n_items = len(prefixes), len(self.item_index_)
        rows, items, back = flatten(prefixes)
        pairs = np.unique(rows * n_items + items)  # P as distinct (prefix, item) pairs
        found = self._neighbours(pairs // n_items, pairs % n_items, n_rows)
        remind = back < _REMIND_LAST if self.params["remind"] else np.zeros(len(rows), bool)
        # reminded items are sources of value 0, so that they are stored
        sums = self._neighbour_sums(found, n_rows, (rows[remind], items[remind]))
        zeros, kernels = np.zeros(int(remind.sum())), knn_kernel.native()
        data = sums.sum(np.r_[found.sim, zeros], None, kernels)
        if self.params["remind"]:
            _remind(sums, data, rows, items, back)
        if self.params["pop_boost"] > 0:
            counts = sums.sum(np.r_[np.ones(len(found.row)), zeros], None, kernels)
            data += self.params["pop_boost"] * _per_row_share(sums.matrix(counts))
        out = sums.matrix(data)
        return out.scale_by_max() if self.params["normalize"] else out

    def _neighbours(self, pair_row: np.ndarray, pair_item: np.ndarray, n_rows: int
                    ) -> Neighbours:
        """The neighbours of the (P,) distinct (prefix, item) pairs, sorted by prefix: in C
        where the kernels serve (:meth:`_pool_kernels`), else with numpy (the same)."""
        size_b = np.bincount(pair_row, minlength=n_rows)
        kind, k = self.params["similarity"], self.params["k"]
        kernels = self._pool_kernels(kind)
        if kernels is not None:
            return knn_kernel.neighbours(
                kernels, self.index_, pair_row, pair_item, n_rows,
                "jaccard" if kind == "tanimoto" else kind, None, size_b.astype(np.float64),
                self.params["sample_size"], k)
        pool = self._pool(pair_row, pair_item, n_rows)
        sim = self._similarity(pool, size_b)
        kept = top_k(pool.row, sim, k, n_rows)
        return Neighbours(pool.row[kept], pool.session(kept), sim[kept], np.zeros_like(kept))

    def _similarity(self, pool: Pool, size_b: np.ndarray) -> np.ndarray:
        """(C,) similarity of every candidate, given (B,) |P| of every prefix."""
        if self.params["similarity"] == "random":
            return self._rng.random(len(pool.row))
        both = pool.overlap().astype(np.float64)
        a = self.index_.session_sizes[pool.session(np.arange(len(pool.row)))].astype(
            np.float64)
        b = size_b[pool.row].astype(np.float64)
        kind = self.params["similarity"]
        if kind == "cosine":
            return np.asarray(both / (np.sqrt(a) * np.sqrt(b)))
        if kind == "binary":
            return np.asarray(2 * both / (2 * both + a + b))
        return np.asarray(both / (a + b - both))  # jaccard = tanimoto: |A∩B| / |A∪B|


def _remind(sums: ItemSums, data: np.ndarray, rows: np.ndarray, items: np.ndarray,
            back: np.ndarray) -> None:
    """Apply s_e <- 5·(s_e + 5) + q/100 in place to the last three items of each prefix,
    oldest first (q = 1 for the oldest of them); a repeated item is boosted again."""
    length = np.bincount(rows, minlength=sums.n_rows)[rows]
    q = np.minimum(length, _REMIND_LAST) - back  # 1-based offset within prefix[-3:]
    for step in range(1, _REMIND_LAST + 1):  # sequential: a repeat sees its earlier boost
        sel = (back < _REMIND_LAST) & (q == step)
        pos = sums.find(rows[sel], items[sel])
        data[pos] = 5.0 * (data[pos] + 5.0) + step / 100.0


def _per_row_share(counts: SparseRows) -> np.ndarray:
    """(nnz,) each stored count over the largest count of its row (0 where that is 0)."""
    top = counts.row_max()
    top = np.where(top > 0, top, 1.0)
    return np.asarray(counts.data / top[counts.row_ids()])
