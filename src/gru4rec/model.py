"""The GRU4Rec estimator: fit, recommend, save and load."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gru4rec.config import GRU4RecConfig
from gru4rec.data.io import read_events
from gru4rec.data.sessions import ItemIndex, group_sessions
from gru4rec.errors import ConfigError, DataError, NotFittedError, TrainingDivergedError
from gru4rec.model_file import read_model_file, write_model_file
from gru4rec.nn.network import Network
from gru4rec.nn.step import FastStep
from gru4rec.training import EpochResult, Trainer

__all__ = ["GRU4Rec", "resolve_device"]

log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when present, else CPU; a bad or unavailable device -> ConfigError."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r} ({exc}); use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available on this "
                          "machine; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r} is not supported; use cpu, cuda or cuda:N")
    return dev


class GRU4Rec:
    """GRU4Rec session-based recommender with scikit-learn manners.

    Args:
        config: hyperparameters (defaults of the official PyTorch version when omitted).
        device: ``cpu``, ``cuda``, ``cuda:N``; default CUDA when available.
        seed: makes training reproducible (same seed on CPU -> identical epoch losses).
        sample_store_size: negative sample buffer, in item ids (the original ``-ss``).
        sample_store_on_cpu: keep that buffer in RAM rather than on the device.
        static_shapes: train on fixed-shape steps (finished slots masked at the end of an
            epoch; same losses), which on CUDA are captured and replayed as CUDA graphs.
            Only for configurations the hand-written step covers.
        **params: hyperparameters overriding ``config`` (e.g. ``loss="bpr-max"``).

    Learned state (after ``fit`` or ``load``): ``net_`` (the network), ``item_index_`` (item
    ids <-> indices), ``item_support_`` (training events per item), ``history_`` (epochs).
    """

    def __init__(self, config: GRU4RecConfig | None = None, *, device: str | None = None,
                 seed: int = 42, sample_store_size: int = 10_000_000,
                 sample_store_on_cpu: bool = False, static_shapes: bool = False,
                 **params: Any) -> None:
        config = config or GRU4RecConfig()
        self.config = config.replace(**params) if params else config
        self.device = resolve_device(device)
        if sample_store_size < 1:
            raise ConfigError(f"sample_store_size must be >= 1, got {sample_store_size}")
        self.seed = seed
        self.sample_store_size = sample_store_size
        self.sample_store_on_cpu = sample_store_on_cpu
        self.static_shapes = static_shapes
        if static_shapes and not FastStep.supports(self.config):
            raise ConfigError("static_shapes needs a configuration the hand-written step "
                              f"covers: {FastStep.COVERS}")
        self.history_: list[EpochResult] = []
        self._diverged = False

    # ------------------------------------------------------------------ training

    def fit(self, data: Any, *, session_key: str = "SessionId", item_key: str = "ItemId",
            time_key: str = "Time",
            on_epoch: Callable[[EpochResult], None] | None = None,
            progress: Callable[[int, int], None] | None = None) -> GRU4Rec:
        """Train on a click log (path, DataFrame or Events); returns ``self``.

        ``on_epoch`` is called with each epoch's :class:`EpochResult`; ``progress`` with
        (steps done, steps in epoch) during an epoch.
        """
        events = read_events(data, session_key=session_key, item_key=item_key,
                             time_key=time_key)
        index = ItemIndex.from_items(events.item)
        sessions, _ = group_sessions(events, index, time_sort=self.config.time_sort)
        if sessions.n_examples() == 0:
            raise DataError("the training data has no session with 2 or more events, so "
                            "there is nothing to learn from")
        support = np.bincount(sessions.items, minlength=len(index))
        gen = torch.Generator().manual_seed(self.seed)
        net = Network.initialize(len(index), self.config, gen, self.device)
        trainer = Trainer(net, sessions, support, seed=self.seed,
                          sample_store_size=self.sample_store_size,
                          sample_store_on_cpu=self.sample_store_on_cpu,
                          static=self.static_shapes)
        self.net_, self.item_index_, self.item_support_ = net, index, support
        self.history_, self._diverged = [], False
        log.info("training on %d events, %d sessions, %d items", len(events),
                 sessions.n_sessions, len(index))
        for _ in range(self.config.n_epochs):
            try:
                result = trainer.run_epoch(progress)
            except TrainingDivergedError:
                self._diverged = True
                raise
            self.history_.append(result)
            log.info(result.line())
            if on_epoch is not None:
                on_epoch(result)
        for p in net.params.values():
            p.requires_grad_(False)
        return self

    def check_fitted(self) -> None:
        """Raise NotFittedError unless the model is trained (and did not diverge)."""
        if self._diverged:
            raise NotFittedError("this model diverged during training (NaN loss) and cannot "
                                 "be used; train again with a lower learning_rate")
        if not hasattr(self, "net_"):
            raise NotFittedError("this GRU4Rec model is not trained yet; call fit() or "
                                 "GRU4Rec.load() first")

    @property
    def n_items(self) -> int:
        """Number of items the model knows."""
        self.check_fitted()
        return len(self.item_index_)

    # ------------------------------------------------------------------ inference

    @torch.inference_mode()
    def session_states(self, sessions: Sequence[Sequence[Any]]) -> tuple[torch.Tensor, int]:
        """Replay each session from a zero state; unknown item ids are skipped.

        Returns:
            (n_sessions, H_last) output states and the number of skipped unknown events.
        """
        self.check_fitted()
        idx = [self.item_index_.lookup(np.asarray(list(s))) if len(s) else
               np.zeros(0, dtype=np.int64) for s in sessions]
        n_unknown = int(sum((i < 0).sum() for i in idx))
        idx = [i[i >= 0] for i in idx]
        lengths = np.array([len(i) for i in idx], dtype=np.int64)
        net, n = self.net_, len(idx)
        state = net.zero_state(n)
        pad = np.zeros((n, int(lengths.max(initial=0))), dtype=np.int64)
        for row, items in enumerate(idx):
            pad[row, : len(items)] = items
        pad_t = torch.as_tensor(pad, device=net.device)
        for t in range(pad.shape[1]):
            rows = torch.as_tensor(np.flatnonzero(lengths > t), device=net.device)
            sub = [h.index_select(0, rows) for h in state]
            sub = net.hidden(net.input_rows(pad_t[rows, t]), sub, training=False)
            for h, new in zip(state, sub, strict=True):
                h.index_copy_(0, rows, new)
        return state[-1], n_unknown

    @torch.inference_mode()
    def recommend(self, sessions: Sequence[Sequence[Any]], k: int = 20
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k next items for each session (a sequence of item ids, oldest first).

        Unknown item ids are skipped (a warning is logged with their count); a session with
        no known item gets the output bias ranking.

        Returns:
            (n_sessions, k) item ids (same type as the training ids) and (n_sessions, k)
            float32 scores, best first.
        """
        if isinstance(sessions, str | bytes) or not isinstance(sessions, Sequence):
            raise DataError("sessions must be a list of item-id lists, e.g. [[1, 2], [3]]")
        if not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        h, n_unknown = self.session_states(sessions)
        if n_unknown:
            log.warning("skipped %d unknown item id(s) in the sessions", n_unknown)
        scores = self.net_.score_all(h)
        top = torch.topk(scores, min(k, self.n_items), dim=1)
        ids = self.item_index_.ids[top.indices.cpu().numpy()]
        return ids, top.values.float().cpu().numpy()

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        """Write the model to one file (atomically); load it with :meth:`load`."""
        self.check_fitted()
        write_model_file(path, self.config, self.item_index_.ids, self.item_support_,
                         self.net_.params)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> GRU4Rec:
        """Load a model written by :meth:`save`; never executes code from the file."""
        dev = resolve_device(device)
        config, ids, support, params = read_model_file(path)
        model = cls(config, device=str(dev))
        model.net_ = Network({n: t.to(dev) for n, t in params.items()}, config)
        model.item_index_ = ItemIndex(ids)
        model.item_support_ = support
        return model
