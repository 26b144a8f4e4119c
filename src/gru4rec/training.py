"""The GRU4Rec training loop: one epoch at a time over a precomputed schedule.

Per step (docs/algorithm.md §2-§6) the trainer takes the step's inputs and targets from the
schedule and the next extra negatives from the sampler, hands them to the training step
(:mod:`gru4rec.nn.steps`) with the carried hidden state, and carries the new state on. The
trainer only orchestrates: the schedule and its state resets, the backend chosen once for
the device, the NaN checks and the progress callback; the step does the arithmetic.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gru4rec.backend import select_backend
from gru4rec.config import GRU4RecConfig
from gru4rec.data.batching import DeviceSchedule, StaticDeviceSchedule, build_schedule
from gru4rec.data.sampling import NegativeSampler
from gru4rec.data.sessions import SessionData
from gru4rec.errors import TrainingDivergedError
from gru4rec.nn.cpu_tuning import tune_malloc
from gru4rec.nn.network import Network
from gru4rec.nn.optim import SparseOptimizer
from gru4rec.nn.steps import StepBatch, make_step

__all__ = ["EpochResult", "StopTraining", "Trainer"]

log = logging.getLogger(__name__)

NAN_CHECK_EVERY = 500  # steps between loss finiteness checks (each check syncs the device)
ProgressFn = Callable[[int, int], None]


class StopTraining(Exception):  # noqa: N818 - a signal, not an error
    """Raised by an ``on_epoch`` callback of :meth:`gru4rec.GRU4Rec.fit` to end the training
    after that epoch; the model is then trained as far as it got (e.g. early stopping)."""


@dataclass(frozen=True)
class EpochResult:
    """Summary of one training epoch."""

    epoch: int
    loss: float
    seconds: float
    n_steps: int
    n_events: int

    @property
    def batches_per_s(self) -> float:
        """Mini-batches (steps) per second."""
        return self.n_steps / self.seconds if self.seconds > 0 else math.inf

    @property
    def events_per_s(self) -> float:
        """Training examples per second."""
        return self.n_events / self.seconds if self.seconds > 0 else math.inf

    def line(self) -> str:
        """The original's epoch line: ``Epoch1 --> loss: 0.257018 (624.72s) [...]``."""
        return (f"Epoch{self.epoch} --> loss: {self.loss:.6f} ({self.seconds:.2f}s) "
                f"[{self.batches_per_s:.2f} mb/s | {self.events_per_s:.0f} e/s]")


class Trainer:
    """Trains a :class:`Network` on session data, one epoch per :meth:`run_epoch` call.

    Args:
        net: the network (parameters are updated in place).
        cfg: the hyperparameters to train with.
        sessions: training sessions in visiting order.
        support: (n_items,) training event count of every item.
        seed: seeds dropout (through torch's global generator) and negative sampling.
        sample_store_size: budget of the negative sample store, in item ids.
        sample_store_on_cpu: keep the sample store in RAM instead of on the device.
        reference: use the autograd step (with the plain losses) and PyTorch ops, which
            every configuration runs on, even where the hand-written backward covers it:
            same results, for verification.
        compiled: let the backend use the compiled CPU kernels when the device is the CPU
            and they are available; False forces PyTorch ops.
        static: keep all B slots in every step, weighting finished ones 0 (fixed shapes,
            same losses); on CUDA the step is then captured and replayed as a CUDA graph.
            Needs a configuration the hand-written step covers.
        opt_state: optimiser state to continue from (:meth:`SparseOptimizer.state_dict` of
            an earlier training, possibly for fewer items: the rows of newer items start
            fresh); None starts every parameter fresh.

    Raises:
        ConfigError: ``static`` with a configuration the hand-written step does not cover.
        ValueError: ``opt_state`` does not fit the network's parameters.
    """

    def __init__(self, net: Network, cfg: GRU4RecConfig, sessions: SessionData,
                 support: np.ndarray, *, seed: int = 42, sample_store_size: int = 10_000_000,
                 sample_store_on_cpu: bool = False, reference: bool = False,
                 compiled: bool = True, static: bool = False,
                 opt_state: dict[str, dict[str, torch.Tensor]] | None = None) -> None:
        self.net, self.cfg = net, cfg
        self.device = net.device
        self.epoch = 0
        torch.manual_seed(seed)  # dropout masks
        if self.device.type == "cpu":
            tune_malloc()
        self.backend = select_backend(self.device, compiled=compiled and not reference)
        self.opt = SparseOptimizer.from_config(net.params, cfg, self.backend)
        if opt_state is not None:
            self.opt.load_state_dict(opt_state)
        self.sessions = sessions
        self._order_rng = np.random.default_rng(seed)  # train_random_order
        self.static = static
        self.sched = self._schedule()
        self.sampler = self._make_sampler(support, seed, sample_store_size,
                                          sample_store_on_cpu)
        self.step = make_step(net, self.opt, cfg, self.backend, reference=reference,
                              static=static)

    def _schedule(self) -> DeviceSchedule | StaticDeviceSchedule:
        """The epoch's schedule: sessions in their given order, or shuffled every epoch."""
        cfg = self.cfg
        order = self._order_rng.permutation(self.sessions.n_sessions) \
            if cfg.train_random_order else None
        sched = build_schedule(self.sessions, cfg.batch_size, order=order,
                               min_active=2 if cfg.n_sample == 0 else 1)
        if self.static:
            return StaticDeviceSchedule(sched, cfg.batch_size, self.device)
        return DeviceSchedule(sched, self.device)

    def _make_sampler(self, support: np.ndarray, seed: int, size: int,
                      on_cpu: bool) -> NegativeSampler:
        store_device = torch.device("cpu") if on_cpu else self.device
        gen = torch.Generator(device=store_device)
        gen.manual_seed(seed + 1)
        return NegativeSampler(support, self.cfg.n_sample, self.cfg.sample_alpha, size,
                               self.device, store_device, gen, max_batches=self.sched.n_steps,
                               backend=self.backend)

    def snapshot(self) -> dict[str, Any]:
        """Everything the next epochs depend on, as CPU tensors and plain values: the epoch
        count, the weights, the optimiser state, the sample store and every random
        generator (epoch order, dropout, sampling). :meth:`restore` on a trainer built the
        same way continues exactly as this one would."""
        store = self.sampler.store
        return {
            "epoch": self.epoch,
            "params": {n: t.detach().cpu().clone() for n, t in self.net.params.items()},
            "optimizer": {n: {k: t.cpu().clone() for k, t in st.items()}
                          for n, st in self.opt.state_dict().items()},
            "order_rng": self._order_rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device)
            if self.device.type == "cuda" else None,
            "sampler": store.state() if store is not None else None,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` (weights and state are copied in place)."""
        self.epoch = int(snap["epoch"])
        with torch.no_grad():  # the autograd step's parameters are leaves that need grad
            for name, t in snap["params"].items():
                self.net.params[name].copy_(t)
        self.opt.load_state_dict(snap["optimizer"])
        self._order_rng.bit_generator.state = snap["order_rng"]
        torch.set_rng_state(snap["torch_rng"])
        if snap["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(snap["cuda_rng"], self.device)
        if self.sampler.store is not None:
            self.sampler.store.restore(snap["sampler"])

    def run_epoch(self, progress: ProgressFn | None = None,
                  on_step: ProgressFn | None = None) -> EpochResult:
        """Train one epoch. ``progress`` is called with (steps done, steps in the epoch)
        every :data:`NAN_CHECK_EVERY` steps and at the end; ``on_step`` after every step
        (it may evaluate the network, which then has that step's weights, or raise to stop
        the training there).

        Raises:
            TrainingDivergedError: the loss became NaN or infinite.
        """
        self.epoch += 1
        if self.cfg.train_random_order and self.epoch > 1:
            self.sched = self._schedule()
        s, start = self.sched, time.perf_counter()
        state = self.net.zero_state(s.first_size)
        total = torch.zeros((), device=self.device)  # loss * M summed on the device: no sync
        for t in range(s.n_steps):
            state = s.carry_state(t, state)
            batch = self._batch(t)
            loss, state = self.step.step(batch, state)
            total += loss * (batch.n_rows if batch.row_weight is None
                             else batch.row_weight.sum())
            if on_step is not None:
                on_step(t + 1, s.n_steps)
            if (t + 1) % NAN_CHECK_EVERY == 0:
                self._check_finite(total)
                if progress is not None:
                    progress(t + 1, s.n_steps)
        self.step.flush()  # the last, unfinished window of back-propagation through time
        self._check_finite(total)
        if progress is not None:
            progress(s.n_steps, s.n_steps)
        mean = total.item() / max(s.n_events, 1)
        return EpochResult(self.epoch, mean, time.perf_counter() - start, s.n_steps,
                           s.n_events)

    def _batch(self, t: int) -> StepBatch:
        """Step t's inputs, score columns, log Q (when the step uses it) and row weights
        (fixed shapes: the finished slots stay, weighted 0)."""
        inp, tgt = self.sched.step(t)
        cols = self.sampler.columns(tgt)
        log_q = self.sampler.log_q(cols, inp.shape[0]) if self.step.uses_log_q else None
        active = self.sched.active(t) if isinstance(self.sched, StaticDeviceSchedule) \
            else None
        return StepBatch(inp, cols, log_q, active)

    def _check_finite(self, total: torch.Tensor) -> None:
        if not bool(torch.isfinite(total)):
            raise TrainingDivergedError(
                f"the training loss became NaN or infinite in epoch {self.epoch}; "
                "lower learning_rate (or momentum) and train again")
