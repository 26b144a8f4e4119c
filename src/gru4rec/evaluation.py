"""Next-item evaluation of a trained model: Recall@k and MRR@k (docs/algorithm.md §7), the
same for GRU4Rec and every baseline (:mod:`gru4rec.baselines`).

Test sessions are replayed session-parallel (``batch_size`` slots, zero state at every
session start); after each event but the last, the model scores every item and the rank of
the true next item is counted. Test events whose item the model does not know are dropped
first (the rest of their session is kept) and their number is reported.

With ``continue_state=True`` (a sequence-aware model, ``session_boundary=carry``) each test
user's events are replayed as one sequence, starting from the user's state at the end of
the training data (zero for users new in the test) and carried across their sessions; the
predictions counted are the same as without it: the next item within a session.

A baseline is measured on the same predictions: for every prefix x_1..x_c of a test session
(unknown items dropped first, as for GRU4Rec) it scores every training item from the prefix
alone, and the rank of x_{c+1} is counted from those scores (sparse scores exactly, with the
items not stored as zeros) under the same tie modes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gru4rec.baselines.base import Baseline, Scores
from gru4rec.baselines.sparse import SparseRows
from gru4rec.data.batching import DeviceSchedule, build_schedule
from gru4rec.data.events import Events
from gru4rec.data.io import read_events
from gru4rec.data.sessions import SessionData, group_sequences, group_sessions
from gru4rec.errors import ConfigError
from gru4rec.inference import lookup
from gru4rec.metrics import (
    MetricAccumulator,
    check_mode,
    ranks_from_counts,
    sparse_target_counts,
    target_ranks,
    target_ranks_chunked,
)
from gru4rec.model import GRU4Rec

__all__ = ["EvalResult", "evaluate"]

log = logging.getLogger(__name__)

# Scores of a (slots x items) block. A catalogue that fits in ONE_BLOCK scores is scored in
# one matmul (its targets read out of it); a larger one in CHUNK-sized blocks, twice: 4 MB
# blocks stay in the CPU cache between the matmul and the counting pass (2x faster at 1M
# items than 64 MB ones) and bound the memory.
ONE_BLOCK_ELEMENTS = 1 << 25
CHUNK_ELEMENTS = 1 << 20
# rank(h, targets): (M,) ranks of the targets for the (M, H_last) output states
Ranker = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# progress(done, total): steps (or prefix batches) of the replay done so far
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class EvalResult:
    """Metrics of one evaluation run.

    Attributes:
        metrics: ``{"Recall@20": ..., "MRR@20": ...}`` for every cutoff.
        n_predictions: number of ranked next-item predictions.
        n_dropped_events: test events dropped because their item is unknown to the model.
        seconds: wall time of the evaluation.
        cutoffs, mode: what was measured.
    """

    metrics: dict[str, float]
    n_predictions: int
    n_dropped_events: int
    seconds: float
    cutoffs: tuple[int, ...] = field(default=())
    mode: str = "standard"

    def __getitem__(self, key: str) -> float:
        """``result["Recall@20"]``: one metric.

        Raises:
            KeyError: no such metric (only the measured cutoffs are there).
        """
        return self.metrics[key]

    def lines(self) -> list[str]:
        """The original's result lines: ``Recall@20: 0.720044 MRR@20: 0.313504``."""
        return [f"Recall@{k}: {self.metrics[f'Recall@{k}']:.6f} "
                f"MRR@{k}: {self.metrics[f'MRR@{k}']:.6f}" for k in self.cutoffs]


def evaluate(model: GRU4Rec | Baseline, test: Any, *, cutoffs: Sequence[int] = (20,),
             mode: str = "standard", batch_size: int = 512,
             test_against_items: int | None = None, session_key: str = "SessionId",
             item_key: str = "ItemId", time_key: str = "Time", user_key: str | None = None,
             continue_state: bool = False, seed: int = 42,
             target_items: Collection[Any] | None = None,
             progress: Callable[[int, int], None] | None = None) -> EvalResult:
    """Evaluate ``model`` (GRU4Rec or a :mod:`baseline <gru4rec.baselines>`) on test
    sessions (path, DataFrame or Events).

    Every model is measured the same way: after each event but the last of a test session,
    the model scores every training item given the session so far (nothing of the target),
    and the target's rank among all of them is counted under the tie ``mode``.

    Args:
        cutoffs: list lengths k for Recall@k and MRR@k, measured in one pass.
        mode: tie handling: standard, conservative, median or tiebreaking.
        batch_size: session-parallel slots.
        test_against_items: rank the target only against the N most popular training
            items (plus itself). Use only with catalogues of millions of items, N >= 50,000.
        session_key, item_key, time_key: the column names of the test data; ``user_key``
            the user column (needed by ``continue_state``).
        continue_state: start each test user from their state at the end of the training
            data (see the module); needs a model trained with ``session_boundary=carry``.
        seed: seeds the random tie-breaking.
        target_items: count only the predictions whose target is one of these item ids
            (e.g. the items a retraining added); ids the model does not know are ignored.
            The sessions still run through every event.
        progress: called as ``progress(done, total)`` after every step of the replay
            (GRU4Rec: a session-parallel step; a baseline: a batch of scored prefixes), the
            last call being ``(total, total)``; e.g. to draw a progress bar.

    Raises:
        NotFittedError: the model is not trained, or its training diverged.
        ConfigError: ``cutoffs`` is not a non-empty list of positive ints, ``mode`` is not
            one of the four tie modes, ``batch_size`` / ``test_against_items`` is < 1, or
            ``continue_state`` with a model without user states or without ``user_key``.
        DataError: the test data cannot be read, is malformed or lacks a column, or leaves
            no prediction (no test session has 2 or more events of known items, or no
            target is in ``target_items``).
    """
    model.check_fitted()
    _check_options(mode, batch_size, test_against_items)
    if isinstance(model, Baseline):
        return _evaluate_baseline(model, test, cutoffs, mode, batch_size, test_against_items,
                                  (session_key, item_key, time_key), continue_state, seed,
                                  target_items, progress)
    start = time.perf_counter()
    acc = MetricAccumulator(cutoffs)
    if continue_state:
        if model.user_states_ is None:
            raise ConfigError("continue_state needs a model trained with "
                              "session_boundary=carry and a user column (it has no user "
                              "states)")
        if user_key is None and not (isinstance(test, Events) and test.user is not None):
            raise ConfigError("continue_state needs the test data's user column: give "
                              "user_key (CLI: -uk/--user_key)")
    events = read_events(test, session_key=session_key, item_key=item_key, time_key=time_key,
                         user_key=user_key)
    counted = None
    if target_items is not None:  # (n_items,) bool: which targets count
        idx = lookup(model.item_index_, target_items)
        counted = torch.zeros(model.n_items, dtype=torch.bool, device=model.net_.device)
        counted[torch.as_tensor(idx[idx >= 0], device=counted.device)] = True
    rank = _ranker(model, mode, seed, test_against_items)
    if continue_state:
        sequences, starts, n_dropped = group_sequences(events, model.item_index_)
        _replay_users(model, sequences, starts, batch_size, rank, acc, counted, progress)
    else:
        sessions, n_dropped = group_sessions(events, model.item_index_)
        _replay(model, sessions, batch_size, rank, acc, counted, progress)
    return _result(acc, n_dropped, start, mode)


def _result(acc: MetricAccumulator, n_dropped: int, start: float, mode: str) -> EvalResult:
    """The EvalResult of a finished evaluation (``start``: its perf_counter start)."""
    if n_dropped:
        log.warning("dropped %d test events with items unknown to the model", n_dropped)
    metrics = acc.result()
    n = int(metrics.pop("n"))
    return EvalResult(metrics, n, n_dropped, time.perf_counter() - start,
                      tuple(acc.cutoffs), mode)


def _check_options(mode: str, batch_size: int, test_against_items: int | None) -> None:
    """ConfigError for an unknown tie mode, or a batch size / item count below 1."""
    check_mode(mode)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if test_against_items is not None and test_against_items < 1:
        raise ConfigError(f"test_against_items must be >= 1, got {test_against_items}")


def _replay(model: GRU4Rec, sessions: SessionData, batch_size: int, rank: Ranker,
            acc: MetricAccumulator, counted: torch.Tensor | None = None,
            progress: ProgressFn | None = None) -> None:
    """Run the test sessions session-parallel from zero states; after every event but the
    last of a session, add the rank of its next item (``rank(h, targets)``) to ``acc``
    (only for targets where the (n_items,) mask ``counted`` is True, when given);
    ``progress(steps done, steps)`` after every step."""
    net = model.net_
    sched = DeviceSchedule(build_schedule(sessions, batch_size), net.device)
    with torch.inference_mode():
        state = net.zero_state(sched.first_size)
        for t in range(sched.n_steps):
            state = sched.carry_state(t, state)
            inp, tgt = sched.step(t)
            state = net.hidden(net.input_rows(inp), state, training=False)
            if counted is None:
                acc.update(rank(state[-1], tgt))
            else:
                keep = counted[tgt]
                acc.update(rank(state[-1][keep], tgt[keep]))
            if progress is not None:
                progress(t + 1, sched.n_steps)


def _replay_users(model: GRU4Rec, sequences: SessionData, starts: np.ndarray,
                  batch_size: int, rank: Ranker, acc: MetricAccumulator,
                  counted: torch.Tensor | None = None,
                  progress: ProgressFn | None = None) -> None:
    """Run the test users' sequences user-parallel, each from the user's stored state (zero
    for new users); after every event add the rank of the next one to ``acc`` when it is in
    the same session (``starts`` (N,): True where an event begins a session), and, when
    given, where the (n_items,) mask ``counted`` is True for it; ``progress(steps done,
    steps)`` after every step."""
    net, users = model.net_, model.user_states_
    assert users is not None  # checked by evaluate
    raw = build_schedule(sequences, batch_size)
    sched = DeviceSchedule(raw, net.device)
    dev = net.device
    seq = np.searchsorted(sequences.offsets, raw.events, side="right") - 1
    # the stored-state row of each entry that starts a user's sequence; -1: zeros
    rows = np.where(raw.reset, users.rows(sequences.session_ids)[seq], -1)
    table = users.padded()
    rows_t = torch.as_tensor(np.where(rows < 0, len(users), rows), device=dev)
    same = torch.as_tensor(~starts[raw.events + 1], device=dev)  # target in the same session
    bounds = raw.step_offsets.tolist()
    has_reset = np.add.reduceat(raw.reset, raw.step_offsets[:-1]) > 0 if sched.n_steps \
        else np.zeros(0, dtype=bool)
    with torch.inference_mode():
        state = net.zero_state(sched.first_size)
        for t in range(sched.n_steps):
            lo, hi = bounds[t], bounds[t + 1]
            state = sched.carry_state(t, state)  # zeroes the rows that start a sequence
            if has_reset[t]:  # ... which then take the user's stored state
                init = torch.split(table.index_select(0, rows_t[lo:hi]), net.layers, dim=1)
                state = [h + s for h, s in zip(state, init, strict=True)]
            inp, tgt = sched.step(t)
            state = net.hidden(net.input_rows(inp), state, training=False)
            keep = same[lo:hi] if counted is None else same[lo:hi] & counted[tgt]
            acc.update(rank(state[-1][keep], tgt[keep]))
            if progress is not None:
                progress(t + 1, sched.n_steps)


def _ranker(model: GRU4Rec, mode: str, seed: int, test_against_items: int | None) -> Ranker:
    """``rank(h, targets)``: (M,) ranks of the targets for (M, H_last) output states."""
    net = model.net_
    gen = torch.Generator(device=net.device).manual_seed(seed)
    columns = _popular_items(model, test_against_items)
    # contiguous copies of the output weights, once: the matmuls run ~25% faster on them
    out = (net.output_weights.contiguous(), net.output_bias.contiguous())

    def rank(h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return _ranks(out, h, targets, mode, gen, columns)
    return rank


def _popular_items(model: GRU4Rec, n: int | None) -> torch.Tensor | None:
    """Indices of the n most popular training items, or None for the full catalogue."""
    if n is None or n >= model.n_items:
        return None
    support = torch.as_tensor(model.item_support_)
    return torch.topk(support, n).indices.to(model.net_.device)


def _ranks(out: tuple[torch.Tensor, torch.Tensor], h: torch.Tensor, tgt: torch.Tensor,
           mode: str, gen: torch.Generator, columns: torch.Tensor | None) -> torch.Tensor:
    """(M,) ranks of the targets for output states h (M, H); out = (Wy, by)."""
    wy, by = out
    if columns is None:
        m = max(h.shape[0], 1)
        chunk = wy.shape[0] if wy.shape[0] * m <= ONE_BLOCK_ELEMENTS \
            else max(1, CHUNK_ELEMENTS // m)
        return target_ranks_chunked(h, wy, by, tgt, mode, chunk_items=chunk, generator=gen)
    # restricted catalogue: the popular columns with the target masked out, then the target
    sub = torch.addmm(by[columns], h, wy[columns].t())  # (M, N)
    sub = sub.masked_fill(columns[None, :] == tgt[:, None], float("-inf"))
    own = (h * wy[tgt]).sum(1) + by[tgt]
    scores = torch.cat([sub, own[:, None]], 1)
    last = torch.full_like(tgt, scores.shape[1] - 1)
    return target_ranks(scores, last, mode, gen)


def _evaluate_baseline(model: Baseline, test: Any, cutoffs: Sequence[int], mode: str,
                       batch_size: int, test_against_items: int | None,
                       keys: tuple[str, str, str], continue_state: bool, seed: int,
                       target_items: Collection[Any] | None,
                       progress: ProgressFn | None = None) -> EvalResult:
    """:func:`evaluate` for a baseline: the same predictions, full ranking, every tie mode."""
    name = type(model).__name__
    if test_against_items is not None:
        raise ConfigError(f"test_against_items is for GRU4Rec models only; {name} is always "
                          "ranked against every item")
    if continue_state:
        raise ConfigError(f"continue_state needs a sequence-aware GRU4Rec model; {name} has "
                          "no user states")
    start = time.perf_counter()
    acc = MetricAccumulator(cutoffs)
    events = read_events(test, session_key=keys[0], item_key=keys[1], time_key=keys[2])
    sessions, n_dropped = group_sessions(events, model.item_index_)
    counted = None
    if target_items is not None:  # (n_items,) bool: which targets count
        counted = np.zeros(model.n_items, dtype=bool)
        idx = lookup(model.item_index_, target_items)
        counted[idx[idx >= 0]] = True
    _replay_prefixes(model, sessions, batch_size, mode, seed, acc, counted, progress)
    return _result(acc, n_dropped, start, mode)


def _replay_prefixes(model: Baseline, sessions: SessionData, batch_size: int, mode: str,
                     seed: int, acc: MetricAccumulator, counted: np.ndarray | None,
                     progress: ProgressFn | None = None) -> None:
    """Score every prefix x_1..x_c (c = 1..L-1) of every session, ``batch_size`` prefixes per
    call (fewer for models with dense scores, to bound the (B, n_items) block), and add the
    ranks of the targets x_{c+1} (where ``counted`` (n_items,) is True, when given);
    ``progress(batches done, batches)`` after every batch."""
    items, offsets = sessions.items, sessions.offsets
    # every event but a session's first is a target; its prefix starts at the session start
    targets = np.flatnonzero(np.isin(np.arange(len(items)), offsets[:-1], invert=True))
    if counted is not None:
        targets = targets[counted[items[targets]]]
    starts = offsets[np.searchsorted(offsets, targets, side="right") - 1]
    if model.dense_scores:  # about 32 MB of float64 scores per block
        batch_size = max(1, min(batch_size, (1 << 22) // max(model.n_items, 1)))
    gen = torch.Generator().manual_seed(seed)
    n_batches = -(-len(targets) // batch_size)
    for done, lo in enumerate(range(0, len(targets), batch_size), 1):
        tgt = targets[lo:lo + batch_size]
        prefixes = [items[a:b] for a, b in zip(starts[lo:lo + batch_size].tolist(),
                                               tgt.tolist(), strict=True)]
        acc.update(_prefix_ranks(model.score(prefixes), items[tgt], mode, gen))
        if progress is not None:
            progress(done, n_batches)


def _prefix_ranks(scores: Scores, targets: np.ndarray, mode: str,
                  gen: torch.Generator) -> torch.Tensor:
    """(B,) ranks of the (B,) target indices under (B, n_items) dense or sparse scores."""
    if isinstance(scores, SparseRows):
        greater, equal = sparse_target_counts(scores.indptr, scores.indices, scores.data,
                                              scores.n_cols, targets)
        return ranks_from_counts(torch.from_numpy(greater), torch.from_numpy(equal), mode, gen)
    return target_ranks(torch.from_numpy(np.asarray(scores, dtype=np.float64)),
                        torch.from_numpy(targets), mode, gen)
