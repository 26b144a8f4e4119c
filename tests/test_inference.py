"""Inference: recommend options, the session tracker (replay equality) and id coercion."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gru4rec import ConfigError, DataError
from gru4rec.data.sessions import ItemIndex
from gru4rec.inference import Recommendations, SessionTracker
from gru4rec.session_store import MemoryStore, SessionStore

# one-hot input, a separate input embedding, the output weights shared as the input embedding
MODES = {
    "onehot": {"constrained_embedding": False, "embedding": 0},
    "separate": {"constrained_embedding": False, "embedding": 8},
    "constrained": {"constrained_embedding": True},
}

# ----------------------------------------------------------------------------- replay equality


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("layers", [(12, 10), (9,), (8, 8, 6)])
def test_stepping_equals_recommend_on_the_whole_session(make_model, mode: str,
                                                        layers: tuple[int, ...]) -> None:
    n_items = 30
    model = make_model(n_items, layers, seed=len(layers), **MODES[mode])
    rng = np.random.default_rng(len(layers))
    sessions = {f"s{j}": [int(x) for x in rng.integers(100, 100 + n_items + 3, rng.integers(1, 9))]
                for j in range(25)}  # ids >= 130 are unknown
    # interleave the sessions, keeping each session's order (so a batch may hold a session twice)
    stream = _interleave(sessions, rng)
    tracker = model.session_tracker()
    prefixes, got_items, got_scores = [], [], []
    done: dict[str, list[int]] = {s: [] for s in sessions}
    for start in range(0, len(stream), 7):
        batch = stream[start:start + 7]
        res = tracker.step([s for s, _ in batch], [i for _, i in batch], k=n_items)
        for row, (s, i) in enumerate(batch):
            done[s].append(i)
            prefixes.append(list(done[s]))
            assert res.unknown[row] == (i >= 100 + n_items)
            assert res.lengths[row] == sum(x < 100 + n_items for x in done[s])
        got_items.append(res.items)
        got_scores.append(res.scores)
    want_items, want_scores = model.recommend(prefixes, k=n_items)
    np.testing.assert_allclose(np.concatenate(got_scores), want_scores, atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(np.concatenate(got_items), want_items)


def _interleave(sessions: dict[str, list[int]], rng: np.random.Generator) -> list[tuple]:
    queues = {s: list(items) for s, items in sessions.items()}
    stream = []
    while queues:
        s = list(queues)[rng.integers(len(queues))]
        stream.append((s, queues[s].pop(0)))
        if not queues[s]:
            del queues[s]
    return stream


def test_same_session_twice_in_one_batch_is_applied_in_order(make_model) -> None:
    model = make_model()
    res = model.session_tracker().step(["a", "a", "b"], [101, 102, 103], k=5)
    want = model.recommend([[101], [101, 102], [103]], k=5)
    np.testing.assert_allclose(res.scores, want.scores, atol=1e-5)
    np.testing.assert_array_equal(res.items, want.items)
    np.testing.assert_array_equal(res.lengths, [1, 2, 1])


def test_tracker_exclude_seen_matches_recommend(make_model) -> None:
    model = make_model(layers=(10,))
    tracker = model.session_tracker()
    for item in [101, 105, 101, 117]:
        res = tracker.step(["x"], [item], k=30, exclude_seen=True)
    want = model.recommend([[101, 105, 101, 117]], k=30, exclude_seen=True)
    np.testing.assert_allclose(res.scores, want.scores, atol=1e-5)
    np.testing.assert_array_equal(res.items[:, :27], want.items[:, :27])
    assert np.isneginf(res.scores[0, 27:]).all()  # 3 distinct seen items at the end


# ----------------------------------------------------------------------------- filters


def test_plain_ranking_and_result_unpacking(bias_model) -> None:
    result = bias_model().recommend([["i3"], []], k=3)
    items, scores = result
    assert isinstance(result, Recommendations) and len(result) == 2
    assert result[0] is items and result[1] is scores
    assert items.tolist() == [["i0", "i1", "i2"]] * 2
    np.testing.assert_array_equal(scores, [[6, 5, 4]] * 2)
    assert scores.dtype == np.float32
    np.testing.assert_array_equal(result.unknown, [0, 0])


def test_exclude_seen_exclude_and_candidates(bias_model) -> None:
    m = bias_model()
    assert m.recommend([["i0", "i2"]], k=3, exclude_seen=True).items.tolist() == [
        ["i1", "i3", "i4"]]
    assert m.recommend([["i0"]], k=2, exclude={"i1", "i0"}).items.tolist() == [["i2", "i3"]]
    res = m.recommend([["i0"]], k=5, candidates=["i5", "i3", "i4"])
    assert res.items.tolist() == [["i3", "i4", "i5"]]  # k capped at 3 allowed items
    res = m.recommend([["i0"]], k=5, candidates=["i5", "i3", "i4"], exclude=["i4"])
    assert res.items.tolist() == [["i3", "i5"]]


def test_exclude_seen_beyond_the_allowed_items_leaves_minus_inf_entries(bias_model) -> None:
    res = bias_model().recommend([["i3", "i5"], ["i0"]], k=3, candidates=["i3", "i4", "i5"],
                                 exclude_seen=True)
    assert res.items[0, 0] == "i4" and res.items[1].tolist() == ["i3", "i4", "i5"]
    assert res.scores[0, 0] == 2 and np.isneginf(res.scores[0, 1:]).all()
    assert set(res.items[0, 1:]) == {"i3", "i5"}  # the session's own items, scored -inf


def test_unknown_ids_in_filters_are_ignored_and_counted(bias_model, caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    with caplog.at_level(logging.WARNING, logger="gru4rec"):
        res = bias_model().recommend([["i0"]], k=2, exclude=["nope", "i0"],
                                     candidates=["i0", "i4", "zz", "yy"])
    assert res.items.tolist() == [["i4"]] and res.unknown_filter == 3
    assert "ignored 3 unknown item id(s)" in caplog.text


def test_no_allowed_item_gives_empty_lists(bias_model) -> None:
    res = bias_model().recommend([["i0"], ["i1"]], k=4, candidates=["nope"])
    assert res.items.shape == (2, 0) and res.scores.shape == (2, 0)


def test_filters_in_the_tracker(bias_model) -> None:
    tracker = bias_model().session_tracker()
    res = tracker.step(["a", "b"], ["i1", "i2"], k=2, exclude_seen=[True, False],
                       exclude=["i0"], candidates=["i0", "i1", "i2", "i3", "x"])
    assert res.items.tolist() == [["i2", "i3"], ["i1", "i2"]] and res.unknown_filter == 1


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"exclude": "i0"}, DataError, "exclude must be a collection of item ids"),
    ({"candidates": 5}, DataError, "candidates must be a collection of item ids"),
    ({"k": True}, ConfigError, "k must be a positive integer"),
    ({"k": 0}, ConfigError, "k must be a positive integer"),
])
def test_bad_filter_arguments(bias_model, kwargs: dict, error: type, message: str) -> None:
    m = bias_model()
    with pytest.raises(error, match=message):
        m.recommend([["i0"]], **{"k": 2, **kwargs})
    with pytest.raises(error, match=message):
        m.session_tracker().step(["a"], ["i0"], **{"k": 2, **kwargs})


# ----------------------------------------------------------------------------- unknown items


def test_unknown_items_are_skipped_counted_and_logged(make_model,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    m = make_model()
    with caplog.at_level(logging.WARNING, logger="gru4rec"):
        res = m.recommend([[101, 5, 102, "x"], [101, 102], [7]], k=4)
    np.testing.assert_array_equal(res.unknown, [2, 0, 1])
    np.testing.assert_array_equal(res.scores[0], res.scores[1])
    assert "skipped 3 unknown item id(s)" in caplog.text


def test_unknown_item_does_not_advance_the_tracker(make_model) -> None:
    tracker = make_model().session_tracker()
    first = tracker.step(["s"], [101], k=5)
    again = tracker.step(["s"], [999], k=5)
    assert again.unknown.tolist() == [1] and again.lengths.tolist() == [1]
    np.testing.assert_array_equal(first.scores, again.scores)
    new = tracker.step(["t"], ["nope"], k=5)  # a new session with an unknown item: zero state
    assert new.lengths.tolist() == [0] and tracker.get("t").length == 0


# ----------------------------------------------------------------------------- tracker API


def test_get_delete_reset(make_model) -> None:
    m = make_model()
    tracker = m.session_tracker(max_items=2)
    assert tracker.get("a") is None and not tracker.delete("a")
    for item in [101, 102, 103]:
        tracker.step(["a"], [item])
    info = tracker.get("a")
    assert info.length == 3 and info.items == [102, 103] and info.last_access > 0
    tracker.reset("a")
    assert tracker.get("a").length == 0 and tracker.get("a").items == []
    res = tracker.step(["a"], [101], k=5)
    np.testing.assert_allclose(res.scores, m.recommend([[101]], k=5).scores, atol=1e-5)
    assert tracker.delete("a") and tracker.get("a") is None


def test_tracker_converts_session_ids_to_str(make_model) -> None:
    tracker = make_model().session_tracker()
    tracker.step([7], [101])
    assert tracker.get("7").length == 1 and tracker.get(7).session_id == "7"


def test_tracker_bad_input(make_model) -> None:
    tracker = make_model().session_tracker()
    with pytest.raises(DataError, match="2 session ids but 1 item ids"):
        tracker.step(["a", "b"], [101])
    with pytest.raises(ConfigError, match="max_items must be a positive integer"):
        SessionTracker(tracker.net, tracker.index, max_items=0)


def test_tracker_uses_the_given_store(make_model) -> None:
    store = MemoryStore(max_sessions=10)
    assert isinstance(store, SessionStore)
    tracker = make_model().session_tracker(store)
    tracker.step(["a"], [101])
    state = store.get_many(["a"])[0]
    assert state.hidden.dtype == np.float32 and state.hidden.shape == (22,)
    assert state.items.tolist() == [101] and state.length == 1  # item ids, not indices
    assert state.model == tracker.model_tag and len(tracker.model_tag) == 16


# ----------------------------------------------------------------------------- item ids


def test_coerce_ids_follows_the_model_id_type() -> None:
    from gru4rec.inference import coerce_ids

    int_index, str_index = ItemIndex(np.array([1, 42])), ItemIndex(np.array(["1", "a"]))
    assert coerce_ids(int_index, ["42", 1, "042", "+4", "a", "-3"]) == [42, 1, "042", "+4",
                                                                         "a", -3]
    assert coerce_ids(str_index, [1, "a", True]) == ["1", "a", True]


# ----------------------------------------------------------------------------- model change


def test_a_state_of_another_model_is_rebuilt_by_replaying_its_clicks(make_model) -> None:
    old = make_model(30, layers=(12, 10), seed=0)  # ids 100..129
    new = make_model(35, layers=(9,), seed=3)  # other weights and layers; knows 130..134 too
    store = MemoryStore()
    t_old, t_new = old.session_tracker(store), new.session_tracker(store)
    assert t_old.model_tag != t_new.model_tag
    assert old.session_tracker().model_tag == t_old.model_tag  # a tag names the weights
    clicks = [101, 131, 102, 999, 103]  # 131: new item, unknown to the old model; 999: to both
    for item in clicks:
        res = t_old.step(["s"], [item], k=5)
    assert res.lengths.tolist() == [3]
    got = t_new.step(["s"], [104], k=8)
    # as if the new model had served the session from its first click
    fresh = new.session_tracker()
    for item in clicks:
        fresh.step(["s"], [item])
    want = fresh.step(["s"], [104], k=8)
    whole = new.recommend([clicks + [104]], k=8)
    assert got.lengths.tolist() == want.lengths.tolist() == [5]
    np.testing.assert_array_equal(got.items, want.items)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
    np.testing.assert_allclose(got.scores, whole.scores, atol=1e-5)
    assert store.get_many(["s"])[0].model == t_new.model_tag
    assert t_new.get("s").items == [101, 131, 102, 103, 104]  # the ids it knows
    # and back: the old model rebuilds it again from the same clicks
    back = t_old.step(["s"], [105], k=5, exclude_seen=True)
    want_old = old.recommend([clicks + [104, 105]], k=5, exclude_seen=True)
    assert back.lengths.tolist() == [5] and t_old.get("s").items == [101, 102, 103, 104, 105]
    np.testing.assert_array_equal(back.items, want_old.items)
    np.testing.assert_allclose(back.scores, want_old.scores, atol=1e-5)


def test_a_rebuilt_capped_session_replays_its_kept_clicks(make_model) -> None:
    old, new = make_model(30, seed=0), make_model(30, seed=5)
    store = MemoryStore()
    t_old = old.session_tracker(store, max_items=3)
    for item in [101, 102, 103, 104, 105]:
        t_old.step(["s"], [item])
    got = new.session_tracker(store, max_items=3).step(["s"], [106], k=5)
    want = new.recommend([[103, 104, 105, 106]], k=5)  # what the kept clicks give
    assert got.lengths.tolist() == [6]  # the clicks that fell out still count
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)


def test_which_unknown_clicks_a_session_keeps(make_model) -> None:
    store = MemoryStore()
    ints = make_model(5).session_tracker(store)
    res = ints.step(["i"] * 3, [100, "abc", 999])  # a str never names an item of int ids
    ints.step(["i"], [2**70])  # nor does an int beyond int64
    assert res.lengths.tolist() == [1, 1, 1]
    assert store.get_many(["i"])[0].items.tolist() == [100, 999]
    strs = make_model(5, ids=["a", "b", "c", "d", "e"]).session_tracker(store)
    strs.step(["s"] * 4, ["a", 7, "x" * 300, "zz"])  # ints become text; over-long ids are not
    assert store.get_many(["s"])[0].items.tolist() == ["a", "7", "zz"]
