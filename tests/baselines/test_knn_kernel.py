"""The compiled session-kNN path (k_knn.c) against the numpy path: the same neighbours,
item groups, sums and scores, bit for bit, for every similarity and weighting, sampled or
not, with ties; numpy's summation order; and the checks of the wrappers."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from gru4rec.baselines import make_baseline
from gru4rec.baselines.knn_kernel import Neighbours
from gru4rec.baselines.neighbours import ItemSums, SessionKNN
from gru4rec.baselines.sknn import SKNN
from gru4rec.baselines.sparse import SparseRows
from gru4rec.baselines.vsknn import VSKNN, _Prefixes
from gru4rec.data.events import Events
from gru4rec.kernels import Kernels, load_kernels

KERNELS = load_kernels()
pytestmark = pytest.mark.skipif(
    KERNELS is None, reason="the compiled kernels are not loaded (GRU4REC_NATIVE=0, or "
    "installed without a C compiler): nothing to compare the numpy path with")


@pytest.fixture
def kernels() -> Kernels:
    assert KERNELS is not None
    return KERNELS


def random_log(seed: int, n_sessions: int = 60, n_items: int = 20, max_len: int = 9,
               ties: bool = True) -> Events:
    """Sessions over Zipf-like items (a few in most sessions), end times often equal."""
    rng = np.random.default_rng(seed)
    pop = 1 / np.arange(1, n_items + 1) ** 1.2
    sess, items, times = [], [], []
    for s in rng.permutation(n_sessions):
        length = int(rng.integers(1, max_len + 1))
        end = float(rng.integers(0, n_sessions // 4 + 1) if ties else rng.random() * 1e6)
        sess += [int(s)] * length
        items += list(rng.choice(n_items, length, p=pop / pop.sum()))
        times += [end - (length - 1 - i) for i in range(length)]
    return Events(session=np.array(sess), item=np.array(items), time=np.array(times))


def prefixes_of(events: Events, model: Any, seed: int, n_random: int = 40) -> list[np.ndarray]:
    """Every prefix of every training session, plus random ones (repeats, long ones)."""
    rng = np.random.default_rng(seed)
    idx = model.item_index_.lookup(events.item)
    out = []
    for s in np.unique(events.session):
        items = idx[events.session == s]
        out += [items[:c] for c in range(1, len(items) + 1)]
    n = model.n_items
    out += [rng.integers(0, n, int(rng.integers(1, 25))) for _ in range(n_random)]
    return [np.asarray(x, dtype=np.int64) for x in out] + [np.zeros(0, dtype=np.int64)]


def both_paths(model: SessionKNN, prefixes: list[np.ndarray],
               monkeypatch: pytest.MonkeyPatch) -> tuple[SparseRows, SparseRows]:
    """The scores with the kernels, then with ``GRU4REC_NATIVE=0``."""
    with_c = model.score(prefixes)
    with monkeypatch.context() as m:
        m.setenv("GRU4REC_NATIVE", "0")
        with_numpy = model.score(prefixes)
    return with_c, with_numpy


def bits(a: np.ndarray) -> np.ndarray:
    """The float64 values as their bits: equal means bit-equal (-0.0 is not 0.0)."""
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


def assert_same(a: SparseRows, b: SparseRows, what: str) -> None:
    """The same entries; values equal up to rounding: the item sums follow numpy's
    reduceat order in C, an implementation detail that another numpy may change."""
    np.testing.assert_array_equal(a.indptr, b.indptr, err_msg=what)
    np.testing.assert_array_equal(a.indices, b.indices, err_msg=what)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-300, err_msg=what)


def assert_same_neighbours(a: Neighbours, b: Neighbours, last: bool) -> None:
    for field in ("row", "session", "sim") + (("last",) if last else ()):
        x, y = getattr(a, field), getattr(b, field)
        np.testing.assert_array_equal(bits(x) if field == "sim" else x,
                                      bits(y) if field == "sim" else y, err_msg=field)


SKNN_SETTINGS: list[dict[str, Any]] = [
    {"k": k, "sample_size": m, "similarity": sim}
    for sim in ("jaccard", "cosine", "tanimoto", "binary")
    for k, m in ((100, 1000), (3, 0), (5, 7), (1, 1), (40, 12), (1000, 0))
] + [
    {"k": 4, "sample_size": 6, "remind": True, "pop_boost": 0.5},
    {"k": 50, "sample_size": 0, "similarity": "cosine", "remind": True, "normalize": False},
    {"k": 2, "sample_size": 3, "similarity": "binary", "pop_boost": 2.0, "normalize": False},
]
WEIGHTINGS = ("div", "quadratic", "log", "same", "linear", "linear-sessionrec")
VSKNN_SETTINGS: list[dict[str, Any]] = [
    {"k": k, "sample_size": m, "similarity": sim, "weighting": w, "weighting_score": w}
    for sim in ("vec", "cosine") for w in WEIGHTINGS
    for k, m in ((100, 1000), (3, 0), (6, 9), (1, 2))
] + [
    {"k": 500, "sample_size": 5000, "weighting": "quadratic", "idf_weighting": 5},
    {"k": 4, "sample_size": 0, "last_n_clicks": 3, "weighting": "linear-sessionrec",
     "weighting_score": "linear-sessionrec", "push_reminders": True, "normalize": False},
    {"k": 5, "sample_size": 8, "last_n_clicks": 1, "similarity": "cosine", "remind": False},
    {"k": 30, "sample_size": 0, "last_n_clicks": 12, "weighting": "linear-sessionrec",
     "similarity": "cosine", "idf_weighting": True},
]


@pytest.mark.parametrize(("seed", "ties"), [(0, True), (1, True), (2, False)])
@pytest.mark.parametrize("name", ["sknn", "vsknn"])
def test_scores_equal_the_numpy_path(name: str, seed: int, ties: bool,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    events = random_log(seed, ties=ties)
    for given in SKNN_SETTINGS if name == "sknn" else VSKNN_SETTINGS:
        model = make_baseline(name, given).fit(events)
        assert isinstance(model, SessionKNN)
        prefixes = prefixes_of(events, model, seed)
        assert_same(*both_paths(model, prefixes, monkeypatch), f"{name} {given}")


@pytest.mark.parametrize("name", ["sknn", "vsknn"])
def test_long_sums_and_int64_indexes_equal_the_numpy_path(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # few items in many sessions: an item is reached by hundreds of neighbours, so the
    # sums run numpy's pairwise order past 8 and 128 terms; int64 index lists as for
    # logs beyond 2**31 sessions or items
    events = random_log(3, n_sessions=700, n_items=12, max_len=6)
    model = make_baseline(name, {"k": 600, "sample_size": 0, "idf_weighting": 2}
                          if name == "vsknn" else {"k": 600, "sample_size": 0,
                                                   "pop_boost": 1.0}).fit(events)
    assert isinstance(model, SessionKNN)
    prefixes = prefixes_of(events, model, 3)[::7]
    assert_same(*both_paths(model, prefixes, monkeypatch), f"{name} int32")
    index = model.index_
    model.index_ = dataclasses.replace(index, item_sessions=index.item_sessions.astype(
        np.int64), session_items=index.session_items.astype(np.int64))
    assert_same(*both_paths(model, prefixes, monkeypatch), f"{name} int64")


def neighbours_both(run: Any, args: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
                    ) -> tuple[Neighbours, Neighbours]:
    """``run(*args)`` with the kernels, then with ``GRU4REC_NATIVE=0``."""
    found = run(*args)
    with monkeypatch.context() as m:
        m.setenv("GRU4REC_NATIVE", "0")
        return found, run(*args)


@pytest.mark.parametrize("m", [0, 1, 2, 5, 13, 1000])
def test_neighbours_equal_the_numpy_path(m: int, monkeypatch: pytest.MonkeyPatch) -> None:
    events = random_log(4, n_sessions=120)
    for sim in ("jaccard", "binary"):
        model = SKNN(k=6, sample_size=m, similarity=sim).fit(events)
        prefixes = prefixes_of(events, model, 4)[:32]
        lengths = [len(set(x.tolist())) for x in prefixes]
        rows = np.repeat(np.arange(len(prefixes)), lengths)
        items = np.concatenate([np.unique(x) for x in prefixes]).astype(np.int64)
        a, b = neighbours_both(model._neighbours, (rows, items, len(prefixes)), monkeypatch)
        assert_same_neighbours(a, b, last=False)
    for weighting in WEIGHTINGS:
        vmodel = VSKNN(k=6, sample_size=m, weighting=weighting, last_n_clicks=4,
                       similarity="cosine").fit(events)
        prefix = _Prefixes.of(prefixes, 4, vmodel.n_items)
        w = np.where(prefix.pos > 0, np.linspace(-0.5, 1.0, len(prefix.pos)), 0.0)
        a, b = neighbours_both(vmodel._neighbours, (prefix, w), monkeypatch)
        assert_same_neighbours(a, b, last=True)


def test_item_groups_equal_item_sums_of(monkeypatch: pytest.MonkeyPatch) -> None:
    events = random_log(5, n_sessions=200, n_items=30)
    model = SKNN(k=50, sample_size=0).fit(events)
    prefixes = prefixes_of(events, model, 5)[:32]
    rows = np.repeat(np.arange(len(prefixes)), [len(set(x.tolist())) for x in prefixes])
    items = np.concatenate([np.unique(x) for x in prefixes]).astype(np.int64)
    found = model._neighbours(rows, items, len(prefixes))
    extra = (np.array([0, 0, 3, 31]), np.array([2, 5, 1, 0]))
    a = model._neighbour_sums(found, len(prefixes), extra)
    with monkeypatch.context() as m:
        m.setenv("GRU4REC_NATIVE", "0")
        b = model._neighbour_sums(found, len(prefixes), extra)
    for field in ("keys", "packed", "first"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert (a.c_bits, a.k_bits) == (b.c_bits, b.k_bits)


def test_item_sums_equal_numpys(kernels: Kernels) -> None:
    rng = np.random.default_rng(0)
    lengths = np.r_[np.arange(1, 300), 1000, 4097, 2, 1]  # one item per run
    n = int(lengths.sum())
    k_bits = n.bit_length()
    item = np.repeat(np.arange(len(lengths)), lengths)
    sums = ItemSums(np.arange(len(lengths)), (item << k_bits) | np.arange(n),
                    np.r_[0, np.cumsum(lengths)[:-1]], 1, len(lengths),
                    int(len(lengths)).bit_length(), k_bits)
    values = rng.random(n) * rng.choice([1.0, 1e-7, 1e9, -3.0], n)
    factor = 1.0 + rng.random(len(lengths))
    for f in (None, factor):  # up to rounding (numpy's summation order is its own)
        np.testing.assert_allclose(sums.sum(values, f, kernels), sums.sum(values, f),
                                   rtol=1e-12)
    zeros = np.full(n, -0.0)  # a run of -0.0 sums to -0.0, as in numpy
    np.testing.assert_array_equal(bits(sums.sum(zeros, None, kernels)),
                                  bits(np.add.reduceat(zeros, sums.first)))


def test_wrappers_check_their_arguments(kernels: Kernels) -> None:
    model = SKNN(k=3).fit(random_log(6))
    index = model.index_
    args: dict[str, Any] = {
        "item_indptr": index.item_indptr, "item_sessions": index.item_sessions,
        "session_indptr": index.session_indptr, "pair_start": np.array([0, 2]),
        "pair_item": np.array([0, 1]), "pair_weight": None,
        "row_const": np.array([2.0]), "similarity": "jaccard", "sample_size": 5, "k": 3}
    start, session, sim, _ = kernels.knn_neighbours(**args)
    assert start.tolist() == [0, len(session)] and np.all(sim > 0)
    for bad, match in (({"pair_item": np.array([0, 1], dtype=np.int32)}, "int64"),
                       ({"pair_item": np.array([0, model.n_items])}, "indices in"),
                       ({"pair_item": np.array([[0, 1]])}, "shape"),
                       ({"pair_start": np.array([0, 1])}, "row starts"),
                       ({"row_const": np.array([2.0, 1.0])}, "row_const"),
                       ({"similarity": "vec"}, "pair_weight"),
                       ({"similarity": "dice"}, "one of"),
                       ({"k": 0}, ">= 1"),
                       ({"item_indptr": index.item_indptr[::-1]}, "contiguous"),
                       ({"item_sessions": index.item_sessions.astype(">i4")}, "native")):
        with pytest.raises(ValueError, match=match):
            kernels.knn_neighbours(**{**args, **bad})
    broken = index.item_sessions.copy()
    broken[0] = index.n_sessions  # a rank past the sessions: the kernel refuses to read it
    with pytest.raises(ValueError, match="out of range"):
        kernels.knn_neighbours(**{**args, "pair_item": np.array([0]),
                                  "pair_start": np.array([0, 1]), "item_sessions": broken})
    with pytest.raises(ValueError, match="not ascending"):  # rows of the sources
        kernels.knn_item_groups(index.session_indptr, index.session_items, np.array([1, 0]),
                                np.array([0, 1]), np.zeros(0, np.int64),
                                np.zeros(0, np.int64), 2, model.n_items, 5, 2)
    with pytest.raises(ValueError, match="bit fields"):
        kernels.knn_item_groups(index.session_indptr, index.session_items, np.array([0]),
                                np.array([0]), np.zeros(0, np.int64), np.zeros(0, np.int64),
                                1, model.n_items, 1, 1)
    with pytest.raises(ValueError, match="values"):
        kernels.knn_item_sums(np.zeros(2, np.int64), np.array([0]), np.zeros(2, np.float32),
                              None, 1, 1)


def test_random_sampling_and_similarity_keep_the_numpy_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    events = random_log(7)
    prefixes = [np.array([0, 1]), np.array([2]), np.array([3, 3, 4])]
    for model in (SKNN(similarity="random", k=3, seed=1), VSKNN(sampling="random",
                                                                sample_size=4, seed=1)):
        model.fit(events)
        assert model._pool_kernels(model.params["similarity"]) is None
        a = make_baseline(model.name, model.get_params()).fit(events)
        b = make_baseline(model.name, model.get_params()).fit(events)
        with_c = a.score(prefixes)
        with monkeypatch.context() as m:
            m.setenv("GRU4REC_NATIVE", "0")
            assert_same(with_c, b.score(prefixes), model.name)
