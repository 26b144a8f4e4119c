"""Tests of gru4rec.data.synthetic: the seeded session generator and the time split."""

from __future__ import annotations

import numpy as np
import pytest

from gru4rec.data.events import Events
from gru4rec.data.synthetic import item_vocabulary, make_sessions, train_test_split_last
from gru4rec.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def events() -> Events:
    return make_sessions(n_items=500, n_sessions=4000, mean_length=6.0, seed=3)


def _same(a: Events, b: Events) -> bool:
    return all(
        np.array_equal(x, y)
        for x, y in ((a.session, b.session), (a.item, b.item), (a.time, b.time))
    )


def test_same_seed_same_arrays_and_different_seed_differs() -> None:
    a = make_sessions(300, 500, seed=7)
    b = make_sessions(300, 500, seed=7)
    c = make_sessions(300, 500, seed=8)
    assert _same(a, b)
    assert not np.array_equal(a.item[:100], c.item[:100])


def test_dtypes_and_alignment(events: Events) -> None:
    assert events.session.dtype == np.int64
    assert events.item.dtype == np.int64
    assert events.time.dtype == np.float64
    assert events.session.shape == events.item.shape == events.time.shape


def test_session_ids_and_minimum_length(events: Events) -> None:
    sizes = np.bincount(events.session)
    assert sizes.shape[0] == 4000
    assert sizes.min() >= 2
    assert np.all(np.diff(events.session) >= 0)


@pytest.mark.parametrize("mean_length", [2.0, 3.5, 5.0, 12.0])
def test_mean_length_close_to_requested(mean_length: float) -> None:
    ev = make_sessions(200, 3000, mean_length=mean_length, seed=1)
    assert len(ev) / 3000 == pytest.approx(mean_length, rel=0.2)


def test_item_ids_come_from_the_vocabulary(events: Events) -> None:
    vocab = item_vocabulary(500, seed=3)
    assert vocab.shape == (500,)
    assert np.unique(vocab).shape == (500,)
    assert vocab.min() >= 100_000 and vocab.max() < 1_000_000
    assert np.isin(events.item, vocab).all()
    assert np.unique(events.item).shape[0] > 400


def test_vocabulary_widens_for_huge_catalogues() -> None:
    vocab = item_vocabulary(400_000)
    assert np.unique(vocab).shape == (400_000,)
    assert vocab.min() >= 1_000_000 and vocab.max() < 10_000_000


def test_time_non_decreasing_within_sessions_and_sessions_start_in_order(events: Events) -> None:
    same_session = events.session[1:] == events.session[:-1]
    steps = np.diff(events.time)[same_session]
    assert (steps >= 1.0).all()
    first = np.concatenate(([True], ~same_session))
    assert np.all(np.diff(events.time[first]) >= 0)


def _top_next_share(prev: np.ndarray, nxt: np.ndarray, min_count: int = 40) -> float:
    """Mean over frequent source items of the share of their most common next item."""
    shares = []
    for item in np.unique(prev):
        following = nxt[prev == item]
        if following.shape[0] >= min_count:
            shares.append(np.unique(following, return_counts=True)[1].max() / following.shape[0])
    assert len(shares) >= 10
    return float(np.mean(shares))


def test_successor_structure_dominates_popularity(events: Events) -> None:
    same_session = events.session[1:] == events.session[:-1]
    prev, nxt = events.item[:-1][same_session], events.item[1:][same_session]
    structured = _top_next_share(prev, nxt)
    shuffled = _top_next_share(prev, np.random.default_rng(0).permutation(nxt))
    assert structured > 0.2
    assert structured > 2.5 * shuffled


def test_p_follow_zero_removes_the_structure() -> None:
    ev = make_sessions(100, 4000, seed=2, p_follow=0.0)
    same_session = ev.session[1:] == ev.session[:-1]
    prev, nxt = ev.item[:-1][same_session], ev.item[1:][same_session]
    shuffled = np.random.default_rng(0).permutation(nxt)
    assert _top_next_share(prev, nxt) < 1.5 * _top_next_share(prev, shuffled)


def test_popularity_is_skewed(events: Events) -> None:
    counts = np.sort(np.unique(events.item, return_counts=True)[1])[::-1]
    assert counts[:10].sum() > 5 * counts[-10:].sum()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_items": 1}, "n_items"),
        ({"n_sessions": 0}, "n_sessions"),
        ({"mean_length": 1.5}, "mean_length"),
        ({"p_follow": 1.5}, "p_follow"),
        ({"zipf_exponent": -1.0}, "zipf_exponent"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_sessions(**kwargs)  # type: ignore[arg-type]


def test_split_has_no_overlap_and_no_unknown_items(events: Events) -> None:
    train, test = train_test_split_last(events, 0.1)
    assert len(train) + len(test) <= len(events)
    assert len(test) > 0
    assert not np.intersect1d(train.session, test.session).size
    assert np.isin(test.item, train.item).all()
    assert np.bincount(test.session)[np.unique(test.session)].min() >= 2


def test_split_is_by_session_start_time(events: Events) -> None:
    train, test = train_test_split_last(events, 0.2)
    threshold = events.time.max() - 0.2 * (events.time.max() - events.time.min())
    test_starts = [test.time[test.session == s].min() for s in np.unique(test.session)[:50]]
    assert min(test_starts) > threshold
    first_train = np.concatenate(([True], train.session[1:] != train.session[:-1]))
    assert train.time[first_train].max() <= threshold


def test_split_drops_unknown_items_and_short_sessions() -> None:
    ev = Events(
        session=np.array([0, 0, 0, 1, 1, 1, 2, 2]),
        item=np.array([10, 11, 12, 10, 99, 11, 10, 98]),
        time=np.array([0.0, 1.0, 2.0, 95.0, 96.0, 97.0, 98.0, 100.0]),
    )
    train, test = train_test_split_last(ev, 0.1)
    assert train.session.tolist() == [0, 0, 0]
    assert test.session.tolist() == [1, 1]
    assert test.item.tolist() == [10, 11]


def test_split_accepts_string_session_ids() -> None:
    ev = Events(
        session=np.array(["a", "a", "b", "b"], dtype=object),
        item=np.array(["x", "y", "x", "y"], dtype=object),
        time=np.array([0.0, 1.0, 10.0, 11.0]),
    )
    train, test = train_test_split_last(ev, 0.2)
    assert train.session.tolist() == ["a", "a"] and test.session.tolist() == ["b", "b"]


def test_split_errors() -> None:
    ev = make_sessions(50, 100, seed=0)
    with pytest.raises(ConfigError, match="test_fraction"):
        train_test_split_last(ev, 0.0)
    with pytest.raises(ConfigError, match="test_fraction"):
        train_test_split_last(ev, 1.0)
    tiny = Events(np.array([0, 0]), np.array([1, 2]), np.array([0.0, 1.0]))
    with pytest.raises(DataError, match="no test sessions"):
        train_test_split_last(tiny, 0.1)
    empty = Events(np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([]))
    with pytest.raises(DataError, match="empty"):
        train_test_split_last(empty, 0.1)


@pytest.mark.slow
def test_million_event_generation() -> None:
    ev = make_sessions(n_items=37_500, n_sessions=200_000, seed=0)
    assert len(ev) == pytest.approx(1_000_000, rel=0.05)
    big = make_sessions(n_items=1_000_000, n_sessions=200_000, seed=0)
    assert len(big) == pytest.approx(1_000_000, rel=0.05)
    train, test = train_test_split_last(ev)
    assert len(train) > 0 and len(test) > 0
