"""Session grouping (docs/algorithm.md §1) and the item index: order, unknown items, id types."""

from __future__ import annotations

import numpy as np
import pytest

from gru4rec.data.events import Events
from gru4rec.data.sessions import ItemIndex, group_sessions
from gru4rec.errors import DataError

# ----------------------------------------------------------------------------- grouping


def events(session: list, item: list, time: list[float]) -> Events:
    return Events(session=np.asarray(session), item=np.asarray(item, dtype=object)
                  if any(isinstance(i, str) for i in item) else np.asarray(item, dtype=np.int64),
                  time=np.asarray(time, dtype=np.float64))


def test_group_sessions_orders_by_first_event_time_and_time_within() -> None:
    ev = events(
        session=[7, 7, 7, 3, 3, 9, 9, 9],
        item=[10, 11, 12, 20, 21, 30, 31, 32],
        time=[50.0, 40.0, 60.0, 10.0, 5.0, 45.0, 45.0, 44.0],
    )
    index = ItemIndex.from_items(ev.item)
    data, dropped = group_sessions(ev, index)
    assert dropped == 0
    # first-event times: s3 -> 5, s7 -> 40, s9 -> 44
    assert data.session_ids.tolist() == [3, 7, 9]
    assert data.offsets.tolist() == [0, 2, 5, 8]
    ids = index.ids[data.items].tolist()
    # within s9: 32 (t=44) then the tie 30, 31 (t=45) in file order
    assert ids == [21, 20, 11, 10, 12, 32, 30, 31]
    assert data.n_examples() == 5


def test_group_sessions_drops_unknown_items_and_keeps_the_rest() -> None:
    ev = events(session=[1, 1, 1, 2, 2, 3], item=[10, 99, 11, 98, 12, 97],
                time=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    index = ItemIndex(np.array([10, 11, 12]))
    data, dropped = group_sessions(ev, index)
    assert dropped == 3
    assert data.session_ids.tolist() == [1, 2]  # session 3 had only an unknown item
    assert data.items.tolist() == [0, 1, 2]
    assert data.offsets.tolist() == [0, 2, 3]


def test_group_sessions_without_time_sort_keeps_session_id_order() -> None:
    ev = events(session=[2, 2, 1, 1], item=[5, 6, 7, 8], time=[1.0, 2.0, 9.0, 10.0])
    data, _ = group_sessions(ev, ItemIndex.from_items(ev.item), time_sort=False)
    assert data.session_ids.tolist() == [1, 2]
    data, _ = group_sessions(ev, ItemIndex.from_items(ev.item), time_sort=True)
    assert data.session_ids.tolist() == [2, 1]


# ----------------------------------------------------------------------------- item index


@pytest.mark.parametrize("ids", [
    np.array([500, 7, 42, 100000000007], dtype=np.int64),
    np.array(["007", "a1", "7", "ü-x"]),
])
def test_item_index_round_trip(ids: np.ndarray) -> None:
    index = ItemIndex(ids)
    assert len(index) == 4
    np.testing.assert_array_equal(index.lookup(ids), np.arange(4))
    np.testing.assert_array_equal(index.ids[index.lookup(ids[::-1])], ids[::-1])
    assert index.to_list() == ids.tolist()
    unknown = np.array([123456], dtype=np.int64) if ids.dtype.kind == "i" else np.array(["008"])
    assert index.lookup(unknown).tolist() == [-1]


def test_item_index_from_items_keeps_first_appearance_order() -> None:
    index = ItemIndex.from_items(np.array(["b", "a", "b", "c", "a"], dtype=object))
    assert index.to_list() == ["b", "a", "c"]
    assert index.lookup(np.array(["c", "a", "zz", "b"], dtype=object)).tolist() == [2, 1, -1, 0]


def test_item_index_does_not_confuse_int_and_str_ids() -> None:
    # "007" is not the integer 7; a str query against an int index finds nothing
    int_index = ItemIndex(np.array([7, 8]))
    assert int_index.lookup(np.array(["7", "007"])).tolist() == [-1, -1]
    str_index = ItemIndex(np.array(["007", "8"]))
    assert str_index.lookup(np.array([7, 8])).tolist() == [-1, 1]


def test_an_extended_index_keeps_known_ids_and_appends_new_ones_in_first_seen_order() -> None:
    index = ItemIndex(np.array([5, 3, 9]))
    grown, n_new = index.extended(np.array([3, 7, 7, 1, 5]))
    assert n_new == 2 and grown.ids.tolist() == [5, 3, 9, 7, 1]
    assert index.extended(np.array([9, 3]))[1] == 0
    text, _ = ItemIndex(np.array(["a", "b"])).extended(np.array([1, 2]))
    assert text.ids.tolist() == ["a", "b", "1", "2"]  # int ids join a str index as text
    with pytest.raises(DataError, match="give the item column as integers"):
        index.extended(np.array(["x"]))
