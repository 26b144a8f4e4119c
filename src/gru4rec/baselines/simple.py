"""Random, Pop and S-Pop: the baselines that learn item counts only (BASELINES.md §1)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from gru4rec.baselines.base import Baseline, Scores, TrainLog, check_state
from gru4rec.baselines.params import Param, integer, optional
from gru4rec.baselines.sparse import SparseRows

__all__ = ["Pop", "Random", "SPop"]

_TOP_N = Param(100, optional(integer(0)), "score only the top_n most popular items (None or "
               "0: every item)")
_SUPPORT_BY = Param(None, optional(str), "None: popularity = events of the item; 'session' "
                    "(or 'SessionId'): the number of sessions with the item")


class Random(Baseline):
    """Uniform random scores, drawn afresh at every call (nothing is learned)."""

    name = "random"
    dense_scores = True

    def _fit(self, log: TrainLog) -> None:
        pass  # nothing to learn

    def _score(self, prefixes: list[np.ndarray]) -> Scores:
        return self._rng.random((len(prefixes), len(self.item_index_)))

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        check_state(state, [])


class Pop(Baseline):
    """The most popular training items, the same list for every session.

    s_j = supp_j / (1 + supp_j) for the ``top_n`` items of highest support (ties at the
    boundary kept in item-index order), 0 for the others.

    Parameters: ``top_n`` (100; None or 0: all items), ``support_by_key`` (None: events;
    ``session``: sessions containing the item).
    """

    name = "pop"
    PARAMS: ClassVar[dict[str, Param]] = {"top_n": _TOP_N, "support_by_key": _SUPPORT_BY}
    pop_: np.ndarray  # (n_items,) float64 popularity score, 0 outside the top_n

    def __init__(self, *, seed: int = 42, **params: object) -> None:
        super().__init__(seed=seed, **params)
        key = self.params["support_by_key"]
        if key not in (None, "session", "SessionId"):
            from gru4rec.errors import ConfigError

            raise ConfigError(f"{self.name} parameter support_by_key: only None (events) or "
                              f"'session' (sessions per item) are supported, got {key!r}")

    def _fit(self, log: TrainLog) -> None:
        self.pop_ = popularity(log, self.params["top_n"], self.params["support_by_key"])

    def _score(self, prefixes: list[np.ndarray]) -> Scores:
        return _same_rows(self.pop_, len(prefixes))

    def _state(self) -> dict[str, np.ndarray]:
        return {"pop": self.pop_}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        check_state(state, ["pop"])
        if state["pop"].shape != (len(self.item_index_),):
            raise ValueError("pop does not match the item ids")
        self.pop_ = state["pop"].astype(np.float64)


class SPop(Pop):
    """Items of the session first, by how often it had them, then the popular items.

    After the prefix x_1..x_c: s_j = n_prefix(j) + pop_j, with pop_j the Pop score (< 1, 0
    outside ``top_n``), so an item seen in the session always beats an unseen one.

    Parameters: ``top_n`` (100; None or 0: all items), ``support_by_key`` (as Pop's).
    """

    name = "spop"

    def _score(self, prefixes: list[np.ndarray]) -> Scores:
        base = _same_rows(self.pop_, len(prefixes))
        lengths = np.array([len(p) for p in prefixes], dtype=np.int64)
        seen_rows = np.repeat(np.arange(len(prefixes), dtype=np.int64), lengths)
        seen = np.concatenate(prefixes) if len(prefixes) else np.zeros(0, dtype=np.int64)
        return SparseRows.from_entries(
            np.r_[base.row_ids(), seen_rows], np.r_[base.indices, seen],
            np.r_[base.data, np.ones(len(seen))], len(prefixes), len(self.pop_))


def popularity(log: TrainLog, top_n: int | None, support_by_key: str | None) -> np.ndarray:
    """(n_items,) supp/(1+supp) for the top_n items by support (stable: ties in index
    order), 0 for the rest; supp counts events, or sessions with ``support_by_key``."""
    if support_by_key is None:
        supp = log.support().astype(np.float64)
    else:  # distinct (session, item) pairs
        pairs = np.unique(log.session_of() * log.n_items + log.items)
        supp = np.bincount(pairs % log.n_items, minlength=log.n_items).astype(np.float64)
    score = supp / (1.0 + supp)
    if top_n:
        out = np.zeros_like(score)
        top = np.argsort(-score, kind="stable")[:top_n]
        out[top] = score[top]
        return out
    return score


def _same_rows(row: np.ndarray, n_rows: int) -> SparseRows:
    """The (n_rows, len(row)) matrix whose every row holds the non-zeros of ``row``."""
    cols = np.flatnonzero(row)
    indptr = np.arange(n_rows + 1, dtype=np.int64) * len(cols)
    return SparseRows(indptr, np.tile(cols, n_rows), np.tile(row[cols], n_rows), len(row))
