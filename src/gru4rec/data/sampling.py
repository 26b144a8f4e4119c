"""Extra negative samples, drawn in bulk into a store and consumed in order, and the log Q
of the score columns that the logQ correction subtracts (docs/algorithm.md §4, §5)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from gru4rec.backend import TorchOps

__all__ = ["NegativeSampler", "SampleStore"]

log = logging.getLogger(__name__)


class SampleStore:
    """Draws item indices with probability support**alpha, ``n_sample`` per mini-batch.

    Drawing every step would interrupt the compute device, so ``store_size // n_sample``
    mini-batches' worth are drawn at once and handed out in order; the store is redrawn
    when used up.

    Args:
        support: (n_items,) training event counts per item.
        n_sample: samples per mini-batch (> 0).
        alpha: exponent on the support (0 = uniform, 1 = popularity).
        store_size: budget in item ids (the original's ``sample_store_size``).
        device: where the store lives (the compute device, or CPU memory).
        generator: the seeded torch generator of the run (on ``device``).
        max_batches: cap on the store (e.g. the steps of one epoch).
        backend: where the inverse-CDF lookup runs (for ``device``); the draws are the
            same on every backend. Default PyTorch ops.
    """

    def __init__(self, support: np.ndarray, n_sample: int, alpha: float, store_size: int,
                 device: torch.device, generator: torch.Generator,
                 max_batches: int | None = None, backend: TorchOps | None = None) -> None:
        weights = torch.as_tensor(support, dtype=torch.float64) ** alpha
        cdf = torch.cumsum(weights, 0)
        self._cdf = (cdf / cdf[-1]).to(device)
        self._uniform = alpha == 0  # plain randint: ~10x cheaper than the inverse CDF
        self._ops = backend if backend is not None else TorchOps()
        # guide table for the compiled lookup: bucket b -> first k with cdf[k] > b/K
        k = self._cdf.shape[0]
        self._guide = torch.searchsorted(
            self._cdf, torch.arange(k, dtype=torch.float64, device=device) / k, right=True)
        self.n_sample = n_sample
        self.n_batches = max(1, store_size // n_sample)
        if max_batches is not None:  # never draw more than an epoch uses: saves seconds
            self.n_batches = max(1, min(self.n_batches, max_batches))
        self._device = device
        self._gen = generator
        self._store = torch.empty(0, n_sample, dtype=torch.int64, device=device)
        self._pos = 0
        log.info("sample store: %d batches of %d samples on %s", self.n_batches, n_sample,
                 device.type)

    def _refill(self) -> None:
        n, n_items = self.n_batches * self.n_sample, self._cdf.shape[0]
        if self._uniform:
            idx = torch.randint(n_items, (n,), generator=self._gen, device=self._device)
        else:
            # inverse-CDF sampling of a whole store at once: one kernel, not per-step draws
            u = torch.rand(n, generator=self._gen, dtype=torch.float64, device=self._device)
            idx = self._ops.sample_cdf(self._cdf, self._guide, u)
        self._store = idx.view(self.n_batches, self.n_sample)
        self._pos = 0

    def state(self) -> dict[str, Any]:
        """Where the store stands (its draws, position and generator state, on the CPU):
        :meth:`restore` continues exactly from here."""
        return {"store": self._store.cpu().clone(), "pos": self._pos,
                "generator": self._gen.get_state()}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state` of a store with the same settings."""
        self._store = state["store"].to(self._device)
        self._pos = int(state["pos"])
        self._gen.set_state(state["generator"])

    def next(self) -> torch.Tensor:
        """(n_sample,) int64 item indices for the next mini-batch."""
        if self._pos >= self._store.shape[0]:
            self._refill()
        out = self._store[self._pos]
        self._pos += 1
        return out


class NegativeSampler:
    """The extra negatives of every mini-batch and the log Q of its score columns.

    Args:
        support: (n_items,) training event counts per item.
        n_sample: extra negatives per mini-batch (0: in-batch negatives only).
        alpha: the ``sample_alpha`` exponent on the support.
        store_size, store_device, generator, max_batches: as for :class:`SampleStore`.
        device: the compute device (where the negatives and log Q are handed out).
        backend: the backend of ``device``.
    """

    def __init__(self, support: np.ndarray, n_sample: int, alpha: float, store_size: int,
                 device: torch.device, store_device: torch.device,
                 generator: torch.Generator, *, max_batches: int | None = None,
                 backend: TorchOps | None = None) -> None:
        ops = backend if backend is not None else TorchOps()
        self._ops, self._device, self.alpha = ops, device, alpha
        store_ops = ops if store_device == device else TorchOps()
        self.store = SampleStore(support, n_sample, alpha, store_size, store_device,
                                 generator, max_batches, store_ops) if n_sample > 0 else None
        self.log_support = torch.as_tensor(np.log(np.maximum(support, 1)),
                                           dtype=torch.float32, device=device)
        self._log_q = torch.empty(0, device=device)

    def columns(self, targets: torch.Tensor) -> torch.Tensor:
        """(N,) score columns of a step: its (M,) targets, then the next extra negatives."""
        if self.store is None:
            return targets
        return torch.cat([targets, self.store.next().to(self._device, non_blocking=True)])

    def log_q(self, columns: torch.Tensor, n_targets: int) -> torch.Tensor:
        """(N,) log Q of the score columns: log support for the first ``n_targets``
        (in-batch) columns, ``alpha`` * log support for the sampled ones. The result may
        live in a buffer that the next call overwrites."""
        if self._log_q.shape[0] < columns.shape[0]:
            self._log_q = torch.empty(columns.shape[0], device=self._device)
        return self._ops.log_q_columns(self.log_support, columns, n_targets, self.alpha,
                                       self._log_q)
