"""Next-item evaluation: the rank of each target among all items, and Recall@k / MRR@k.

Ranks are computed from comparison counts (how many items score higher than, or equal to,
the target), never by sorting, so the cost is one pass over the score matrix. Four ways of
treating items whose score ties with the target's are offered (``TIE_MODES``):

* ``standard``      rank = 1 + #{S > t}: ties are resolved in the target's favour.
* ``conservative``  rank = #{S >= t}: ties are resolved against the target (it counts itself).
* ``median``        rank = 1 + #{S > t} + (#{S == t} - 1) / 2: the mean of the two above.
* ``tiebreaking``   ties are broken uniformly at random: rank = 1 + #{S > t} + U where U is
  drawn uniformly from {0, ..., #{S == t} - 1} with the given generator. This is exactly the
  rank that infinitesimally small random noise added to every score would give, without the
  risk real noise has of reordering two scores that differ by less than the noise.

All functions work on the device of their inputs and never synchronise with the host; only
:meth:`MetricAccumulator.result` copies its (few) totals back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from gru4rec.backend import select_backend
from gru4rec.errors import ConfigError, DataError

__all__ = ["TIE_MODES", "MetricAccumulator", "check_mode", "ranks_from_counts",
           "sparse_target_counts", "target_ranks", "target_ranks_chunked"]

TIE_MODES = ("standard", "conservative", "median", "tiebreaking")


def check_mode(mode: str) -> None:
    """Check that ``mode`` is one of ``TIE_MODES``.

    Raises:
        ConfigError: it is not (the message lists the valid modes).
    """
    if mode not in TIE_MODES:
        valid = ", ".join(repr(m) for m in TIE_MODES)
        raise ConfigError(f"unknown tie mode {mode!r}; valid modes are {valid}")


def _float_dtype(device: torch.device) -> torch.dtype:
    """float64 where the device supports it (all but Apple MPS), else float32."""
    return torch.float32 if device.type == "mps" else torch.float64


def _check_targets(n_rows: int, targets: torch.Tensor) -> None:
    """Raise ConfigError unless ``targets`` is an (n_rows,) integer tensor."""
    if targets.dim() != 1 or targets.shape[0] != n_rows:
        raise ConfigError(
            f"targets must have shape ({n_rows},) to match the scores, got {tuple(targets.shape)}"
        )
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ConfigError(f"targets must be an integer tensor, got {targets.dtype}")


def ranks_from_counts(
    greater: torch.Tensor,
    equal: torch.Tensor,
    mode: str,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Ranks (N,) from the counts of items scoring above (N,) and equal to (N,) the target,
    in ``mode`` (see the module docstring; ``generator`` draws the ``tiebreaking`` offsets).

    ``equal`` includes the target itself, so it is at least 1.
    """
    dtype = _float_dtype(greater.device)
    greater, equal = greater.to(dtype), equal.to(dtype)
    if mode == "standard":
        return greater + 1
    if mode == "conservative":
        return greater + equal
    if mode == "median":
        return greater + 1 + (equal - 1) / 2
    u = torch.rand(greater.shape, generator=generator, device=greater.device, dtype=dtype)
    offset = torch.minimum(torch.floor(u * equal), equal - 1)
    return greater + 1 + offset


def target_ranks(
    scores: torch.Tensor,
    targets: torch.Tensor,
    mode: str = "standard",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rank of each target among all items (1 = best), computed by comparison counts.

    Args:
        scores: (N, n_items) float scores, higher is better.
        targets: (N,) int64 column index of each row's target item.
        mode: one of ``TIE_MODES`` (see the module docstring).
        generator: random source for ``tiebreaking`` (one uniform draw per row); must live on
            the scores' device. Ignored by the other modes.

    Returns:
        (N,) float ranks in [1, n_items] (float64, or float32 on MPS).
    """
    check_mode(mode)
    if scores.dim() != 2:
        raise ConfigError(f"scores must be 2-D (N, n_items), got shape {tuple(scores.shape)}")
    _check_targets(scores.shape[0], targets)
    target_scores = scores.gather(1, targets.long().unsqueeze(1))
    greater = (scores > target_scores).sum(dim=1)
    equal = (scores == target_scores).sum(dim=1)
    return ranks_from_counts(greater, equal, mode, generator)


def sparse_target_counts(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                         n_cols: int, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of items scoring above and equal to each row's target, for sparse scores.

    The (N, n_cols) scores are CSR arrays (``indptr`` (N+1,), ``indices`` and ``data``
    (nnz,), columns distinct within a row); every entry not stored scores 0, so the
    ``n_cols - stored`` implicit zeros count as above a negative target and as ties of a
    target scoring 0 (the target itself included). Exact, and O(nnz): the catalogue is
    never materialised.

    Returns:
        (N,) int64 ``greater`` and (N,) int64 ``equal`` (>= 1), for :func:`ranks_from_counts`.
    """
    n = len(targets)
    lengths = np.diff(indptr)
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    own = np.zeros(n)  # each row's target score: 0 unless stored
    hit = np.flatnonzero(indices == targets[rows])
    own[rows[hit]] = data[hit]
    vs = own[rows]
    implicit = n_cols - lengths

    def per_row(mask: np.ndarray) -> np.ndarray:
        # Speed: row sums of a bool mask as differences of one cumulative sum
        total = np.zeros(len(mask) + 1, dtype=np.int64)
        np.cumsum(mask, out=total[1:])
        return np.asarray(total[indptr[1:]] - total[indptr[:-1]])

    greater = per_row(data > vs) + np.where(own < 0, implicit, 0)
    equal = per_row(data == vs) + np.where(own == 0, implicit, 0)
    return greater, equal


def _chunk_scores(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, start: int, stop: int
) -> torch.Tensor:
    """Scores (N, stop - start) of items ``start:stop``: h @ weight[start:stop].T + bias."""
    scores = h @ weight[start:stop].T
    return scores if bias is None else scores + bias[start:stop]


def _check_chunked_inputs(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, chunk_items: int
) -> None:
    """Raise ConfigError on inconsistent shapes or a non-positive chunk size."""
    if isinstance(chunk_items, bool) or not isinstance(chunk_items, int) or chunk_items < 1:
        raise ConfigError(f"chunk_items must be a positive int, got {chunk_items!r}")
    if h.dim() != 2 or weight.dim() != 2 or h.shape[1] != weight.shape[1]:
        raise ConfigError(
            "h must be (N, H) and weight (n_items, H) with the same H, got "
            f"{tuple(h.shape)} and {tuple(weight.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ConfigError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")


def _chunked_target_scores(
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    chunk_items: int,
) -> torch.Tensor:
    """Target scores (N, 1), each taken from the same chunk product the counting pass uses.

    Reading the target's score out of its own chunk (rather than a row-wise dot product)
    keeps it bit-identical to the scores it is compared with, so exact ties stay ties.
    """
    dtype = torch.promote_types(h.dtype, weight.dtype)
    if bias is not None:
        dtype = torch.promote_types(dtype, bias.dtype)
    target_scores = torch.zeros((h.shape[0], 1), dtype=dtype, device=h.device)
    for start in range(0, weight.shape[0], chunk_items):
        scores = _chunk_scores(h, weight, bias, start, start + chunk_items)
        local = (targets - start).unsqueeze(1)
        inside = (local >= 0) & (local < scores.shape[1])
        picked = scores.gather(1, local.clamp(0, scores.shape[1] - 1))
        target_scores = torch.where(inside, picked, target_scores)
    return target_scores


def target_ranks_chunked(
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    mode: str = "standard",
    *,
    chunk_items: int = 65_536,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Same ranks as ``target_ranks(h @ weight.T + bias, targets, mode)`` in O(N * chunk) memory.

    Items are scored ``chunk_items`` at a time. A first pass over the chunks picks each
    target's score out of the chunk product that contains it (so it is bit-identical to the
    scores it is compared with); a second pass accumulates the counts of items scoring above
    and equal to it. That costs two matrix products per chunk but never syncs with the host.
    ``tiebreaking`` draws one uniform per row after the counts are known, exactly as
    :func:`target_ranks` does, so with equally seeded generators both functions return
    identical ranks in every mode.

    Args:
        h: (N, H) final hidden states.
        weight: (n_items, H) output item embeddings.
        bias: (n_items,) output bias, or None.
        targets: (N,) int64 target item indices.
        mode: one of ``TIE_MODES``.
        chunk_items: number of items scored at once.
        generator: random source for ``tiebreaking``, on the device of ``h``.

    Returns:
        (N,) float ranks in [1, n_items].
    """
    check_mode(mode)
    _check_chunked_inputs(h, weight, bias, chunk_items)
    _check_targets(h.shape[0], targets)
    targets = targets.long()
    greater = torch.zeros(h.shape[0], dtype=torch.int64, device=h.device)
    equal = torch.zeros_like(greater)
    count = select_backend(h.device).count_vs_target  # greater/equal += per-row counts
    if weight.shape[0] <= chunk_items:  # one block: score once, read the targets out of it
        scores = _chunk_scores(h, weight, bias, 0, weight.shape[0])
        count(scores, scores.gather(1, targets.unsqueeze(1)), greater, equal)
        return ranks_from_counts(greater, equal, mode, generator)
    target_scores = _chunked_target_scores(h, weight, bias, targets, chunk_items)
    for start in range(0, weight.shape[0], chunk_items):
        count(_chunk_scores(h, weight, bias, start, start + chunk_items), target_scores,
              greater, equal)
    return ranks_from_counts(greater, equal, mode, generator)


def _validate_cutoffs(cutoffs: Sequence[int]) -> tuple[int, ...]:
    """Sorted, de-duplicated cutoffs; ConfigError unless a non-empty list of positive ints."""
    if isinstance(cutoffs, (str, bytes)) or not isinstance(cutoffs, Sequence):
        raise ConfigError(f"cutoffs must be a sequence of positive ints, got {cutoffs!r}")
    if len(cutoffs) == 0:
        raise ConfigError("cutoffs must not be empty; give at least one k, e.g. [20]")
    for k in cutoffs:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"every cutoff must be a positive int, got {k!r} in {cutoffs!r}")
    return tuple(sorted(set(cutoffs)))


class MetricAccumulator:
    """Accumulates Recall@k and MRR@k over batches of ranks, on the ranks' device.

    ``update`` only launches device operations (no host synchronisation); ``result`` copies
    the totals back once.
    """

    def __init__(self, cutoffs: Sequence[int]) -> None:
        """Args: cutoffs: the list lengths k to report, positive ints (e.g. [5, 10, 20])."""
        self.cutoffs: tuple[int, ...] = _validate_cutoffs(cutoffs)
        self.n: int = 0
        self._hits: torch.Tensor | None = None
        self._reciprocal: torch.Tensor | None = None
        self._k: torch.Tensor | None = None

    def _init_state(self, device: torch.device) -> None:
        """Create the (K,) running totals on ``device``."""
        dtype = _float_dtype(device)
        self._k = torch.tensor(self.cutoffs, dtype=dtype, device=device)
        self._hits = torch.zeros(len(self.cutoffs), dtype=dtype, device=device)
        self._reciprocal = torch.zeros_like(self._hits)

    def update(self, ranks: torch.Tensor) -> None:
        """Add a batch of ranks, shape (N,), values >= 1 (as from :func:`target_ranks`)."""
        if ranks.dim() != 1:
            raise ConfigError(f"ranks must be 1-D, got shape {tuple(ranks.shape)}")
        if self._k is None:
            self._init_state(ranks.device)
        assert self._k is not None and self._hits is not None and self._reciprocal is not None
        ranks = ranks.to(device=self._k.device, dtype=self._k.dtype)
        within = ranks.unsqueeze(0) <= self._k.unsqueeze(1)  # (K, N)
        self._hits += within.sum(dim=1).to(self._hits.dtype)
        self._reciprocal += torch.where(within, 1.0 / ranks, 0.0).sum(dim=1)
        self.n += int(ranks.shape[0])

    def result(self) -> dict[str, float]:
        """``{"Recall@k": ..., "MRR@k": ... for each k, "n": number of predictions}``."""
        if self.n == 0 or self._hits is None or self._reciprocal is None:
            raise DataError(
                "no predictions to evaluate: every test session has fewer than 2 known events"
            )
        hits = self._hits.cpu().tolist()
        reciprocal = self._reciprocal.cpu().tolist()
        out: dict[str, float] = {}
        for k, h, r in zip(self.cutoffs, hits, reciprocal, strict=True):
            out[f"Recall@{k}"] = h / self.n
            out[f"MRR@{k}"] = r / self.n
        out["n"] = self.n
        return out
