"""The checked wrappers of the session-kNN kernels (k_knn.c), a base class of
:class:`gru4rec.kernels.wrappers.Kernels`.

Unlike the training kernels they take numpy arrays (float64 values, int64 indices; the
index's session and item lists int32 or int64), as the kNN baselines hold them. Every
array is checked (dtype, native byte order, alignment, contiguity, shape) before its pointer
crosses to C, and so are the few index values that size the outputs; the kernels check
every other index they read and return an error code, raised here, instead of reading
outside an array. The outputs are allocated here.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from gru4rec.kernels.checks import fail, need_array

__all__ = ["KNN_SIGNATURES", "KNN_SIMILARITIES", "KNNKernels"]

_VOID, _I64, _INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
KNN_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "knn_neighbours": (_I64, [_VOID, _I64, _VOID, _I64, _INT, _VOID, _I64, _VOID, _I64, _VOID,
                              _VOID, _VOID, _INT, _I64, _I64, _I64, _VOID, _VOID, _VOID,
                              _VOID]),
    "knn_item_groups": (_I64, [_VOID, _I64, _VOID, _I64, _INT, _VOID, _VOID, _I64, _VOID,
                               _VOID, _I64, _I64, _I64, _INT, _INT, _I64, _VOID, _VOID, _VOID]),
    "knn_item_sums": (_I64, [_VOID, _I64, _VOID, _I64, _VOID, _I64, _VOID, _I64, _INT, _INT,
                             _VOID]),
}
# the similarities of knn_neighbours (k_knn.c): SKNN's set similarities, whose row constant
# is |P|, and V-SKNN's weighted ones (row constant max(|P|, 1), resp. sqrt(Σ w²))
KNN_SIMILARITIES: dict[str, int] = {"jaccard": 0, "cosine": 1, "binary": 2, "vec": 3,
                                    "weighted-cosine": 4}
_WEIGHTED = ("vec", "weighted-cosine")
_NP_I64: tuple[type[np.generic], ...] = (np.int64,)
_NP_INDEX: tuple[type[np.generic], ...] = (np.int32, np.int64)
_NP_F64: tuple[type[np.generic], ...] = (np.float64,)
_KNN_ERRORS = {-2: "an output array is too small", -3: "an index is out of range, or the rows "
               "are not ascending"}


def _knn_status(fn: str, status: int) -> int:
    """``status`` of a session-kNN kernel, or the error it stands for."""
    if status == -1:
        raise MemoryError(f"{fn}: out of memory")
    if status < 0:
        raise ValueError(f"{fn}: {_KNN_ERRORS.get(status, f'error {status}')}")
    return status


def _csr_start(fn: str, arg: str, indptr: np.ndarray, n: int) -> None:
    """ValueError unless the (R + 1,) ``indptr`` starts at 0, ascends and ends at ``n``."""
    if len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != n or np.any(indptr[1:] < indptr[:-1]):
        raise fail(fn, arg, f"row starts from 0, ascending, up to {n}", "other values")


def _in_range(fn: str, arg: str, values: np.ndarray, n: int) -> None:
    """ValueError unless every value of ``values`` is in [0, n)."""
    if len(values) and (values.min() < 0 or values.max() >= n):
        raise fail(fn, arg, f"indices in [0, {n})", f"values in [{values.min()}, {values.max()}]")


class KNNKernels:
    """The session-kNN wrappers; ``_lib`` is the loaded library (set by ``Kernels``)."""

    _lib: Any

    def knn_neighbours(self, item_indptr: np.ndarray, item_sessions: np.ndarray,
                       session_indptr: np.ndarray, pair_start: np.ndarray,
                       pair_item: np.ndarray, pair_weight: np.ndarray | None,
                       row_const: np.ndarray, similarity: str, sample_size: int, k: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The session-kNN neighbours of B prefixes: the pool of prefix b is the union of the
        recency-ranked session lists (item_indptr (n_items + 1,), item_sessions (nnz,)
        int32/int64) of its distinct items pair_item[pair_start[b]:pair_start[b + 1]] (its
        ``sample_size`` lowest ranks; 0: all); of its candidates with similarity > 0
        (``similarity`` of :data:`KNN_SIMILARITIES`, from the session sizes (session_indptr
        (S + 1,)), the (P,) pair weights of V-SKNN and the (B,) row constants), the k most
        similar, ties to the lower rank.

        Returns (B + 1,) where each prefix's neighbours begin, then per neighbour (K,), in
        rank order: its session rank, similarity and last shared pair (int64, float64,
        int64; the pair is 0 for the set similarities)."""
        fn = "knn_neighbours"
        need_array(fn, "item_indptr", item_indptr, _NP_I64, (None,), "(n_items + 1,)")
        need_array(fn, "item_sessions", item_sessions, _NP_INDEX, (None,), "(nnz,)")
        need_array(fn, "session_indptr", session_indptr, _NP_I64, (None,), "(S + 1,)")
        need_array(fn, "pair_start", pair_start, _NP_I64, (None,), "(B + 1,)")
        need_array(fn, "pair_item", pair_item, _NP_I64, (None,), "(P,)")
        n_items, n_rows, n_pairs = len(item_indptr) - 1, len(pair_start) - 1, len(pair_item)
        weighted = similarity in _WEIGHTED
        need_array(fn, "pair_weight", pair_weight, _NP_F64, (n_pairs,), "(P,)",
                   optional=not weighted)
        need_array(fn, "row_const", row_const, _NP_F64, (n_rows,), "(B,)")
        if similarity not in KNN_SIMILARITIES:
            raise fail(fn, "similarity", f"one of {', '.join(KNN_SIMILARITIES)}",
                       repr(similarity))
        if sample_size < 0 or k < 1:
            raise fail(fn, "sample_size, k", ">= 0 and >= 1", f"{sample_size}, {k}")
        if n_items < 0 or len(session_indptr) < 1:
            raise fail(fn, "item_indptr, session_indptr", "non-empty", "an empty array")
        _csr_start(fn, "pair_start", pair_start, n_pairs)
        _in_range(fn, "pair_item", pair_item, n_items)
        # room: per prefix, at most k, sample_size and its lists' (cut) lengths together
        lengths = (item_indptr[1:] - item_indptr[:-1])[pair_item]
        if sample_size:
            np.minimum(lengths, sample_size, out=lengths)
        ends = np.r_[0, np.cumsum(lengths)]
        most = min(k, sample_size) if sample_size else k
        room = int(np.minimum(ends[pair_start[1:]] - ends[pair_start[:-1]], most).sum())
        start = np.empty(n_rows + 1, dtype=np.int64)
        session, last = np.empty(room, dtype=np.int64), np.zeros(room, dtype=np.int64)
        sim = np.empty(room, dtype=np.float64)
        n = _knn_status(fn, self._lib.knn_neighbours(
            item_indptr.ctypes.data, n_items, item_sessions.ctypes.data, len(item_sessions),
            int(item_sessions.dtype == np.int64), session_indptr.ctypes.data,
            len(session_indptr) - 1, pair_start.ctypes.data, n_rows, pair_item.ctypes.data,
            pair_weight.ctypes.data if weighted and pair_weight is not None else None,
            row_const.ctypes.data, KNN_SIMILARITIES[similarity], sample_size, k, room,
            start.ctypes.data, session.ctypes.data, sim.ctypes.data,
            last.ctypes.data if weighted else None))
        return start, session[:n], sim[:n], last[:n]

    def knn_item_groups(self, session_indptr: np.ndarray, session_items: np.ndarray,
                        src_row: np.ndarray, src_session: np.ndarray, extra_row: np.ndarray,
                        extra_item: np.ndarray, n_rows: int, n_cols: int, c_bits: int,
                        k_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The grouping of ``ItemSums.of`` (gru4rec.baselines.neighbours) of K1 sources
        (row src_row (K1,), the items of session src_session (K1,) in the session CSR
        session_indptr (S + 1,), session_items (nnz,) int32/int64) then K2 single ones (row
        extra_row (K2,), item extra_item (K2,)); both row lists ascending, all < n_rows.

        Returns the sorted bit fields prefix | item | source (N,), and per distinct (prefix,
        item), ascending, where its run begins (nnz,) and prefix << c_bits | item (nnz,)."""
        fn = "knn_item_groups"
        need_array(fn, "session_indptr", session_indptr, _NP_I64, (None,), "(S + 1,)")
        need_array(fn, "session_items", session_items, _NP_INDEX, (None,), "(nnz,)")
        need_array(fn, "src_row", src_row, _NP_I64, (None,), "(K1,)")
        k1, k2 = len(src_row), len(extra_row)
        need_array(fn, "src_session", src_session, _NP_I64, (k1,), "(K1,)")
        need_array(fn, "extra_row", extra_row, _NP_I64, (None,), "(K2,)")
        need_array(fn, "extra_item", extra_item, _NP_I64, (k2,), "(K2,)")
        if not (0 < n_cols <= 1 << c_bits and k1 + k2 <= 1 << k_bits and c_bits >= 1
                and k_bits >= 1 and max(n_rows - 1, 1).bit_length() + c_bits + k_bits <= 63):
            raise fail(fn, "n_cols, c_bits, k_bits", "bit fields that hold the rows, items "
                       "and sources in 63 bits", f"{n_cols}, {c_bits}, {k_bits}")
        n_sessions = len(session_indptr) - 1
        _in_range(fn, "src_session", src_session, n_sessions)
        room = int((session_indptr[src_session + 1] - session_indptr[src_session]).sum()) + k2
        packed, first = np.empty(room, dtype=np.int64), np.empty(room, dtype=np.int64)
        keys = np.empty(room, dtype=np.int64)
        nnz = _knn_status(fn, self._lib.knn_item_groups(
            session_indptr.ctypes.data, n_sessions, session_items.ctypes.data,
            len(session_items), int(session_items.dtype == np.int64), src_row.ctypes.data,
            src_session.ctypes.data, k1, extra_row.ctypes.data, extra_item.ctypes.data, k2,
            n_rows, n_cols, c_bits, k_bits, room, packed.ctypes.data, first.ctypes.data,
            keys.ctypes.data))
        return packed, first[:nnz], keys[:nnz]

    def knn_item_sums(self, packed: np.ndarray, first: np.ndarray, values: np.ndarray,
                      factor: np.ndarray | None, c_bits: int, k_bits: int) -> np.ndarray:
        """``ItemSums.sum``: per run of the sorted bit fields prefix | item | source
        ``packed`` (N,) (runs begin at ``first`` (nnz,)), the sum of values[source] (times
        factor[item] when given) in np.add.reduceat's order; (nnz,) float64."""
        fn = "knn_item_sums"
        need_array(fn, "packed", packed, _NP_I64, (None,), "(N,)")
        need_array(fn, "first", first, _NP_I64, (None,), "(nnz,)")
        need_array(fn, "values", values, _NP_F64, (None,), "(K,)")
        need_array(fn, "factor", factor, _NP_F64, (None,), "(n_items,)", optional=True)
        if not (1 <= c_bits and 1 <= k_bits and c_bits + k_bits <= 63):
            raise fail(fn, "c_bits, k_bits", "field widths of 1 to 62 bits",
                       f"{c_bits}, {k_bits}")
        out = np.empty(len(first), dtype=np.float64)
        _knn_status(fn, self._lib.knn_item_sums(
            packed.ctypes.data, len(packed), first.ctypes.data, len(first),
            values.ctypes.data, len(values), None if factor is None else factor.ctypes.data,
            0 if factor is None else len(factor), c_bits, k_bits, out.ctypes.data))
        return out
