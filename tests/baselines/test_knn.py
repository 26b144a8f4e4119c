"""SKNN and V-SKNN: hand-computed answers, a plain-Python implementation of BASELINES.md §3
compared on random logs, the pool's recency sampling, persistence and refused options."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gru4rec.baselines import Baseline, make_baseline, neighbours
from gru4rec.baselines.neighbours import sample_pool
from gru4rec.baselines.sknn import SKNN
from gru4rec.baselines.vsknn import VSKNN
from gru4rec.data.events import Events
from gru4rec.errors import ConfigError

# ---------------------------------------------------------------- hand-made log
# session: items (times)          end  recency rank
# s1: A B C     (1, 2, 3)          3   4
# s2: B D       (4, 5)             5   3
# s3: A C D C   (6, 7, 8, 9)       9   2   (C repeats)
# s4: E B       (10, 11)          11   1
# s5: A E       (12, 13)          13   0
# item index = first appearance: A=0 B=1 C=2 D=3 E=4
HAND = [("s1", "ABC"), ("s2", "BD"), ("s3", "ACDC"), ("s4", "EB"), ("s5", "AE")]


def hand_events() -> Events:
    sessions = [s for s, items in HAND for _ in items]
    items = [i for _, items in HAND for i in items]
    return Events(session=np.array(sessions, dtype=object), item=np.array(items, dtype=object),
                  time=np.arange(1, len(items) + 1, dtype=np.float64))


def scores_of(model: Baseline, prefix: str) -> dict[str, float]:
    """The non-zero scores of the prefix (letters) as {letter: score}."""
    idx = model.item_index_.lookup(np.array(list(prefix), dtype=object))
    row = model.score([idx]).toarray()[0]
    return {str(model.item_index_.ids[j]): float(row[j]) for j in np.flatnonzero(row)}


def approx(expected: dict[str, float]) -> Any:
    return pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_sknn_jaccard_tie_goes_to_the_more_recent_session() -> None:
    model = SKNN(k=2, sample_size=0).fit(hand_events())
    # P={A,B}: s1 2/3; s2, s4, s5 1/3 (tie); s3 1/4. k=2: s1 and s5 (most recent of the tie)
    # A = 2/3 + 1/3 = 1, B = C = 2/3, E = 1/3; max 1
    assert scores_of(model, "AB") == approx({"A": 1.0, "B": 2 / 3, "C": 2 / 3, "E": 1 / 3})


def test_sknn_remind_with_a_repeated_item() -> None:
    model = SKNN(k=1, sample_size=0, remind=True, normalize=False).fit(hand_events())
    # P={A,C}: s1 {A,B,C} 2/3 and s3 {A,C,D} 2/3 tie -> s3 (rank 2 beats 4); s5 1/3
    # base: A = C = D = 2/3. prefix[-3:] = C, A, C with q = 1, 2, 3:
    # C <- 5(2/3 + 5) + .01 = 85/3 + .01;  A <- 85/3 + .02;  C <- 5(85/3 + .01 + 5) + .03
    c = 5 * (85 / 3 + 0.01 + 5) + 0.03
    assert scores_of(model, "CAC") == approx({"A": 85 / 3 + 0.02, "C": c, "D": 2 / 3})


def test_sknn_recent_sample_decides() -> None:
    model = SKNN(k=2, sample_size=3).fit(hand_events())
    # pool of {A,B} is every session; the 3 most recent: s5, s4 (1/3 each), s3 (1/4);
    # s1 (2/3) is not sampled. k=2: s5 {A,E}, s4 {E,B}: E = 2/3, A = B = 1/3; max 2/3
    assert scores_of(model, "AB") == approx({"E": 1.0, "A": 0.5, "B": 0.5})


def test_vsknn_vec_div() -> None:
    model = VSKNN(k=2, sample_size=0).fit(hand_events())
    # S = A B, L=2: w_A = 1/2, w_B = 1, |P| = 2. sim: s1 .75; s2, s4 .5 (tie -> s4); s3, s5 .25
    # k=2: s1 (d=1), s4 (d=1): A = C = .75, B = .75 + .5 = 1.25, E = .5; max 1.25
    assert scores_of(model, "AB") == approx({"A": 0.6, "B": 1.0, "C": 0.6, "E": 0.4})


def test_vsknn_distance_weight() -> None:
    model = VSKNN(k=5, sample_size=0, normalize=False).fit(hand_events())
    # every session; s3 and s5 share only A (p=1): d = 2, g = 1/2, so they give .25/2
    assert scores_of(model, "AB") == approx(
        {"A": 0.75 + 0.125 + 0.125, "B": 0.75 + 0.5 + 0.5, "C": 0.75 + 0.125,
         "D": 0.5 + 0.125, "E": 0.5 + 0.125})


def test_vsknn_quadratic_without_remind() -> None:
    model = VSKNN(k=5, sample_size=0, weighting="quadratic", weighting_score="quadratic",
                  remind=False, normalize=False).fit(hand_events())
    # w_A = 1/4, w_B = 1: s1 .625; s2, s4 .5; s3, s5 .125 with d=2, g = 1/4
    # A and B (in the prefix) get nothing
    assert scores_of(model, "AB") == approx(
        {"C": 0.625 + 0.125 / 4, "D": 0.5 + 0.125 / 4, "E": 0.5 + 0.125 / 4})


def test_vsknn_recent_sample_decides() -> None:
    model = VSKNN(k=2, sample_size=3).fit(hand_events())
    # sampled: s5 (.25, d=2), s4 (.5, d=1), s3 (.25, d=2); k=2: s4, then s5 beats s3
    # E = .5 + .125, B = .5, A = .125; max .625
    assert scores_of(model, "AB") == approx({"E": 1.0, "B": 0.8, "A": 0.2})


@pytest.mark.parametrize("name", ["sknn", "vsknn"])
def test_unknown_items_are_skipped(name: str) -> None:
    model = make_baseline(name, {"k": 2, "sample_size": 0}).fit(hand_events())
    got = model.recommend([["A", "nope", "B"], ["A", "B"], ["nope"]], k=3)
    assert got.unknown.tolist() == [1, 0, 1]
    assert got.items[0].tolist() == got.items[1].tolist()
    assert np.all(got.scores[2] == 0)


def test_empty_prefix_scores_nothing() -> None:
    empty = np.zeros(0, dtype=np.int64)
    for model in (SKNN(remind=True), VSKNN(push_reminders=True, remind=False)):
        model.fit(hand_events())
        out = model.score([empty, np.array([0])])
        assert out.row_lengths[0] == 0 and out.row_lengths[1] > 0
        assert model.score([empty, empty]).toarray().tolist() == [[0.0] * 5] * 2
        assert model.score([]).toarray().shape == (0, 5)


def test_random_similarity_is_seeded_and_stays_in_the_pool() -> None:
    events = random_log(6)
    prefixes = [np.array([0, 1]), np.array([4]), np.array([2, 2, 7])]
    a, b = (SKNN(similarity="random", k=3, seed=3).fit(events).score(prefixes).toarray()
            for _ in range(2))
    np.testing.assert_array_equal(a, b)
    model = SKNN(similarity="random", k=3, seed=3).fit(events)
    ranked = ref_ranked(ref_sessions(events, model))
    for x, row in zip(prefixes, a, strict=True):
        reach = set().union(*[s for s in ranked if s & set(x.tolist())])
        assert set(np.flatnonzero(row).tolist()) <= reach and row.max() == 1.0


# ---------------------------------------------------------------- plain-Python reference


def ref_sessions(events: Events, model: Baseline) -> list[tuple[list[int], float]]:
    """Sessions in session-id order, each time-sorted (stable): (item indices, end time)."""
    items = model.item_index_.lookup(events.item).tolist()
    by: dict[Any, list[tuple[float, int, int]]] = defaultdict(list)
    for pos, (s, t) in enumerate(zip(events.session.tolist(), events.time.tolist(),
                                     strict=True)):
        by[s].append((t, pos, items[pos]))
    out = []
    for s in sorted(by):
        clicks = sorted(by[s])
        out.append(([i for _, _, i in clicks], clicks[-1][0]))
    return out


def ref_ranked(sessions: list[tuple[list[int], float]]) -> list[set[int]]:
    """Distinct items of each session, by recency rank (end time descending, log order)."""
    order = sorted(range(len(sessions)), key=lambda s: (-sessions[s][1], s))
    return [set(sessions[s][0]) for s in order]


def ref_neighbours(ranked: list[set[int]], pool_items: set[int], m: int, k: int,
                   sim: Any) -> list[tuple[int, float]]:
    pool = [n for n in range(len(ranked)) if ranked[n] & pool_items]  # ascending rank
    if m:
        pool = pool[:m]
    sims = [(n, sim(ranked[n])) for n in pool]
    return sorted([x for x in sims if x[1] > 0], key=lambda x: (-x[1], x[0]))[:k]


def ref_normalise(s: dict[int, float]) -> dict[int, float]:
    top = max(s.values(), default=0.0)
    return {j: v / top for j, v in s.items()} if top > 0 else s


def ref_sknn(prefix: list[int], ranked: list[set[int]], p: dict[str, Any]) -> dict[int, float]:
    b = set(prefix)
    sims = {"jaccard": lambda a: len(a & b) / len(a | b),
            "tanimoto": lambda a: len(a & b) / (len(a) + len(b) - len(a & b)),
            "cosine": lambda a: len(a & b) / (math.sqrt(len(a)) * math.sqrt(len(b))),
            "binary": lambda a: 2 * len(a & b) / (2 * len(a & b) + len(a) + len(b))}
    nbrs = ref_neighbours(ranked, b, p["sample_size"], p["k"], sims[p["similarity"]])
    s: dict[int, float] = defaultdict(float)
    for n, sim in nbrs:
        for j in ranked[n]:
            s[j] += sim
    if p["remind"]:
        for q, e in enumerate(prefix[-3:], start=1):
            s[e] = 5 * (s[e] + 5) + q / 100
    if p["pop_boost"]:
        count = Counter(j for n, _ in nbrs for j in ranked[n])
        top = max(count.values(), default=0)
        for j in s:
            s[j] += p["pop_boost"] * (count[j] / top if top else 0.0)
    return ref_normalise(s) if p["normalize"] else dict(s)


POSITION = {"div": lambda p, n: p / n, "quadratic": lambda p, n: (p / n) ** 2,
            "log": lambda p, n: 1 / np.log10(n - p + 1.7), "same": lambda p, n: 1.0,
            "linear": lambda p, n: max(0.0, 1 - 0.1 * (n - p)),
            "linear-sessionrec": lambda p, n: 1 - 0.1 * (n - p) if p <= 10 else 0.0}
DISTANCE = {"div": lambda d: 1 / d, "quadratic": lambda d: 1 / d ** 2,
            "log": lambda d: 1 / np.log10(d + 1.7), "same": lambda d: 1.0,
            "linear": lambda d: max(0.0, 1 - 0.1 * d),
            "linear-sessionrec": lambda d: 1 - 0.1 * d if d <= 100 else 0.0}


def ref_vsknn(prefix: list[int], ranked: list[set[int]], idf: dict[int, float],
              p: dict[str, Any]) -> dict[int, float]:
    s_list = prefix[-p["last_n_clicks"]:] if p["last_n_clicks"] else prefix
    n = len(s_list)
    last = {i: pos for pos, i in enumerate(s_list, start=1)}
    w = {i: float(POSITION[p["weighting"]](pos, n)) for i, pos in last.items()}
    in_order = sorted(last, key=last.get)  # sums in position order, as the model

    def sim(a: set[int]) -> float:
        total = 0.0
        for i in in_order:
            if i in a:
                total += w[i]
        if p["similarity"] == "vec":
            return total / len(in_order)
        norm = 0.0
        for i in in_order:
            norm += w[i] * w[i]
        denom = math.sqrt(norm) * math.sqrt(len(a))
        return total / denom if denom > 0 else 0.0

    nbrs = ref_neighbours(ranked, set(prefix), p["sample_size"], p["k"], sim)
    s: dict[int, float] = defaultdict(float)
    for nb, value in nbrs:
        d = n - max(last[i] for i in ranked[nb] if i in last) + 1
        v = value * float(DISTANCE[p["weighting_score"]](d))
        for j in ranked[nb]:
            if not p["remind"] and j in last:
                continue
            s[j] += v * (1 + p["idf_weighting"] * idf[j]) if p["idf_weighting"] else v
    if p["push_reminders"]:
        for j in last:
            if j in s:
                s[j] *= s_list.count(j) + 1
    return ref_normalise(s) if p["normalize"] else dict(s)


def random_log(seed: int, n_sessions: int = 40, n_items: int = 15, ties: bool = True
               ) -> Events:
    """Sessions of 1-8 clicks over skewed items; end times often equal (or all distinct);
    session ids shuffled."""
    rng = np.random.default_rng(seed)
    pop = 1 / np.arange(1, n_items + 1)
    sess, items, times = [], [], []
    ids = rng.permutation(n_sessions) + 100
    distinct = rng.permutation(1000)[:n_sessions]
    for s in range(n_sessions):
        length = int(rng.integers(1, 9))
        end = float(rng.integers(0, 12) if ties else distinct[s]) * 10
        sess += [ids[s]] * length
        items += list(rng.choice(n_items, length, p=pop / pop.sum()) + 1000)
        times += [end - (length - 1 - i) for i in range(length)]
    return Events(session=np.array(sess), item=np.array(items), time=np.array(times))


def all_prefixes(sessions: list[tuple[list[int], float]], seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    out = [items[:c] for items, _ in sessions for c in range(1, len(items) + 1)]
    n_items = max(max(items) for items, _ in sessions) + 1
    out += [list(rng.integers(0, n_items, int(rng.integers(1, 14)))) for _ in range(20)]
    return out + [[]]


def dense(scores: dict[int, float], n_items: int) -> np.ndarray:
    row = np.zeros(n_items)
    for j, v in scores.items():
        row[j] = v
    return row


SKNN_SETTINGS = [
    {}, {"k": 3, "sample_size": 5}, {"k": 1, "sample_size": 0, "remind": True},
    {"similarity": "cosine", "k": 4, "sample_size": 7, "pop_boost": 0.5},
    {"similarity": "tanimoto", "k": 2, "remind": True, "pop_boost": 2.0},
    {"similarity": "binary", "k": 6, "sample_size": 3, "normalize": False},
    {"similarity": "jaccard", "k": 100, "sample_size": 1000, "remind": True},
]
VSKNN_SETTINGS = [
    {}, {"k": 3, "sample_size": 5}, {"k": 2, "sample_size": 0, "similarity": "cosine"},
    {"weighting": "quadratic", "weighting_score": "quadratic", "k": 4, "idf_weighting": 5},
    {"weighting": "log", "weighting_score": "log", "k": 5, "sample_size": 8, "remind": False},
    {"weighting": "same", "weighting_score": "same", "k": 3, "push_reminders": True},
    {"weighting": "linear", "weighting_score": "linear", "k": 4, "last_n_clicks": 3,
     "similarity": "cosine", "idf_weighting": True},
    {"weighting": "linear-sessionrec", "weighting_score": "linear-sessionrec", "k": 6,
     "sample_size": 0, "normalize": False, "push_reminders": True},
    {"weighting": "div", "weighting_score": "log", "k": 2, "last_n_clicks": 1,
     "remind": False, "sample_size": 4},
]


@pytest.mark.parametrize(("seed", "ties", "int32"), [(0, True, True), (1, True, False),
                                                    (2, False, True)])
@pytest.mark.parametrize("name", ["sknn", "vsknn"])
def test_matches_the_reference(name: str, seed: int, ties: bool, int32: bool,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    if not int32:  # the int64 keys of big logs
        monkeypatch.setattr(neighbours, "_INT32_BITS", 0)
    events = random_log(seed, ties=ties)
    settings = SKNN_SETTINGS if name == "sknn" else VSKNN_SETTINGS
    for given in settings:
        model = make_baseline(name, given).fit(events)
        sessions = ref_sessions(events, model)
        ranked = ref_ranked(sessions)
        prefixes = all_prefixes(sessions, seed)
        n = model.n_items
        supp = Counter(i for items, _ in sessions for i in items)
        idf = {j: math.log(len(sessions) / supp[j]) for j in range(n)}
        p = model.get_params()
        want = [ref_sknn(x, ranked, p) if name == "sknn" else ref_vsknn(x, ranked, idf, p)
                for x in prefixes]
        got = model.score([np.array(x, dtype=np.int64) for x in prefixes]).toarray()
        np.testing.assert_allclose(got, np.array([dense(w, n) for w in want]).reshape(got.shape),
                                   rtol=1e-12, atol=1e-12, err_msg=f"{name} {given}")


@pytest.mark.parametrize("name", ["sknn", "vsknn"])
def test_scores_do_not_depend_on_the_batch(name: str) -> None:
    events = random_log(7, n_sessions=80)
    model = make_baseline(name, {"k": 5, "sample_size": 9, "remind": True}).fit(events)
    prefixes = [np.array(x, dtype=np.int64)
                for x in all_prefixes(ref_sessions(events, model), 7)]  # > one chunk
    together = model.score(prefixes).toarray()
    alone = np.concatenate([model.score([x]).toarray() for x in prefixes[::-1]])[::-1]
    np.testing.assert_array_equal(together, alone)


def test_pool_is_the_most_recent_with_overlaps() -> None:
    events = random_log(3, n_sessions=60)
    model = SKNN().fit(events)
    ranked = ref_ranked(ref_sessions(events, model))
    prefixes = all_prefixes(ref_sessions(events, model), 3)
    rows = np.repeat(np.arange(len(prefixes)), [len(set(x)) for x in prefixes])
    items = np.concatenate([sorted(set(x)) for x in prefixes]).astype(np.int64)
    for m in (0, 1, 2, 5, 13, 1000):
        pool = sample_pool(model.index_, rows, items, len(prefixes), m, "recent",
                           np.random.default_rng(0))
        sessions, overlap = pool.session(np.arange(len(pool.row))), pool.overlap()
        for r, x in enumerate(prefixes):
            want = [n for n in range(len(ranked)) if ranked[n] & set(x)]
            want = want[:m] if m else want
            at = pool.row == r
            assert sessions[at].tolist() == want
            assert overlap[at].tolist() == [len(ranked[n] & set(x)) for n in want]


def test_random_sampling_is_seeded_and_draws_from_the_pool() -> None:
    events = random_log(4)
    runs = [VSKNN(sampling="random", sample_size=4, k=3, seed=s).fit(events) for s in (7, 7)]
    prefixes = [np.array([0, 1, 2]), np.array([3]), np.array([0])]
    a, b = (m.score(prefixes).toarray() for m in runs)
    np.testing.assert_array_equal(a, b)
    full = VSKNN(sampling="random", sample_size=0, k=3).fit(events)
    recent = VSKNN(sampling="recent", sample_size=0, k=3).fit(events)
    np.testing.assert_array_equal(full.score(prefixes).toarray(),
                                  recent.score(prefixes).toarray())
    pool = sample_pool(runs[0].index_, np.array([0, 0]), np.array([0, 1]), 1, 4, "random",
                       np.random.default_rng(0))
    assert len(pool.row) == 4 and np.all(pool.overlap() >= 1)


def test_session_index_recency_ties_keep_log_order() -> None:
    events = Events(session=np.array([3, 3, 1, 2, 2]), item=np.array([7, 8, 7, 9, 7]),
                    time=np.array([1.0, 5.0, 5.0, 2.0, 6.0]))
    index = SKNN().fit(events).index_
    # ends: session 1 -> 5, 2 -> 6, 3 -> 5; ranks: 2 (6), then 1 and 3 (5) in id order
    items = [index.session_items[index.session_indptr[r]:index.session_indptr[r + 1]].tolist()
             for r in range(3)]
    assert items == [[0, 2], [0], [0, 1]]  # item index: 7 -> 0, 8 -> 1, 9 -> 2
    assert index.item_sessions.tolist() == [0, 1, 2, 2, 0]


def test_last_n_days_trains_on_the_recent_sessions() -> None:
    day = 86_400.0
    events = Events(session=np.array([1, 1, 2, 2]), item=np.array([5, 6, 5, 7]),
                    time=np.array([0.0, 10.0, 5 * day, 5 * day + 1]))
    model = VSKNN(last_n_days=1).fit(events)
    assert model.index_.n_sessions == 1 and model.n_items == 3
    assert model.idf_.tolist() == [0.0, 0.0, 0.0]  # ln(1 / 1) for 5 and 7; 6 has no events
    scores = model.score([np.array([0])]).toarray()[0]
    assert scores.tolist() == [1.0, 0.0, 1.0]


# ---------------------------------------------------------------- persistence and options


@pytest.mark.parametrize("name", ["sknn", "vsknn"])
def test_save_load_gives_the_same_scores(name: str, tmp_path: Path) -> None:
    events = random_log(5)
    model = make_baseline(name, {"k": 4, "sample_size": 6}).fit(events)
    model.save(tmp_path / "m.pt")
    loaded = Baseline.load(tmp_path / "m.pt")
    prefixes = [np.array([0, 1]), np.array([2]), np.array([3, 3, 4])]
    np.testing.assert_array_equal(loaded.score(prefixes).toarray(),
                                  model.score(prefixes).toarray())
    state = model._state()
    for bad in ({**state, "extra": state["session_items"]},
                {**state, "session_items": state["session_items"] + model.n_items},
                {**state, "session_indptr": state["session_indptr"][:-1]},
                {**state, "session_items": state["session_items"].astype(np.int32)}):
        with pytest.raises(ValueError):
            model._load_state(bad)
    if name == "vsknn":
        with pytest.raises(ValueError):
            model._load_state({**state, "idf": state["idf"][:-1]})


@pytest.mark.parametrize(("name", "params", "reason"), [
    ("sknn", {"extend": True}, "wall-clock"),
    ("vsknn", {"extend": True}, "wall-clock"),
    ("vsknn", {"weighting_time": True}, "target"),
    ("vsknn", {"dwelling_time": True}, "target"),
    ("vsknn", {"add_reminders": True}, "top 20"),
    ("vsknn", {"idf_weighting_session": True}, "undocumented"),
    ("vsknn", {"similarity": "jaccard"}, "crashes"),
    ("sknn", {"sampling": "oldest"}, "recent"),
    ("vsknn", {"sampling": 500}, "recent"),
    ("sknn", {"similarity": "vec"}, "jaccard"),
    ("sknn", {"k": 0}, ">= 1"),
    ("vsknn", {"sample_size": -1}, ">= 0"),
    ("vsknn", {"weighting": "cubic"}, "quadratic"),
    ("vsknn", {"last_n_clicks": 0}, ">= 1"),
    ("sknn", {"pop_boost": -1}, ">= 0"),
])
def test_refused_options(name: str, params: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        make_baseline(name, params)


def test_defaults() -> None:
    assert SKNN().get_params() == {
        "k": 100, "sample_size": 1000, "sampling": "recent", "similarity": "jaccard",
        "remind": False, "pop_boost": 0.0, "extend": False, "normalize": True}
    got = VSKNN().get_params()
    assert {n: got[n] for n in ("similarity", "weighting", "weighting_score",
                                "idf_weighting", "remind", "last_n_clicks")} == {
        "similarity": "vec", "weighting": "div", "weighting_score": "div",
        "idf_weighting": False, "remind": True, "last_n_clicks": None}
