"""The compiled fast path of the session-kNN baselines (``k_knn.c``, through
:mod:`gru4rec.kernels`), and the neighbours that both paths hand on.

With the kernels loaded, :func:`neighbours` is one C call per chunk of prefixes for what
``sample_pool`` ('recent' sampling), the model's ``_similarity`` and ``top_k`` compute
with numpy, and :func:`item_groups` (with ``ItemSums.sum``) does the same for the
grouping and the sums of the neighbours' items. The neighbours are bit-equal to the numpy
path's: the same sessions in the same order, the same float64 operations in the same
order. The item sums follow np.add.reduceat's order as numpy 2 sums (bit-equal there);
that order is numpy's own, so the tests compare them up to rounding. The numpy path runs
when the kernels are off (``GRU4REC_NATIVE=0``) or missing; the neighbours also keep it for
'random' sampling or similarity, whose draws come from the model's numpy generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only (neighbours imports this module)
    from gru4rec.baselines.neighbours import SessionIndex
    from gru4rec.kernels.wrappers import Kernels

__all__ = ["Neighbours", "item_groups", "native", "neighbours"]


def native() -> Kernels | None:
    """The compiled kernels, or None when they are off (``GRU4REC_NATIVE=0``) or missing."""
    from gru4rec.kernels.loader import load_kernels  # lazy: the loader imports torch

    return load_kernels()


@dataclass(frozen=True)
class Neighbours:
    """The neighbours of a chunk of prefixes, by prefix, then by recency rank.

    Attributes:
        row: (K,) int64 prefix of each neighbour, ascending.
        session: (K,) int64 recency rank of its session.
        sim: (K,) float64 its similarity (> 0).
        last: (K,) int64 the last (prefix, item) pair it shares, which V-SKNN needs (its
            pairs ascend by position: the latest shared item); 0 for SKNN.
    """

    row: np.ndarray
    session: np.ndarray
    sim: np.ndarray
    last: np.ndarray


def _starts(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """(n_rows + 1,) where each row's run begins in the ascending (N,) ``rows``."""
    return np.searchsorted(rows, np.arange(n_rows + 1)).astype(np.int64)


def _int64(a: np.ndarray) -> np.ndarray:
    """``a`` as a contiguous int64 array (no copy when it is one)."""
    return np.ascontiguousarray(a, dtype=np.int64)


def neighbours(kernels: Kernels, index: SessionIndex, pair_row: np.ndarray,
               pair_item: np.ndarray, n_rows: int, similarity: str,
               weights: np.ndarray | None, row_const: np.ndarray, sample_size: int, k: int
               ) -> Neighbours:
    """The neighbours of n_rows prefixes given as (P,) distinct (prefix, item) pairs sorted
    by ``pair_row``, with 'recent' sampling: what ``top_k`` keeps of ``sample_pool`` with
    the model's similarity.

    Args:
        similarity: a name of :data:`gru4rec.kernels.knn_wrappers.KNN_SIMILARITIES`.
        weights: (P,) float64 pair weights (V-SKNN: summed in pair order), None for SKNN.
        row_const: (n_rows,) float64 constant of each prefix in the similarity: |P| (SKNN),
            max(|P|, 1) ('vec') or sqrt(Σ w²) ('weighted-cosine').
    """
    start, session, sim, last = kernels.knn_neighbours(
        index.item_indptr, index.item_sessions, index.session_indptr,
        _starts(pair_row, n_rows), _int64(pair_item), weights, row_const, similarity,
        sample_size, k)
    row = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(start))
    return Neighbours(row, session, sim, last)


def item_groups(kernels: Kernels, index: SessionIndex, found: Neighbours,
                extra: tuple[np.ndarray, np.ndarray] | None, n_rows: int, n_cols: int,
                c_bits: int, k_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (packed, first, keys) of ``ItemSums.of`` whose sources are the neighbours'
    sessions (their items), then one per (row, item) pair of ``extra`` (E,)."""
    extra_row = extra_item = np.zeros(0, dtype=np.int64)
    if extra is not None:
        extra_row, extra_item = _int64(extra[0]), _int64(extra[1])
    return kernels.knn_item_groups(
        index.session_indptr, index.session_items, _int64(found.row), _int64(found.session),
        extra_row, extra_item, n_rows, n_cols, c_bits, k_bits)
