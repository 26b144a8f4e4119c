"""The hand-written training step: the usual configurations, backward written out.

The step is tiny (B=32, 100 units: ~40 MFLOP), so autograd's graph building, its
zero-filled gradient buffers and its per-node dispatch cost more than the arithmetic. This
step computes the same gradients by hand: the GRU backward for truncated BPTT of length 1
(the carried state is a constant), the score products, and the fused loss gradient. The
element-wise arithmetic runs on the backend it is given (compiled CPU kernels or PyTorch
ops, :mod:`gru4rec.backend`). With ``batch.row_weight`` it is the fixed-shape variant: all B
slots at every step, the finished ones weighted 0 (their rows add nothing to the loss or
the gradients, their target columns are no negatives, their table rows are not updated),
which gives the losses of the shrinking batch with shapes a CUDA graph can replay.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gru4rec.backend import TorchOps
from gru4rec.backend.torch_ops import GRULayerCache, OuterRows, RowGrads, dropout_mask
from gru4rec.config import GRU4RecConfig
from gru4rec.nn.network import Network
from gru4rec.nn.optim import SparseOptimizer
from gru4rec.nn.steps.batch import StepBatch, StepLoss

__all__ = ["ManualStep"]


@dataclass
class _Forward:
    """What the backward of a step needs from its forward."""

    oy: torch.Tensor  # (N, H+1) output rows of the score columns
    h_aug: torch.Tensor  # (M, H+1) output state with a column of ones (the bias)
    x_in: list[torch.Tensor | None]  # each layer's input (None: one-hot rows)
    caches: list[GRULayerCache]
    x0_mask: torch.Tensor | None  # dropout on the input embedding


class ManualStep:
    """Forward, backward and Adagrad update of one mini-batch on a backend.

    Args:
        net: the network (updated in place).
        opt: its optimiser (Adagrad).
        cfg: the configuration; :meth:`supports` must hold.
        backend: where the arithmetic runs.
    """

    COVERS = ("cross-entropy on softmax or bpr-max on ELU/linear, with a tanh GRU, Adagrad, "
              "and no smoothing, lmbd or grad_cap")

    def __init__(self, net: Network, opt: SparseOptimizer, cfg: GRU4RecConfig,
                 backend: TorchOps) -> None:
        if not self.supports(cfg):
            raise ValueError(f"the hand-written step covers only {self.COVERS}")
        self.net, self.opt, self.cfg, self.ops = net, opt, cfg, backend
        self.uses_log_q = cfg.loss == "cross-entropy" and cfg.logq > 0
        # [h, 1] rows: the last GRU layer writes h into it, so no cat per step
        self._h_aug = torch.ones(cfg.batch_size, net.layers[-1] + 1, device=net.device)
        self._sample_cols = torch.ones(cfg.n_sample, device=net.device)

    @staticmethod
    def supports(cfg: GRU4RecConfig) -> bool:
        """Whether the hand-written backward covers ``cfg`` (see ``COVERS``)."""
        usual = (cfg.loss == "cross-entropy" and cfg.final_act == "softmax"
                 and cfg.smoothing == 0) or (
            cfg.loss == "bpr-max" and (cfg.final_act == "linear"
                                       or cfg.final_act == f"elu-{cfg.elu_param!r}"))
        return (usual and cfg.hidden_act == "tanh" and cfg.adapt == "adagrad"
                and cfg.lmbd == 0 and cfg.grad_cap == 0)

    def flush(self) -> None:
        """Nothing is pending after a step (see :class:`~gru4rec.nn.steps.batch.Step`)."""

    @torch.no_grad()
    def step(self, batch: StepBatch, state: list[torch.Tensor]
             ) -> tuple[StepLoss, list[torch.Tensor]]:
        """See :class:`~gru4rec.nn.steps.batch.Step`; inputs (M,), columns (N,)."""
        scores, fwd, state = self._scores(batch.inputs, batch.columns, state)  # (M, N)
        col_weight = None
        if batch.row_weight is not None:  # finished slots' targets are no negatives
            col_weight = torch.cat([batch.row_weight, self._sample_cols])
        loss, g = self._loss_and_grad(scores, batch, col_weight)
        d_x0, grads = self._backward(g @ fwd.oy[:, : self.net.layers[-1]], fwd)
        self._update_tables(batch, g, fwd.h_aug, d_x0, col_weight)
        self.opt.update_dense({n: grads[n] for n in self.net.dense})
        return loss, state

    def _loss_and_grad(self, scores: torch.Tensor, batch: StepBatch,
                       col_weight: torch.Tensor | None) -> tuple[StepLoss, torch.Tensor]:
        """Step loss and d loss / d scores (computed in place of ``scores``)."""
        cfg = self.cfg
        if cfg.loss == "cross-entropy":
            return self.ops.cross_entropy_grad(scores, cfg.batch_size, batch.log_q, cfg.logq,
                                               batch.row_weight, col_weight)
        return self.ops.bpr_max_grad(scores, cfg.batch_size, cfg.bpreg, cfg.elu_param,
                                     batch.row_weight, col_weight)

    def _update_tables(self, batch: StepBatch, g: torch.Tensor, h_aug: torch.Tensor,
                       d_x0: torch.Tensor, col_weight: torch.Tensor | None) -> None:
        """Row updates of the item tables: the input rows (separate table first), then
        the output rows, whose gradient is g^T h (the compiled kernel never forms it)."""
        i_name, y, inp = self.net.input_table, batch.columns, batch.inputs
        out: list[RowGrads | OuterRows] = [OuterRows(y, g, h_aug)]
        inputs: list[RowGrads | OuterRows] = [(inp, d_x0)]
        rw = batch.row_weight
        if i_name != "Wyb":  # separate input table; shared: one table, output rows first
            self.opt.update_rows(i_name, inputs, rw)
            inputs, rw = [], None
        weights = None if col_weight is None else (
            col_weight if rw is None else torch.cat([col_weight, rw]))
        self.opt.update_rows("Wyb", out + inputs, weights)

    def _scores(self, inp: torch.Tensor, y: torch.Tensor, state: list[torch.Tensor]
                ) -> tuple[torch.Tensor, _Forward, list[torch.Tensor]]:
        """Forward pass: the (M, N) scores of inputs inp (M,) against columns y (N,), what
        the backward needs, and the new state. Mirrors Network.hidden."""
        net, cfg, p, m = self.net, self.cfg, self.net.params, inp.shape[0]
        oy = p["Wyb"].index_select(0, y)  # (N, H+1) output rows of the columns
        x0 = p[net.input_table].index_select(0, inp)  # (M, 3H_0) or (M, D) rows
        if net.input_table == "Wyb":
            x0 = x0[:, : net.layers[-1]]
        onehot, h_aug = net.mode == "onehot", self._h_aug[:m]
        fwd = _Forward(oy, h_aug, [], [], None)
        new: list[torch.Tensor] = []
        x: torch.Tensor = x0
        for i, h in enumerate(state):
            if i == 0 and onehot:
                vx, x_in = x0 + p["b0"], None
            else:
                if i == 0:
                    fwd.x0_mask = dropout_mask(x0, cfg.dropout_p_embed)
                    x = x0 * fwd.x0_mask if fwd.x0_mask is not None else x0
                vx, x_in = torch.addmm(p[f"b{i}"], x, p[f"Wx{i}"]), x
            drop = cfg.dropout_p_embed if (i == 0 and onehot) else cfg.dropout_p_hidden
            last = i == len(state) - 1
            x, cache = self.ops.gru_forward(vx, h, p[f"Wrz{i}"], p[f"Wh{i}"], drop,
                                            h_aug if last else None)
            fwd.x_in.append(x_in)
            fwd.caches.append(cache)
            new.append(x)
        return h_aug @ oy.t(), fwd, new

    def _backward(self, d_out: torch.Tensor, fwd: _Forward
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """GRU stack backward from d loss / d output (M, H_last).

        Returns d loss / d x0 (the input rows: (M, 3H_0) one-hot rows or (M, D) embeddings)
        and the gradients of the dense parameters.
        """
        p = self.net.params
        grads: dict[str, torch.Tensor] = {}
        for i in range(len(fwd.caches) - 1, -1, -1):
            d_vx, grads[f"Wh{i}"], grads[f"Wrz{i}"], grads[f"b{i}"] = \
                self.ops.gru_backward(d_out, fwd.caches[i], p[f"Wh{i}"])
            x = fwd.x_in[i]
            if x is None:  # one-hot first layer: the gradient of its rows is d_vx itself
                return d_vx, grads
            grads[f"Wx{i}"] = x.t() @ d_vx
            d_out = d_vx @ p[f"Wx{i}"].t()
        if fwd.x0_mask is not None:
            d_out = d_out * fwd.x0_mask
        return d_out, grads
