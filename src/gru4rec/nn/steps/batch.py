"""What one training step gets (:class:`StepBatch`) and what every step does (:class:`Step`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

__all__ = ["Step", "StepBatch", "StepLoss"]

StepLoss = torch.Tensor | float  # the step's loss: a 0-dim tensor, or a float from a kernel


@dataclass(frozen=True)
class StepBatch:
    """One session-parallel mini-batch (docs/algorithm.md §2, §4).

    Attributes:
        inputs: (M,) item index of each slot's current event.
        columns: (N,) the score columns: the M targets (each slot's next item), then the
            n_sample extra negatives shared by the batch.
        log_q: (N,) log sampling weight of each column (cross-entropy with logQ), or None.
        row_weight: (M,) float 1 for slots that count, 0 for finished ones that fixed-shape
            steps keep in the batch; None when every row counts.
    """

    inputs: torch.Tensor
    columns: torch.Tensor
    log_q: torch.Tensor | None = None
    row_weight: torch.Tensor | None = None

    @property
    def n_rows(self) -> int:
        """M, the slots of this step."""
        return int(self.inputs.shape[0])

    @property
    def targets(self) -> torch.Tensor:
        """(M,) each slot's next item."""
        return self.columns[: self.n_rows]


class Step(Protocol):
    """Forward, backward and parameter update of one mini-batch.

    ``step(batch, state)`` takes the carried hidden state (list of (M, H_i), one per GRU
    layer) and returns the step loss (summed over the rows that count, divided by the
    configured batch size) and the new state. ``flush()`` applies what a step left pending
    (the back-propagation through time of an unfinished window) and is called at the end of
    every epoch. ``uses_log_q`` says whether the step reads ``batch.log_q``.
    """

    uses_log_q: bool

    def step(self, batch: StepBatch, state: list[torch.Tensor]
             ) -> tuple[StepLoss, list[torch.Tensor]]: ...

    def flush(self) -> None: ...
