"""Session-parallel mini-batches (docs/algorithm.md §2): properties and hand-written schedules."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gru4rec.data.batching import Schedule, build_schedule
from gru4rec.data.sessions import SessionData

# ----------------------------------------------------------------------------- helpers


def sessions_of(lengths: list[int]) -> SessionData:
    """Sessions back to back with item index == event position (so events are traceable)."""
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    items = np.arange(offsets[-1], dtype=np.int64)
    return SessionData(items=items, offsets=offsets,
                       session_ids=np.arange(len(lengths), dtype=np.int64))


def per_step(sched: Schedule, arr: np.ndarray) -> list[list]:
    b = sched.step_offsets
    return [arr[b[t]:b[t + 1]].tolist() for t in range(sched.n_steps)]


def session_of_event(lengths: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(lengths)), lengths)


lengths_st = st.lists(st.integers(1, 8), min_size=1, max_size=40)
batch_st = st.integers(1, 10)


# ----------------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_st, batch_size=batch_st)
def test_every_non_last_event_is_an_input_exactly_once(lengths: list[int],
                                                       batch_size: int) -> None:
    data = sessions_of(lengths)
    sched = build_schedule(data, batch_size, min_active=1)
    starts = data.offsets[:-1]
    ends = data.offsets[1:]
    expected = np.concatenate([np.arange(s, e - 1) for s, e in zip(starts, ends, strict=True)]
                              + [np.zeros(0, dtype=np.int64)])
    np.testing.assert_array_equal(np.sort(sched.inputs), expected)
    np.testing.assert_array_equal(sched.targets, sched.inputs + 1)  # the next event
    sess = session_of_event(lengths)
    assert np.all(sess[sched.inputs] == sess[sched.targets])
    with_examples = [n for n in lengths if n >= 2]
    assert len(sched.inputs) == sum(with_examples) - len(with_examples)
    assert int(sched.step_offsets[-1]) == len(sched.inputs)


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_st, batch_size=batch_st)
def test_reset_exactly_at_session_starts(lengths: list[int], batch_size: int) -> None:
    data = sessions_of(lengths)
    sched = build_schedule(data, batch_size)
    first_events = set(data.offsets[:-1].tolist())
    expected = np.array([int(i) in first_events for i in sched.inputs], dtype=bool)
    np.testing.assert_array_equal(sched.reset, expected)


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_st, batch_size=batch_st)
def test_slots_continue_a_session_or_reset(lengths: list[int], batch_size: int) -> None:
    data = sessions_of(lengths)
    sched = build_schedule(data, batch_size)
    sess = session_of_event(lengths)
    last_event = data.offsets[1:] - 1
    step_of = np.repeat(np.arange(sched.n_steps), sched.sizes())
    for slot in np.unique(sched.slots):
        pos = np.flatnonzero(sched.slots == slot)
        steps = step_of[pos]
        # a slot is active on consecutive steps from step 0 until it is dropped
        np.testing.assert_array_equal(steps, np.arange(len(steps)))
        for a, b in zip(pos[:-1], pos[1:], strict=True):
            if sched.reset[b]:  # the previous session of the slot was finished
                assert sched.targets[a] == last_event[sess[sched.targets[a]]]
                assert sess[sched.inputs[b]] > sess[sched.inputs[a]]  # a later session
            else:
                assert sched.inputs[b] == sched.inputs[a] + 1
                assert sess[sched.inputs[b]] == sess[sched.inputs[a]]


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_st, batch_size=batch_st)
def test_sessions_start_in_visiting_order(lengths: list[int], batch_size: int) -> None:
    data = sessions_of(lengths)
    sched = build_schedule(data, batch_size)
    sess = session_of_event(lengths)
    step_of = np.repeat(np.arange(sched.n_steps), sched.sizes())
    started = sess[sched.inputs[sched.reset]]
    np.testing.assert_array_equal(np.sort(started), [s for s, n in enumerate(lengths) if n >= 2])
    start_step = np.empty(len(lengths), dtype=np.int64)
    start_step[started] = step_of[sched.reset]
    assert np.all(np.diff(start_step[np.sort(started)]) >= 0)  # taken in visiting order
    # slot j starts on the j-th session
    if sched.n_steps:
        first = slice(sched.step_offsets[0], sched.step_offsets[1])
        np.testing.assert_array_equal(sched.slots[first], np.arange(sched.sizes()[0]))


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_st, batch_size=batch_st)
def test_step_sizes_shrink_and_keep_map_is_consistent(lengths: list[int],
                                                      batch_size: int) -> None:
    data = sessions_of(lengths)
    sched = build_schedule(data, batch_size)
    sizes = sched.sizes()
    n_with_examples = sum(n >= 2 for n in lengths)
    if n_with_examples == 0:
        assert sched.n_steps == 0
        return
    assert sizes[0] == min(batch_size, n_with_examples)
    assert np.all(sizes >= 1) and np.all(sizes <= batch_size)
    assert np.all(np.diff(sizes) <= 0)  # non-increasing: only the tail shrinks
    slots = per_step(sched, sched.slots)
    shrink_steps = {t for t in range(1, sched.n_steps) if sizes[t] < sizes[t - 1]}
    assert set(sched.keep) == shrink_steps
    for t in range(1, sched.n_steps):
        prev, cur = np.array(slots[t - 1]), np.array(slots[t])
        if t in sched.keep:
            keep = sched.keep[t]
            assert np.all(np.diff(keep) > 0)
            np.testing.assert_array_equal(prev[keep], cur)
        else:
            np.testing.assert_array_equal(prev, cur)  # same slot at the same position


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_st, batch_size=batch_st)
def test_min_active_two_is_a_prefix(lengths: list[int], batch_size: int) -> None:
    data = sessions_of(lengths)
    full = build_schedule(data, batch_size, min_active=1)
    cut = build_schedule(data, batch_size, min_active=2)
    sizes = full.sizes()
    small = np.flatnonzero(sizes < 2)
    n_steps = int(small[0]) if len(small) else full.n_steps
    assert cut.n_steps == n_steps
    n = int(full.step_offsets[n_steps])
    np.testing.assert_array_equal(cut.step_offsets, full.step_offsets[: n_steps + 1])
    for name in ("inputs", "targets", "reset", "slots"):
        np.testing.assert_array_equal(getattr(cut, name), getattr(full, name)[:n])
    assert set(cut.keep) == {t for t in full.keep if t < n_steps}
    for t in cut.keep:
        np.testing.assert_array_equal(cut.keep[t], full.keep[t])


@settings(max_examples=50, deadline=None)
@given(lengths=lengths_st, batch_size=batch_st, seed=st.integers(0, 1000))
def test_custom_order_visits_sessions_in_that_order(lengths: list[int], batch_size: int,
                                                    seed: int) -> None:
    data = sessions_of(lengths)
    order = np.random.default_rng(seed).permutation(len(lengths))
    sched = build_schedule(data, batch_size, order=order)
    sess = session_of_event(lengths)
    step_of = np.repeat(np.arange(sched.n_steps), sched.sizes())
    started = sess[sched.inputs[sched.reset]]
    visit = [s for s in order if lengths[s] >= 2]
    np.testing.assert_array_equal(np.sort(started), np.sort(visit))
    start_step = dict(zip(started.tolist(), step_of[sched.reset].tolist(), strict=True))
    assert np.all(np.diff([start_step[s] for s in visit]) >= 0)  # taken in that order
    np.testing.assert_array_equal(sched.targets, sched.inputs + 1)


# ----------------------------------------------------------------------------- by hand


def test_hand_written_schedule() -> None:
    # sessions: s0 = [0, 1, 2], s1 = [3, 4], s2 = [5, 6, 7, 8]; B = 2
    # step 0: slot0 s0 (0->1, reset), slot1 s1 (3->4, reset)
    # step 1: slot0 s0 (1->2), slot1 s1 is done -> takes s2 (5->6, reset)
    # step 2: slot0 s0 done, nothing left -> dropped; slot1 6->7
    # step 3: slot1 7->8
    sched = build_schedule(sessions_of([3, 2, 4]), 2, min_active=1)
    assert per_step(sched, sched.inputs) == [[0, 3], [1, 5], [6], [7]]
    assert per_step(sched, sched.targets) == [[1, 4], [2, 6], [7], [8]]
    assert per_step(sched, sched.reset) == [[True, True], [False, True], [False], [False]]
    assert per_step(sched, sched.slots) == [[0, 1], [0, 1], [1], [1]]
    assert sched.sizes().tolist() == [2, 2, 1, 1]
    assert {t: k.tolist() for t, k in sched.keep.items()} == {2: [1]}

    cut = build_schedule(sessions_of([3, 2, 4]), 2, min_active=2)
    assert per_step(cut, cut.inputs) == [[0, 3], [1, 5]]
    assert cut.keep == {}


def test_hand_written_schedule_lowest_slot_first_and_single_event_sessions() -> None:
    # s0 = [0, 1], s1 = [2] (no example), s2 = [3, 4], s3 = [5, 6, 7]; B = 2:
    # step 0: slot0 s0 0->1, slot1 s2 3->4; both finish; step 1: slot0 s3 5->6 (reset)
    sched = build_schedule(sessions_of([2, 1, 2, 3]), 2)
    assert per_step(sched, sched.inputs) == [[0, 3], [5], [6]]
    assert per_step(sched, sched.reset) == [[True, True], [True], [False]]
    assert per_step(sched, sched.slots) == [[0, 1], [0], [0]]
    assert {t: k.tolist() for t, k in sched.keep.items()} == {1: [0]}


def test_no_examples_gives_an_empty_schedule() -> None:
    sched = build_schedule(sessions_of([1, 1, 1]), 4)
    assert sched.n_steps == 0 and len(sched.inputs) == 0
