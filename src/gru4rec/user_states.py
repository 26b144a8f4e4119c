"""Users' hidden states at the end of their training history (sequence-aware GRU4Rec).

A model trained with ``session_boundary=carry`` reads each user's events as one sequence.
After training, every user's sequence is replayed once with the final weights (no dropout),
from a zero state, and the state after the user's last event is kept: the evaluation with
``continue_state=True`` and the HTTP service start a returning user's next events from it
instead of from zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gru4rec.data.batching import DeviceSchedule, build_schedule
from gru4rec.data.sessions import ItemIndex, SessionData
from gru4rec.nn.network import Network

__all__ = ["UserStates", "final_states"]


@dataclass(frozen=True)
class UserStates:
    """The state of every training user.

    Attributes:
        users: the user ids (row i of ``states`` is ``users.ids[i]``).
        states: (U, sum of the layer sizes) float32, the layers' states side by side.
    """

    users: ItemIndex
    states: torch.Tensor

    def __len__(self) -> int:
        return len(self.users)

    def rows(self, user_ids: np.ndarray) -> np.ndarray:
        """(K,) user ids -> (K,) rows of ``states``, -1 for users without a state."""
        return self.users.lookup(user_ids)

    def padded(self) -> torch.Tensor:
        """(U + 1, sum H) the states with a zero row last: index with ``rows`` where -1
        (no state) is replaced by U, and users without a state start from zeros."""
        return torch.cat([self.states, self.states.new_zeros(1, self.states.shape[1])])


@torch.inference_mode()
def final_states(net: Network, sequences: SessionData, batch_size: int = 512) -> torch.Tensor:
    """(S, sum H) the state after the last event of every sequence of ``sequences``, each
    replayed from zero with ``net``'s weights, ``batch_size`` sequences in parallel."""
    sched = build_schedule(sequences, batch_size)
    dev, layers = net.device, net.layers
    n_seq = sequences.n_sessions
    before_last = torch.zeros(n_seq, sum(layers), device=dev)  # state entering the last event
    ev = sched.events
    seq = np.searchsorted(sequences.offsets, ev, side="right") - 1
    # entries whose target is their sequence's last event: the state after them is kept
    is_last = ev + 1 == sequences.offsets[seq + 1] - 1
    steps = DeviceSchedule(sched, dev)
    bounds = sched.step_offsets
    state = net.zero_state(steps.first_size)
    for t in range(steps.n_steps):
        state = steps.carry_state(t, state)
        inp, _ = steps.step(t)
        state = net.hidden(net.input_rows(inp), state, training=False)
        lo, hi = int(bounds[t]), int(bounds[t + 1])
        rows = np.flatnonzero(is_last[lo:hi])
        if len(rows):
            where = torch.as_tensor(rows, device=dev)
            who = torch.as_tensor(seq[lo:hi][rows], device=dev)
            before_last[who] = torch.cat([h.index_select(0, where) for h in state], 1)
    # one more step: each sequence's last event, from the state before it (zero for
    # sequences of one event, which have no entry in the schedule)
    last_items = torch.as_tensor(sequences.items[sequences.offsets[1:] - 1], device=dev)
    out = torch.empty_like(before_last)
    for lo in range(0, n_seq, batch_size):
        hi = min(lo + batch_size, n_seq)
        h = net.hidden(net.input_rows(last_items[lo:hi]),
                       list(torch.split(before_last[lo:hi], layers, dim=1)), training=False)
        out[lo:hi] = torch.cat(h, 1)
    return out
