"""One GRU4Rec training step with a hand-written backward pass (the fast path).

The step is tiny (B=32, 100 units: ~40 MFLOP), so autograd's graph building, its
zero-filled gradient buffers and its per-node dispatch cost more than the arithmetic. This
module computes exactly the same gradients by hand: the GRU backward for truncated BPTT of
length 1 (the carried state is a constant), the score matmuls, and the fused loss gradient.
``training.Trainer(..., reference=True)`` runs the autograd version of the same step;
tests require both to give the same losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gru4rec.config import GRU4RecConfig
from gru4rec.native import Kernels
from gru4rec.nn.losses import bpr_max_value_and_grad, xe_value_and_grad
from gru4rec.nn.network import Network
from gru4rec.nn.optim import SparseOptimizer

__all__ = ["FastStep"]


@dataclass
class _LayerCache:
    """What one GRU layer's backward needs from its forward."""

    x: torch.Tensor | None  # (M, n_in) input (None: one-hot rows)
    h: torch.Tensor  # (M, H) previous state
    r: torch.Tensor  # (M, H) reset gate
    z: torch.Tensor  # (M, H) update gate
    rz: torch.Tensor  # (M, 2H) both gates
    c: torch.Tensor  # (M, H) candidate
    mask: torch.Tensor | None  # (M, H) dropout multiplier on the output
    rh: torch.Tensor | None = None  # (M, H) r * h, when the forward computed it


@dataclass
class _Pass:
    """What the backward of a step needs from its forward."""

    oy: torch.Tensor  # (N, H+1) output rows of the score columns
    h_aug: torch.Tensor  # (M, H+1) output state with a column of ones (the bias)
    caches: list[_LayerCache]
    x0_mask: torch.Tensor | None  # dropout on the input embedding


def _dropout_mask(like: torch.Tensor, p: float) -> torch.Tensor | None:
    """Inverted-dropout multiplier, drawn like F.dropout (same RNG use), or None if p=0."""
    if p <= 0:
        return None
    return torch.empty_like(like).bernoulli_(1 - p).div_(1 - p)


class FastStep:
    """Forward, backward and Adagrad update of one session-parallel mini-batch.

    Args:
        net: the network (updated in place).
        opt: its optimiser.
        native: the compiled CPU kernels (fused loss and gradient; the optimiser carries its
            own reference), or None for PyTorch ops only. CPU only.
    """

    def __init__(self, net: Network, opt: SparseOptimizer, native: Kernels | None = None
                 ) -> None:
        self.net, self.opt, self.cfg = net, opt, net.config
        self.dense = net.dense
        self.native = native
        self._ones = torch.ones(self.cfg.batch_size, 1, device=net.device)
        # [h, 1] rows for the native path: the GRU kernel writes h in place, so no cat
        self._h_aug = torch.ones(self.cfg.batch_size, net.layers[-1] + 1)

    COVERS = ("cross-entropy on softmax or bpr-max on ELU/linear, with a tanh GRU, Adagrad, "
              "and no smoothing, lmbd or grad_cap")

    @staticmethod
    def supports(cfg: GRU4RecConfig) -> bool:
        """Whether the hand-written backward covers ``cfg`` (see ``COVERS``)."""
        usual = (cfg.loss == "cross-entropy" and cfg.final_act == "softmax"
                 and cfg.smoothing == 0) or (
            cfg.loss == "bpr-max" and (cfg.final_act == "linear"
                                       or cfg.final_act == f"elu-{cfg.elu_param!r}"))
        return (usual and cfg.hidden_act == "tanh" and cfg.adapt == "adagrad"
                and cfg.lmbd == 0 and cfg.grad_cap == 0)

    @torch.no_grad()
    def __call__(self, inp: torch.Tensor, y: torch.Tensor, state: list[torch.Tensor],
                 log_q: torch.Tensor | None,
                 mask: torch.Tensor | None) -> tuple[torch.Tensor | float, list[torch.Tensor]]:
        """Train on M slots: inp (M,) inputs, y (N,) score columns (the M targets, then the
        shared samples), state [(M, H_i)], log_q (N,) for cross-entropy with logq, mask
        (M, N) for bpr-max.

        Returns the step loss (0-dim tensor, or a float from the native kernels) and the new
        hidden state.
        """
        i_name = self.net.input_table
        scores, fwd, state = self._scores(inp, y, state)
        loss, g = self._loss_and_grad(scores, log_q, mask)
        d_x0, grads = self._backward(g @ fwd.oy[:, : self.net.layers[-1]], fwd.caches,
                                     fwd.x0_mask)
        inputs = [(inp, d_x0)]
        if i_name != "Wyb":  # separate input table; shared: one table, output rows first
            self.opt.step_row_grads(i_name, inputs)
            inputs = []
        # the output rows' gradient g^T h (the compiled kernel never forms it)
        self.opt.step_outer_rows("Wyb", y, g, fwd.h_aug, inputs)
        self.opt.step_dense_all(self.dense, [grads[n] for n in self.dense])
        return loss, state

    def _scores(self, inp: torch.Tensor, y: torch.Tensor, state: list[torch.Tensor]
                ) -> tuple[torch.Tensor, _Pass, list[torch.Tensor]]:
        """Forward pass: the (M, N) scores of inputs inp (M,) against columns y (N,), what
        the backward needs, and the new state."""
        net, m = self.net, inp.shape[0]
        oy = net.params["Wyb"].index_select(0, y)  # (N, H+1) output rows of the columns
        x0 = net.params[net.input_table].index_select(0, inp)  # (M, 3H_0) or (M, D) rows
        if net.input_table == "Wyb":
            x0 = x0[:, : net.layers[-1]]
        caches, state, x0_mask = self._forward(x0, state)
        if self.native is not None:  # filled by the last layer's output kernel
            h_aug = self._h_aug[:m]
        else:
            h_aug = torch.cat([state[-1], self._ones[:m]], 1)  # (M, H+1): bias as a column
        return h_aug @ oy.t(), _Pass(oy, h_aug, caches, x0_mask), state

    def _grads(self, g: torch.Tensor, fwd: _Pass
               ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """From d loss / d scores (M, N): the gradients of the output rows (N, H+1), of the
        input rows, and of the dense weights."""
        d_oy = g.t() @ fwd.h_aug  # (N, H+1) gradient of each score column's row
        d_x0, grads = self._backward(g @ fwd.oy[:, : self.net.layers[-1]], fwd.caches,
                                     fwd.x0_mask)
        return d_oy, d_x0, grads

    def _loss_and_grad(self, scores: torch.Tensor, log_q: torch.Tensor | None,
                       mask: torch.Tensor | None) -> tuple[torch.Tensor | float, torch.Tensor]:
        """Step loss and d loss / d scores (computed in place of ``scores``)."""
        cfg, k = self.cfg, self.native
        if k is not None:  # fused C kernels: one pass per row instead of ~15 tensor ops
            if cfg.loss == "cross-entropy":
                total = k.cross_entropy_(scores, cfg.batch_size, log_q, cfg.logq)
            else:
                total = k.bpr_max_(scores, cfg.batch_size, cfg.bpreg, cfg.elu_param)
            return total / cfg.batch_size, scores
        if cfg.loss == "cross-entropy":
            return xe_value_and_grad(scores, cfg.batch_size, log_q, cfg.logq)
        return bpr_max_value_and_grad(scores, cfg.batch_size, cfg.bpreg, cfg.elu_param, mask)

    def _forward(self, x0: torch.Tensor, state: list[torch.Tensor]
                 ) -> tuple[list[_LayerCache], list[torch.Tensor], torch.Tensor | None]:
        """GRU stack forward, keeping what the backward needs. Mirrors Network.hidden."""
        cfg, p, net = self.cfg, self.net.params, self.net
        onehot = net.mode == "onehot"
        caches: list[_LayerCache] = []
        new: list[torch.Tensor] = []
        x0_mask = None
        x: torch.Tensor | None = x0
        for i, h in enumerate(state):
            if i == 0 and onehot:
                vx, x_in = x0 + p["b0"], None
            else:
                if i == 0:
                    x0_mask = _dropout_mask(x0, cfg.dropout_p_embed)
                    x = x0 * x0_mask if x0_mask is not None else x0
                vx, x_in = torch.addmm(p[f"b{i}"], x, p[f"Wx{i}"]), x
            drop = cfg.dropout_p_embed if (i == 0 and onehot) else cfg.dropout_p_hidden
            layer = self._layer_native if self.native is not None else self._layer_torch
            out, cache = layer(i, vx, x_in, h, drop, i == len(state) - 1)
            caches.append(cache)
            new.append(out)
            x = out
        return caches, new, x0_mask

    def _layer_torch(self, i: int, vx: torch.Tensor, x_in: torch.Tensor | None,
                     h: torch.Tensor, drop: float, last: bool
                     ) -> tuple[torch.Tensor, _LayerCache]:
        """GRU layer i forward with PyTorch ops: vx (M, 3H) input pre-activations, h (M, H)
        previous state -> output (M, H). (``last`` only matters to :meth:`_layer_native`.)"""
        p, n = self.net.params, h.shape[1]
        rz = torch.sigmoid(torch.addmm(vx[:, n:], h, p[f"Wrz{i}"]))  # (M, 2H)
        r, z = rz[:, :n], rz[:, n:]
        c = torch.tanh(torch.addmm(vx[:, :n], r * h, p[f"Wh{i}"]))
        out = torch.lerp(h, c, z)
        mask = _dropout_mask(out, drop)
        if mask is not None:
            out = out * mask
        return out, _LayerCache(x_in, h, r, z, rz, c, mask)

    def _layer_native(self, i: int, vx: torch.Tensor, x_in: torch.Tensor | None,
                      h: torch.Tensor, drop: float, last: bool
                      ) -> tuple[torch.Tensor, _LayerCache]:
        """GRU layer i forward with the compiled kernels: vx (M, 3H) input pre-activations,
        h (M, H) previous state -> output (M, H) (into the [h, 1] buffer too when last)."""
        p, k = self.net.params, self.native
        assert k is not None
        m, n = h.shape
        h = h.contiguous()
        rz, rh = torch.empty(m, 2 * n), torch.empty(m, n)
        k.gru_gates(vx, h @ p[f"Wrz{i}"], h, rz, rh)
        c, out = torch.empty(m, n), torch.empty(m, n)
        mask = _dropout_mask(out, drop)  # drawn at the same point as on the PyTorch path
        k.gru_output(vx, rh @ p[f"Wh{i}"], h, rz, mask, c, out,
                     self._h_aug[:m] if last else None)
        return out, _LayerCache(x_in, h, rz[:, :n], rz[:, n:], rz, c, mask, rh)

    def _backward_native(self, i: int, d_out: torch.Tensor, k: _LayerCache,
                         grads: dict[str, torch.Tensor]) -> torch.Tensor:
        """GRU layer i backward with the compiled kernels: d_out (M, H) -> the (M, 3H)
        pre-activation gradient; fills the layer's Wh, Wrz and b gradients."""
        p, kern = self.net.params, self.native
        assert kern is not None and k.rh is not None
        m, n = k.h.shape
        d_vx = torch.empty(m, 3 * n)  # [candidate, reset, update]
        kern.gru_back_out(d_out.contiguous(), k.mask, k.rz, k.c, k.h, d_vx)
        grads[f"Wh{i}"] = k.rh.t() @ d_vx[:, :n]
        grads[f"b{i}"] = torch.empty(3 * n)
        kern.gru_back_gates(d_vx[:, :n] @ p[f"Wh{i}"].t(), k.h, k.rz, d_vx, grads[f"b{i}"])
        grads[f"Wrz{i}"] = k.h.t() @ d_vx[:, n:]
        return d_vx

    def _backward(self, d_out: torch.Tensor, caches: list[_LayerCache],
                  x0_mask: torch.Tensor | None
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """GRU stack backward from d loss / d output (M, H_last).

        Returns d loss / d x0 (the input rows: (M, 3H_0) one-hot rows or (M, D) embeddings)
        and the gradients of the dense parameters.
        """
        p = self.net.params
        grads: dict[str, torch.Tensor] = {}
        layer = self._backward_native if self.native is not None else self._backward_torch
        for i in range(len(caches) - 1, -1, -1):
            k = caches[i]
            d_vx = layer(i, d_out, k, grads)
            if k.x is None:  # one-hot first layer: the gradient of its rows is d_vx itself
                return d_vx, grads
            grads[f"Wx{i}"] = k.x.t() @ d_vx
            d_out = d_vx @ p[f"Wx{i}"].t()
        if x0_mask is not None:
            d_out = d_out * x0_mask
        return d_out, grads

    def _backward_torch(self, i: int, d_out: torch.Tensor, k: _LayerCache,
                        grads: dict[str, torch.Tensor]) -> torch.Tensor:
        """GRU layer i backward with PyTorch ops: d_out (M, H) -> the (M, 3H)
        pre-activation gradient; fills the layer's Wh, Wrz and b gradients."""
        p, n = self.net.params, k.h.shape[1]
        if k.mask is not None:
            d_out = d_out * k.mask
        d_cpre = (d_out * k.z).mul_(1 - k.c.square())  # through tanh
        d_vx = torch.empty(d_out.shape[0], 3 * n, device=d_out.device)  # [cand, r, z]
        d_vx[:, :n] = d_cpre
        grads[f"Wh{i}"] = (k.r * k.h).t() @ d_cpre
        torch.mul(d_cpre @ p[f"Wh{i}"].t(), k.h, out=d_vx[:, n:2 * n])  # d r
        torch.mul(d_out, k.c - k.h, out=d_vx[:, 2 * n:])  # d z
        d_vx[:, n:].mul_(k.rz * (1 - k.rz))  # through the sigmoids
        grads[f"Wrz{i}"] = k.h.t() @ d_vx[:, n:]
        grads[f"b{i}"] = d_vx.sum(0)
        return d_vx
