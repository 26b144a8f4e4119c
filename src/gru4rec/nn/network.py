"""The GRU4Rec network as plain tensors: embedding modes, the GRU stack and scoring.

Parameters (names in ``Network.params``):
    ``Wyb``  (n_items, H_last + 1) item table: output weights Wy with the output bias by as
             its last column (one gather/scatter serves both; Adagrad is element-wise, so
             keeping them together is exact). Shared embedding mode reads Wy as the input.
    ``E``    (n_items, D) item table, separate embedding mode only.
    ``Wx0``  (n_items, 3 H_0) item table in no-embedding mode (the one-hot input weights,
             looked up by row), else a dense (D, 3 H_0) matrix.
    ``Wx{i}`` (H_{i-1}, 3 H_i), ``Wrz{i}`` (H_i, 2 H_i), ``Wh{i}`` (H_i, H_i), ``b{i}`` (3 H_i)
             for every GRU layer i. Gate blocks are ordered [candidate, reset, update].

The GRU cell is the original one: the reset gate multiplies h BEFORE the recurrent product,
h~ = act(x Wh_x + (r * h) Wh + b_h), h' = (1 - z) h + z h~ (act = ``hidden_act``, tanh by
default).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from gru4rec.config import GRU4RecConfig
from gru4rec.nn.activations import activation

__all__ = ["Network"]


def _init_blocks(shape: tuple[int, int], n_blocks: int, generator: torch.Generator,
                 device: torch.device, config: GRU4RecConfig,
                 n_rows: int | None = None) -> torch.Tensor:
    """(rows, n_blocks * cols) matrix; each block uniform in +-s (normal with std s when
    ``init_as_normal``), s = ``sigma`` or, when that is 0, sqrt(6 / (rows + cols)).
    ``n_rows``: draw only that many rows, at the scale of the whole ``shape`` (new rows of
    a grown table)."""
    rows, total = shape
    cols = total // n_blocks
    s = config.sigma if config.sigma > 0 else math.sqrt(6.0 / (rows + cols))
    rows = rows if n_rows is None else n_rows
    if config.init_as_normal:
        w = torch.randn(rows, total, generator=generator, dtype=torch.float32) * s
    else:
        w = torch.rand(rows, total, generator=generator, dtype=torch.float32) * (2 * s) - s
    return w.to(device)


class Network:
    """GRU4Rec parameters and the forward computation shared by training and inference.

    The network owns its schema (:meth:`schema`: parameter names and shapes, used by the
    model file) and the layout of its output table (:attr:`output_weights`,
    :attr:`output_bias`, used by evaluation and inference).
    """

    def __init__(self, params: dict[str, torch.Tensor], config: GRU4RecConfig) -> None:
        self.params = params
        self.config = config
        self.layers = list(config.layers)
        self.mode = ("shared" if config.constrained_embedding
                     else "separate" if config.embedding > 0 else "onehot")
        self.hidden_act = activation(config.hidden_act)

    @staticmethod
    def schema(config: GRU4RecConfig, n_items: int) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every parameter of a network with this config and item count,
        in the order :meth:`initialize` creates them."""
        layers = list(config.layers)
        shapes: dict[str, tuple[int, ...]] = {"Wyb": (n_items, layers[-1] + 1)}
        if config.constrained_embedding:
            n_in = layers[-1]
        elif config.embedding > 0:
            shapes["E"] = (n_items, config.embedding)
            n_in = config.embedding
        else:
            n_in = n_items
        for i, h in enumerate(layers):
            shapes[f"Wx{i}"] = (n_in if i == 0 else layers[i - 1], 3 * h)
            shapes[f"Wrz{i}"] = (h, 2 * h)
            shapes[f"Wh{i}"] = (h, h)
            shapes[f"b{i}"] = (3 * h,)
        return shapes

    @property
    def output_weights(self) -> torch.Tensor:
        """(n_items, H_last) view of the output weights Wy (strided: a column of Wyb is the
        bias)."""
        return self.params["Wyb"][:, : self.layers[-1]]

    @property
    def output_bias(self) -> torch.Tensor:
        """(n_items,) view of the output bias by."""
        return self.params["Wyb"][:, self.layers[-1]]

    @classmethod
    def initialize(cls, n_items: int, config: GRU4RecConfig, generator: torch.Generator,
                   device: torch.device) -> Network:
        """Fresh parameters: block-wise uniform Glorot weights (or as ``sigma`` and
        ``init_as_normal`` say), zero biases (docs/algorithm.md §3)."""
        layers = list(config.layers)
        net = cls({}, config)
        p: dict[str, torch.Tensor] = {}
        wy = _init_blocks((n_items, layers[-1]), 1, generator, device, config)
        p["Wyb"] = torch.cat([wy, torch.zeros(n_items, 1, device=device)], 1)
        if net.mode == "separate":
            p["E"] = _init_blocks((n_items, config.embedding), 1, generator, device, config)
        n_in = {"onehot": n_items, "separate": config.embedding, "shared": layers[-1]}[net.mode]
        for i, h in enumerate(layers):
            fan_in = n_in if i == 0 else layers[i - 1]
            p[f"Wx{i}"] = _init_blocks((fan_in, 3 * h), 3, generator, device, config)
            p[f"Wrz{i}"] = _init_blocks((h, 2 * h), 2, generator, device, config)
            p[f"Wh{i}"] = _init_blocks((h, h), 1, generator, device, config)
            p[f"b{i}"] = torch.zeros(3 * h, device=device)
        net.params = p
        return net

    def with_new_items(self, n_new: int, generator: torch.Generator) -> Network:
        """A network for ``n_new`` more items: every item table gets ``n_new`` rows at the
        end, drawn as :meth:`initialize` would for the grown table (the scale of its new
        shape; biases 0); every other parameter and every existing row is the same tensor
        value (docs/algorithm.md §3)."""
        if n_new == 0:
            return Network(dict(self.params), self.config)
        n_total, dev, cfg = self.n_items + n_new, self.device, self.config
        params = dict(self.params)
        h_last = self.layers[-1]
        wy = _init_blocks((n_total, h_last), 1, generator, dev, cfg, n_rows=n_new)
        params["Wyb"] = torch.cat([self.params["Wyb"],
                                   torch.cat([wy, torch.zeros(n_new, 1, device=dev)], 1)])
        if self.mode == "separate":
            params["E"] = torch.cat([self.params["E"], _init_blocks(
                (n_total, cfg.embedding), 1, generator, dev, cfg, n_rows=n_new)])
        elif self.mode == "onehot":
            params["Wx0"] = torch.cat([self.params["Wx0"], _init_blocks(
                (n_total, 3 * self.layers[0]), 3, generator, dev, cfg, n_rows=n_new)])
        return Network(params, cfg)

    @property
    def item_tables(self) -> list[str]:
        """Names of the (n_items, *) tables that get row-sparse updates."""
        return list(dict.fromkeys(["Wyb", self.input_table]))

    @property
    def dense(self) -> list[str]:
        """Names of the dense parameters (full updates)."""
        tables = set(self.item_tables)
        return [n for n in self.params if n not in tables]

    @property
    def n_items(self) -> int:
        return int(self.params["Wyb"].shape[0])

    @property
    def device(self) -> torch.device:
        return self.params["Wyb"].device

    def zero_state(self, batch: int) -> list[torch.Tensor]:
        """Hidden state of every layer, zeros: list of (batch, H_i)."""
        return [torch.zeros(batch, h, device=self.device) for h in self.layers]

    @property
    def input_table(self) -> str:
        """Name of the item table the input rows come from (Wx0, E, or Wyb when shared)."""
        return {"onehot": "Wx0", "separate": "E", "shared": "Wyb"}[self.mode]

    def input_rows(self, items: torch.Tensor) -> torch.Tensor:
        """Input rows of item indices (M,): (M, 3 H_0) in no-embedding mode, else (M, D)."""
        rows = self.params[self.input_table].index_select(0, items)
        return rows[:, : self.layers[-1]] if self.mode == "shared" else rows

    def hidden(self, x_in: torch.Tensor, state: list[torch.Tensor],
               training: bool) -> list[torch.Tensor]:
        """One step of the GRU stack.

        Args:
            x_in: (M, 3 H_0) one-hot input rows or (M, D) embeddings, from ``input_rows``.
            state: previous hidden state, list of (M, H_i).
            training: apply dropout.
        Returns:
            the new state, list of (M, H_i); the last entry is the output (post-dropout).
        """
        cfg, p = self.config, self.params
        new: list[torch.Tensor] = []
        x = x_in
        for i, h_prev in enumerate(state):
            if i == 0 and self.mode == "onehot":
                vx = x + p["b0"]
            else:
                if i == 0:
                    x = F.dropout(x, cfg.dropout_p_embed, training)
                vx = torch.addmm(p[f"b{i}"], x, p[f"Wx{i}"])  # (M, 3H)
            h = self._gru_cell(vx, h_prev, p[f"Wrz{i}"], p[f"Wh{i}"], self.hidden_act)
            drop = cfg.dropout_p_embed if (i == 0 and self.mode == "onehot") \
                else cfg.dropout_p_hidden
            x = F.dropout(h, drop, training)
            new.append(x)
        return new

    @staticmethod
    def _gru_cell(vx: torch.Tensor, h: torch.Tensor, wrz: torch.Tensor, wh: torch.Tensor,
                  act: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """vx: (M, 3H) input part [candidate, reset, update]; h: (M, H) -> (M, H)."""
        n = h.shape[1]
        rz = torch.sigmoid(vx[:, n:] + h @ wrz)  # (M, 2H)
        r, z = rz[:, :n], rz[:, n:]
        cand = act(torch.addmm(vx[:, :n], r * h, wh))
        return torch.lerp(h, cand, z)  # (1 - z) h + z cand

    def score_all(self, h: torch.Tensor) -> torch.Tensor:
        """(M, H_last) output states -> (M, n_items) scores h . Wy[i] + by[i]."""
        return torch.addmm(self.output_bias, h, self.output_weights.t())
