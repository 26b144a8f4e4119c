"""Truncated back-propagation through time: one update per ``bptt`` consecutive steps.

The original GRU4Rec updates after every step, with the incoming hidden state treated as a
constant (``bptt=1``). Here the steps of a window of ``bptt`` run forward with the hidden
state attached to the autograd graph from one step to the next (through the schedule's
resets and dropped slots, which zero or remove rows of it); the summed loss of the window is
back-propagated through all of its steps, and the weights are updated once. The state is
detached after the update, so memory holds at most one window's graph. Sampling, losses,
regularisation, gradient capping and every optimiser are those of :class:`AutogradStep`: an
item-table row read in several steps of the window gets the sum of its gradients and one
update.
"""

from __future__ import annotations

import torch

from gru4rec.config import GRU4RecConfig
from gru4rec.nn.network import Network
from gru4rec.nn.optim import SparseOptimizer
from gru4rec.nn.steps.autograd import AutogradStep, Leaf
from gru4rec.nn.steps.batch import StepBatch, StepLoss

__all__ = ["BPTTStep"]


class BPTTStep(AutogradStep):
    """:class:`AutogradStep` that updates once per ``cfg.bptt`` steps (see the module)."""

    def __init__(self, net: Network, opt: SparseOptimizer, cfg: GRU4RecConfig) -> None:
        super().__init__(net, opt, cfg)
        self.window = cfg.bptt
        self._losses: list[torch.Tensor] = []
        self._leaves: list[Leaf] = []

    def step(self, batch: StepBatch, state: list[torch.Tensor]
             ) -> tuple[StepLoss, list[torch.Tensor]]:
        """See :class:`~gru4rec.nn.steps.batch.Step`. Mid-window the returned state is
        still attached to the window's graph; after the window's update it is detached."""
        loss, state, leaves = self.forward(batch, state)
        self._losses.append(loss)
        self._leaves.extend(leaves)
        if len(self._losses) == self.window:
            self.flush()
            state = [h.detach() for h in state]
        return loss.detach(), state

    def flush(self) -> None:
        """Back-propagate the pending steps of the window and update (also at the end of
        an epoch, where the last window may be shorter)."""
        if not self._losses:
            return
        torch.autograd.backward(torch.stack(self._losses).sum())
        rows = _merge(self._leaves)
        self._losses, self._leaves = [], []
        self._apply(rows)


def _merge(leaves: list[Leaf]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per item table, the distinct rows the window read (U,) and their gradients summed
    over the window's steps (U, C)."""
    parts: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for name, idx, leaf in leaves:
        if leaf.grad is not None:
            parts.setdefault(name, []).append((idx, leaf.grad))
    rows = {}
    for name, pieces in parts.items():
        idx = torch.cat([i for i, _ in pieces])
        grads = torch.cat([g for _, g in pieces])
        distinct, inv = torch.unique(idx, return_inverse=True)
        summed = grads.new_zeros(len(distinct), grads.shape[1]).index_add_(0, inv, grads)
        rows[name] = (distinct, summed)
    return rows
