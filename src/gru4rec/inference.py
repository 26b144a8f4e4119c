"""Inference: top-k lists with exclusions and candidate sets, and live sessions that advance
one GRU step per event.

GRU4Rec summarises a session by one hidden state per layer, so a service that keeps that
state pays one GRU step per new click instead of replaying the whole session.
:class:`SessionTracker` does exactly that, with the states in a
:class:`~gru4rec.session_store.SessionStore`; stepping a session event by event gives the
same scores as :meth:`GRU4Rec.recommend` on the whole session (up to float rounding: the
tracker scores its few rows in a compiled kernel).

Rules shared by both paths:

- Unknown item ids are skipped: in a session they do not advance the state, and their count
  is reported in :attr:`Recommendations.unknown` (never an error). Unknown ids in
  ``exclude`` / ``candidates`` are ignored and counted in ``unknown_filter``.
- The allowed items are ``candidates`` (all items when ``None``) minus ``exclude``; ``k`` is
  capped at their number (no allowed item -> arrays with 0 columns).
- ``exclude_seen`` removes each session's own items: when it leaves fewer than ``k`` allowed
  items, the trailing entries of that row have score ``-inf`` (their item ids are items of
  the session itself and are not recommendations; keep ``scores > -inf``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gru4rec.backend import select_backend
from gru4rec.data.events import is_canonical_int
from gru4rec.data.sessions import ItemIndex
from gru4rec.errors import ConfigError, DataError, StoreUnavailableError
from gru4rec.nn.network import Network
from gru4rec.session_store import MemoryStore, SessionState, SessionStore
from gru4rec.user_states import UserStates

__all__ = ["ItemFilter", "Recommendations", "SessionInfo", "SessionTracker", "coerce_ids",
           "lookup", "model_fingerprint", "recommend_sessions", "replay"]

log = logging.getLogger(__name__)
_NO_ITEMS = np.zeros(0, dtype=np.int64)
_MAX_ID_CHARS = 256  # longer unknown ids are not kept in a session (bounded state size)
_MAX_TRIES = 50  # compare-and-set rounds of one batch before the store counts as unavailable


@dataclass(frozen=True)
class Recommendations:
    """Top-k lists, best first; unpacks as ``items, scores = result``.

    Attributes:
        items: (n, k) item ids (the model's id type).
        scores: (n, k) float32 scores.
        unknown: (n,) int64, unknown item ids skipped in each session (or event).
        unknown_filter: unknown ids in ``exclude`` and ``candidates`` (ignored).
        lengths: (n,) session lengths after the event (``SessionTracker.step`` only).
    """

    items: np.ndarray
    scores: np.ndarray
    unknown: np.ndarray
    unknown_filter: int = 0
    lengths: np.ndarray | None = None

    def __iter__(self) -> Iterator[np.ndarray]:  # tuple-style unpacking: items, scores
        return iter((self.items, self.scores))

    def __getitem__(self, i: int) -> np.ndarray:
        return (self.items, self.scores)[i]

    def __len__(self) -> int:
        return 2


@dataclass(frozen=True)
class SessionInfo:
    """What :meth:`SessionTracker.get` tells about a live session."""

    session_id: str
    length: int
    items: list[Any]
    last_access: float


def check_k(k: Any) -> int:
    """``k`` as an int, checked.

    Raises:
        ConfigError: ``k`` is not a positive integer (booleans are not).
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _id_collection(values: Any, name: str) -> list[Any]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise DataError(f"{name} must be a collection of item ids (a list or set), "
                        f"got {type(values).__name__}")
    return list(values)


def lookup(index: ItemIndex, ids: Iterable[Any]) -> np.ndarray:
    """Item ids -> (N,) int64 indices, -1 for unknown ids (an empty input is fine)."""
    ids = list(ids)
    if not ids:
        return np.zeros(0, dtype=np.int64)
    arr = np.asarray(ids)
    if arr.dtype.kind == "U" and index.ids.dtype.kind != "U":
        # NumPy turned a mix of ints and strs into strs: look the ints up as ints
        ints = [j for j, x in enumerate(ids) if not isinstance(x, str)]
        out = np.full(len(ids), -1, dtype=np.int64)
        if ints:
            out[ints] = index.lookup(np.asarray([ids[j] for j in ints]))
        return out
    return index.lookup(arr)


def coerce_ids(index: ItemIndex, values: Iterable[Any]) -> list[Any]:
    """Item ids from text or JSON -> the model's id type.

    Int-id model: a string holding a canonical decimal integer
    (:func:`~gru4rec.data.events.is_canonical_int`: ``"42"``, not ``"042"`` or ``"+42"``)
    becomes that int; other strings stay strings (unknown). Str-id model: an int becomes its
    decimal text (``42`` -> ``"42"``). Everything else is kept as given.
    """
    if index.ids.dtype.kind == "U":
        return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in values]
    return [int(v) if isinstance(v, str) and is_canonical_int(v) else v for v in values]


@dataclass(frozen=True)
class ItemFilter:
    """The allowed items: ``cols`` (C,) ascending item indices; ``pos`` (n_items,) the column
    of each item in ``cols`` (-1 when not allowed); ``n_unknown`` unknown ids given."""

    cols: torch.Tensor
    pos: np.ndarray
    n_unknown: int

    @classmethod
    def build(cls, index: ItemIndex, exclude: Collection[Any] | None,
              candidates: Collection[Any] | None, device: torch.device) -> ItemFilter | None:
        """``None`` when neither ``exclude`` nor ``candidates`` is given.

        Raises:
            DataError: ``exclude`` or ``candidates`` is a string or not iterable.
        """
        if exclude is None and candidates is None:
            return None
        n_unknown = 0
        allowed = np.ones(len(index), dtype=bool)
        if candidates is not None:
            cand = lookup(index, _id_collection(candidates, "candidates"))
            n_unknown += int((cand < 0).sum())
            allowed[:] = False
            allowed[cand[cand >= 0]] = True
        if exclude is not None:
            excl = lookup(index, _id_collection(exclude, "exclude"))
            n_unknown += int((excl < 0).sum())
            allowed[excl[excl >= 0]] = False
        cols = np.flatnonzero(allowed)
        pos = np.full(len(index), -1, dtype=np.int64)
        pos[cols] = np.arange(len(cols))
        return cls(torch.as_tensor(cols, device=device), pos, n_unknown)


def top_k(scores: torch.Tensor, k: int, filt: ItemFilter | None,
          seen: Sequence[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """(M, n_items) scores -> (M, k') item indices and float32 scores, best first.

    ``k' = min(k, allowed items)``; ``seen[m]`` (item indices) are scored ``-inf`` in row m.
    """
    if filt is not None:
        scores = scores.index_select(1, filt.cols)  # (M, C): only the allowed columns
    if seen is not None and any(len(s) for s in seen):
        rows = np.repeat(np.arange(len(seen)), [len(s) for s in seen])
        cols = np.concatenate(seen)
        if filt is not None:
            cols = filt.pos[cols]
            rows, cols = rows[cols >= 0], cols[cols >= 0]
        scores[torch.as_tensor(rows), torch.as_tensor(cols)] = float("-inf")
    top = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    ind = top.indices if filt is None else filt.cols[top.indices]
    return ind.cpu().numpy(), top.values.float().cpu().numpy()


def replay(net: Network, sessions: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """Run each session (known item indices, oldest first) from a zero state.

    Returns:
        the final hidden state of every layer, list of (n_sessions, H_i).
    """
    lengths = np.array([len(i) for i in sessions], dtype=np.int64)
    n = len(sessions)
    state = net.zero_state(n)
    pad = np.zeros((n, int(lengths.max(initial=0))), dtype=np.int64)
    for row, items in enumerate(sessions):
        pad[row, : len(items)] = items
    pad_t = torch.as_tensor(pad, device=net.device)
    for t in range(pad.shape[1]):
        rows = torch.as_tensor(np.flatnonzero(lengths > t), device=net.device)
        sub = [h.index_select(0, rows) for h in state]
        sub = net.hidden(net.input_rows(pad_t[rows, t]), sub, training=False)
        for h, new in zip(state, sub, strict=True):
            h.index_copy_(0, rows, new)
    return state


def recommend_sessions(net: Network, index: ItemIndex, sessions: Sequence[Sequence[Any]],
                       k: int, *, exclude_seen: bool = False,
                       exclude: Collection[Any] | None = None,
                       candidates: Collection[Any] | None = None) -> Recommendations:
    """Top-k for whole sessions (item-id lists, oldest first); see the module rules.

    Raises:
        ConfigError: ``k`` is not a positive integer.
        DataError: ``exclude`` or ``candidates`` is not a collection of item ids.
    """
    k = check_k(k)
    filt = ItemFilter.build(index, exclude, candidates, net.device)
    raw = [lookup(index, s) for s in sessions]
    unknown = np.array([int((i < 0).sum()) for i in raw], dtype=np.int64)
    idx = [i[i >= 0] for i in raw]
    h = replay(net, idx)[-1]  # (n, H_last)
    ind, vals = top_k(net.score_all(h), k, filt, idx if exclude_seen else None)
    return Recommendations(index.ids[ind], vals, unknown,
                           filt.n_unknown if filt is not None else 0)


def model_fingerprint(net: Network, index: ItemIndex) -> str:
    """SHA-256 (hex) of a network's weights and its item ids: equal for equal models."""
    h = hashlib.sha256()
    for name in sorted(net.params):
        h.update(name.encode())
        h.update(net.params[name].detach().cpu().contiguous().numpy().tobytes())
    h.update(repr(index.to_list()).encode())
    return h.hexdigest()


def _scorer(net: Network) -> Callable[[torch.Tensor], torch.Tensor]:
    """Scores of a few states against every item: (M, H_last) -> (M, n_items), on the
    backend of the network's device (:meth:`gru4rec.backend.TorchOps.scorer`: a compiled
    kernel over packed weights on the CPU, BLAS elsewhere)."""
    return select_backend(net.device).scorer(net.output_weights, net.output_bias)


class SessionTracker:
    """Live sessions: each event costs one batched GRU step and one scoring.

    Args:
        net, item_index: a trained network and its item index (use
            :meth:`GRU4Rec.session_tracker`).
        store: where the states live; default an in-process :class:`MemoryStore`.
        max_items: keep at most this many most recent clicked items per session (for
            ``exclude_seen``, :meth:`get` and rebuilding); the hidden state still summarises
            every event.
        model_tag: names this model in the states it writes (default: the first 16 hex digits
            of :func:`model_fingerprint`). A state written under another tag (another model
            serving the same store, e.g. before a model reload) is rebuilt on its next event:
            its kept items are replayed from a zero state through this model, so the session
            goes on as if this model had seen it from the start (up to the ``max_items`` most
            recent clicks).
        user_states: the users' training states of a sequence-aware model
            (:attr:`GRU4Rec.user_states_`): a new session whose first event names a known
            user starts from that user's state instead of from zero.

    Session ids are strings (other values are converted with ``str``). Trackers in several
    threads or processes may step the same sessions of one store at once: the writes are
    compare-and-set, so every event is applied exactly once (see :meth:`step`).

    Raises:
        ConfigError: ``max_items`` is neither None nor a positive integer.
    """

    def __init__(self, net: Network, item_index: ItemIndex, store: SessionStore | None = None,
                 *, max_items: int | None = None, model_tag: str | None = None,
                 user_states: UserStates | None = None) -> None:
        if max_items is not None and (not isinstance(max_items, int) or max_items < 1):
            raise ConfigError(f"max_items must be a positive integer or None, got {max_items!r}")
        self.net, self.index = net, item_index
        self.store: SessionStore = store if store is not None else MemoryStore()
        self.max_items = max_items
        self.model_tag = (model_tag if model_tag is not None
                          else model_fingerprint(net, item_index)[:16])
        self._splits = list(net.layers)
        self._scorer = _scorer(net)
        self._str_ids = item_index.ids.dtype.kind == "U"
        self.user_states = user_states
        self._user_rows = None if user_states is None else \
            user_states.states.detach().to("cpu", torch.float32).numpy()

    def _fresh(self, user: Any = None, version: int | None = None) -> SessionState:
        """A new session's state: zeros, or the training state of ``user`` when known
        (``version``: see :class:`SessionState`)."""
        hidden = np.zeros(sum(self._splits), dtype=np.float32)
        if user is not None and self.user_states is not None and self._user_rows is not None:
            row = int(self.user_states.rows(np.array([user]))[0])
            if row >= 0:
                hidden = self._user_rows[row].copy()
        return SessionState(hidden, np.zeros(0, dtype=self.index.ids.dtype), 0, time.time(),
                            self.model_tag, version)

    @torch.inference_mode()
    def step(self, session_ids: Sequence[Any], item_ids: Sequence[Any], k: int = 20, *,
             exclude_seen: bool | Sequence[bool] = False,
             exclude: Collection[Any] | None = None,
             candidates: Collection[Any] | None = None,
             users: Sequence[Any] | None = None) -> Recommendations:
        """Apply one event per entry (``session_ids[j]`` clicked ``item_ids[j]``) and return
        the top-k after each. The same session twice in a batch is applied in order. An
        unknown item does not advance its session (``unknown[j] == 1``), but it is kept among
        the session's clicks (a later model that knows it replays it). ``users[j]`` (or
        None): the user of entry j; a session that does not exist yet starts from that
        user's training state when the tracker has ``user_states`` and knows the user.

        Returns:
            :class:`Recommendations` with (M, k') items and scores, (M,) unknown flags and
            (M,) session lengths after each event.

        Raises:
            DataError: ``session_ids`` and ``item_ids`` differ in length, or ``exclude`` /
                ``candidates`` is not a collection of item ids.
            ConfigError: ``k`` is not a positive integer.
            StoreUnavailableError: the store cannot be reached (e.g. Redis is down), or other
                writers kept changing a session of the batch (50 compare-and-set rounds in a
                row); the sessions not written then have not advanced.
        """
        sids = [str(s) for s in session_ids]
        if len(sids) != len(item_ids):
            raise DataError(f"got {len(sids)} session ids but {len(item_ids)} item ids; give "
                            "one item per session id")
        k = check_k(k)
        filt = ItemFilter.build(self.index, exclude, candidates, self.net.device)
        idx = lookup(self.index, item_ids)
        clicked = [self.index.ids[i] if i >= 0 else self._storable(x)
                   for i, x in zip(idx.tolist(), item_ids, strict=True)]
        first_user: dict[str, Any] = {}
        for j, s in enumerate(sids):
            if users is not None and users[j] is not None:
                first_user.setdefault(s, users[j])
        rows, seen, lengths = self._commit(sids, idx, clicked, first_user)
        h = torch.from_numpy(rows).to(self.net.device)  # (M, H_last)
        scores = self._scorer(h)  # (M, n_items)
        excl = [exclude_seen] * len(sids) if isinstance(exclude_seen, bool) else exclude_seen
        seen_idx = [self._known(s) if e else _NO_ITEMS
                    for s, e in zip(seen, excl, strict=True)]
        ind, vals = top_k(scores, k, filt, seen_idx)
        return Recommendations(self.index.ids[ind], vals, (idx < 0).astype(np.int64),
                               filt.n_unknown if filt is not None else 0, lengths)

    def _read(self, sids: list[str], first_user: dict[str, Any]) -> dict[str, SessionState]:
        """The stored states of distinct sessions ``sids`` (fresh ones where absent), rebuilt
        where another model wrote them."""
        states = {s: st if st is not None else self._fresh(first_user.get(s), version=0)
                  for s, st in zip(sids, self.store.get_many(sids), strict=True)}
        self._rebuild([st for st in states.values() if st.model != self.model_tag])
        return states

    def _commit(self, sids: list[str], idx: np.ndarray, clicked: list[Any],
                first_user: dict[str, Any]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Read, advance and write the sessions of a batch (see :meth:`_apply` for what it
        returns). Writes are compare-and-set: the sessions another writer changed meanwhile
        (e.g. another worker of the service) are read again and their events applied again,
        so concurrent events of one session are all kept, in the order they reach the store."""
        todo = np.arange(len(sids))
        out, seen, lengths = None, [_NO_ITEMS] * len(sids), np.zeros(len(sids), np.int64)
        for _ in range(_MAX_TRIES):
            part = [sids[j] for j in todo]
            states = self._read(list(dict.fromkeys(part)), first_user)
            rows, part_seen, part_len = self._apply(part, idx[todo],
                                                    [clicked[j] for j in todo], states)
            now = time.time()
            for st in states.values():
                st.last_access = now
            lost = set(self.store.put_many(states) or ())
            out = rows if out is None else out
            out[todo], lengths[todo] = rows, part_len
            for j, s in zip(todo.tolist(), part_seen, strict=True):
                seen[j] = s
            if not lost:
                return out, seen, lengths
            todo = todo[[sids[j] in lost for j in todo.tolist()]]
        raise StoreUnavailableError(
            f"{len(set(sids[j] for j in todo))} session(s) were changed by other writers "
            f"{_MAX_TRIES} times in a row while this event was applied; retry the request")

    def _storable(self, item: Any) -> Any:
        """An unknown clicked id as it can be kept in a state (``None``: it cannot, e.g. a
        string for a model of integer ids, which no model of that kind will ever know)."""
        if isinstance(item, bool):
            return None
        if self._str_ids:
            item = str(item) if isinstance(item, int | np.integer) else item
            return item if isinstance(item, str) and len(item) <= _MAX_ID_CHARS else None
        ok = isinstance(item, int | np.integer) and -(2**63) <= int(item) < 2**63
        return int(item) if ok else None

    def _known(self, items: np.ndarray) -> np.ndarray:
        """(L,) kept item ids -> the indices of those this model knows, in order."""
        if len(items) == 0:
            return _NO_ITEMS
        idx = self.index.lookup(items)
        return idx[idx >= 0]

    def _rebuild(self, stale: list[SessionState]) -> None:
        """States computed by another model: replay their kept items through this one, from a
        zero state (one batched GRU step per position), and adopt them."""
        if not stale:
            return
        known = [self._known(st.items) for st in stale]
        flat = torch.cat(replay(self.net, known), dim=1).cpu().numpy()  # (n, sum H_i)
        for row, (st, seq) in enumerate(zip(stale, known, strict=True)):
            # events beyond the kept items cannot be replayed; they still count in length
            st.length = len(seq) + max(0, st.length - len(st.items))
            st.hidden, st.model = flat[row], self.model_tag
        log.info("rebuilt %d session state(s) written by another model", len(stale))

    def _apply(self, sids: list[str], idx: np.ndarray, clicked: list[Any],
               states: dict[str, SessionState]
               ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Advance the states in rounds (round r = the r-th event of each session).

        Returns (M, H_last) output states, the kept clicked ids and the length after each
        event."""
        occ = np.empty(len(sids), dtype=np.int64)  # occurrence number of each entry
        count: dict[str, int] = {}
        for j, s in enumerate(sids):
            n = count.get(s, 0)
            occ[j], count[s] = n, n + 1
        out = np.empty((len(sids), self._splits[-1]), dtype=np.float32)
        seen: list[np.ndarray] = [_NO_ITEMS] * len(sids)
        lengths = np.zeros(len(sids), dtype=np.int64)
        for r in range(int(occ.max(initial=-1)) + 1):
            entries = np.flatnonzero(occ == r)
            known = entries[idx[entries] >= 0]
            self._advance([sids[j] for j in known], idx[known], states)
            for j in entries.tolist():
                st = states[sids[j]]
                if clicked[j] is not None:
                    items = np.append(st.items, clicked[j])
                    if self.max_items is not None and len(items) > self.max_items:
                        items = items[-self.max_items:]
                    st.items = items
                out[j], seen[j], lengths[j] = st.hidden[-self._splits[-1]:], st.items, st.length
        return out, seen, lengths

    def _advance(self, sids: list[str], idx: np.ndarray, states: dict[str, SessionState]
                 ) -> None:
        """One batched GRU step for distinct sessions ``sids`` with known items ``idx``."""
        if not sids:
            return
        net = self.net
        flat = (states[sids[0]].hidden[None] if len(sids) == 1
                else np.stack([states[s].hidden for s in sids]))
        h = torch.from_numpy(flat).to(net.device)  # (M, sum H_i)
        x = net.input_rows(torch.as_tensor(idx, device=net.device))
        new = net.hidden(x, list(torch.split(h, self._splits, dim=1)), training=False)
        new_flat = torch.cat(new, dim=1).cpu().numpy()  # (M, sum H_i), fresh memory
        for row, sid in enumerate(sids):
            st = states[sid]
            st.hidden, st.length = new_flat[row], st.length + 1

    def get(self, session_id: Any) -> SessionInfo | None:
        """Length, kept item ids (those this model knows) and last access of a live session
        (``None`` if absent).

        Raises:
            StoreUnavailableError: the store cannot be reached (e.g. Redis is down).
        """
        st = self.store.get_many([str(session_id)])[0]
        if st is None:
            return None
        return SessionInfo(str(session_id), st.length,
                           self.index.ids[self._known(st.items)].tolist(), st.last_access)

    def delete(self, session_id: Any) -> bool:
        """Forget a session; True when it existed.

        Raises:
            StoreUnavailableError: the store cannot be reached (e.g. Redis is down).
        """
        return self.store.delete(str(session_id))

    def reset(self, session_id: Any) -> None:
        """Start a session over: a zero state, no items (it exists, with length 0).

        Raises:
            StoreUnavailableError: the store cannot be reached (e.g. Redis is down).
        """
        self.store.put_many({str(session_id): self._fresh()})  # unconditional (version None)
