"""The training step on fixed shapes, and its capture as a CUDA graph.

A GPU runs one GRU4Rec step in microseconds, so launching its ~100 kernels from Python is
the cost. A CUDA graph replays all of them with one launch, but it needs shapes that never
change and no host synchronisation. :class:`StaticStep` is :class:`FastStep` on all B slots
at every step: at the end of an epoch the finished slots stay in the batch, masked (their
rows add nothing to the loss or the gradients, their target columns are no negatives, their
table rows are not updated), which gives the losses of the shrinking batch. Duplicate rows
are summed by sorting instead of ``unique``. :class:`GraphedStep` captures it once and
replays it every step.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from gru4rec.nn.losses import bpr_max_value_and_grad, negative_mask, xe_value_and_grad
from gru4rec.nn.network import Network
from gru4rec.nn.optim import SparseOptimizer
from gru4rec.nn.step import FastStep

__all__ = ["GraphedStep", "StaticStep"]

log = logging.getLogger(__name__)


class StaticStep(FastStep):
    """Forward, backward and update of B slots, ``active`` ones only, with fixed shapes."""

    def __init__(self, net: Network, opt: SparseOptimizer) -> None:
        super().__init__(net, opt, native=None)
        cfg = net.config
        self._neg = negative_mask(cfg.batch_size, cfg.batch_size + cfg.n_sample, net.device)
        self._sample_cols = torch.ones(cfg.n_sample, device=net.device)

    @torch.no_grad()
    def __call__(self, inp: torch.Tensor, y: torch.Tensor,  # type: ignore[override]
                 state: list[torch.Tensor], log_q: torch.Tensor | None,
                 active: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """inp (B,) inputs, y (N,) score columns (the B targets, then the samples), state
        [(B, H_i)], log_q (N,) or None, active (B,) float 0/1. Returns the step loss
        (0-dim) and the new state."""
        cfg, i_name = self.cfg, self.net.input_table
        scores, fwd, state = self._scores(inp, y, state)  # (B, N)
        cols = torch.cat([active, self._sample_cols])  # (N,) 1 = a column that counts
        rows = active.unsqueeze(1)
        if cfg.loss == "cross-entropy":  # finished slots' targets leave the softmax
            scores.masked_fill_(cols.unsqueeze(0) == 0, float("-inf"))
            loss, g = xe_value_and_grad(scores, cfg.batch_size, log_q, cfg.logq, rows)
        else:
            loss, g = bpr_max_value_and_grad(scores, cfg.batch_size, cfg.bpreg,
                                             cfg.elu_param, self._neg * cols, rows)
        d_oy, d_x0, grads = self._grads(g, fwd)
        if i_name == "Wyb":  # one table: output rows first, then inputs (bias column: 0)
            self.opt.step_rows_static("Wyb", torch.cat([y, inp]),
                                      torch.cat([d_oy, F.pad(d_x0, (0, 1))]),
                                      torch.cat([cols, active]))
        else:
            self.opt.step_rows_static(i_name, inp, d_x0, active)
            self.opt.step_rows_static("Wyb", y, d_oy, cols)
        self.opt.step_dense_all(self.dense, [grads[n] for n in self.dense])
        return loss, state


class GraphedStep:
    """Runs a :class:`StaticStep` as a CUDA graph: the first ``warmup`` calls run eagerly
    (they are real training steps), the next one is captured and replayed, and every later
    call copies its inputs into the graph's buffers and replays. If capturing fails, the
    step keeps running eagerly (with a warning)."""

    def __init__(self, step: StaticStep, warmup: int = 3) -> None:
        self.step, self.warmup = step, warmup
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = False

    def __call__(self, inp: torch.Tensor, y: torch.Tensor, state: list[torch.Tensor],
                 log_q: torch.Tensor | None,
                 active: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Same contract as :meth:`StaticStep.__call__`."""
        self.calls += 1
        if self.failed or self.calls <= self.warmup:
            return self.step(inp, y, state, log_q, active)
        if self.graph is None:
            return self._capture(inp, y, state, log_q, active)
        for buf, value in zip(self._inputs, (inp, y, log_q, active, *state), strict=True):
            if buf is not None:
                buf.copy_(value)
        self.graph.replay()
        return self._loss, list(self._state)

    def _capture(self, inp: torch.Tensor, y: torch.Tensor, state: list[torch.Tensor],
                 log_q: torch.Tensor | None,
                 active: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self._inputs = [None if t is None else t.clone()
                        for t in (inp, y, log_q, active, *state)]
        a_inp, a_y, a_lq, a_act, *a_state = self._inputs
        graph = torch.cuda.CUDAGraph()
        try:
            torch.cuda.synchronize()
            with torch.cuda.graph(graph):  # records; the replay below executes this step
                self._loss, out_state = self.step(a_inp, a_y, a_state, a_lq, a_act)
                self._state = out_state
        except RuntimeError as exc:  # e.g. an op this PyTorch cannot capture
            log.warning("CUDA graph capture failed (%s); the step runs without it", exc)
            self.failed = True
            return self.step(inp, y, state, log_q, active)
        self.graph = graph
        graph.replay()
        return self._loss, list(self._state)
