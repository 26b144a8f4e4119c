"""V-SKNN: session kNN that weights the prefix by position (session-rec's ``VMContextKNN``,
BASELINES.md §3).

S is the prefix, or its last ``last_n_clicks`` entries, of length L (repeats counted). The
candidate pool is that of SKNN, the union over *all* prefix items, sampled as in
:mod:`~gru4rec.baselines.neighbours`. Item i of S weighs w_i = f(p, L), p its *last*
1-based position in S (``weighting``):

* div p/L; quadratic (p/L)²; log 1/log₁₀(L − p + 1.7); same 1;
* linear max(0, 1 − 0.1(L − p));
* linear-sessionrec 1 − 0.1(L − p) if p ≤ 10, else 0 (the reference's formula).

With P = set(S) and A = I(n): ``vec`` sim = Σ_{i∈P∩A} w_i / |P|, ``cosine`` sim =
Σ_{i∈P∩A} w_i / (√Σ_{i∈P} w_i² · √|A|). The k most similar sessions with sim > 0 are the
neighbours N_k. For n ∈ N_k, d_n = L − max{p : x_p ∈ A} + 1 (1 when it holds the current
item), and g = ``weighting_score`` of d: div 1/d; quadratic 1/d²; log 1/log₁₀(d + 1.7);
same 1; linear max(0, 1 − 0.1d); linear-sessionrec 1 − 0.1d if d ≤ 100, else 0. Then

    s_j = Σ_{n ∈ N_k, j ∈ A} sim(n)·g(d_n)·(1 + λ·idf_j),   idf_j = ln(#sessions / supp_j)

with λ = ``idf_weighting`` (True: 1; False: no factor), supp_j the training events of j and
#sessions the training sessions (both after ``last_n_days``). ``remind=False``: items of P
score 0. ``push_reminders``: s_j *= n_S(j) + 1 for j in S. ``normalize``: each row divided
by its maximum where that is > 0. ``last_n_days``: train on the events from midnight (UTC)
of the day N days before the last event's day.

Deviations from the reference, and why:

* ``linear`` is the intended linear decay, clipped at 0; the reference's formula (a cut at
  p ≤ 10 resp. d ≤ 100 that zeroes the most recent items of long sessions and lets early
  ones go negative) is offered as 'linear-sessionrec', to reproduce old numbers.
* Equal similarities: the more recent session wins a neighbour slot (the reference keeps a
  set's arbitrary order). The weights of a session's shared items are summed in position
  order (oldest first), so equal sets of shared items give bit-equal similarities.
* A cosine prefix whose weights are all 0 scores 0 everywhere (the reference divides by 0).
* An item that is unknown, or has no session after ``last_n_days``, adds no candidates
  (the reference: the same, an empty set).
* Not offered: ``extend`` (adds test sessions during the evaluation with wall-clock time),
  ``weighting_time`` and ``dwelling_time`` (they read the *target* event's timestamp),
  ``add_reminders`` (forces prefix items to ranks of a hard-coded top 20),
  ``idf_weighting_session`` (undocumented), and ``similarity='jaccard'`` (the reference
  crashes on it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from gru4rec.baselines import knn_kernel
from gru4rec.baselines.base import TrainLog, check_state, unsupported
from gru4rec.baselines.knn_kernel import Neighbours
from gru4rec.baselines.neighbours import KNN_PARAMS, Pool, SessionIndex, SessionKNN, flatten, top_k
from gru4rec.baselines.params import Param, boolean, choice, integer, optional, switch_or_number
from gru4rec.baselines.sparse import SparseRows

__all__ = ["VSKNN"]

Weight = Callable[[np.ndarray, np.ndarray], np.ndarray]
# position weights f(p, L) of the prefix items
_POSITION: dict[str, Weight] = {
    "div": lambda p, n: p / n,
    "quadratic": lambda p, n: (p / n) ** 2,
    "log": lambda p, n: 1.0 / np.log10(n - p + 1.7),
    "same": lambda p, n: np.ones(len(p)),
    "linear": lambda p, n: np.maximum(0.0, 1.0 - 0.1 * (n - p)),
    "linear-sessionrec": lambda p, n: np.where(p <= 10, 1.0 - 0.1 * (n - p), 0.0),
}
# score weights g(d) of a neighbour whose latest shared item lies d steps back
_DISTANCE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "div": lambda d: 1.0 / d,
    "quadratic": lambda d: 1.0 / d ** 2,
    "log": lambda d: 1.0 / np.log10(d + 1.7),
    "same": lambda d: np.ones(len(d)),
    "linear": lambda d: np.maximum(0.0, 1.0 - 0.1 * d),
    "linear-sessionrec": lambda d: np.where(d <= 100, 1.0 - 0.1 * d, 0.0),
}


def _similarity_name(raw: Any) -> str:
    """'vec' or 'cosine'; 'jaccard' is refused with the reason."""
    if raw == "jaccard":
        raise ValueError("'jaccard' is not supported (the reference calls it with the wrong "
                         "arguments and crashes); use vec or cosine")
    value: str = choice("vec", "cosine")(raw)
    return value


_WEIGHTS = choice(*_POSITION)


class VSKNN(SessionKNN):
    """Session kNN with position weights (module docstring: formulas and deviations).

    Parameters: ``k`` (100), ``sample_size`` (1000), ``sampling`` ('recent'), ``similarity``
    (vec, cosine), ``weighting`` / ``weighting_score`` (div, quadratic, log, same, linear,
    linear-sessionrec), ``idf_weighting`` (False or λ), ``remind`` (True),
    ``push_reminders`` (False), ``normalize`` (True), ``last_n_days`` (None),
    ``last_n_clicks`` (None); the rest of the reference's options are refused.
    """

    name = "vsknn"
    PARAMS: ClassVar[dict[str, Param]] = {
        **KNN_PARAMS,
        "similarity": Param("vec", _similarity_name, "session similarity: vec or cosine"),
        "weighting": Param("div", _WEIGHTS, "position weight of the prefix items"),
        "weighting_score": Param("div", _WEIGHTS, "weight of a neighbour by the distance of "
                                 "its latest shared item"),
        "idf_weighting": Param(False, switch_or_number(0), "False, or λ of (1 + λ·idf)"),
        "remind": Param(True, boolean, "let the prefix items be scored"),
        "push_reminders": Param(False, boolean, "multiply prefix items by their count + 1"),
        "add_reminders": Param(False, boolean, "not supported"),
        "extend": Param(False, boolean, "not supported"),
        "normalize": Param(True, boolean, "divide each row by its maximum"),
        "last_n_days": Param(None, optional(integer(0)), "train on the last N days only"),
        "last_n_clicks": Param(None, optional(integer(1)), "use the last N prefix clicks"),
        "dwelling_time": Param(False, boolean, "not supported"),
        "weighting_time": Param(False, boolean, "not supported"),
        "idf_weighting_session": Param(False, boolean, "not supported"),
    }
    idf_: np.ndarray  # (n_items,) ln(#sessions / supp), 0 for items without events

    def __init__(self, *, seed: int = 42, **params: Any) -> None:
        super().__init__(seed=seed, **params)
        unsupported(self.name, self.params, {
            "extend": "it adds test sessions to the model during the evaluation, stamped "
                      "with the wall-clock time",
            "weighting_time": "it reads the timestamp of the target event",
            "dwelling_time": "experimental in the reference, and it reads the timestamp of "
                             "the target event",
            "add_reminders": "it forces prefix items into a hard-coded top 20",
            "idf_weighting_session": "undocumented in the reference"})

    def _fit(self, log: TrainLog) -> None:
        log = log.last_days(self.params["last_n_days"])
        self.index_ = SessionIndex.build(log)
        supp = log.support().astype(np.float64)
        self.idf_ = np.where(supp > 0, np.log(max(log.n_sessions, 1) / np.maximum(supp, 1.0)),
                             0.0)

    def _state(self) -> dict[str, np.ndarray]:
        return {**super()._state(), "idf": self.idf_}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        check_state(state, ["session_indptr", "session_items", "idf"])
        idf = state["idf"]
        if idf.shape != (len(self.item_index_),) or idf.dtype != np.float64:
            raise ValueError("idf does not match the item ids")
        super()._load_state({n: a for n, a in state.items() if n != "idf"})
        self.idf_ = idf

    def _score_chunk(self, prefixes: list[np.ndarray]) -> SparseRows:
        prefix = _Prefixes.of(prefixes, self.params["last_n_clicks"], len(self.item_index_))
        w = np.where(prefix.pos > 0, _POSITION[self.params["weighting"]](
            prefix.pos.astype(np.float64), prefix.span[prefix.row].astype(np.float64)), 0.0)
        found = self._neighbours(prefix, w)
        last = found.last
        dist = (prefix.span[prefix.row[last]] - prefix.pos[last] + 1).astype(np.float64)
        sums = self._neighbour_sums(found, len(prefixes))
        idf = self.params["idf_weighting"]
        data = sums.sum(found.sim * _DISTANCE[self.params["weighting_score"]](dist),
                        1.0 + idf * self.idf_ if idf else None, knn_kernel.native())
        in_s = prefix.pos > 0  # P = set(S)
        at = sums.find(prefix.row[in_s], prefix.item[in_s])
        if self.params["push_reminders"]:  # s_j *= n_S(j) + 1
            data[at[at >= 0]] *= prefix.count[in_s][at >= 0] + 1.0
        out = sums.matrix(data, None if self.params["remind"] else at[at >= 0])
        return out.scale_by_max() if self.params["normalize"] else out

    def _neighbours(self, prefix: _Prefixes, w: np.ndarray) -> Neighbours:
        """The neighbours of the prefixes, given the (P,) pair weights ``w`` (0 outside S);
        in C where the kernels serve (:meth:`_pool_kernels`), else with numpy (the same)."""
        n_rows, k = len(prefix.span), self.params["k"]
        if self.params["similarity"] == "vec":  # sim = Σ w / max(|P|, 1)
            const = np.maximum(np.bincount(prefix.row[prefix.pos > 0], minlength=n_rows),
                               1).astype(np.float64)
        else:  # sim = Σ w / (sqrt(Σ_P w²) sqrt|A|)
            const = np.sqrt(np.bincount(prefix.row, w * w, minlength=n_rows))
        kernels = self._pool_kernels(self.params["similarity"])
        if kernels is not None:
            return knn_kernel.neighbours(
                kernels, self.index_, prefix.row, prefix.item, n_rows,
                "vec" if self.params["similarity"] == "vec" else "weighted-cosine", w, const,
                self.params["sample_size"], k)
        pool = self._pool(prefix.row, prefix.item, n_rows)
        last = pool.last()  # pairs ascend by position: the latest shared item
        sim = self._similarity(pool, last, w, const)
        kept = top_k(pool.row, sim, k, n_rows)
        return Neighbours(pool.row[kept], pool.session(kept), sim[kept], last[kept])

    def _similarity(self, pool: Pool, last: np.ndarray, w: np.ndarray, const: np.ndarray
                    ) -> np.ndarray:
        """(C,) similarity of every candidate, from the (P,) pair weights ``w`` (0 outside
        S), (C,) ``last`` (:meth:`Pool.last`) and the (B,) constant of each prefix."""
        total = pool.weight(w, last)
        if self.params["similarity"] == "vec":
            return np.asarray(total / const[pool.row])
        session = pool.session(np.arange(len(pool.row)))
        denom = const[pool.row] * np.sqrt(self.index_.session_sizes[session].astype(np.float64))
        return np.where(denom > 0, total / np.where(denom > 0, denom, 1.0), 0.0)


@dataclass(frozen=True)
class _Prefixes:
    """A chunk of prefixes as their distinct (prefix, item) pairs, ordered by prefix, then
    by the item's last 1-based position in S (0: not in S), so that a candidate's last
    shared pair is its latest item.

    Attributes:
        row, item, pos, count: (P,) prefix, item, last position in S, occurrences in S.
        span: (B,) L, the length of each prefix's S.
    """

    row: np.ndarray
    item: np.ndarray
    pos: np.ndarray
    count: np.ndarray
    span: np.ndarray

    @classmethod
    def of(cls, prefixes: list[np.ndarray], last_n: int | None, n_items: int) -> _Prefixes:
        rows, items, back = flatten(prefixes)
        span = np.bincount(rows, minlength=len(prefixes))
        if last_n is not None:
            span = np.minimum(span, last_n)
        pos = np.where(back < span[rows], span[rows] - back, 0)  # 1-based in S, 0: outside
        keys = rows * n_items + items
        order = np.lexsort((pos, keys))  # small (the prefixes' length): lexsort is fine
        keys, pos, in_s = keys[order], pos[order], pos[order] > 0
        new = np.r_[True, keys[1:] != keys[:-1]] if len(keys) else in_s
        count = np.add.reduceat(in_s.astype(np.int64), np.flatnonzero(new)) \
            if len(keys) else pos
        last = np.r_[new[1:], True] if len(keys) else in_s  # the largest position
        keys, pos = keys[last], pos[last]
        by_pos = np.lexsort((pos, keys // n_items))
        return cls(keys[by_pos] // n_items, keys[by_pos] % n_items, pos[by_pos],
                   count[by_pos], span)
