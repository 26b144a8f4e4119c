"""Random, Pop and S-Pop: hand-computed scores, the plain definitions, and the estimator
manners every baseline shares (fit -> self, recommend, save/load, parameter errors)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from gru4rec.baselines import Baseline, make_baseline
from gru4rec.baselines.simple import Pop, SPop
from gru4rec.data.events import Events
from gru4rec.errors import ConfigError, ModelFileError, NotFittedError

# sessions (file order): 7: a b a   3: b c   5: a c d   (a: 3 events, b 2, c 2, d 1)
LOG = Events(session=np.array([7, 7, 7, 3, 3, 5, 5, 5]),
             item=np.array(["a", "b", "a", "b", "c", "a", "c", "d"]),
             time=np.array([1.0, 2, 3, 0, 1, 5, 6, 7]))


def dense(model: Baseline, prefixes: list[list[str]]) -> np.ndarray:
    scores = model.score([model.item_index_.lookup(np.array(p, dtype=str)) for p in prefixes])
    return scores if isinstance(scores, np.ndarray) else scores.toarray()


def test_pop_scores_the_top_n_items_by_support_and_cuts_ties_in_index_order() -> None:
    model = Pop(top_n=2).fit(LOG)
    assert model.item_index_.ids.tolist() == ["a", "b", "c", "d"]
    # a: 3/4; b and c tie at 2/3, b comes first in the index; c and d score 0
    np.testing.assert_array_equal(dense(model, [["d"], []]),
                                  [[0.75, 2 / 3, 0, 0], [0.75, 2 / 3, 0, 0]])


def test_pop_by_sessions_counts_each_session_once() -> None:
    model = Pop(top_n=None, support_by_key="session").fit(LOG)
    # sessions with a: 7, 5 -> 2; b: 7, 3 -> 2; c: 3, 5 -> 2; d: 1
    np.testing.assert_array_equal(dense(model, [[]]), [[2 / 3, 2 / 3, 2 / 3, 0.5]])


def test_spop_adds_the_session_counts_to_the_popularity() -> None:
    model = SPop(top_n=2).fit(LOG)
    # prefix d, c, d: d twice (+ pop 0), c once (+ pop 0), a and b only their pop
    np.testing.assert_array_equal(dense(model, [["d", "c", "d"]]), [[0.75, 2 / 3, 1, 2]])


@pytest.mark.parametrize("top_n", [None, 1, 3])
@pytest.mark.parametrize("by_session", [False, True])
@pytest.mark.parametrize("cls", [Pop, SPop])
def test_pop_and_spop_equal_their_definitions(cls: type[Pop], top_n: int | None,
                                              by_session: bool) -> None:
    rng = np.random.default_rng(3)
    n = 400
    log = Events(rng.integers(0, 60, n), rng.integers(0, 25, n), rng.random(n))
    key = "session" if by_session else None
    model = cls(top_n=top_n, support_by_key=key).fit(log)
    pairs = zip(log.session.tolist(), log.item.tolist(), strict=True)
    supp = Counter(i for _, i in set(pairs)) if by_session else Counter(log.item.tolist())
    ids = model.item_index_.ids.tolist()  # first appearance in the file
    ranked = sorted(ids, key=lambda i: -supp[i] / (1 + supp[i]))  # stable: index order
    top = set(ranked[:top_n] if top_n else ranked)
    for prefix in ([], [ids[0]], [ids[3], ids[3], ids[5]]):
        seen = [prefix.count(j) if cls is SPop else 0 for j in ids]
        want = [c + (supp[j] / (1 + supp[j]) if j in top else 0)
                for c, j in zip(seen, ids, strict=True)]
        np.testing.assert_allclose(_score_ids(model, prefix), [want], rtol=1e-15)


def _score_ids(model: Baseline, prefix: list[int]) -> np.ndarray:
    scores = model.score([model.item_index_.lookup(np.array(prefix, dtype=np.int64))])
    return scores if isinstance(scores, np.ndarray) else scores.toarray()


def test_random_draws_afresh_and_is_reproducible_by_seed() -> None:
    a = make_baseline("random", seed=5).fit(LOG)
    b = make_baseline("random", seed=5).fit(LOG)
    first = dense(a, [["a"], ["zzz"]])
    # uniform draws of the seeded generator, one row per prefix, whatever the prefix
    np.testing.assert_array_equal(first, np.random.default_rng(5).random((2, 4)))
    assert np.array_equal(first, dense(b, [["a"], []]))
    assert not np.array_equal(first, dense(a, [["a"], []]))


def test_recommend_skips_unknown_items_and_honours_the_filters() -> None:
    model = SPop(top_n=None).fit(LOG)
    items, scores = model.recommend([["c", "zzz"], []], k=2)
    assert items.tolist() == [["c", "a"], ["a", "b"]]
    result = model.recommend([["c", "zzz"]], k=2, exclude_seen=True, exclude=["a", "q"])
    assert result.items.tolist() == [["b", "d"]]
    assert result.unknown.tolist() == [1] and result.unknown_filter == 1
    only = model.recommend([["a"]], k=5, candidates=["d", "c"])
    assert only.items.tolist() == [["c", "d"]] and only.scores.shape == (1, 2)


@pytest.mark.parametrize("name", ["random", "pop", "spop"])
def test_save_and_load_give_the_same_model(name: str, tmp_path: Path) -> None:
    model = make_baseline(name, seed=9).fit(LOG)
    model.save(tmp_path / "m.pt")
    loaded = Baseline.load(tmp_path / "m.pt")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    assert loaded.item_index_.ids.tolist() == model.item_index_.ids.tolist()
    if name != "random":
        assert np.array_equal(dense(loaded, [["b", "c"]]), dense(model, [["b", "c"]]))


def test_load_refuses_other_files_and_other_models(tmp_path: Path) -> None:
    Pop().fit(LOG).save(tmp_path / "pop.pt")
    with pytest.raises(ModelFileError, match="holds a 'pop' model"):
        SPop.load(tmp_path / "pop.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a readable"):
        Baseline.load(tmp_path / "junk.pt")
    with pytest.raises(ModelFileError, match="does not exist"):
        Baseline.load(tmp_path / "none.pt")


def test_bad_parameters_are_all_reported_with_their_names() -> None:
    with pytest.raises(ConfigError) as err:
        make_baseline("pop", {"top_n": "-3", "topn": 5})
    assert len(err.value.problems) == 2
    assert "top_n" in str(err.value) and "'topn'" in str(err.value)
    with pytest.raises(ConfigError, match="unknown model 'popp'"):
        make_baseline("popp")
    with pytest.raises(ConfigError, match="support_by_key"):
        Pop(support_by_key="UserId")


def test_parameters_given_as_text_are_converted() -> None:
    assert make_baseline("pop", {"top_n": "5"}).get_params()["top_n"] == 5
    assert make_baseline("pop", {"top_n": "None"}).get_params()["top_n"] is None


def test_an_unfitted_model_says_so() -> None:
    with pytest.raises(NotFittedError, match="fit"):
        Pop().recommend([["a"]])


def test_a_baseline_file_given_to_gru4rec_says_what_it_is(tmp_path: Path) -> None:
    from gru4rec.model import GRU4Rec

    Pop().fit(LOG).save(tmp_path / "pop.pt")
    with pytest.raises(ModelFileError, match="is a baseline model file \\('pop'\\)"):
        GRU4Rec.load(tmp_path / "pop.pt")


def test_a_baseline_file_carries_a_checksum_of_its_contents(tmp_path: Path) -> None:
    import torch

    Pop().fit(LOG).save(tmp_path / "pop.pt")
    payload = torch.load(tmp_path / "pop.pt", weights_only=True)
    payload["state"]["pop"][0] += 0.5  # one score changed, nothing else
    torch.save(payload, tmp_path / "pop.pt")
    with pytest.raises(ModelFileError, match="checksum does not match"):
        Baseline.load(tmp_path / "pop.pt")
