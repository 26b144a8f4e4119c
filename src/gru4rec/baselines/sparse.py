"""Sparse rows in NumPy: the matrices the baselines learn (item -> item rules, similarities)
and the score rows they predict, without a sparse-matrix dependency.

:class:`SparseRows` is a CSR matrix: row ``r`` holds ``indices[indptr[r]:indptr[r+1]]``
(column indices, ascending unless said otherwise) with ``data`` at the same positions; every
entry not stored is 0. The few operations the baselines need are vectorised over all rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SparseRows", "group_sum", "segment_rank"]


@dataclass(frozen=True)
class SparseRows:
    """A (n_rows, n_cols) sparse matrix in CSR form.

    Attributes:
        indptr: (n_rows + 1,) int64 row starts.
        indices: (nnz,) int64 column of each stored entry.
        data: (nnz,) float64 value of each stored entry.
        n_cols: number of columns.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_cols: int

    @property
    def n_rows(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def row_lengths(self) -> np.ndarray:
        """(n_rows,) int64 stored entries per row."""
        return np.diff(self.indptr)

    @classmethod
    def empty(cls, n_rows: int, n_cols: int) -> SparseRows:
        """An all-zero (n_rows, n_cols) matrix."""
        return cls(np.zeros(n_rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int64),
                   np.zeros(0, dtype=np.float64), n_cols)

    @classmethod
    def from_entries(cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                     n_rows: int, n_cols: int) -> SparseRows:
        """Sum the (N,) entries (rows, cols, values) into a matrix; duplicates add up, columns
        of each row come out ascending."""
        keys, sums = group_sum(rows.astype(np.int64) * n_cols + cols, values)
        out_rows = keys // n_cols if n_cols else keys
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(out_rows, minlength=n_rows), out=indptr[1:])
        return cls(indptr, (keys - out_rows * n_cols).astype(np.int64), sums, n_cols)

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[np.ndarray, np.ndarray]], n_cols: int) -> SparseRows:
        """Stack per-row (columns, values) pairs (columns distinct within a row)."""
        lengths = np.array([len(c) for c, _ in rows], dtype=np.int64)
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        if not len(rows) or not indptr[-1]:
            return cls.empty(len(rows), n_cols)
        cols = np.concatenate([np.asarray(c, dtype=np.int64) for c, _ in rows])
        vals = np.concatenate([np.asarray(v, dtype=np.float64) for _, v in rows])
        return cls(indptr, cols, vals, n_cols)

    def row_ids(self) -> np.ndarray:
        """(nnz,) the row of every stored entry."""
        return np.repeat(np.arange(self.n_rows, dtype=np.int64), self.row_lengths)

    def take_rows(self, rows: np.ndarray) -> SparseRows:
        """The matrix made of ``rows`` (M,) of this one, in that order (repeats allowed)."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.row_lengths[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # position of every output entry in the input: row start + offset within the row
        src = np.repeat(self.indptr[rows] - indptr[:-1], lengths) + np.arange(indptr[-1])
        return SparseRows(indptr, self.indices[src], self.data[src], self.n_cols)

    def top_per_row(self, n: int | np.ndarray, tiebreak: np.ndarray | None = None
                    ) -> SparseRows:
        """Keep the ``n`` largest entries of every row (``n``: one count, or (n_rows,) counts
        per row); ties by ascending ``tiebreak`` (nnz,) (default: by column); the kept
        entries come out in column order again."""
        limit = np.broadcast_to(np.asarray(n, dtype=np.int64), (self.n_rows,))
        rows = self.row_ids()
        # Speed: only the entries of the rows that must be cut are sorted (most rows are short)
        cut = np.flatnonzero((self.row_lengths > limit)[rows])
        second = self.indices if tiebreak is None else tiebreak
        order = cut[np.lexsort((second[cut], -self.data[cut], rows[cut]))]
        keep = np.ones(len(rows), dtype=bool)
        keep[order[segment_rank(rows[order]) >= limit[rows[order]]]] = False
        indptr = np.zeros(self.n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows[keep], minlength=self.n_rows), out=indptr[1:])
        return SparseRows(indptr, self.indices[keep], self.data[keep], self.n_cols)

    def row_max(self) -> np.ndarray:
        """(n_rows,) the largest stored value of each row, -inf for an empty row."""
        out = np.full(self.n_rows, -np.inf)
        full = np.flatnonzero(self.row_lengths > 0)
        if len(full):  # Speed: one reduceat over the non-empty rows, not ufunc.at
            out[full] = np.maximum.reduceat(self.data, self.indptr[full])
        return out

    def scale_by_max(self) -> SparseRows:
        """Each row divided by its largest value where that is > 0 (session-rec's output
        normalisation; rows whose maximum is <= 0 are left as they are, so the division never
        reverses a ranking)."""
        top = self.row_max()
        div = np.where(top > 0, top, 1.0)
        return SparseRows(self.indptr, self.indices, self.data / div[self.row_ids()],
                          self.n_cols)

    def toarray(self, dtype: type = np.float64) -> np.ndarray:
        """The dense (n_rows, n_cols) matrix."""
        out: np.ndarray = np.zeros((self.n_rows, self.n_cols), dtype=dtype)
        out[self.row_ids(), self.indices] = self.data
        return out


def group_sum(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) int keys and values -> (distinct keys ascending, the sum of the values of each)."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse.reshape(-1), weights=np.asarray(values, dtype=np.float64),
                       minlength=len(uniq))
    return uniq.astype(np.int64), sums


def segment_rank(groups: np.ndarray) -> np.ndarray:
    """(N,) position of each entry within its run of equal ``groups`` values (runs must be
    contiguous, e.g. sorted): [5, 5, 7, 7, 7] -> [0, 1, 0, 1, 2]."""
    n = len(groups)
    if not n:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)
