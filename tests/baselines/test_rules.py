"""Markov, AR and SR (gru4rec.baselines.rules): hand-computed scores, agreement with plain
Python versions written from BASELINES.md §2 (the reference's loops, Counter.most_common for
pruning), persistence and parameter checks."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gru4rec.baselines import Baseline, make_baseline
from gru4rec.baselines.rules import AR, SR, Markov
from gru4rec.data.events import Events
from gru4rec.errors import ConfigError

Rules = dict[Any, Counter[Any]]

# ---------------------------------------------------------------- known answers

# Sessions (in time order):  1: a b b c   2: b d a   3: a c b   4: c a b
HAND = ["abbc", "bda", "acb", "cab"]


def hand_events(sessions: list[str] = HAND) -> Events:
    session = np.repeat(np.arange(1, len(sessions) + 1), [len(s) for s in sessions])
    items = np.array([i for s in sessions for i in s], dtype=object)
    return Events(session=session, item=items, time=np.arange(len(items), dtype=np.float64))


def dense(model: Baseline, prefixes: list[np.ndarray]) -> np.ndarray:
    """(len(prefixes), n_items) scores of the item-index prefixes as a dense array."""
    got = model.score(prefixes)
    return got if isinstance(got, np.ndarray) else got.toarray()


def scores_of(model: Baseline, *prefixes: str) -> np.ndarray:
    """Dense scores of the prefixes (strings of item ids), columns a, b, c, d."""
    index = model.item_index_
    got = dense(model, [index.lookup(np.array(list(p), dtype=object)) for p in prefixes])
    return got[:, index.lookup(np.array(list("abcd"), dtype=object))]


def test_markov_counts_repeats_and_keeps_first_seen_rule_on_ties() -> None:
    model = Markov(pruning=0).fit(hand_events())
    # T[a] = {b: 2 (a b in 1 and 4), c: 1}; T[b] = {b: 1 (the repeat), c: 1, d: 1}
    np.testing.assert_array_equal(scores_of(model, "a", "cab", "b", ""),
                                  [[0, 1, 0.5, 0], [0, 1, 1, 1], [0, 1, 1, 1], [0, 0, 0, 0]])
    # T[c] = {b: 1 (session 3), a: 1 (session 4)}: pruning=1 keeps b, seen first, though a
    # has the lower index; T[b] keeps b (first of three ties)
    pruned = Markov(pruning=1).fit(hand_events())
    np.testing.assert_array_equal(scores_of(pruned, "c", "b"), [[0, 1, 0, 0], [0, 1, 0, 0]])


def test_ar_counts_pairs_in_sessions_with_self_rules() -> None:
    model = AR(pruning=0).fit(hand_events())
    # R[b]: a = 1*2 + 1 + 1 + 1 = 5, c = 2*1 + 1 + 1 = 4, b = 2*(2-1) = 2, d = 1 -> / 5
    # R[a][a] is absent: a never occurs twice in a session
    np.testing.assert_array_equal(scores_of(model, "b", "a"),
                                  [[1, 2 / 5, 4 / 5, 1 / 5], [0, 1, 3 / 5, 1 / 5]])
    # R[d] = {b: 1, a: 1}: the pair (b, d) at positions (0, 1) of session 2 comes before
    # (d, a) at (1, 2), so pruning=1 keeps b
    pruned = AR(pruning=1).fit(hand_events())
    np.testing.assert_array_equal(scores_of(pruned, "d", "b"), [[0, 1, 0, 0], [1, 0, 0, 0]])
    # session a b a d: R[a] = {b: 1 + 1 = 2, a: 1 * (2-1) * 2 = 2, d: 2}; the pair (a, b) at
    # positions (0, 1) comes before (a, a) at (0, 2) and (a, d) at (0, 3): pruning=1 keeps b
    self_tie = AR(pruning=1).fit(hand_events(["abad", "c"]))
    np.testing.assert_array_equal(scores_of(self_tie, "a"), [[0, 1, 0, 0]])


def test_sr_weights_lags_prunes_ties_and_adds_earlier_items() -> None:
    model = SR(steps=2, weighting="div", pruning=2).fit(hand_events())
    # R[b]: c = 1 + 1/2 (session 1), b = 1, d = 1, a = 1/2; pruning=2 keeps c and b (b is
    # created before d) -> c 1, b 1 / 1.5
    # R[a]: b = 1 + 1/2 + 1/2 + 1 = 3, c = 1 -> b 1, c 1/3
    np.testing.assert_array_equal(scores_of(model, "b", "a"),
                                  [[0, 1 / 1.5, 1, 0], [0, 1, 1 / 3, 0]])
    quad = SR(steps=3, weighting="quadratic", pruning=0).fit(hand_events())
    # R[b]: c = 1 + 1/4, b = 1, d = 1, a = 1/4 -> / 1.25
    # R[a]: b = 1 + 1/4 + 1/4 + 1 = 2.5, c = 1/9 (lag 3 in session 1) + 1 -> / 2.5
    np.testing.assert_array_equal(scores_of(quad, "b", "a"),
                                  [[0.2, 0.8, 1, 0.8], [0, 1, (1 / 9 + 1) / 2.5, 0]])
    last = SR(steps=2, pruning=2, last_in_session=1).fit(hand_events())
    # prefix a b: R[b] + R[a] * div(2) = {c: 1.5 + 1 * 0.5, b: 1 + 3 * 0.5} = {c: 2, b: 2.5}
    np.testing.assert_array_equal(scores_of(last, "ab", "b"),
                                  [[0, 1, 0.8, 0], [0, 1 / 1.5, 1, 0]])


def test_recommend_skips_unknown_items_and_uses_the_last_known_one() -> None:
    model = Markov(pruning=0).fit(hand_events())
    result = model.recommend([["a", "zzz"]], k=2)
    assert result.unknown.tolist() == [1]
    assert result.items.tolist() == [["b", "c"]]
    np.testing.assert_array_equal(result.scores, [[1.0, 0.5]])


# ---------------------------------------------------------------- plain-Python references

# w(d) of BASELINES.md §2; "linear" is the intended max(0, 1 - 0.1 d)
WEIGHTS: dict[str, Callable[[int], float]] = {
    "div": lambda d: 1 / d, "quadratic": lambda d: 1 / d ** 2,
    "log": lambda d: 1 / math.log10(d + 1.7), "same": lambda d: 1.0,
    "linear": lambda d: max(0.0, 1 - 0.1 * d),
    "linear-sessionrec": lambda d: 1 - 0.1 * d if d <= 100 else 0}


def prune_ref(rules: Rules, pruning: float) -> Rules:
    if not pruning:
        return rules
    out: Rules = {}
    for a, row in rules.items():
        keep = int(pruning) if pruning >= 1 else len(row) - int(len(row) * pruning)
        out[a] = Counter(dict(row.most_common(keep)))
    return out


def markov_ref(sessions: list[list[Any]]) -> Rules:
    rules: Rules = {}
    for s in sessions:
        for a, b in zip(s[:-1], s[1:], strict=True):
            rules.setdefault(a, Counter())[b] += 1
    return rules


def ar_ref(sessions: list[list[Any]]) -> Rules:
    rules: Rules = {}
    for s in sessions:
        for u in range(len(s)):
            for t in range(u + 1, len(s)):
                rules.setdefault(s[u], Counter())[s[t]] += 1
                rules.setdefault(s[t], Counter())[s[u]] += 1
    return rules


def sr_ref(sessions: list[list[Any]], steps: int = 10, weighting: str = "div",
           idf_weight: int = 0, **_: Any) -> Rules:
    idf: dict[Any, float] = {}
    if idf_weight:
        supp = Counter(i for s in sessions for i in s)
        raw = {i: math.log(len(sessions) / n) for i, n in supp.items()}
        low, high = min(raw.values()), max(raw.values())
        idf = {i: (v - low) / (high - low) for i, v in raw.items()}
    rules: Rules = {}
    for s in sessions:
        for t in range(len(s)):
            for d in range(1, min(steps, t) + 1):
                a, w = s[t - d], WEIGHTS[weighting](d)
                w = w * idf[a] if idf_weight == 1 else w + idf[a] if idf_weight == 2 else w
                rules.setdefault(a, Counter())[s[t]] += w
    return rules


def score_ref(rules: Rules, prefix: list[Any], last_in_session: int = 0,
              session_weighting: str = "div") -> dict[Any, float]:
    scores: dict[Any, float] = {}
    for d in range(1, last_in_session + 2):
        if d <= len(prefix):
            w = 1.0 if d == 1 else WEIGHTS[session_weighting](d)
            for j, v in rules.get(prefix[-d], Counter()).items():
                scores[j] = scores.get(j, 0.0) + v * w
    top = max(scores.values(), default=0.0)
    return {j: v / top if top > 0 else v for j, v in scores.items()}


def random_log(seed: int) -> Events:
    """30 sessions of 1-8 clicks (and 3 of 12-14, so that lags > 10 occur) over 12 items
    (repeats likely), sessions in shuffled id order in the file, spread over 10 days."""
    rng = np.random.default_rng(seed)
    lengths = np.r_[rng.integers(1, 9, 27), rng.integers(12, 15, 3)]
    ids = rng.permutation(30) + 100
    session = np.repeat(ids, lengths)
    starts = np.repeat(1.7e9 + np.sort(rng.uniform(0, 10 * 86_400, 30)), lengths)
    time = starts + np.concatenate([np.arange(n) * 60.0 for n in lengths])
    return Events(session=session, item=rng.integers(0, 12, len(session)) + 1000, time=time)


def sessions_of(events: Events, last_n_days: int | None = None) -> list[list[Any]]:
    """Item lists by session id, each in time order, optionally only recent events."""
    keep = np.ones(len(events), dtype=bool)
    if last_n_days is not None:
        last = datetime.fromtimestamp(events.time.max(), tz=UTC)
        start = datetime(last.year, last.month, last.day, tzinfo=UTC)
        keep = events.time >= (start - timedelta(days=last_n_days)).timestamp()
    out: dict[Any, list[tuple[float, Any]]] = {}
    for s, i, t, k in zip(events.session, events.item, events.time, keep, strict=True):
        if k:
            out.setdefault(s, []).append((t, i))
    return [[i for _, i in sorted(out[s], key=lambda e: e[0])] for s in sorted(out)]


CASES: list[tuple[str, dict[str, Any]]] = [
    ("markov", {"pruning": 0}), ("markov", {"pruning": 2}), ("markov", {"pruning": 0.5}),
    ("markov", {"pruning": 1, "last_n_days": 3}),
    ("ar", {"pruning": 0}), ("ar", {"pruning": 1}), ("ar", {"pruning": 2}),
    ("ar", {"pruning": 0.5}),
    ("sr", {}), ("sr", {"steps": 3, "pruning": 2}), ("sr", {"steps": 4, "pruning": 0.5}),
    ("sr", {"steps": 12, "weighting": "linear-sessionrec", "pruning": 2}),
    ("sr", {"steps": 12, "weighting": "linear", "pruning": 0.3}),
    ("sr", {"steps": 5, "weighting": "log", "idf_weight": 1, "pruning": 2}),
    ("sr", {"steps": 3, "weighting": "quadratic", "idf_weight": 2, "pruning": 3}),
    ("sr", {"weighting": "same", "last_in_session": 2, "session_weighting": "quadratic",
            "pruning": 2}),
    ("sr", {"steps": 2, "last_n_days": 4, "pruning": 1}),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("name", "params"), CASES)
def test_scores_equal_the_reference_loops(name: str, params: dict[str, Any], seed: int
                                          ) -> None:
    events = random_log(seed)
    model = make_baseline(name, params).fit(events)
    sessions = sessions_of(events, params.get("last_n_days"))
    learn = {"markov": markov_ref, "ar": ar_ref, "sr": sr_ref}[name]
    rules = prune_ref(learn(sessions, **{k: v for k, v in params.items()
                                         if k in ("steps", "weighting", "idf_weight")}),
                      params.get("pruning", 20))
    prefixes = [s[:c] for s in sessions_of(events) for c in range(len(s) + 1)]
    expected = np.zeros((len(prefixes), model.n_items))
    index = model.item_index_
    for row, prefix in enumerate(prefixes):
        ref = score_ref(rules, prefix, params.get("last_in_session", 0),
                        params.get("session_weighting", "div"))
        expected[row, index.lookup(np.array(list(ref), dtype=np.int64))] = list(ref.values())
    got = dense(model, [index.lookup(np.array(p, dtype=np.int64)) for p in prefixes])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


# ---------------------------------------------------------------- persistence and parameters

@pytest.mark.parametrize(("name", "params"), [
    ("markov", {}), ("ar", {"pruning": 2}),
    ("sr", {"steps": 4, "idf_weight": 2, "last_in_session": 2, "pruning": 0.5})])
def test_save_and_load_give_identical_scores(tmp_path: Path, name: str,
                                             params: dict[str, Any]) -> None:
    events = random_log(3)
    model = make_baseline(name, params).fit(events)
    model.save(tmp_path / "m.pt")
    loaded = Baseline.load(tmp_path / "m.pt")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    prefixes = [model.item_index_.lookup(np.array(s[:c], dtype=np.int64))
                for s in sessions_of(events) for c in range(len(s) + 1)]
    np.testing.assert_array_equal(dense(loaded, prefixes), dense(model, prefixes))


def test_load_state_refuses_arrays_that_do_not_fit() -> None:
    model = SR().fit(random_log(4))
    state = model._state()
    with pytest.raises(ValueError, match="expected the arrays"):
        model._load_state({"indptr": state["indptr"]})
    with pytest.raises(ValueError, match="indptr"):
        model._load_state({**state, "indptr": state["indptr"][:-1]})
    with pytest.raises(ValueError, match="indices"):
        model._load_state({**state, "indices": state["indices"][:-1]})


@pytest.mark.parametrize(("name", "params", "named"), [
    ("sr", {"weighting": "cubic"}, "weighting"), ("sr", {"stepz": 3}, "stepz"),
    ("markov", {"pruning": 1.5}, "pruning"), ("ar", {"pruning": -1}, "pruning"),
    ("sr", {"idf_weight": 3}, "idf_weight"), ("sr", {"last_in_session": -2}, "last_in_session"),
    ("ar", {"last_n_days": 3}, "last_n_days")])
def test_bad_parameters_raise_config_error_naming_them(name: str, params: dict[str, Any],
                                                       named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        make_baseline(name, params)


def test_parameter_values_as_text_are_converted() -> None:
    got = SR(pruning="0.25", idf_weight="True", last_in_session="0", steps="3").get_params()
    assert [got[n] for n in ("pruning", "idf_weight", "last_in_session", "steps")] == \
        [0.25, 1, False, 3]
    assert Markov(pruning="20").get_params()["pruning"] == 20
