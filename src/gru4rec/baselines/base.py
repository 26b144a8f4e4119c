"""What every baseline shares: the training log it learns from, the estimator manners
(``fit -> self``, batch-first ``recommend``, ``save`` / ``load``) and the scoring contract the
one evaluator (:func:`gru4rec.evaluate`) relies on.

The contract: :meth:`Baseline.score` takes prefixes of sessions (known item indices, oldest
first) and returns, for each, a score for every item as the next one: a dense (B, n_items)
array or :class:`~gru4rec.baselines.sparse.SparseRows` (items not stored score 0). It sees
nothing but the prefix, never the target or its time, and its result depends only on the
prefix (and the random generator of the models that draw). Higher is better; ties are left
to the evaluator's tie mode.

Training data is read like GRU4Rec's and sorted by (session id, time) with a stable sort,
since the rules and kNN models visit the log in that order (BASELINES.md §0). The item index
is the order of first appearance in the file, as GRU4Rec's.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from gru4rec.baselines.params import Param, check_params
from gru4rec.baselines.sparse import SparseRows
from gru4rec.data.events import Events
from gru4rec.data.io import read_events
from gru4rec.data.sessions import ItemIndex
from gru4rec.errors import ConfigError, DataError, ModelFileError, NotFittedError

__all__ = ["BASELINE_FORMAT", "Baseline", "Scores", "TrainLog", "build_log"]

log = logging.getLogger(__name__)

BASELINE_FORMAT = "gru4rec-baseline"
BASELINE_FORMAT_VERSION = 2  # 2: with the checksum (gru4rec.model_file's policy)
Scores = np.ndarray | SparseRows  # (B, n_items): dense, or sparse with 0 where not stored
# prefixes scored per call by recommend (bounds the dense (B, n_items) block)
_RECOMMEND_BATCH = 256
B = TypeVar("B", bound="Baseline")


@dataclass(frozen=True)
class TrainLog:
    """The training events as item indices, sessions back to back in session-id order, each
    in time order.

    Attributes:
        items: (N,) int64 item indices.
        time: (N,) float64 event times, aligned with ``items``.
        offsets: (S + 1,) int64; session s spans ``items[offsets[s]:offsets[s+1]]``.
        n_items: catalogue size (every distinct training item).
    """

    items: np.ndarray
    time: np.ndarray
    offsets: np.ndarray
    n_items: int

    @property
    def n_sessions(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def lengths(self) -> np.ndarray:
        """(S,) events per session."""
        return np.diff(self.offsets)

    def session_of(self) -> np.ndarray:
        """(N,) int64 session index of every event."""
        return np.repeat(np.arange(self.n_sessions, dtype=np.int64), self.lengths)

    def position(self) -> np.ndarray:
        """(N,) int64 0-based position of every event within its session."""
        starts = np.repeat(self.offsets[:-1], self.lengths)
        return np.asarray(np.arange(len(self.items), dtype=np.int64) - starts)

    def end_time(self) -> np.ndarray:
        """(S,) time of each session's last event."""
        if not self.n_sessions:
            return np.zeros(0)
        return np.asarray(self.time[self.offsets[1:] - 1])

    def support(self) -> np.ndarray:
        """(n_items,) int64 training events per item."""
        return np.bincount(self.items, minlength=self.n_items).astype(np.int64)

    def last_days(self, n_days: int | None) -> TrainLog:
        """The events at or after midnight (UTC) of the day ``n_days`` days before the last
        event's day (times read as Unix seconds); ``None``: every event. Sessions left empty
        vanish; the catalogue stays the same."""
        if n_days is None or not len(self.time):
            return self
        last = datetime.fromtimestamp(float(self.time.max()), tz=UTC)
        start = datetime(last.year, last.month, last.day, tzinfo=UTC) - timedelta(days=n_days)
        keep = self.time >= start.timestamp()
        lengths = np.bincount(self.session_of()[keep], minlength=self.n_sessions)
        lengths = lengths[lengths > 0]
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return TrainLog(self.items[keep], self.time[keep], offsets, self.n_items)


def build_log(events: Events, index: ItemIndex) -> TrainLog:
    """Sort ``events`` by (session id, time), stable, and map the items through ``index``
    (every item must be in it)."""
    _, codes = np.unique(events.session, return_inverse=True)
    codes = codes.reshape(-1)
    order = np.lexsort((events.time, codes))  # stable: equal times keep the file order
    codes = codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else \
        np.zeros(0, dtype=np.int64)
    offsets = np.r_[starts, len(codes)].astype(np.int64)
    items = index.lookup(events.item[order])
    return TrainLog(items, events.time[order].astype(np.float64), offsets, len(index))


class Baseline(ABC):
    """Base class of the baselines: scikit-learn manners, the GRU4Rec estimator's API.

    Args:
        seed: the seed of the models that draw random numbers (Random, BPR-MF, random
            neighbour sampling); the others ignore it.
        **params: hyperparameters (the model's ``PARAMS``), as values or their text.

    Learned state (after ``fit`` or ``load``): ``item_index_`` (item ids <-> indices),
    ``item_support_`` (training events per item), and the model's own arrays.

    Raises:
        ConfigError: unknown or bad hyperparameters, all listed in one error.
    """

    name: ClassVar[str]
    PARAMS: ClassVar[dict[str, Param]] = {}
    dense_scores: ClassVar[bool] = False  # True: score() returns dense arrays
    item_index_: ItemIndex
    item_support_: np.ndarray

    def __init__(self, *, seed: int = 42, **params: Any) -> None:
        self.params: dict[str, Any] = check_params(self.name, self.PARAMS, params)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def get_params(self) -> dict[str, Any]:
        """Every hyperparameter with its value (defaults included)."""
        return dict(self.params)

    def __repr__(self) -> str:
        changed = {n: v for n, v in self.params.items() if v != self.PARAMS[n].default}
        return f"{type(self).__name__}({', '.join(f'{n}={v!r}' for n, v in changed.items())})"

    # ------------------------------------------------------------------ training

    def fit(self: B, data: Any, *, session_key: str = "SessionId", item_key: str = "ItemId",
            time_key: str = "Time") -> B:
        """Learn from a click log (path, DataFrame or Events); returns ``self``.

        Raises:
            DataError: the data cannot be read, lacks a column, or has no events.
        """
        events = read_events(data, session_key=session_key, item_key=item_key,
                             time_key=time_key)
        if not len(events):
            raise DataError("the training data has no events")
        index = ItemIndex.from_items(events.item)
        train = build_log(events, index)
        self._rng = np.random.default_rng(self.seed)
        self._fit(train)
        self.item_index_ = index
        self.item_support_ = train.support()
        return self

    @abstractmethod
    def _fit(self, log: TrainLog) -> None:
        """Learn the model's arrays from the sorted log."""

    def check_fitted(self) -> None:
        """Raise NotFittedError unless ``fit`` or ``load`` has run."""
        if not hasattr(self, "item_index_"):
            raise NotFittedError(f"this {type(self).__name__} model is not trained yet; call "
                                 "fit() or load() first")

    @property
    def n_items(self) -> int:
        """Number of items the model knows (raises NotFittedError before ``fit``)."""
        self.check_fitted()
        return len(self.item_index_)

    # ------------------------------------------------------------------ scoring

    def score(self, prefixes: Sequence[np.ndarray]) -> Scores:
        """Scores of every item as the next one after each prefix.

        Args:
            prefixes: B arrays of known item indices, oldest first (may be empty).

        Returns:
            (B, n_items): a float array, or :class:`SparseRows` (0 where not stored).
        """
        self.check_fitted()
        return self._score([np.asarray(p, dtype=np.int64) for p in prefixes])

    @abstractmethod
    def _score(self, prefixes: list[np.ndarray]) -> Scores:
        """See :meth:`score` (the prefixes are int64 arrays here)."""

    def recommend(self, sessions: Sequence[Sequence[Any]], k: int = 20, *,
                  exclude_seen: bool = False, exclude: Collection[Any] | None = None,
                  candidates: Collection[Any] | None = None) -> Any:
        """Top-k next items for each session (a sequence of item ids, oldest first); the
        same contract as :meth:`gru4rec.GRU4Rec.recommend` (unknown ids skipped and counted
        in ``.unknown``; ``exclude_seen``, ``exclude``, ``candidates``).

        Returns:
            :class:`~gru4rec.inference.Recommendations` (unpacks as ``items, scores``).

        Raises:
            DataError: ``sessions`` is not a sequence of item-id lists, or ``exclude`` /
                ``candidates`` is not a collection of item ids.
            ConfigError: ``k`` is not a positive integer.
            NotFittedError: the model is not trained.
        """
        import torch

        from gru4rec.inference import ItemFilter, Recommendations, check_k, lookup, top_k

        if isinstance(sessions, str | bytes) or not isinstance(sessions, Sequence):
            raise DataError("sessions must be a list of item-id lists, e.g. [[1, 2], [3]]")
        k = check_k(k)
        self.check_fitted()
        filt = ItemFilter.build(self.item_index_, exclude, candidates, torch.device("cpu"))
        raw = [lookup(self.item_index_, s) for s in sessions]
        unknown = np.array([int((i < 0).sum()) for i in raw], dtype=np.int64)
        idx = [i[i >= 0] for i in raw]
        parts = [top_k(torch.from_numpy(_dense(self.score(idx[lo:lo + _RECOMMEND_BATCH]))),
                       k, filt, idx[lo:lo + _RECOMMEND_BATCH] if exclude_seen else None)
                 for lo in range(0, len(idx), _RECOMMEND_BATCH)]
        width = min(k, len(self.item_index_) if filt is None else len(filt.cols))
        ind = np.concatenate([p[0] for p in parts]) if parts else \
            np.zeros((0, width), dtype=np.int64)
        vals = np.concatenate([p[1] for p in parts]) if parts else \
            np.zeros((0, width), dtype=np.float32)
        if unknown.sum():
            log.warning("skipped %d unknown item id(s) in the sessions", unknown.sum())
        n_filter = filt.n_unknown if filt is not None else 0
        if n_filter:
            log.warning("ignored %d unknown item id(s) in exclude/candidates", n_filter)
        return Recommendations(self.item_index_.ids[ind], vals, unknown, n_filter)

    # ------------------------------------------------------------------ persistence

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """The learned arrays (besides the item index and support), by name."""

    @abstractmethod
    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        """Take the learned arrays back; raise ValueError when a name, dtype or shape does
        not fit the hyperparameters and ``self.item_index_``."""

    def save(self, path: str | Path) -> None:
        """Write the model to one file (atomically): tensors and plain values only, so
        :meth:`load` never runs code from it.

        Raises:
            NotFittedError: the model is not trained.
            ModelFileError: the folder of ``path`` does not exist.
            OSError: the file cannot be written (nothing partial is left behind).
        """
        import torch

        from gru4rec import __version__
        from gru4rec.model_file import ids_to_file, payload_digest, save_atomically

        self.check_fitted()
        path = Path(path)
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise ModelFileError(f"cannot save the model to {path}: folder {folder} does not "
                                 "exist")
        payload = {
            "format": BASELINE_FORMAT, "format_version": BASELINE_FORMAT_VERSION,
            "gru4rec_version": __version__, "model": self.name, "seed": self.seed,
            "params": dict(self.params), "item_ids": ids_to_file(self.item_index_.ids),
            "item_support": torch.as_tensor(self.item_support_, dtype=torch.int64),
            "state": {n: torch.from_numpy(np.ascontiguousarray(a))
                      for n, a in self._state().items()},
        }
        payload["checksum"] = payload_digest(payload)
        save_atomically(payload, path)

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Load a baseline written by :meth:`save` (``Baseline.load`` reads any baseline,
        ``Pop.load`` only a Pop); never executes code from the file.

        Raises:
            ModelFileError: the file does not exist, is not a baseline file (of this model),
                has another format version, or is damaged or altered.
        """
        from gru4rec.baselines import make_baseline

        payload = _read_payload(Path(path))
        name = payload.get("model")
        if cls is not Baseline and name != cls.name:
            raise ModelFileError(f"{path} holds a {name!r} model, not {cls.name!r}; load it "
                                 "with Baseline.load")
        try:
            model = make_baseline(str(name), payload["params"], seed=int(payload["seed"]))
            model._restore(payload)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"{path} is damaged or was altered: {exc}") from None
        return model

    def _restore(self, payload: dict[str, Any]) -> None:
        """Set the learned state from a loaded payload (ValueError when it does not fit)."""
        from gru4rec.model_file import ids_from_file

        ids = ids_from_file(payload["item_ids"], "item_ids")
        support = payload["item_support"].numpy()
        if support.shape != (len(ids),):
            raise ValueError("item_support does not match item_ids")
        self.item_index_ = ItemIndex(ids)
        self.item_support_ = support.astype(np.int64)
        state = payload["state"]
        if not isinstance(state, dict):
            raise ValueError("state must be a dict of tensors")
        self._load_state({n: t.numpy() for n, t in state.items()})


def _read_payload(path: Path) -> dict[str, Any]:
    """The checked dict of a baseline file."""
    from gru4rec.model_file import check_integrity, load_payload

    payload = load_payload(path)
    if not isinstance(payload, dict) or payload.get("format") != BASELINE_FORMAT:
        raise ModelFileError(f"{path} is not a gru4rec baseline model file")
    check_integrity(payload, path, BASELINE_FORMAT_VERSION)
    return payload


def _dense(scores: Scores) -> np.ndarray:
    """(B, n_items) float32 array of ``scores``."""
    if isinstance(scores, SparseRows):
        return scores.toarray(np.float32)
    return np.asarray(scores, dtype=np.float32)


def check_state(state: dict[str, np.ndarray], names: Sequence[str]) -> None:
    """ValueError unless ``state`` has exactly ``names``."""
    if set(state) != set(names):
        raise ValueError(f"expected the arrays {sorted(names)}, found {sorted(state)}")


def unsupported(model: str, params: dict[str, Any], off: dict[str, Any]) -> None:
    """ConfigError for options of the reference that are not offered: ``off`` maps each
    such parameter to the reason; a true value of it is refused with that reason."""
    bad = [f"{model}: {n}={params[n]!r} is not supported ({why})"
           for n, why in off.items() if params.get(n)]
    if bad:
        raise ConfigError("; ".join(bad), bad)
