"""The session-parallel mini-batch schedule of one epoch, built once with NumPy.

B slots each hold one session; every step each active slot feeds its current item and
predicts the next one. A slot whose session is exhausted takes the next unused session and
its hidden state is reset to zero. When no session is left, finished slots are dropped and
the batch shrinks (see docs/algorithm.md §2). The whole schedule is precomputed here so that the
training loop does no per-step bookkeeping.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import torch

from gru4rec.data.sessions import SessionData

__all__ = ["DeviceSchedule", "PaddedSchedule", "Schedule", "StaticDeviceSchedule", "build_schedule",
           "pad_schedule"]


@dataclass(frozen=True)
class Schedule:
    """Flat arrays describing every step of an epoch.

    Attributes:
        inputs: (E,) item index fed at each (step, active slot), steps back to back.
        targets: (E,) item index to predict, aligned with ``inputs``.
        step_offsets: (T + 1,) step t covers inputs[step_offsets[t]:step_offsets[t+1]].
        reset: (E,) bool, True where the slot starts a new session at that step.
        keep: {t: (M_t,) int64} for steps where the batch shrank: positions (among the
            previous step's slots) of the slots still active, in order.
        slots: (E,) int64 slot number of each entry (for tests and diagnostics).
        events: (E,) int64 position of each entry's input event in ``sessions.items`` (its
            target is the next position).
    """

    inputs: np.ndarray
    targets: np.ndarray
    step_offsets: np.ndarray
    reset: np.ndarray
    keep: dict[int, np.ndarray]
    slots: np.ndarray
    events: np.ndarray

    @property
    def n_steps(self) -> int:
        return int(self.step_offsets.shape[0] - 1)

    def sizes(self) -> np.ndarray:
        """(T,) number of active slots M_t of every step."""
        return np.diff(self.step_offsets)


def _assign_slots(n_examples: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Give each session (in order) the slot that frees up first (lowest slot on ties).

    Returns (slot, start_step) per session. A heap over B slots: O(S log B) once per order.
    """
    n = len(n_examples)
    slot = np.empty(n, dtype=np.int64)
    start = np.empty(n, dtype=np.int64)
    heap = [(0, j) for j in range(min(batch_size, n))]
    lengths = n_examples.tolist()
    for i in range(n):
        free_at, j = heapq.heappop(heap)
        slot[i], start[i] = j, free_at
        heapq.heappush(heap, (free_at + lengths[i], j))
    return slot, start


def build_schedule(sessions: SessionData, batch_size: int, *, min_active: int = 1,
                   order: np.ndarray | None = None) -> Schedule:
    """Session-parallel schedule of one epoch.

    Args:
        sessions: sessions in their default visiting order.
        batch_size: number of slots B.
        min_active: the epoch ends as soon as fewer slots than this are active
            (2 when there are no extra negative samples).
        order: optional permutation of the sessions (e.g. a shuffled order per epoch).
    """
    offsets = sessions.offsets
    starts_ev = offsets[:-1] if order is None else offsets[:-1][order]
    lengths = np.diff(offsets) if order is None else np.diff(offsets)[order]
    keep_sess = lengths >= 2  # a 1-event session gives no example
    starts_ev, n_ex = starts_ev[keep_sess], lengths[keep_sess] - 1
    slot, t0 = _assign_slots(n_ex, batch_size)
    within = np.arange(int(n_ex.sum())) - np.repeat(np.cumsum(n_ex) - n_ex, n_ex)
    ev = np.repeat(starts_ev, n_ex) + within
    step = np.repeat(t0, n_ex) + within
    slots = np.repeat(slot, n_ex)
    order_e = np.lexsort((slots, step))  # by step, then slot: slot order is kept on shrink
    step, slots, ev, within = step[order_e], slots[order_e], ev[order_e], within[order_e]
    counts = np.bincount(step) if len(step) else np.zeros(0, dtype=np.int64)
    n_steps = int(np.argmax(counts < min_active)) if np.any(counts < min_active) else len(counts)
    n_keep = int(counts[:n_steps].sum())
    step_offsets = np.r_[0, np.cumsum(counts[:n_steps])].astype(np.int64)
    ev, slots, within = ev[:n_keep], slots[:n_keep], within[:n_keep]
    keep = _shrink_maps(slots, step_offsets)
    return Schedule(inputs=sessions.items[ev], targets=sessions.items[ev + 1],
                    step_offsets=step_offsets, reset=within == 0, keep=keep, slots=slots,
                    events=ev)


def _shrink_maps(slots: np.ndarray, step_offsets: np.ndarray) -> dict[int, np.ndarray]:
    """For every step where M shrinks: positions of the surviving slots in the previous step."""
    sizes = np.diff(step_offsets)
    keep: dict[int, np.ndarray] = {}
    for t in np.flatnonzero(sizes[1:] < sizes[:-1]) + 1:
        prev = slots[step_offsets[t - 1]:step_offsets[t]]
        cur = slots[step_offsets[t]:step_offsets[t + 1]]
        keep[int(t)] = np.flatnonzero(np.isin(prev, cur)).astype(np.int64)
    return keep


class DeviceSchedule:
    """A :class:`Schedule` moved to the compute device once and sliced per step.

    The per-step work is two tensor views plus, only on steps that need it, one gather
    (shrink) or one multiply (reset): no host-side bookkeeping inside the loop.
    """

    def __init__(self, sched: Schedule, device: torch.device) -> None:
        self.n_steps = sched.n_steps
        self.bounds = sched.step_offsets.tolist()
        self.first_size = self.bounds[1] - self.bounds[0] if self.n_steps else 0
        self.n_events = int(sched.step_offsets[-1])
        self.inputs = torch.as_tensor(sched.inputs, device=device)
        self.targets = torch.as_tensor(sched.targets, device=device)
        keep = (~sched.reset).astype(np.float32)[:, None]
        self._keep_state = torch.as_tensor(keep, device=device)  # (E, 1): 0 where reset
        starts = sched.step_offsets[:-1]
        self._has_reset = (np.add.reduceat(sched.reset, starts) > 0).tolist() \
            if self.n_steps else []
        self._shrink = {t: torch.as_tensor(k, device=device) for t, k in sched.keep.items()}

    def events_before(self, t: int) -> int:
        """Number of examples in the steps before step t."""
        return int(self.bounds[t])

    def step(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(M_t,) inputs and (M_t,) targets of step t."""
        lo, hi = self.bounds[t], self.bounds[t + 1]
        return self.inputs[lo:hi], self.targets[lo:hi]

    def carry_state(self, t: int, state: list[torch.Tensor]) -> list[torch.Tensor]:
        """Hidden state entering step t: drop finished slots, zero the slots that reset."""
        if t in self._shrink:
            state = [h.index_select(0, self._shrink[t]) for h in state]
        if self._has_reset[t]:
            lo, hi = self.bounds[t], self.bounds[t + 1]
            state = [h * self._keep_state[lo:hi] for h in state]
        return state


@dataclass(frozen=True)
class PaddedSchedule:
    """A :class:`Schedule` laid out on all B slots at every step (fixed shapes).

    Slot j's row stays row j for the whole epoch; at the end of the epoch the slots whose
    session is over are marked inactive instead of being dropped (their input and target are
    item 0, to be masked). Fixed shapes let a step be captured once as a CUDA graph.

    Attributes:
        inputs, targets: (T, B) int64 item indices.
        active: (T, B) bool, False where the shrinking schedule has no entry.
        reset: (T, B) bool, True where the slot starts a new session.
    """

    inputs: np.ndarray
    targets: np.ndarray
    active: np.ndarray
    reset: np.ndarray


def pad_schedule(sched: Schedule, batch_size: int) -> PaddedSchedule:
    """The fixed-shape layout of ``sched`` (see :class:`PaddedSchedule`)."""
    t = sched.n_steps
    step = np.repeat(np.arange(t), np.diff(sched.step_offsets))
    out = {name: np.zeros((t, batch_size), dtype=dtype)
           for name, dtype in (("inputs", np.int64), ("targets", np.int64),
                               ("active", bool), ("reset", bool))}
    out["inputs"][step, sched.slots] = sched.inputs
    out["targets"][step, sched.slots] = sched.targets
    out["active"][step, sched.slots] = True
    out["reset"][step, sched.slots] = sched.reset
    return PaddedSchedule(**out)


class StaticDeviceSchedule:
    """A :class:`PaddedSchedule` on the compute device, used like :class:`DeviceSchedule`
    but with all B slots at every step (see :func:`pad_schedule`)."""

    def __init__(self, sched: Schedule, batch_size: int, device: torch.device) -> None:
        padded = pad_schedule(sched, batch_size)
        self.n_steps = sched.n_steps
        self.first_size = batch_size
        self.n_events = int(sched.step_offsets[-1])
        self.inputs = torch.as_tensor(padded.inputs, device=device)
        self.targets = torch.as_tensor(padded.targets, device=device)
        self._active = torch.as_tensor(padded.active, dtype=torch.float32, device=device)
        keep = (~padded.reset).astype(np.float32)[:, :, None]
        self._keep = torch.as_tensor(keep, device=device)  # (T, B, 1): 0 where reset
        self._before = np.r_[0, np.cumsum(padded.active.sum(1))].tolist()

    def events_before(self, t: int) -> int:
        """Number of examples in the steps before step t."""
        return int(self._before[t])

    def step(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) inputs and (B,) targets of step t (item 0 in finished slots)."""
        return self.inputs[t], self.targets[t]

    def active(self, t: int) -> torch.Tensor:
        """(B,) float: 1 for the slots that hold a session at step t."""
        return self._active[t]

    def carry_state(self, t: int, state: list[torch.Tensor]) -> list[torch.Tensor]:
        """Hidden state entering step t: the slots that start a session are zeroed."""
        return [h * self._keep[t] for h in state]
