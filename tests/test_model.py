"""The GRU4Rec estimator end to end: learning, reproducibility, model files, config, evaluation.

Every bad input has a test that asserts the error type and a piece of its message.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gru4rec import (
    ConfigError,
    DataError,
    GRU4Rec,
    GRU4RecConfig,
    ModelFileError,
    NotFittedError,
    TrainingDivergedError,
    evaluate,
)
from gru4rec.config import parse_param_file, parse_param_string
from gru4rec.data.events import Events

FAST = {"sample_store_size": 100_000}  # the default 10M-id store costs ~1 s per fit
SMALL = {"layers": [32], "batch_size": 16, "n_sample": 8, "learning_rate": 0.2, **FAST}


def fit_successor(events: Events, device: str = "cpu", seed: int = 42, **params: Any) -> GRU4Rec:
    kwargs = {**SMALL, "n_epochs": 6, **params}
    return GRU4Rec(device=device, seed=seed, **kwargs).fit(events)


@pytest.fixture(scope="module")
def train(successor_train: Events) -> Events:
    return successor_train


@pytest.fixture(scope="module")
def test_events(successor_test: Events) -> Events:
    return successor_test


@pytest.fixture(scope="module")
def fitted(train: Events) -> GRU4Rec:
    return fit_successor(train)


def random_sessions(n_items: int, n_sessions: int, length: int, seed: int) -> Events:
    """Sessions of uniformly random items: the successor model ranks their targets anywhere."""
    rng = np.random.default_rng(seed)
    items = rng.integers(0, n_items, size=n_sessions * length).astype(np.int64)
    session = np.repeat(np.arange(n_sessions, dtype=np.int64), length)
    time = np.arange(n_sessions * length, dtype=np.float64)
    return Events(session=session, item=items, time=time)


def events_of(sessions: list[list[Any]]) -> Events:
    """Events from explicit sessions (ids 0, 1, ...; times increase in list order)."""
    session = np.repeat(np.arange(len(sessions), dtype=np.int64), [len(s) for s in sessions])
    items = [i for s in sessions for i in s]
    item = (np.asarray(items, dtype=object) if any(isinstance(i, str) for i in items)
            else np.asarray(items, dtype=np.int64))
    return Events(session=session, item=item, time=np.arange(len(items), dtype=np.float64))


# ----------------------------------------------------------------------------- learning

EMBEDDINGS = {
    "constrained": {"constrained_embedding": True},
    "separate": {"constrained_embedding": False, "embedding": 16},
    "none": {"constrained_embedding": False, "embedding": 0},
}


@pytest.mark.parametrize("mode", list(EMBEDDINGS))
@pytest.mark.parametrize("loss", ["cross-entropy", "bpr-max"])
def test_learns_the_successor_rule(train: Events, test_events: Events, device: str, loss: str,
                                   mode: str) -> None:
    model = fit_successor(train, device=device, loss=loss, **EMBEDDINGS[mode])
    result = evaluate(model, test_events, cutoffs=[1])
    assert result.n_predictions == 100 * 5
    assert result["Recall@1"] >= 0.95, result.metrics
    assert len(model.history_) == 6
    assert model.history_[-1].loss < model.history_[0].loss


def test_fit_returns_self_and_counts_examples(train: Events) -> None:
    model = GRU4Rec(device="cpu", n_epochs=1, **SMALL)
    assert model.fit(train) is model
    assert model.history_[0].n_events == 300 * 5  # events - sessions
    assert model.n_items == 50


def test_same_seed_same_losses_different_seed_different_losses(train: Events) -> None:
    params = {"n_epochs": 2, "dropout_p_hidden": 0.2, **SMALL}
    a = GRU4Rec(device="cpu", seed=5, **params).fit(train)
    b = GRU4Rec(device="cpu", seed=5, **params).fit(train)
    c = GRU4Rec(device="cpu", seed=6, **params).fit(train)
    assert [r.loss for r in a.history_] == [r.loss for r in b.history_]
    _, sa = a.recommend([[1, 2, 3]], k=5)
    _, sb = b.recommend([[1, 2, 3]], k=5)
    np.testing.assert_array_equal(sa, sb)
    assert [r.loss for r in a.history_] != [r.loss for r in c.history_]


# ----------------------------------------------------------------------------- save / load


def test_save_load_gives_identical_scores_and_metrics(fitted: GRU4Rec, test_events: Events,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    fitted.save(path)
    loaded = GRU4Rec.load(path, device="cpu")
    sessions = [[0, 1, 2], [17], [49, 0], [5, 6, 7, 8, 9]]
    ids_a, scores_a = fitted.recommend(sessions, k=10)
    ids_b, scores_b = loaded.recommend(sessions, k=10)
    np.testing.assert_array_equal(ids_a, ids_b)
    np.testing.assert_array_equal(scores_a, scores_b)
    assert ids_a[:, 0].tolist() == [3, 18, 1, 10]  # the successor of the last item
    m_a = evaluate(fitted, test_events, cutoffs=[1, 5], mode="conservative")
    m_b = evaluate(loaded, test_events, cutoffs=[1, 5], mode="conservative")
    assert m_a.metrics == m_b.metrics
    assert loaded.config == fitted.config
    np.testing.assert_array_equal(loaded.item_support_, fitted.item_support_)


def test_model_file_loads_with_weights_only(fitted: GRU4Rec, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    fitted.save(path)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "gru4rec-model"
    assert payload["config"]["layers"] == [32]
    assert all(t.dtype == torch.float32 for t in payload["params"].values())
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temp file left behind


@pytest.mark.parametrize("kind", ["str", "int"])
def test_item_ids_come_back_unchanged(kind: str, tmp_path: Path) -> None:
    n = 12
    names: list[Any] = (["a1"] + [f"{i:03d}" for i in range(1, n)] if kind == "str"
                        else [10**12 + 7 * i for i in range(n)])
    rng = np.random.default_rng(0)
    sessions = [[names[(s + k) % n] for k in range(5)] for s in rng.integers(0, n, size=120)]
    model = GRU4Rec(device="cpu", n_epochs=8, **{**SMALL, "batch_size": 8}).fit(
        events_of(sessions))
    assert sorted(model.item_index_.to_list()) == sorted(names)
    path = tmp_path / "ids.pt"
    model.save(path)
    loaded = GRU4Rec.load(path, device="cpu")
    assert loaded.item_index_.to_list() == model.item_index_.to_list()
    query = [[names[5], names[6], names[7]], [names[n - 1]]]  # "005" "006" "007" -> "008"
    for m in (model, loaded):
        ids, _ = m.recommend(query, k=3)
        assert ids[:, 0].tolist() == [names[8], names[0]]
        assert all(type(x) is type(names[0]) for x in ids.ravel().tolist())
        assert set(ids.ravel().tolist()) <= set(names)


def tamper(path: Path, change: Callable[[dict], None]) -> None:
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


class RunsCode:
    """Unpickling this runs a shell command: a model file must never do that."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"echo pwned > {self.marker}",))


def _set(key: str, value: Any) -> Callable[[dict], None]:
    return lambda p: p.__setitem__(key, value)


def _set_param(name: str, value: torch.Tensor) -> Callable[[dict], None]:
    return lambda p: p["params"].__setitem__(name, value)


TAMPERS = {
    "shape": (_set_param("Wyb", torch.zeros(3, 3)), "should have shape"),
    "format_version": (_set("format_version", 99), "format version 99"),
    "format": (_set("format", "something-else"), "not a gru4rec model file"),
    "nan_param": (_set_param("Wh0", torch.full((32, 32), float("nan"))), "finite"),
    "missing_param": (lambda p: p["params"].pop("Wh0"), "do not match"),
    "bad_config": (_set("config", {"batch_size": -4}), "batch_size must be >= 1"),
    "item_count": (_set("item_support", torch.zeros(3, dtype=torch.int64)), "item_support"),
    "item_ids": (_set("item_ids", [1.5, 2.5]), "item_ids"),
}


@pytest.mark.parametrize("case", list(TAMPERS))
def test_tampered_model_file(fitted: GRU4Rec, tmp_path: Path, case: str) -> None:
    path = tmp_path / "model.pt"
    fitted.save(path)
    change, message = TAMPERS[case]
    tamper(path, change)
    with pytest.raises(ModelFileError, match=message):
        GRU4Rec.load(path)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        GRU4Rec.load(tmp_path / "nope.pt")


def test_truncated_model_file(fitted: GRU4Rec, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    fitted.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a readable gru4rec model file"):
        GRU4Rec.load(path)


@pytest.mark.parametrize("content", [b"", np.random.default_rng(0).bytes(4096),
                                     b"SessionId\tItemId\tTime\n1\t2\t3.0\n"])
def test_garbage_model_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a readable gru4rec model file"):
        GRU4Rec.load(path)


def test_foreign_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, path)
    with pytest.raises(ModelFileError, match="not a gru4rec model file"):
        GRU4Rec.load(path)


@pytest.mark.parametrize("writer", ["pickle", "torch"])
def test_model_file_that_would_run_code_is_refused(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    payload = {"format": "gru4rec-model", "format_version": 1, "x": RunsCode(marker)}
    if writer == "pickle":
        with path.open("wb") as fh:
            pickle.dump(payload, fh, protocol=2)
    else:
        torch.save(payload, path)
    with pytest.raises(ModelFileError, match="not a readable gru4rec model file"):
        GRU4Rec.load(path)
    assert not marker.exists()


def test_save_into_missing_folder(fitted: GRU4Rec, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        fitted.save(tmp_path / "no" / "such" / "model.pt")


def test_save_load_keeps_the_exact_config(train: Events, tmp_path: Path) -> None:
    model = GRU4Rec(device="cpu", n_epochs=1, loss="bpr-max", elu_param=0.123456789,
                    **SMALL).fit(train)
    model.save(tmp_path / "m.pt")
    loaded = GRU4Rec.load(tmp_path / "m.pt", device="cpu")
    assert loaded.config.elu_param == 0.123456789
    assert loaded.config == model.config


# ----------------------------------------------------------------------------- not fitted


@pytest.mark.parametrize("use", ["recommend", "save", "evaluate", "n_items"])
def test_unfitted_model_refuses(use: str, tmp_path: Path, test_events: Events) -> None:
    model = GRU4Rec(device="cpu")
    calls = {
        "recommend": lambda: model.recommend([[1, 2]]),
        "save": lambda: model.save(tmp_path / "m.pt"),
        "evaluate": lambda: evaluate(model, test_events),
        "n_items": lambda: model.n_items,
    }
    with pytest.raises(NotFittedError, match="not trained yet"):
        calls[use]()
    assert not (tmp_path / "m.pt").exists()


def test_diverged_training_is_reported_and_the_model_refuses(train: Events,
                                                             test_events: Events,
                                                             tmp_path: Path) -> None:
    model = GRU4Rec(device="cpu", n_epochs=2, loss="bpr-max", **{**SMALL,
                                                                 "learning_rate": 1e30})
    with pytest.raises(TrainingDivergedError, match="NaN or infinite"):
        model.fit(train)
    with pytest.raises(NotFittedError, match="diverged"):
        model.save(tmp_path / "m.pt")
    with pytest.raises(NotFittedError, match="diverged"):
        evaluate(model, test_events)
    with pytest.raises(NotFittedError, match="diverged"):
        model.recommend([[1]])
    assert not (tmp_path / "m.pt").exists()


# ----------------------------------------------------------------------------- config


BAD_CONFIGS = {
    "unknown_name": ({"n_layers": 2}, "unknown parameter(s) 'n_layers'; valid names are: "),
    "bad_int": ({"batch_size": "abc"}, "batch_size='abc': expected an integer"),
    "bool_as_int": ({"n_epochs": True}, "expected an integer, got a boolean"),
    "bad_bool": ({"constrained_embedding": "yes"}, "expected True or False"),
    "bad_float": ({"learning_rate": "fast"}, "expected a number"),
    "negative_batch": ({"batch_size": -1}, "batch_size must be >= 1, got -1"),
    "zero_epochs": ({"n_epochs": 0}, "n_epochs must be >= 1"),
    "dropout_high": ({"dropout_p_hidden": 1.5}, "dropout_p_hidden must be in [0, 1)"),
    "dropout_negative": ({"dropout_p_embed": -0.1}, "dropout_p_embed must be in [0, 1)"),
    "empty_layers": ({"layers": []}, "layers=[]: expected a unit count"),
    "zero_units": ({"layers": [100, 0]}, "layers must be positive unit counts"),
    "unknown_loss": ({"loss": "top2"}, "loss must be one of cross-entropy, bpr-max, top1-max"),
    "zero_lr": ({"learning_rate": 0}, "learning_rate must be > 0"),
    "momentum_one": ({"momentum": 1.0}, "momentum must be < 1"),
    "negative_sample": ({"n_sample": -5}, "n_sample must be >= 0"),
    "negative_embedding": ({"embedding": -3}, "embedding must be >= 0"),
    "logq_bpr": ({"loss": "bpr-max", "logq": 1.0}, "logq applies to the cross-entropy"),
    "bad_elu": ({"loss": "bpr-max", "final_act": "elu-abc"},
                "final_act: unknown activation 'elu-abc'; use one of softmax"),
    "bad_hidden_act": ({"hidden_act": "softmax"}, "hidden_act: unknown activation 'softmax'"),
    "unknown_adapt": ({"adapt": "lbfgs"}, "adapt must be one of adagrad, rmsprop, adam"),
    "adapt_params_count": ({"adapt": "adam", "adapt_params": [0.9]},
                           "adapt=adam takes 2 adapt_params, got [0.9]"),
    "adapt_params_range": ({"adapt": "rmsprop", "adapt_params": "1.5"},
                           "adapt_params are decay factors in [0, 1)"),
    "smoothing_bpr": ({"loss": "bpr-max", "smoothing": 0.1}, "smoothing applies to the "),
    "smoothing_high": ({"smoothing": 1.0}, "smoothing must be in [0, 1)"),
    "negative_lmbd": ({"lmbd": -1e-3}, "lmbd must be >= 0"),
    "negative_grad_cap": ({"grad_cap": -1}, "grad_cap must be >= 0"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config(case: str) -> None:
    params, message = BAD_CONFIGS[case]
    with pytest.raises(ConfigError, match=re.escape(message)):
        GRU4RecConfig.from_dict(params)
    with pytest.raises(ConfigError, match=re.escape(message)):
        GRU4Rec(device="cpu", **params)


def test_unknown_name_lists_every_valid_name() -> None:
    with pytest.raises(ConfigError) as info:
        GRU4Rec(device="cpu", lr=0.1)
    for name in GRU4RecConfig.field_names():
        assert name in str(info.value)


def test_several_problems_in_one_error() -> None:
    with pytest.raises(ConfigError) as info:
        GRU4RecConfig.from_dict({"batch_size": -3, "dropout_p_hidden": 1.5, "bogus": 1,
                                 "momentum": "x"})
    message = str(info.value)
    problems = info.value.problems  # type: ignore[attr-defined]
    assert len(problems) == 4
    for piece in ("batch_size must be >= 1", "dropout_p_hidden must be in", "'bogus'",
                  "momentum='x'"):
        assert piece in message
    assert message.count("\n  - ") == 4


def test_theano_and_pytorch_final_activation_spellings_agree() -> None:
    theano = GRU4RecConfig.from_dict({"loss": "bpr-max", "final_act": "elu-0.5"})
    pytorch = GRU4RecConfig.from_dict({"loss": "bpr-max", "elu_param": 0.5})
    assert theano == pytorch and theano.elu_param == 0.5 and theano.final_act == "elu-0.5"
    other = GRU4RecConfig.from_dict({"loss": "bpr-max", "final_act": "elu-0.3"})
    assert other == GRU4RecConfig.from_dict({"loss": "bpr-max", "elu_param": 0.3})
    assert other.elu_param == 0.3
    linear = GRU4Rec(device="cpu", loss="bpr-max", final_act="linear").config
    assert linear.elu_param == 0.0 and linear.final_act == "linear"
    assert GRU4RecConfig.from_dict({"loss": "bpr-max", "elu_param": 0}).final_act == "linear"
    assert GRU4RecConfig().final_act == "softmax"


def test_config_constructor_honours_final_act() -> None:
    cfg = GRU4RecConfig(loss="bpr-max", final_act="elu-0.3")
    assert cfg.elu_param == 0.3
    with pytest.raises(ConfigError):
        GRU4RecConfig(final_act="bogus")


def test_param_string() -> None:
    raw = parse_param_string("loss=bpr-max, layers=100/200 ,constrained_embedding=False,"
                             "embedding=layersize,final_act=elu-0.25,n_sample=0,"
                             "learning_rate=0.07")
    assert raw["layers"] == "100/200"
    cfg = GRU4RecConfig.from_dict(raw)
    assert cfg.layers == (100, 200)
    assert cfg.embedding == 100  # layersize = layers[0]
    assert cfg.constrained_embedding is False
    assert cfg.elu_param == 0.25 and cfg.n_sample == 0 and cfg.learning_rate == 0.07
    assert GRU4RecConfig.from_dict(parse_param_string("layers=64")).layers == (64,)


@pytest.mark.parametrize(("text", "message"), [
    ("loss=bpr-max,layers", "bad parameter 'layers'"),
    ("=3", "bad parameter '=3'"),
    (" , ", "the parameter string is empty"),
])
def test_bad_param_string(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_param_string(text)


def test_py_param_file_is_parsed_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "params.py"
    path.write_text(
        "from collections import OrderedDict\n"
        "import os\n"
        f"os.system('echo pwned > {marker}')\n"
        "gru4rec_params = OrderedDict([('loss', 'bpr-max'), ('final_act', 'elu-0.5'),\n"
        "    ('layers', [96]), ('batch_size', 32), ('dropout_p_hidden', 0.3),\n"
        "    ('learning_rate', 0.05), ('constrained_embedding', True)])\n"
    )
    params = parse_param_file(path)
    assert not marker.exists()
    assert list(params) == ["loss", "final_act", "layers", "batch_size", "dropout_p_hidden",
                            "learning_rate", "constrained_embedding"]
    cfg = GRU4RecConfig.from_dict(params)
    assert cfg.layers == (96,) and cfg.batch_size == 32 and cfg.elu_param == 0.5


def test_toml_param_file(tmp_path: Path) -> None:
    path = tmp_path / "params.toml"
    path.write_text('[gru4rec_params]\nloss = "bpr-max"\nlayers = [64, 32]\nmomentum = 0.3\n')
    cfg = GRU4RecConfig.from_dict(parse_param_file(path))
    assert cfg.layers == (64, 32) and cfg.momentum == 0.3 and cfg.loss == "bpr-max"


@pytest.mark.parametrize(("name", "text", "message"), [
    ("code.py", "import os\ngru4rec_params = OrderedDict([('loss', os.getcwd())])\n",
     "literal values only"),
    ("none.py", "params = {'loss': 'bpr-max'}\n", "does not define gru4rec_params"),
    ("syntax.py", "gru4rec_params = OrderedDict([(\n", "is not valid Python"),
    ("call.py", "gru4rec_params = make_params()\n", "must be an OrderedDict"),
    ("params.yaml", "loss: bpr-max\n", "must end in .py or .toml"),
    ("bad.toml", "loss = \n", "is not valid TOML"),
])
def test_bad_param_file(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        parse_param_file(path)


def test_missing_param_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read parameter file"):
        parse_param_file(tmp_path / "absent.py")


@pytest.mark.parametrize(("device", "message"), [
    ("tpu", "unknown device 'tpu'"),
    ("cuda:abc", "unknown device 'cuda:abc'"),
    ("meta", "device 'meta' is not supported"),
])
def test_bad_device(device: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GRU4Rec(device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_gpu() -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        GRU4Rec(device="cuda")


def test_bad_sample_store_size() -> None:
    with pytest.raises(ConfigError, match="sample_store_size must be >= 1"):
        GRU4Rec(device="cpu", sample_store_size=0)


def test_fit_without_any_example() -> None:
    one_event_sessions = events_of([[1], [2], [3]])
    with pytest.raises(DataError, match="no session with 2 or more events"):
        GRU4Rec(device="cpu", **SMALL).fit(one_event_sessions)


# ----------------------------------------------------------------------------- recommend


@pytest.mark.parametrize(("sessions", "k", "error", "message"), [
    ("abc", 5, DataError, "sessions must be a list of item-id lists"),
    (42, 5, DataError, "sessions must be a list of item-id lists"),
    ([[1, 2]], 0, ConfigError, "k must be a positive integer"),
    ([[1, 2]], 2.5, ConfigError, "k must be a positive integer"),
])
def test_bad_recommend_input(fitted: GRU4Rec, sessions: Any, k: Any, error: type,
                             message: str) -> None:
    with pytest.raises(error, match=message):
        fitted.recommend(sessions, k=k)


def test_recommend_skips_unknown_items(fitted: GRU4Rec) -> None:
    ids, scores = fitted.recommend([[3, 4, 999_999], [3, 4], [], [999_999]], k=50)
    assert ids.shape == (4, 50) and scores.shape == (4, 50)
    np.testing.assert_array_equal(scores[0], scores[1])
    assert ids[0, 0] == 5
    np.testing.assert_array_equal(scores[2], scores[3])  # no known item: zero state
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first
    assert sorted(ids[0].tolist()) == list(range(50))


# ----------------------------------------------------------------------------- evaluation


def test_unknown_test_items_are_dropped_and_the_rest_evaluated(fitted: GRU4Rec) -> None:
    test = events_of([
        [0, 1, 77_777, 2, 3],  # -> 0 1 2 3: three predictions, all successors
        [77_777, 10],          # -> 10: no prediction
        [20, 21],              # one prediction
        [88_888, 88_888],      # vanishes
    ])
    result = evaluate(fitted, test, cutoffs=[1])
    assert result.n_dropped_events == 4
    assert result.n_predictions == 4
    assert result["Recall@1"] == 1.0  # the state continues across the dropped event


def test_only_unknown_items_is_an_error(fitted: GRU4Rec) -> None:
    with pytest.raises(DataError, match="no predictions to evaluate"):
        evaluate(fitted, events_of([[1000, 1001, 1002]]))


def test_evaluate_agrees_with_recommend(fitted: GRU4Rec) -> None:
    test = random_sessions(50, 30, 5, seed=3)
    k = 10
    result = evaluate(fitted, test, cutoffs=[k], batch_size=7)
    prefixes, targets = [], []
    items = test.item.reshape(30, 5)
    for row in items:
        for t in range(1, 5):
            prefixes.append(row[:t].tolist())
            targets.append(int(row[t]))
    ids, _ = fitted.recommend(prefixes, k=k)
    hits = [list(r).index(t) + 1 if t in r else None for r, t in zip(ids.tolist(), targets,
                                                                      strict=True)]
    assert result.n_predictions == len(targets) == 120
    assert result[f"Recall@{k}"] == pytest.approx(np.mean([h is not None for h in hits]))
    assert result[f"MRR@{k}"] == pytest.approx(np.mean([1 / h if h else 0.0 for h in hits]))
    assert 0.0 < result[f"Recall@{k}"] < 1.0  # the check is not vacuous


def test_several_cutoffs_in_one_pass(fitted: GRU4Rec) -> None:
    test = random_sessions(50, 40, 6, seed=4)
    cutoffs = [20, 1, 5, 10]
    both = evaluate(fitted, test, cutoffs=cutoffs)
    assert both.cutoffs == (1, 5, 10, 20)
    recall = [both[f"Recall@{k}"] for k in both.cutoffs]
    mrr = [both[f"MRR@{k}"] for k in both.cutoffs]
    assert np.all(np.diff(recall) >= 0) and np.all(np.diff(mrr) >= 0)
    assert all(m <= r for m, r in zip(mrr, recall, strict=True))
    assert recall[0] == pytest.approx(mrr[0])  # at k = 1 they are the same
    assert recall[0] < recall[-1]
    for k in cutoffs:
        single = evaluate(fitted, test, cutoffs=[k])
        assert single[f"Recall@{k}"] == both[f"Recall@{k}"]
        assert single[f"MRR@{k}"] == both[f"MRR@{k}"]
    assert both.lines()[0].startswith("Recall@1: ")


def test_test_against_items_limits_the_ranks(fitted: GRU4Rec) -> None:
    test = random_sessions(50, 40, 6, seed=5)
    n = 5
    full = evaluate(fitted, test, cutoffs=[n + 1])
    limited = evaluate(fitted, test, cutoffs=[n + 1], test_against_items=n)
    assert full[f"Recall@{n + 1}"] < 1.0
    assert limited[f"Recall@{n + 1}"] == 1.0  # rank <= N + 1 always
    assert limited.n_predictions == full.n_predictions
    everything = evaluate(fitted, test, cutoffs=[5], test_against_items=10_000)
    assert everything.metrics == evaluate(fitted, test, cutoffs=[5]).metrics


def test_test_against_items_matches_a_reference(fitted: GRU4Rec, test_events: Events) -> None:
    support = fitted.item_support_
    desc = np.sort(support)[::-1]
    n = next(i for i in range(5, len(desc)) if desc[i - 1] > desc[i])  # no tie at the cut
    popular = set(fitted.item_index_.ids[np.argsort(-support, kind="stable")[:n]].tolist())
    test = random_sessions(50, 30, 5, seed=8)
    items = test.item.reshape(30, 5)
    prefixes = [row[:t].tolist() for row in items for t in range(1, 5)]
    targets = [int(row[t]) for row in items for t in range(1, 5)]
    ids, scores = fitted.recommend(prefixes, k=50)
    ranks = []
    for row_ids, row_scores, target in zip(ids.tolist(), scores.tolist(), targets, strict=True):
        score = dict(zip(row_ids, row_scores, strict=True))
        ranks.append(1 + sum(score[i] > score[target] for i in popular if i != target))
    ranks = np.array(ranks)
    result = evaluate(fitted, test, cutoffs=[1, 3, n], test_against_items=n)
    for k in (1, 3, n):
        assert result[f"Recall@{k}"] == pytest.approx(np.mean(ranks <= k))
        assert result[f"MRR@{k}"] == pytest.approx(np.mean(np.where(ranks <= k, 1 / ranks, 0)))
    # the target is never compared with itself: the successor is still ranked first
    for mode in ("standard", "conservative"):
        own = evaluate(fitted, test_events, cutoffs=[1], test_against_items=n, mode=mode)
        assert own["Recall@1"] == evaluate(fitted, test_events, cutoffs=[1])["Recall@1"] == 1.0


def test_conservative_ties_count_against_the_model(fitted: GRU4Rec) -> None:
    test = random_sessions(50, 20, 4, seed=6)
    standard = evaluate(fitted, test, cutoffs=[10], mode="standard")
    conservative = evaluate(fitted, test, cutoffs=[10], mode="conservative")
    assert conservative["Recall@10"] <= standard["Recall@10"]
    assert conservative.mode == "conservative"


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"batch_size": 0}, ConfigError, "batch_size must be >= 1"),
    ({"test_against_items": 0}, ConfigError, "test_against_items must be >= 1"),
    ({"cutoffs": []}, ConfigError, "cutoffs must not be empty"),
    ({"cutoffs": [0, 5]}, ConfigError, "every cutoff must be a positive int"),
    ({"cutoffs": "20"}, ConfigError, "cutoffs must be a sequence"),
    ({"mode": "optimistic"}, ConfigError, "unknown tie mode 'optimistic'"),
])
def test_bad_evaluate_input(fitted: GRU4Rec, test_events: Events, kwargs: dict, error: type,
                            message: str) -> None:
    with pytest.raises(error, match=message):
        evaluate(fitted, test_events, **kwargs)


def test_evaluate_missing_test_file(fitted: GRU4Rec, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file does not exist"):
        evaluate(fitted, tmp_path / "absent.tsv")
    with pytest.raises(DataError, match="file does not exist"):
        GRU4Rec(device="cpu").fit(tmp_path / "absent.tsv")
