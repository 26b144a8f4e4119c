"""The GRU4Rec estimator: fit, recommend, save and load."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gru4rec.checkpoints import Checkpoints, GracefulStop, data_fingerprint
from gru4rec.config import GRU4RecConfig
from gru4rec.data.events import Events
from gru4rec.data.io import read_events
from gru4rec.data.sessions import ItemIndex, SessionData, group_sequences, group_sessions
from gru4rec.errors import ConfigError, DataError, NotFittedError, TrainingDivergedError
from gru4rec.inference import Recommendations, SessionTracker, check_k, recommend_sessions
from gru4rec.model_file import OptimizerState, read_model_file, write_model_file
from gru4rec.nn.network import Network
from gru4rec.nn.steps import check_static_shapes
from gru4rec.retraining import check_retrain_config, grow
from gru4rec.session_store import SessionStore
from gru4rec.training import EpochResult, StopTraining, Trainer
from gru4rec.user_states import UserStates, final_states

__all__ = ["GRU4Rec", "resolve_device"]

log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when present, else CPU; otherwise the device named.

    Raises:
        ConfigError: the device is unknown, not supported (only cpu and cuda are), or CUDA
            is asked for on a machine without it.
    """
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
    ids <-> indices), ``item_support_`` (training events per item), ``history_`` (epochs),
    ``optimizer_state_`` (what a retraining continues from; None after loading a file saved
    without it), ``user_states_`` (:class:`~gru4rec.user_states.UserStates`: with
    ``session_boundary=carry``, each training user's state at the end of their history;
    else None).

    Raises:
        ConfigError: an unknown, ill-typed or out-of-range hyperparameter (all of them
            listed in one error), a bad or unavailable ``device``, ``sample_store_size`` < 1,
            or ``static_shapes`` with a configuration the hand-written step does not cover.
    """

    net_: Network
    item_index_: ItemIndex
    item_support_: np.ndarray

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
        if static_shapes:
            check_static_shapes(self.config)
        self.history_: list[EpochResult] = []
        self.optimizer_state_: OptimizerState | None = None
        self.user_states_: UserStates | None = None
        self._diverged = False

    # ------------------------------------------------------------------ training

    def fit(self, data: Any, *, session_key: str = "SessionId", item_key: str = "ItemId",
            time_key: str = "Time", user_key: str | None = None, retrain: bool = False,
            fresh_optimizer: bool = False,
            checkpoint_dir: str | Path | None = None, keep_checkpoints: int = 3,
            resume: bool = False,
            on_epoch: Callable[[EpochResult], None] | None = None,
            progress: Callable[[int, int], None] | None = None,
            on_step: Callable[[int, int], None] | None = None) -> GRU4Rec:
        """Train on a click log (path, DataFrame or Events); returns ``self``.

        ``on_epoch`` is called with each epoch's :class:`EpochResult` (raising
        :class:`~gru4rec.training.StopTraining` there ends the training after that epoch,
        the model usable); ``progress`` with
        (steps done, steps in epoch) now and then during an epoch; ``on_step`` with the
        same after every training step (the model, when not retraining, then has that
        step's weights and can be evaluated; an exception it raises stops the training
        there and propagates).

        ``user_key``: the user id column. With ``session_boundary=carry`` (which needs it)
        each user's events are one sequence, trained user-parallel, and afterwards every
        user's state at the end of their history is kept in :attr:`user_states_`; with
        ``reset`` the users are not used in training.

        ``retrain=True`` continues this trained (or loaded) model on ``data`` instead of
        starting over (:mod:`gru4rec.retraining`): items not seen before get new rows in
        every item table, known items keep theirs, the item supports add the new counts,
        and the optimiser continues from :attr:`optimizer_state_` (``fresh_optimizer=True``:
        from fresh state; a model loaded from a file saved without the state retrains from
        fresh state, with a logged notice). The hyperparameters are ``self.config``, which
        may differ from the trained model's only in
        :data:`~gru4rec.retraining.RETRAIN_PARAMS` (``n_epochs``, ``learning_rate``, ...).
        If retraining fails, the model is left as it was.

        ``checkpoint_dir``: write a checkpoint there after every epoch, keeping the newest
        ``keep_checkpoints`` (:mod:`gru4rec.checkpoints`); with ``resume=True`` the training
        first continues from the newest valid one there (none: from the start), and ends
        with the weights a run never interrupted would have (same device and seed).

        Raises:
            DataError: the data cannot be read, is malformed or lacks a column, or has no
                session with 2 or more events.
            ConfigError: ``retrain`` with a changed parameter that is not retrainable, or
                ``fresh_optimizer`` without ``retrain``.
            NotFittedError: ``retrain`` on a model that is not trained.
            ConfigError / DataError (resume): the newest readable checkpoint was written
                with other hyperparameters / for other data; ``resume`` without
                ``checkpoint_dir``, or ``keep_checkpoints`` < 1.
            TrainingDivergedError: the loss became NaN or infinite; the model is then
                unusable (it refuses to recommend, evaluate or save) until trained again
                (when retraining: the model is the one before).
        """
        if fresh_optimizer and not retrain:
            raise ConfigError("fresh_optimizer applies to retrain=True only")
        if resume and checkpoint_dir is None:
            raise ConfigError("resume needs the checkpoint folder (checkpoint_dir)")
        carry = self.config.session_boundary == "carry"
        if carry and user_key is None and not (isinstance(data, Events) and
                                               data.user is not None):
            raise ConfigError("session_boundary=carry trains on users' sequences: give the "
                              "user column (user_key=..., CLI: -uk/--user_key)")
        if carry and retrain:
            raise ConfigError("retraining a sequence-aware model (session_boundary=carry) "
                              "is not supported; train it again on all the data")
        if retrain:
            self.check_fitted()
            check_retrain_config(self.net_.config, self.config)
        events = read_events(data, session_key=session_key, item_key=item_key,
                             time_key=time_key, user_key=user_key)
        ckpt = (checkpoint_dir, keep_checkpoints, resume)
        if retrain:
            return self._retrain(events, fresh_optimizer, on_epoch, progress, on_step, ckpt)
        index, sessions, support = self._training_sessions(events)
        gen = torch.Generator().manual_seed(self.seed)
        net = Network.initialize(len(index), self.config, gen, self.device)
        trainer = Trainer(net, self.config, sessions, support, seed=self.seed,
                          sample_store_size=self.sample_store_size,
                          sample_store_on_cpu=self.sample_store_on_cpu,
                          static=self.static_shapes)
        self.net_, self.item_index_, self.item_support_ = net, index, support
        self.history_, self._diverged = [], False
        self.user_states_ = None
        log.info("training on %d events, %d %s, %d items", len(events), sessions.n_sessions,
                 "user sequences" if carry else "sessions", len(index))
        self._run_epochs(trainer, on_epoch, progress, on_step, ckpt, index, sessions)
        for p in net.params.values():
            p.requires_grad_(False)
        self.optimizer_state_ = trainer.opt.state_dict()
        if carry:
            self.user_states_ = UserStates(ItemIndex(sessions.session_ids),
                                           final_states(net, sessions))
        return self

    def _retrain(self, events: Events, fresh_optimizer: bool,
                 on_epoch: Callable[[EpochResult], None] | None,
                 progress: Callable[[int, int], None] | None,
                 on_step: Callable[[int, int], None] | None,
                 ckpt: tuple[str | Path | None, int, bool]) -> GRU4Rec:
        """``fit(retrain=True)``: train a grown copy, then take it over (all or nothing)."""
        gen = torch.Generator().manual_seed(self.seed)
        grown = grow(Network(self.net_.params, self.config), self.item_index_,
                     self.item_support_, events, self.config, gen)
        # train copies, so that a failed retraining leaves the model as it was (grown item
        # tables already are new tensors)
        for name, t in grown.net.params.items():
            if t is self.net_.params[name]:
                grown.net.params[name] = t.clone()
        state = None if fresh_optimizer else self.optimizer_state_
        if state is None and not fresh_optimizer:
            log.warning("this model has no optimiser state (its file was saved without it): "
                        "retraining starts the optimiser afresh")
        trainer = Trainer(grown.net, self.config, grown.sessions, grown.support,
                          seed=self.seed, sample_store_size=self.sample_store_size,
                          sample_store_on_cpu=self.sample_store_on_cpu,
                          static=self.static_shapes, opt_state=state)
        log.info("retraining on %d events, %d sessions; %d new items (%d in all)",
                 len(events), grown.sessions.n_sessions, grown.n_new, len(grown.index))
        history = self.history_
        self.history_ = []
        try:
            self._run_epochs(trainer, on_epoch, progress, on_step, ckpt, grown.index,
                             grown.sessions)
        except TrainingDivergedError as exc:
            self.history_, self._diverged = history, False
            raise TrainingDivergedError(f"{exc}; the model is the one before retraining") \
                from None
        except BaseException:
            self.history_ = history
            raise
        for p in grown.net.params.values():
            p.requires_grad_(False)
        self.net_, self.item_index_, self.item_support_ = grown.net, grown.index, \
            grown.support
        self.optimizer_state_ = trainer.opt.state_dict()
        return self

    def _training_sessions(self, events: Events) -> tuple[ItemIndex, SessionData, np.ndarray]:
        """The item index, the sessions in visiting order and the (n_items,) support."""
        index = ItemIndex.from_items(events.item)
        if self.config.session_boundary == "carry":
            sessions, _, _ = group_sequences(events, index, time_sort=self.config.time_sort)
        else:
            sessions, _ = group_sessions(events, index, time_sort=self.config.time_sort)
        if sessions.n_examples() == 0:
            raise DataError("the training data has no session with 2 or more events, so "
                            "there is nothing to learn from")
        return index, sessions, np.bincount(sessions.items, minlength=len(index))

    def _run_epochs(self, trainer: Trainer, on_epoch: Callable[[EpochResult], None] | None,
                    progress: Callable[[int, int], None] | None,
                    on_step: Callable[[int, int], None] | None,
                    ckpt: tuple[str | Path | None, int, bool], index: ItemIndex,
                    sessions: SessionData) -> None:
        """The epochs up to ``n_epochs``; a diverged run marks the model unusable and
        re-raises. ``ckpt`` = (checkpoint folder or None, how many to keep, resume): first
        restore the newest valid checkpoint when resuming, then write one after every
        epoch (of the data ``index`` and ``sessions``)."""
        folder, keep, resume = ckpt
        checkpoints = None if folder is None else \
            Checkpoints(folder, self.config, data_fingerprint(index, sessions), keep)
        if checkpoints is not None and resume:
            done = checkpoints.resume(trainer)
            if done is not None:
                self.history_ = done
        with GracefulStop(enabled=checkpoints is not None) as stop:
            while trainer.epoch < self.config.n_epochs:
                try:
                    result = trainer.run_epoch(progress, on_step)
                except TrainingDivergedError:
                    self._diverged = True
                    raise
                self.history_.append(result)
                path = checkpoints.write(trainer, self.history_) if checkpoints else None
                log.info(result.line())
                if on_epoch is not None:
                    try:
                        on_epoch(result)
                    except StopTraining:
                        log.info("training stopped after epoch %d", trainer.epoch)
                        break
                if stop.requested:
                    log.warning("stopped after epoch %d; checkpoint %s written (resume "
                                "continues from it)", trainer.epoch, path)
                    raise KeyboardInterrupt

    def check_fitted(self) -> None:
        """Check that the model can be used (trained or loaded, and not diverged).

        Raises:
            NotFittedError: neither ``fit`` nor ``load`` has run, or training diverged.
        """
        if self._diverged:
            raise NotFittedError("this model diverged during training (NaN loss) and cannot "
                                 "be used; train again with a lower learning_rate")
        if not hasattr(self, "net_"):
            raise NotFittedError("this GRU4Rec model is not trained yet; call fit() or "
                                 "GRU4Rec.load() first")

    @property
    def n_items(self) -> int:
        """Number of items the model knows.

        Raises:
            NotFittedError: the model is not trained (see :meth:`check_fitted`).
        """
        self.check_fitted()
        return len(self.item_index_)

    # ------------------------------------------------------------------ inference

    @torch.inference_mode()
    def recommend(self, sessions: Sequence[Sequence[Any]], k: int = 20, *,
                  exclude_seen: bool = False, exclude: Collection[Any] | None = None,
                  candidates: Collection[Any] | None = None) -> Recommendations:
        """Top-k next items for each session (a sequence of item ids, oldest first).

        Args:
            sessions: list of item-id lists. Unknown ids are skipped (counted per session in
                ``.unknown``, and a warning is logged); a session with no known item gets
                the output bias ranking.
            k: list length, capped at the number of allowed items.
            exclude_seen: never recommend an item of the session itself; when that leaves
                fewer than k items, the row ends with entries scored ``-inf`` (not
                recommendations: keep ``scores > -inf``).
            exclude: item ids never returned. candidates: item ids to choose from (default
                all). Unknown ids in both are ignored (counted in ``.unknown_filter``).

        Returns:
            :class:`~gru4rec.inference.Recommendations`, which unpacks as ``items, scores``:
            (n_sessions, k) item ids (the training ids' type) and (n_sessions, k) float32
            scores, best first.

        Raises:
            DataError: ``sessions`` is not a sequence of item-id lists, or ``exclude`` /
                ``candidates`` is not a collection of item ids.
            ConfigError: ``k`` is not a positive integer.
            NotFittedError: the model is not trained (see :meth:`check_fitted`).
        """
        if isinstance(sessions, str | bytes) or not isinstance(sessions, Sequence):
            raise DataError("sessions must be a list of item-id lists, e.g. [[1, 2], [3]]")
        check_k(k)
        self.check_fitted()
        result = recommend_sessions(self.net_, self.item_index_, sessions, k,
                                    exclude_seen=exclude_seen, exclude=exclude,
                                    candidates=candidates)
        if result.unknown.sum():
            log.warning("skipped %d unknown item id(s) in the sessions", result.unknown.sum())
        if result.unknown_filter:
            log.warning("ignored %d unknown item id(s) in exclude/candidates",
                        result.unknown_filter)
        return result

    def session_tracker(self, store: SessionStore | None = None, *,
                        max_items: int | None = None,
                        model_tag: str | None = None) -> SessionTracker:
        """A :class:`~gru4rec.inference.SessionTracker` for live sessions of this model: each
        event costs one GRU step; with :attr:`user_states_` (a sequence-aware model) a new
        session of a known user starts from the user's training state. ``store`` defaults to
        an in-process LRU (:class:`~gru4rec.session_store.MemoryStore`); ``model_tag`` names
        this model in the states (default: from a hash of its weights), and states of another
        tag in a shared store are rebuilt by replaying their items through this model.

        Raises:
            ConfigError: ``max_items`` is neither None nor a positive integer.
            NotFittedError: the model is not trained (see :meth:`check_fitted`).
        """
        self.check_fitted()
        return SessionTracker(self.net_, self.item_index_, store, max_items=max_items,
                              model_tag=model_tag, user_states=self.user_states_)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path, *, optimizer: bool = True) -> None:
        """Write the model to one file (atomically); load it with :meth:`load`.

        ``optimizer``: include :attr:`optimizer_state_` (when the model has it), which
        ``fit(retrain=True)`` continues from; False writes a slim file for serving (about
        half the size with Adagrad, a third with momentum).

        Raises:
            NotFittedError: the model is not trained (see :meth:`check_fitted`).
            ModelFileError: the folder of ``path`` does not exist.
            OSError: the file cannot be written there (permissions, disk full); no partial
                file is left behind.
        """
        self.check_fitted()
        users = self.user_states_
        write_model_file(path, self.config, self.item_index_.ids, self.item_support_,
                         self.net_.params, self.optimizer_state_ if optimizer else None,
                         None if users is None else (users.users.ids, users.states))

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> GRU4Rec:
        """Load a model written by :meth:`save`; never executes code from the file.

        Raises:
            ConfigError: ``device`` is unknown or not available.
            ModelFileError: the file does not exist, is truncated, corrupted, of another kind
                or format version, or was altered (names, shapes or values of the weights).
        """
        dev = resolve_device(device)
        config, ids, support, params, optimizer, users = read_model_file(path)
        model = cls(config, device=str(dev))
        model.net_ = Network({n: t.to(dev) for n, t in params.items()}, config)
        model.optimizer_state_ = optimizer
        model.item_index_ = ItemIndex(ids)
        model.item_support_ = support
        if users is not None:
            model.user_states_ = UserStates(ItemIndex(users[0]), users[1].to(dev))
        return model
