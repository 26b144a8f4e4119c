"""A fixed-shape training step captured once as a CUDA graph and replayed every step.

A GPU runs one GRU4Rec step in microseconds, so launching its ~100 kernels from Python is
the cost. A CUDA graph replays all of them with one launch, but it needs shapes that never
change and no host synchronisation: the hand-written step with row weights (every batch
keeps all B slots) provides both.
"""

from __future__ import annotations

import logging

import torch

from gru4rec.nn.steps.batch import Step, StepBatch, StepLoss

__all__ = ["GraphedStep"]

log = logging.getLogger(__name__)


class GraphedStep:
    """Runs a fixed-shape step as a CUDA graph: the first ``warmup`` calls run eagerly
    (they are real training steps), the next one is captured and replayed, and every later
    call copies its inputs into the graph's buffers and replays. If capturing fails, the
    step keeps running eagerly (with a warning)."""

    def __init__(self, step: Step, warmup: int = 3) -> None:
        self.inner, self.warmup = step, warmup
        self.uses_log_q = step.uses_log_q
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = False
        self._inputs: list[torch.Tensor | None] = []
        self._loss: StepLoss = 0.0
        self._state: list[torch.Tensor] = []

    def flush(self) -> None:
        """Nothing is pending after a step (see :class:`~gru4rec.nn.steps.batch.Step`)."""

    def step(self, batch: StepBatch, state: list[torch.Tensor]
             ) -> tuple[StepLoss, list[torch.Tensor]]:
        """See :class:`~gru4rec.nn.steps.batch.Step`; ``batch.row_weight`` is required."""
        self.calls += 1
        if self.failed or self.calls <= self.warmup:
            return self.inner.step(batch, state)
        if self.graph is None:
            return self._capture(batch, state)
        values = (batch.inputs, batch.columns, batch.log_q, batch.row_weight, *state)
        for buf, value in zip(self._inputs, values, strict=True):
            if buf is not None and value is not None:
                buf.copy_(value)
        self.graph.replay()
        return self._loss, list(self._state)

    def _capture(self, batch: StepBatch, state: list[torch.Tensor]
                 ) -> tuple[StepLoss, list[torch.Tensor]]:
        values = (batch.inputs, batch.columns, batch.log_q, batch.row_weight, *state)
        self._inputs = [None if t is None else t.clone() for t in values]
        a_inp, a_cols, a_lq, a_rw, *a_state = self._inputs
        assert a_inp is not None and a_cols is not None
        static = StepBatch(a_inp, a_cols, a_lq, a_rw)
        graph = torch.cuda.CUDAGraph()
        try:
            torch.cuda.synchronize()
            with torch.cuda.graph(graph):  # records; the replay below executes this step
                self._loss, out_state = self.inner.step(
                    static, [s for s in a_state if s is not None])
                self._state = out_state
        except RuntimeError as exc:  # e.g. an op this PyTorch cannot capture
            log.warning("CUDA graph capture failed (%s); the step runs without it", exc)
            self.failed = True
            return self.inner.step(batch, state)
        self.graph = graph
        graph.replay()
        return self._loss, list(self._state)
