"""Seeded synthetic click logs with real sequential structure, for demos and benchmarks.

The generating process, fixed per dataset by ``seed``:

* **Popularity.** Items have a Zipf-like popularity: the item of popularity rank r (a random
  permutation of the items) is drawn with probability proportional to ``1 / r**zipf_exponent``.
* **Successors.** Every item has 2 to 4 "successor" items (drawn uniformly once, never the
  item itself) with random weights that sum to one.
* **Clicks.** A session starts with a popularity-weighted item. Each following click is, with
  probability ``p_follow``, one of the current item's successors (by weight), and otherwise
  a fresh popularity-weighted item. A sequence model can learn the successor structure and so
  clearly beats a popularity baseline.
* **Lengths.** Session length is ``1 + Geometric(p)`` with ``1/p = mean_length - 1``: at least
  two events, mean ``mean_length``, a realistic long tail.
* **Times.** Sessions start at sorted uniform times over ``time_span`` seconds, so session ids
  follow start time. Consecutive events of a session are ``1 + Exponential(gap_seconds)``
  seconds apart. Times are float64 seconds.
* **Ids.** Session ids are int64 ``0 .. n_sessions - 1``; item ids are opaque int64 numbers
  drawn without replacement from a 6-digit (or wider, for huge catalogues) range, see
  :func:`item_vocabulary`.

Generation is vectorised: one NumPy step per position within a session, over all sessions
still running, so a million events take well under a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gru4rec.data.events import Events
from gru4rec.errors import ConfigError, DataError

__all__ = ["item_vocabulary", "make_sessions", "make_user_sessions", "train_test_split_last"]

_MIN_SUCCESSORS = 2
_MAX_SUCCESSORS = 4
_STREAM_IDS = 1  # the random stream of the item ids, separate from the click process


def item_vocabulary(n_items: int, seed: int = 0) -> np.ndarray:
    """The (n_items,) distinct int64 item ids that :func:`make_sessions` uses for ``seed``.

    Ids are drawn without replacement from ``[lo, 10 * lo)``, where ``lo = 100_000`` (6-digit
    ids) is widened by factors of ten until the range holds at least four times ``n_items``.
    Entry i is the id of internal item i.

    Raises:
        ConfigError: ``n_items`` is not an int >= 2.
    """
    _check_positive_int("n_items", n_items, minimum=2)
    lo = 100_000
    while 9 * lo < 4 * n_items:
        lo *= 10
    rng = np.random.default_rng([seed, _STREAM_IDS])
    return rng.choice(9 * lo, size=n_items, replace=False).astype(np.int64) + lo


def _check_positive_int(name: str, value: int, minimum: int = 1) -> None:
    """Raise ConfigError unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_args(
    n_items: int, n_sessions: int, mean_length: float, p_follow: float, zipf_exponent: float
) -> None:
    """Raise ConfigError on any out-of-range generator argument."""
    _check_positive_int("n_items", n_items, minimum=2)
    _check_positive_int("n_sessions", n_sessions)
    if not mean_length >= 2.0:
        raise ConfigError(
            f"mean_length must be >= 2 (sessions have >= 2 events), got {mean_length}"
        )
    if not 0.0 <= p_follow <= 1.0:
        raise ConfigError(f"p_follow must be a probability in [0, 1], got {p_follow}")
    if not zipf_exponent >= 0.0:
        raise ConfigError(f"zipf_exponent must be >= 0, got {zipf_exponent}")


def _popularity_cdf(rng: np.random.Generator, n_items: int, exponent: float) -> np.ndarray:
    """(n_items,) cumulative Zipf-like click probability over internal items 0..n_items-1."""
    weights = np.empty(n_items)
    weights[rng.permutation(n_items)] = 1.0 / np.arange(1, n_items + 1) ** exponent
    cdf = np.cumsum(weights)
    normalised: np.ndarray = cdf / cdf[-1]
    return normalised


def _successor_tables(rng: np.random.Generator, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Successors (n_items, 4) int64 and their cumulative weights (n_items, 4) float64.

    Unused slots (items with fewer than 4 successors) get zero weight; each row's cumulative
    weight ends at exactly 1.
    """
    n_succ = rng.integers(_MIN_SUCCESSORS, _MAX_SUCCESSORS + 1, size=n_items)
    succ = rng.integers(0, n_items - 1, size=(n_items, _MAX_SUCCESSORS))
    succ += succ >= np.arange(n_items)[:, None]  # skip the item itself
    weights = rng.gamma(2.0, size=(n_items, _MAX_SUCCESSORS))
    weights[np.arange(_MAX_SUCCESSORS)[None, :] >= n_succ[:, None]] = 0.0
    cum = np.cumsum(weights, axis=1)
    cum /= cum[:, -1:]
    cum[:, -1] = 1.0
    return succ.astype(np.int64), cum


def _session_lengths(rng: np.random.Generator, n_sessions: int, mean_length: float) -> np.ndarray:
    """(n_sessions,) int64 lengths, 1 + Geometric with mean ``mean_length``, minimum 2."""
    return 1 + rng.geometric(1.0 / (mean_length - 1.0), size=n_sessions).astype(np.int64)


def _draw_items(
    rng: np.random.Generator,
    lengths: np.ndarray,
    popularity_cdf: np.ndarray,
    successors: tuple[np.ndarray, np.ndarray],
    p_follow: float,
    first: np.ndarray | None = None,
    then: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """(sum(lengths),) internal item indices, sessions laid out one after the other.

    ``first``: the sessions' first items (default: popularity-weighted draws); ``then(alive,
    nxt)``: replaces the next items ``nxt`` of the sessions ``alive`` at every position
    after the successor-or-popular draw (default: keeps them)."""
    succ, succ_cum = successors
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    items = np.empty(int(lengths.sum()), dtype=np.int64)
    n_items = popularity_cdf.shape[0]
    drawn = first if first is not None else \
        np.searchsorted(popularity_cdf, rng.random(lengths.shape[0]), side="right")
    current = np.minimum(drawn, n_items - 1)
    items[starts] = current
    for pos in range(1, int(lengths.max())):
        alive = np.flatnonzero(lengths > pos)
        cur = current[alive]
        slot = (rng.random(alive.shape[0])[:, None] >= succ_cum[cur]).sum(axis=1)
        followed = succ[cur, np.minimum(slot, _MAX_SUCCESSORS - 1)]
        fresh = np.searchsorted(popularity_cdf, rng.random(alive.shape[0]), side="right")
        fresh = np.minimum(fresh, n_items - 1)
        nxt = np.where(rng.random(alive.shape[0]) < p_follow, followed, fresh)
        if then is not None:
            nxt = then(alive, nxt)
        items[starts[alive] + pos] = nxt
        current[alive] = nxt
    return items


def _draw_times(
    rng: np.random.Generator, lengths: np.ndarray, time_span: float, gap_seconds: float
) -> np.ndarray:
    """(sum(lengths),) float64 times: sorted session starts plus cumulative in-session gaps."""
    session_start = np.sort(rng.uniform(0.0, time_span, size=lengths.shape[0]))
    gaps = 1.0 + rng.exponential(gap_seconds, size=int(lengths.sum()))
    first = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    gaps[first] = 0.0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first], lengths)
    return np.repeat(session_start, lengths) + elapsed


def make_sessions(
    n_items: int = 2000,
    n_sessions: int = 5000,
    *,
    mean_length: float = 5.0,
    seed: int = 0,
    p_follow: float = 0.7,
    zipf_exponent: float = 1.0,
    time_span: float = 30 * 86_400.0,
    gap_seconds: float = 60.0,
) -> Events:
    """Generate a synthetic click log (see the module docstring for the process).

    Args:
        n_items: catalogue size (>= 2); the item ids are ``item_vocabulary(n_items, seed)``.
        n_sessions: number of sessions (>= 1); expect about ``n_sessions * mean_length`` events.
        mean_length: mean events per session (>= 2).
        seed: the seed of every random choice; same seed, same arrays.
        p_follow: probability that a click follows the successor structure.
        zipf_exponent: popularity skew (0 = uniform).
        time_span: seconds over which session start times are spread.
        gap_seconds: mean extra gap between consecutive clicks of a session.

    Returns:
        Events with (N,) int64 session, (N,) int64 item, (N,) float64 time, ordered by session
        and, within a session, by time.

    Raises:
        ConfigError: an argument out of range (``n_items`` < 2, ``n_sessions`` < 1,
            ``mean_length`` < 2, ``p_follow`` outside [0, 1], ``zipf_exponent`` < 0).
    """
    _check_args(n_items, n_sessions, mean_length, p_follow, zipf_exponent)
    rng = np.random.default_rng([seed, 0])
    cdf = _popularity_cdf(rng, n_items, zipf_exponent)
    successors = _successor_tables(rng, n_items)
    lengths = _session_lengths(rng, n_sessions, mean_length)
    internal = _draw_items(rng, lengths, cdf, successors, p_follow)
    time = _draw_times(rng, lengths, time_span, gap_seconds)
    session = np.repeat(np.arange(n_sessions, dtype=np.int64), lengths)
    return Events(session=session, item=item_vocabulary(n_items, seed)[internal], time=time)


def make_user_sessions(
    n_items: int = 2000,
    n_users: int = 1000,
    *,
    sessions_per_user: float = 6.0,
    mean_length: float = 4.0,
    seed: int = 0,
    n_tastes: int = 25,
    p_taste: float = 0.5,
    p_follow: float = 0.5,
    zipf_exponent: float = 1.0,
    time_span: float = 30 * 86_400.0,
    gap_seconds: float = 60.0,
) -> Events:
    """Generate a click log of returning users who keep their tastes across sessions.

    The items are split at random into ``n_tastes`` groups, and every user has one of them
    as their taste. Every click of a user's session is, with probability ``p_taste``, a
    popularity-weighted item of the user's taste group; otherwise it is (after the first
    click, with probability ``p_follow``) one of the current item's successors, or a
    popularity-weighted item of the whole catalogue (popularity and successors as in
    :func:`make_sessions`). So the user's earlier sessions tell which items their next
    session favours, which the session alone shows only after a few clicks. Each user has
    ``1 + Poisson(sessions_per_user - 1)`` sessions at uniform times over ``time_span``;
    session lengths and gaps are those of :func:`make_sessions`.

    Returns:
        Events with int64 session ids (numbered by start time), the item ids of
        :func:`item_vocabulary`, float64 times and int64 user ids ``0 .. n_users - 1``.

    Raises:
        ConfigError: an argument out of range (as :func:`make_sessions`; ``n_users`` or
            ``n_tastes`` < 1, ``n_tastes`` > ``n_items``, ``sessions_per_user`` < 1,
            ``p_taste`` outside [0, 1]).
    """
    _check_args(n_items, n_users, mean_length, p_follow, zipf_exponent)
    _check_positive_int("n_users", n_users)
    _check_positive_int("n_tastes", n_tastes)
    if n_tastes > n_items:
        raise ConfigError(f"n_tastes must be <= n_items, got {n_tastes} > {n_items}")
    if not sessions_per_user >= 1.0:
        raise ConfigError(f"sessions_per_user must be >= 1, got {sessions_per_user}")
    if not 0.0 <= p_taste <= 1.0:
        raise ConfigError(f"p_taste must be a probability in [0, 1], got {p_taste}")
    rng = np.random.default_rng([seed, 2])
    cdf = _popularity_cdf(rng, n_items, zipf_exponent)
    succ, succ_cum = _successor_tables(rng, n_items)
    group = rng.integers(0, n_tastes, size=n_items)
    group[rng.permutation(n_items)[:n_tastes]] = np.arange(n_tastes)  # none is empty
    by_group = np.argsort(group, kind="stable")  # items of group 0, then of group 1, ...
    weight = np.diff(np.r_[0.0, cdf])[by_group]
    g_sorted = group[by_group]
    totals = np.bincount(g_sorted, weights=weight, minlength=n_tastes)
    within = np.cumsum(weight) - np.r_[0.0, np.cumsum(totals)][g_sorted]
    taste_cdf = g_sorted + within / totals[g_sorted]  # group g's items cover (g, g + 1]
    taste_cdf[np.r_[np.flatnonzero(np.diff(g_sorted)), len(g_sorted) - 1]] = \
        np.arange(1, n_tastes + 1)  # exact ends

    n_sess = 1 + rng.poisson(sessions_per_user - 1.0, size=n_users)
    user_of = np.repeat(np.arange(n_users, dtype=np.int64), n_sess)
    taste_of = rng.integers(0, n_tastes, size=n_users)[user_of]
    start = rng.uniform(0.0, time_span, size=len(user_of))
    order = np.argsort(start, kind="stable")  # sessions numbered by start time
    user_of, taste_of, start = user_of[order], taste_of[order], start[order]
    lengths = _session_lengths(rng, len(user_of), mean_length)

    def popular(k: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, rng.random(k), side="right"), n_items - 1)

    def of_taste(tastes: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(taste_cdf, tastes + rng.random(len(tastes)), side="right")
        return by_group[np.minimum(pos, n_items - 1)]

    def taste_or(alive: np.ndarray, other: np.ndarray) -> np.ndarray:
        return np.where(rng.random(len(alive)) < p_taste, of_taste(taste_of[alive]), other)

    first = taste_or(np.arange(len(lengths)), popular(len(lengths)))
    items = _draw_items(rng, lengths, cdf, (succ, succ_cum), p_follow, first, taste_or)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    gaps = 1.0 + rng.exponential(gap_seconds, size=len(items))
    gaps[starts] = 0.0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[starts], lengths)
    return Events(session=np.repeat(np.arange(len(lengths), dtype=np.int64), lengths),
                  item=item_vocabulary(n_items, seed)[items],
                  time=np.repeat(start, lengths) + elapsed,
                  user=np.repeat(user_of, lengths))


def _session_starts(events: Events) -> tuple[np.ndarray, np.ndarray]:
    """(N,) session code of each event and (n_sessions,) earliest time of each session."""
    _, codes = np.unique(events.session, return_inverse=True)
    codes = codes.reshape(-1)
    starts = np.full(int(codes.max()) + 1 if codes.size else 0, np.inf)
    np.minimum.at(starts, codes, events.time)
    return codes, starts


def train_test_split_last(events: Events, test_fraction: float = 0.1) -> tuple[Events, Events]:
    """Split by session start time: the sessions starting in the last part are the test set.

    A session is a test session when its first event lies in the last ``test_fraction`` of
    the time range of all events. Test events whose item never occurs in the training part
    are dropped, then test sessions left with fewer than two events are dropped.

    Returns:
        (train, test), each a subset of ``events`` in the original order.

    Raises:
        ConfigError: ``test_fraction`` is not strictly between 0 and 1.
        DataError: ``events`` is empty, or the split leaves no training or no test session.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if len(events) == 0:
        raise DataError("cannot split an empty event log")
    codes, starts = _session_starts(events)
    t_min, t_max = float(events.time.min()), float(events.time.max())
    threshold = t_max - test_fraction * (t_max - t_min)
    in_test = (starts > threshold)[codes]
    train = events.select(~in_test)
    if len(train) == 0:
        raise DataError("no training sessions: every session starts in the test period")
    keep = in_test & np.isin(events.item, np.unique(train.item))
    session_size = np.bincount(codes[keep], minlength=starts.shape[0])
    keep &= session_size[codes] >= 2
    if not keep.any():
        raise DataError(
            f"no test sessions left: none starts in the last {test_fraction:.0%} of the time "
            "range with >= 2 events of known items; use more data or a larger test_fraction"
        )
    return train, events.select(keep)
