"""Markov, AR and SR: session-rec's rule models (BASELINES.md §2).

Each model learns a rule matrix R (n_items x n_items): R[a][b] says how strongly item b
follows antecedent a. Only the current item x_c of a prefix is used: s_j = R[x_c][j] (SR can
add the items before it), divided by the row's largest score.

* **Markov** (``markov``): R[a][b] = number of consecutive pairs (a, b) inside sessions,
  repeat clicks (a, a) included; counts are not row-normalised (rank-equivalent to P(b|a)).
* **AR** (``ar``): association rules, order ignored: R[a][b] = sum_s n_s(a) n_s(b) for a != b
  and R[a][a] = sum_s n_s(a) (n_s(a) - 1), n_s(i) = occurrences of i in session s.
* **SR** (``sr``): sequential rules: R[a][b] = sum over events x_t = b and lags d = 1..steps
  back within the session with x_{t-d} = a of w(d), w from ``weighting`` (see
  :data:`WEIGHTINGS`), optionally with an idf weight of a.

**Pruning** keeps, per antecedent a, the ``pruning`` largest rules (an int >= 1), or
|R_a| - floor(|R_a| * pruning) of them (a fraction 0 < pruning < 1), or all (0). Ties keep
the order in which the reference's fit loop first created the rules (Counter.most_common is
stable in insertion order); :func:`prune` receives that order as a key per rule.

Deviations from the reference, and why:

* Output normalisation divides a row by its maximum only when that maximum is > 0; rows whose
  maximum is <= 0 stay as they are. The reference also divides by a negative maximum
  (possible with ``linear-sessionrec``), which reverses the ranking; by 0 it gives NaN, which
  the evaluator turns into 0, so all-zero rows agree.
* ``weighting='linear'`` is the intended max(0, 1 - 0.1 d). The reference's formula,
  1 - 0.1 d for d <= 100 (negative for d > 10, and steps reach 30 in its grids), is offered
  as ``'linear-sessionrec'`` to reproduce old numbers. Both still create a rule for every
  lag, zero-weighted or not, as the reference's loop does (it counts in fractional pruning).
* The log is visited in (session id, time) order after a stable sort (the package's reading
  convention, BASELINES.md §0), not in file order, so "first seen" refers to that order.
* SR's idf is computed on the log it learns from (after ``last_n_days``); the min-max scaling
  runs over the items of that log; when all of them share one idf (max = min, the reference
  gets NaN) every idf' is 0.
* AR is computed from the distinct items of each session (sum_s d_s^2 pairs instead of L_s^2
  position pairs); values and tie order are the same as the reference's position loop.
* An empty prefix scores every item 0. Unknown items never reach the model: ``recommend``
  skips them, so the last *known* item is used where the reference would score all zeros.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from gru4rec.baselines.base import Baseline, Scores, TrainLog, check_state
from gru4rec.baselines.params import Param, choice, integer, number, optional
from gru4rec.baselines.sparse import SparseRows, segment_rank

__all__ = ["AR", "SR", "WEIGHTINGS", "Markov", "lag_weights", "prune"]

# Python floats (math.log10), so a weight is bit-identical to the reference's per-event value
WEIGHTINGS: dict[str, Callable[[int], float]] = {
    "div": lambda d: 1 / d,
    "quadratic": lambda d: 1 / (d * d),
    "log": lambda d: 1 / math.log10(d + 1.7),
    "same": lambda d: 1.0,
    "linear": lambda d: max(0.0, 1 - 0.1 * d),  # intended: 0 from d = 10 on
    "linear-sessionrec": lambda d: 1 - 0.1 * d if d <= 100 else 0.0,  # reference: < 0 at d > 10
}
# (session, item) pairs expanded at once when AR pairs up the items of sessions (bounds memory)
_AR_CHUNK = 1 << 22


def lag_weights(name: str, steps: int) -> np.ndarray:
    """(steps,) float64 weight of lag d = 1..steps under the weighting ``name``."""
    return np.array([WEIGHTINGS[name](d) for d in range(1, steps + 1)], dtype=np.float64)


def _pruning(raw: Any) -> int | float:
    """0 (keep all), a fraction 0 < p < 1, or a whole number of rules >= 1."""
    value: float = number(0)(raw)
    if value >= 1 and not value.is_integer():
        raise ValueError(f"must be 0, a fraction below 1 or a whole number, got {raw!r}")
    return int(value) if value >= 1 or value == 0 else value


def _off_or_int(high: int | None = None) -> Callable[[Any], int | bool]:
    """False (or 0, 'False') for off, True for 1, else an int in [1, high]."""
    num = integer(0, high)

    def convert(raw: Any) -> int | bool:
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            raw = raw.strip().lower() == "true"
        if isinstance(raw, bool):
            return 1 if raw else False
        value: int = num(raw)
        return value if value else False
    return convert


_WEIGHTING_NAMES = tuple(WEIGHTINGS)
_PRUNING = Param(20, _pruning, "rules kept per antecedent: n >= 1 the n largest, 0 < p < 1 "
                 "all but the fraction p, 0 all")
_LAST_N_DAYS = Param(None, optional(integer(0)), "learn only from the events at or after "
                     "midnight (UTC) of the last day minus N days; None: all")


def prune(rules: SparseRows, first: np.ndarray, pruning: float) -> SparseRows:
    """Keep the largest rules of every row (see the module docstring for ``pruning``).

    Args:
        rules: (n_items, n_items) rule values, columns ascending in each row.
        first: (nnz,) the order in which the reference created each rule (ties: lower first).
        pruning: 0, a fraction in (0, 1), or a count >= 1.

    Returns:
        The kept rules, columns ascending.
    """
    if not pruning:
        return rules
    lengths = rules.row_lengths
    if pruning >= 1:
        keep_n = np.minimum(lengths, int(pruning))
    else:
        keep_n = lengths - np.floor(lengths * pruning).astype(np.int64)
    return rules.top_per_row(keep_n, tiebreak=first)


def _reduce(keys: np.ndarray, values: np.ndarray, first: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N,) keys -> distinct keys ascending, the sum of their values and the min of ``first``.

    bincount adds the values in input order, so the sums are bit-identical to the reference's
    when the entries come in the order of its loop (pruning ties depend on exact values)."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.reshape(-1)
    sums = np.bincount(inverse, weights=values.astype(np.float64), minlength=len(uniq))
    firsts = np.full(len(uniq), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(firsts, inverse, first)
    return uniq.astype(np.int64), sums, firsts


def _to_rows(keys: np.ndarray, sums: np.ndarray, n_items: int) -> SparseRows:
    """Distinct ascending keys a * n_items + b with values -> the CSR matrix R[a][b]."""
    rows = keys // n_items
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_items), out=indptr[1:])
    return SparseRows(indptr, keys - rows * n_items, sums, n_items)


def _learn(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, first: np.ndarray,
           n_items: int) -> tuple[SparseRows, np.ndarray]:
    """(N,) rule increments R[rows][cols] += values -> (R, (nnz,) first-seen key per rule)."""
    keys, sums, firsts = _reduce(rows * n_items + cols, values, first)
    return _to_rows(keys, sums, n_items), firsts


class _Rules(Baseline):
    """A rule matrix scored by the prefix's last item (shared by Markov, AR and SR)."""

    rules_: SparseRows  # (n_items, n_items) pruned rules: row a holds R[a][.]
    _padded: SparseRows  # rules_ plus an empty last row, the rule row of "no item"

    def _fit(self, log: TrainLog) -> None:
        rules, first = self._rules(log)
        self._set_rules(prune(rules, first, self.params["pruning"]))

    @abstractmethod
    def _rules(self, log: TrainLog) -> tuple[SparseRows, np.ndarray]:
        """(R before pruning, (nnz,) first-seen key of each rule: ties keep the lower)."""

    def _set_rules(self, rules: SparseRows) -> None:
        self.rules_ = rules
        indptr = np.r_[rules.indptr, rules.indptr[-1]]
        self._padded = SparseRows(indptr, rules.indices, rules.data, rules.n_cols)

    def _back_weights(self) -> list[float]:
        """Weight of the rule row of x_c, x_{c-1}, ... in the score (only x_c here)."""
        return [1.0]

    def _score(self, prefixes: list[np.ndarray]) -> Scores:
        weights = self._back_weights()
        lengths = np.fromiter(map(len, prefixes), dtype=np.int64, count=len(prefixes))
        # one flat array + a sentinel (the padded empty row) instead of a loop per prefix
        flat = np.concatenate([*prefixes, np.array([self.rules_.n_rows], dtype=np.int64)])
        ends = np.cumsum(lengths)
        # rule rows of the item `back` places from the end; the sentinel where there is none
        parts = [self._padded.take_rows(flat[np.where(lengths >= back, ends - back, -1)])
                 for back in range(1, len(weights) + 1)]
        if len(parts) == 1:  # no sum needed: one row each, columns already ascending
            return parts[0].scale_by_max()
        # summed in back order (x_c first), entries of each row ascending by column
        return SparseRows.from_entries(
            np.concatenate([p.row_ids() for p in parts]),
            np.concatenate([p.indices for p in parts]),
            np.concatenate([p.data * w for p, w in zip(parts, weights, strict=True)]),
            len(prefixes), self.rules_.n_cols).scale_by_max()

    def _state(self) -> dict[str, np.ndarray]:
        return {"indptr": self.rules_.indptr, "indices": self.rules_.indices,
                "data": self.rules_.data}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        check_state(state, ["indptr", "indices", "data"])
        n = len(self.item_index_)
        indptr, indices, data = (state[k] for k in ("indptr", "indices", "data"))
        if indptr.shape != (n + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise ValueError("indptr does not match the item ids")
        if indices.shape != (int(indptr[-1]),) or data.shape != indices.shape:
            raise ValueError("indices/data do not match indptr")
        if len(indices) and (indices.min() < 0 or indices.max() >= n):
            raise ValueError("indices out of the item range")
        self._set_rules(SparseRows(indptr.astype(np.int64), indices.astype(np.int64),
                                   data.astype(np.float64), n))


class Markov(_Rules):
    """First-order Markov chain: s_j = T[x_c][j] / max_k T[x_c][k].

    T[a][b] counts the consecutive pairs (a, b) inside training sessions (self-transitions
    included, not row-normalised); the first-seen order of a rule is its first pair's index.

    Parameters: ``pruning`` (20), ``last_n_days`` (None).
    """

    name = "markov"
    PARAMS: ClassVar[dict[str, Param]] = {"pruning": _PRUNING, "last_n_days": _LAST_N_DAYS}

    def _rules(self, log: TrainLog) -> tuple[SparseRows, np.ndarray]:
        log = log.last_days(self.params["last_n_days"])
        session = log.session_of()
        t = np.flatnonzero(session[1:] == session[:-1])  # pair (x_t, x_t+1) in one session
        return _learn(log.items[t], log.items[t + 1], np.ones(len(t)), t, log.n_items)


class AR(_Rules):
    """Association rules (co-occurrence in a session, order ignored): s_j = R[x_c][j] / max.

    R[a][b] = sum_s n_s(a) n_s(b) (a != b), R[a][a] = sum_s n_s(a) (n_s(a) - 1), symmetric.
    The reference visits every position pair u < t of a session; the first-seen order of
    (a, b) is therefore (session, first position of a or b, first position of the other one
    after it), with the second occurrence of a as the partner when a == b.

    Parameters: ``pruning`` (20).
    """

    name = "ar"
    PARAMS: ClassVar[dict[str, Param]] = {"pruning": _PRUNING}

    def _rules(self, log: TrainLog) -> tuple[SparseRows, np.ndarray]:
        found = _Distinct.of(log)
        bounds = _chunks(np.cumsum(found.size ** 2), _AR_CHUNK)  # d_s^2 pairs per session
        parts = [_ar_pairs(found, lo, hi, log.n_items, len(log.items))
                 for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        if len(parts) == 1:
            keys, sums, firsts = parts[0]
        else:  # counts are integers, so summing the chunks' sums is exact
            keys, sums, firsts = _reduce(*(np.concatenate(p) for p in zip(*parts, strict=True)))
        return _to_rows(keys, sums, log.n_items), firsts


@dataclass(frozen=True)
class _Distinct:
    """The E distinct (session, item) pairs of a log, by session then item.

    Attributes:
        item, count, session: (E,) the item, its occurrences in the session, the session.
        first, second: (E,) global event index of its first and second occurrence (-1: none).
        start, size: (S,) where each session's pairs start in E, and their number d_s.
    """

    item: np.ndarray
    count: np.ndarray
    session: np.ndarray
    first: np.ndarray
    second: np.ndarray
    start: np.ndarray
    size: np.ndarray

    @classmethod
    def of(cls, log: TrainLog) -> _Distinct:
        key = log.session_of() * log.n_items + log.items
        order = np.argsort(key, kind="stable")  # stable: occurrences stay in time order
        heads = np.flatnonzero(segment_rank(key[order]) == 0)
        count = np.diff(np.r_[heads, len(order)])
        second = np.where(count > 1, order[np.minimum(heads + 1, len(order) - 1)], -1)
        session = key[order[heads]] // log.n_items
        size = np.bincount(session, minlength=log.n_sessions).astype(np.int64)
        start = np.r_[0, np.cumsum(size)[:-1]].astype(np.int64)
        return cls(log.items[order[heads]], count, session, order[heads], second, start, size)


def _chunks(cum_pairs: np.ndarray, limit: int) -> list[int]:
    """Session boundaries [0, ..., S] with about ``limit`` pairs per chunk (S: len of
    ``cum_pairs``, the running total of pairs; one session may exceed the limit alone)."""
    bounds = [0]
    while bounds[-1] < len(cum_pairs):
        done = int(cum_pairs[bounds[-1] - 1]) if bounds[-1] else 0
        end = int(np.searchsorted(cum_pairs, done + limit, side="right"))
        bounds.append(max(end, bounds[-1] + 1))
    return bounds


def _ar_pairs(found: _Distinct, lo: int, hi: int, n_items: int, n_events: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The AR rules of sessions lo..hi-1, reduced: (keys, sums, first-seen keys)."""
    e = np.arange(found.start[lo], found.start[hi - 1] + found.size[hi - 1], dtype=np.int64)
    reps = found.size[found.session[e]]
    i = np.repeat(e, reps)  # every distinct item of a session with every one of the same
    j = np.repeat(found.start[found.session[e]], reps) + segment_rank(i)
    own = i == j
    value = found.count[i] * np.where(own, found.count[j] - 1, found.count[j])
    low = np.minimum(found.first[i], found.first[j])
    high = np.where(own, found.second[i], np.maximum(found.first[i], found.first[j]))
    keep = value > 0  # a self-rule needs two occurrences
    # (u, t) of the reference's first pair as one int64: u * N + t (fine for N < 3e9 events)
    return _reduce(found.item[i[keep]] * n_items + found.item[j[keep]], value[keep],
                   low[keep] * n_events + high[keep])


class SR(_Rules):
    """Sequential rules: b after a within ``steps`` clicks, weighted by the lag.

    R[a][b] = sum over events x_t = b and lags d = 1..min(steps, t - 1) with x_{t-d} = a of
    v(a, d), where v = w(d) (``idf_weight`` False), w(d) * idf'_a (1) or w(d) + idf'_a (2);
    w is ``weighting`` (:data:`WEIGHTINGS`) and idf'_a = ln(#sessions / supp_a) min-max
    scaled to [0, 1] over the items (supp_a: events of a), a being the antecedent.

    Score: s_j = R[x_c][j] + sum_{d=2}^{m+1} R[x_{c-d+1}][j] * session_weighting(d) for the
    positions that exist (m = ``last_in_session``; False: the first term only), divided by
    the row's maximum.

    Parameters: ``steps`` (10), ``weighting`` ('div'), ``pruning`` (20), ``last_n_days``
    (None), ``idf_weight`` (False), ``last_in_session`` (False), ``session_weighting`` ('div').
    """

    name = "sr"
    PARAMS: ClassVar[dict[str, Param]] = {
        "steps": Param(10, integer(1), "lags d = 1..steps back that make a rule"),
        "weighting": Param("div", choice(*_WEIGHTING_NAMES), "weight w(d) of a rule at lag "
                           "d: " + ", ".join(_WEIGHTING_NAMES)),
        "pruning": _PRUNING,
        "last_n_days": _LAST_N_DAYS,
        "idf_weight": Param(False, _off_or_int(2), "False: w(d); 1: w(d) * idf'; 2: w(d) + "
                            "idf' (idf' of the antecedent, min-max scaled)"),
        "last_in_session": Param(False, _off_or_int(), "False, or m: also add the rules of "
                                 "the m items before the current one"),
        "session_weighting": Param("div", choice(*_WEIGHTING_NAMES), "weight of the rules "
                                   "of the item d - 1 places before the current one"),
    }

    def _rules(self, log: TrainLog) -> tuple[SparseRows, np.ndarray]:
        log = log.last_days(self.params["last_n_days"])
        steps = self.params["steps"]
        # entries in the reference's visiting order: event t, then lag d = 1..min(steps, pos)
        t = np.repeat(np.arange(len(log.items), dtype=np.int64),
                      np.minimum(log.position(), steps))
        d = segment_rank(t) + 1
        ante = log.items[t - d]
        value = lag_weights(self.params["weighting"], steps)[d - 1]
        if self.params["idf_weight"]:
            idf = _scaled_idf(log)[ante]
            value = value * idf if self.params["idf_weight"] == 1 else value + idf
        return _learn(ante, log.items[t], value, np.arange(len(t), dtype=np.int64),
                      log.n_items)

    def _back_weights(self) -> list[float]:
        m = int(self.params["last_in_session"])
        return [1.0, *lag_weights(self.params["session_weighting"], m + 1)[1:].tolist()]


def _scaled_idf(log: TrainLog) -> np.ndarray:
    """(n_items,) ln(#sessions / supp) min-max scaled to [0, 1] over the items of ``log``
    (0 for items absent from it, and for all when they share one value)."""
    supp = log.support()
    seen = supp > 0
    idf = np.zeros(log.n_items)
    idf[seen] = np.log(log.n_sessions / supp[seen])
    low, high = idf[seen].min(), idf[seen].max()
    if high > low:
        idf[seen] = (idf[seen] - low) / (high - low)
    else:
        idf[:] = 0.0
    return idf
