"""The general training step: any configuration, gradients from autograd.

Every option of the original runs here (all six losses and final activations, any hidden
activation, every optimiser, ``lmbd``, ``grad_cap``). It is also the reference the
hand-written step is tested against, and the base for back-propagation through more than
one time step.
"""

from __future__ import annotations

import torch

from gru4rec.config import GRU4RecConfig
from gru4rec.nn.losses import step_loss
from gru4rec.nn.network import Network
from gru4rec.nn.optim import SparseOptimizer
from gru4rec.nn.steps.batch import StepBatch, StepLoss

__all__ = ["AutogradStep", "Leaf"]

Leaf = tuple[str, torch.Tensor, torch.Tensor]  # table name, distinct rows (U,), leaf (U, C)


class AutogradStep:
    """One step through autograd: the distinct table rows of the batch become leaves, so
    their gradients come out summed per row and only those rows are updated."""

    def __init__(self, net: Network, opt: SparseOptimizer, cfg: GRU4RecConfig) -> None:
        self.net, self.opt, self.cfg = net, opt, cfg
        self.uses_log_q = cfg.logq > 0 and cfg.loss in ("cross-entropy", "xe_logit")
        self._ones = torch.ones(cfg.batch_size, 1, device=net.device)
        for name in net.dense:
            net.params[name].requires_grad_(True)

    def step(self, batch: StepBatch, state: list[torch.Tensor]
             ) -> tuple[StepLoss, list[torch.Tensor]]:
        """See :class:`~gru4rec.nn.steps.batch.Step`; inputs (M,), columns (N,)."""
        loss, state, leaves = self.forward(batch, state)
        torch.autograd.backward(loss)
        self._update(leaves)
        return loss.detach(), [h.detach() for h in state]

    def forward(self, batch: StepBatch, state: list[torch.Tensor]
                ) -> tuple[torch.Tensor, list[torch.Tensor], list[Leaf]]:
        """The step's loss and new state, both attached to the autograd graph, and the item
        table rows it read as leaves (table name, distinct rows (U,), leaf (U, C))."""
        if batch.row_weight is not None:
            raise ValueError("the autograd step takes no row weights (fixed shapes)")
        net, m, y = self.net, batch.n_rows, batch.columns
        shared = net.mode == "shared"
        o_rows, o_inv, o_leaf = self._gather("Wyb", torch.cat([batch.inputs, y])
                                             if shared else y)
        leaves = [("Wyb", o_rows, o_leaf)]
        if shared:
            x_in = o_leaf.index_select(0, o_inv[:m])[:, : net.layers[-1]]
            y_inv = o_inv[m:]
        else:
            name = net.input_table
            i_rows, i_inv, i_leaf = self._gather(name, batch.inputs)
            leaves.append((name, i_rows, i_leaf))
            x_in, y_inv = i_leaf.index_select(0, i_inv), o_inv
        state = net.hidden(x_in, state, training=True)
        # (N, H+1): duplicate columns share a leaf row, so their gradients get summed
        oy = o_leaf.index_select(0, y_inv)
        h_aug = torch.cat([state[-1], self._ones[:m]], 1)  # [h, 1] @ [Wy, by]^T
        loss = step_loss(h_aug @ oy.t(), self.cfg, batch.log_q)  # (M, N) scores
        return loss, state, leaves

    def _gather(self, name: str,
                idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Distinct rows of item table ``name`` as a fresh leaf (U, C), and (K,) positions."""
        rows, inv = torch.unique(idx, return_inverse=True)
        leaf = self.net.params[name].index_select(0, rows).requires_grad_(True)
        return rows, inv, leaf

    def flush(self) -> None:
        """Nothing is pending after a step (see :class:`~gru4rec.nn.steps.batch.Step`)."""

    def _update(self, leaves: list[Leaf]) -> None:
        self._apply({name: (idx, leaf.grad) for name, idx, leaf in leaves
                     if leaf.grad is not None})

    @torch.no_grad()
    def _apply(self, rows: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Update the dense weights from their ``.grad`` and the item tables from ``rows``
        (name -> (distinct rows (U,), their summed gradients (U, C)))."""
        dense = {}
        for name in self.net.dense:
            p = self.net.params[name]
            if p.grad is not None:
                dense[name], p.grad = p.grad, None
        self.opt.regularize(dense, rows)
        for name, part in rows.items():
            self.opt.update_rows(name, [part])
        self.opt.update_dense(dense)
