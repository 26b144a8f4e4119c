"""The GRU4Rec training loop: one epoch at a time over a precomputed schedule.

Per step (ALGORITHM §2-§6): take the step's inputs and targets from the schedule and the
next extra negatives from the sample store, gather the distinct item-table rows they touch,
run the GRU stack from the carried hidden state, score only those columns, back-propagate
one step, and apply Adagrad to the dense weights and to the touched rows. The hidden state
is carried, detached, to the next step. The step itself is ``nn.step.FastStep`` (backward
written by hand); ``reference=True`` runs the same step through autograd instead.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from gru4rec.data.batching import DeviceSchedule, StaticDeviceSchedule, build_schedule
from gru4rec.data.sampling import SampleStore
from gru4rec.data.sessions import SessionData
from gru4rec.errors import ConfigError, TrainingDivergedError
from gru4rec.native import kernels
from gru4rec.nn.cpu_tuning import tune_malloc
from gru4rec.nn.losses import negative_mask, step_loss
from gru4rec.nn.network import Network
from gru4rec.nn.optim import SparseOptimizer
from gru4rec.nn.static_step import GraphedStep, StaticStep
from gru4rec.nn.step import FastStep

__all__ = ["EpochResult", "Trainer"]

log = logging.getLogger(__name__)

NAN_CHECK_EVERY = 500  # steps between loss finiteness checks (each check syncs the device)
ProgressFn = Callable[[int, int], None]


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
        return self.n_steps / self.seconds if self.seconds > 0 else math.inf

    @property
    def events_per_s(self) -> float:
        return self.n_events / self.seconds if self.seconds > 0 else math.inf

    def line(self) -> str:
        """The original's epoch line: ``Epoch1 --> loss: 0.257018 (624.72s) [...]``."""
        return (f"Epoch{self.epoch} --> loss: {self.loss:.6f} ({self.seconds:.2f}s) "
                f"[{self.batches_per_s:.2f} mb/s | {self.events_per_s:.0f} e/s]")


class Trainer:
    """Trains a :class:`Network` on session data, one epoch per :meth:`run_epoch` call.

    Args:
        net: the network (parameters are updated in place).
        sessions: training sessions in visiting order.
        support: (n_items,) training event count of every item.
        seed: seeds dropout (through torch's global generator) and negative sampling.
        sample_store_size: budget of the negative sample store, in item ids.
        sample_store_on_cpu: keep the sample store in RAM instead of on the device.
        reference: use the autograd step (with the plain losses), which every configuration
            runs on, even where the hand-written backward covers it: same results, for
            verification.
        native: use the compiled CPU kernels (fused loss and optimiser passes) when the
            device is the CPU and they are available; False forces PyTorch ops only.
        static: keep all B slots in every step, masking finished ones (fixed shapes, same
            losses); on CUDA the step is then captured and replayed as a CUDA graph. Needs a
            configuration the hand-written step covers.
    """

    def __init__(self, net: Network, sessions: SessionData, support: np.ndarray, *,
                 seed: int = 42, sample_store_size: int = 10_000_000,
                 sample_store_on_cpu: bool = False, reference: bool = False,
                 native: bool = True, static: bool = False) -> None:
        self.net, self.cfg = net, net.config
        self.device = net.device
        self.epoch = 0
        torch.manual_seed(seed)  # dropout masks
        if self.device.type == "cpu":
            tune_malloc()
        cfg = self.cfg
        use_native = native and not reference and self.device.type == "cpu"
        self.native = kernels() if use_native else None
        self.opt = SparseOptimizer.from_config(net.params, cfg, self.native)
        self.sessions = sessions
        self._order_rng = np.random.default_rng(seed)  # train_random_order
        self.static = static
        self.sched = self._schedule()
        self.store = self._make_store(support, seed, sample_store_size, sample_store_on_cpu)
        self.log_support = torch.as_tensor(np.log(np.maximum(support, 1)), dtype=torch.float32,
                                           device=self.device)
        self._masks: dict[int, torch.Tensor] = {}
        self._log_q_buf = torch.empty(cfg.batch_size + cfg.n_sample)
        self._ones = torch.ones(cfg.batch_size, 1, device=self.device)
        # the hand-written step covers the usual configurations; autograd does the rest
        self.generic = reference or not FastStep.supports(cfg)
        if static and self.generic:
            raise ConfigError("static_shapes needs a configuration the hand-written step "
                              f"covers: {FastStep.COVERS}")
        self._fast: Callable[..., tuple[torch.Tensor | float, list[torch.Tensor]]] = \
            FastStep(net, self.opt, self.native)
        if static:
            graphed = self.device.type == "cuda"  # one launch per step instead of ~100
            self._fast = GraphedStep(StaticStep(net, self.opt)) if graphed \
                else StaticStep(net, self.opt)
        for name in net.dense:
            net.params[name].requires_grad_(self.generic)

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

    def _make_store(self, support: np.ndarray, seed: int, size: int,
                    on_cpu: bool) -> SampleStore | None:
        if self.cfg.n_sample == 0:
            return None
        dev = torch.device("cpu") if on_cpu else self.device
        gen = torch.Generator(device=dev)
        gen.manual_seed(seed + 1)
        return SampleStore(support, self.cfg.n_sample, self.cfg.sample_alpha, size, dev, gen,
                           max_batches=self.sched.n_steps, native=self.native)

    def run_epoch(self, progress: ProgressFn | None = None) -> EpochResult:
        """Train one epoch; raises TrainingDivergedError on a NaN/inf loss."""
        self.epoch += 1
        if self.cfg.train_random_order and self.epoch > 1:
            self.sched = self._schedule()
        s, start = self.sched, time.perf_counter()
        state = self.net.zero_state(s.first_size)
        total = torch.zeros((), device=self.device)  # loss * M summed on the device: no sync
        step = self._step if self.generic else self._fast
        for t in range(s.n_steps):
            state = s.carry_state(t, state)
            inp, tgt = s.step(t)
            samples = self.store.next().to(self.device, non_blocking=True) \
                if self.store else None
            y = tgt if samples is None else torch.cat([tgt, samples])  # (N,) score columns
            log_q, mask = self._loss_inputs(y, inp.shape[0])
            if self.static:  # all B slots; the finished ones are masked, not dropped
                active = s.active(t)  # type: ignore[union-attr]
                loss, state = step(inp, y, state, log_q, active)
                total += loss * active.sum()
            else:
                loss, state = step(inp, y, state, log_q, mask)
                total += loss * inp.shape[0]
            if (t + 1) % NAN_CHECK_EVERY == 0:
                self._check_finite(total)
                if progress is not None:
                    progress(t + 1, s.n_steps)
        self._check_finite(total)
        if progress is not None:
            progress(s.n_steps, s.n_steps)
        mean = total.item() / max(s.n_events, 1)
        return EpochResult(self.epoch, mean, time.perf_counter() - start, s.n_steps,
                           s.n_events)

    def _check_finite(self, total: torch.Tensor) -> None:
        if not bool(torch.isfinite(total)):
            raise TrainingDivergedError(
                f"the training loss became NaN or infinite in epoch {self.epoch}; "
                "lower learning_rate (or momentum) and train again")

    def _gather(self, name: str,
                idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Distinct rows of item table ``name`` as a fresh leaf (U, C), and (K,) positions."""
        rows, inv = torch.unique(idx, return_inverse=True)
        leaf = self.net.params[name].index_select(0, rows).requires_grad_(True)
        return rows, inv, leaf

    def _loss_inputs(self, y: torch.Tensor, m: int
                     ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """log Q of the N score columns (cross-entropy with logq) and the (M, N) negative
        mask (bpr-max, hand-written step on PyTorch ops) of a step with M targets; None
        where the step does not use them."""
        cfg = self.cfg
        if cfg.loss == "bpr-max" and not self.generic and self.native is None:
            if m not in self._masks:
                self._masks[m] = negative_mask(m, y.shape[0], self.device)
            return None, self._masks[m]
        if cfg.logq <= 0 or cfg.loss not in ("cross-entropy", "xe_logit"):
            return None, None
        if self.native is not None:  # one pass instead of gather, slices, multiply, cat
            out = self._log_q_buf[: y.shape[0]]
            self.native.log_q_columns(out, y, m, self.log_support, cfg.sample_alpha)
            return out, None
        log_q = self.log_support[y]  # in-batch columns: support; sampled: support**alpha
        return torch.cat([log_q[:m], cfg.sample_alpha * log_q[m:]]), None

    def _step(self, inp: torch.Tensor, y: torch.Tensor, state: list[torch.Tensor],
              log_q: torch.Tensor | None,
              mask: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Autograd step for any configuration: inp (M,), y (N,) score columns (targets, then
        samples), state list of (M, H_i); ``mask`` is unused (the plain losses find the
        positives themselves)."""
        net, cfg, m = self.net, self.cfg, inp.shape[0]
        n_h = net.layers[-1]
        shared = net.mode == "shared"
        o_rows, o_inv, o_leaf = self._gather("Wyb", torch.cat([inp, y]) if shared else y)
        leaves = [("Wyb", o_rows, o_leaf)]
        if shared:
            x_in, y_inv = o_leaf.index_select(0, o_inv[:m])[:, :n_h], o_inv[m:]
        else:
            name = net.input_table
            i_rows, i_inv, i_leaf = self._gather(name, inp)
            leaves.append((name, i_rows, i_leaf))
            x_in, y_inv = i_leaf.index_select(0, i_inv), o_inv
        state = net.hidden(x_in, state, training=True)
        # (N, H+1): duplicate columns share a leaf row, so their gradients get summed
        oy = o_leaf.index_select(0, y_inv)
        h_aug = torch.cat([state[-1], self._ones[:m]], 1)  # [h, 1] @ [Wy, by]^T
        scores = h_aug @ oy.t()  # (M, N)
        loss = step_loss(scores, cfg, log_q)
        loss.backward()
        self._update(leaves)
        return loss.detach(), [h.detach() for h in state]

    @torch.no_grad()
    def _update(self, leaves: list[tuple[str, torch.Tensor, torch.Tensor]]) -> None:
        dense = {}
        for name in self.net.dense:
            p = self.net.params[name]
            if p.grad is not None:
                dense[name], p.grad = p.grad, None
        self.opt.step(dense, {name: (rows, leaf.grad) for name, rows, leaf in leaves
                              if leaf.grad is not None})
