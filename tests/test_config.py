"""Parameter files in both spellings, every option of the original, and their validation."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gru4rec import GRU4RecConfig
from gru4rec.config import parse_param_file
from gru4rec.errors import ConfigError

THEANO_FILE = """\
from collections import OrderedDict
gru4rec_params = OrderedDict([
    ('loss', 'cross-entropy'), ('final_act', 'softmax'), ('hidden_act', 'elu-1'),
    ('layers', [100, 50]), ('adapt', 'rmsprop'), ('adapt_params', [0.8]),
    ('n_epochs', 3), ('batch_size', 32), ('dropout_p_embed', 0.1),
    ('dropout_p_hidden', 0.2), ('learning_rate', 0.05), ('momentum', 0.1),
    ('lmbd', 1e-5), ('grad_cap', 5.0), ('sigma', 0.02), ('init_as_normal', True),
    ('train_random_order', True), ('time_sort', False), ('n_sample', 512),
    ('sample_alpha', 0.75), ('smoothing', 0.1), ('constrained_embedding', False),
    ('embedding', 64),
])
"""

PYTORCH_FILE = """\
from collections import OrderedDict
gru4rec_params = OrderedDict([
    ('loss', 'bpr-max'), ('constrained_embedding', False), ('embedding', 0),
    ('elu_param', 0.5), ('layers', [100]), ('n_epochs', 10), ('batch_size', 32),
    ('dropout_p_embed', 0.0), ('dropout_p_hidden', 0.0), ('learning_rate', 0.2),
    ('momentum', 0.3), ('n_sample', 2048), ('sample_alpha', 0.0), ('bpreg', 1.0),
    ('logq', 0.0),
])
"""


def _write(tmp_path: Path, text: str, name: str = "params.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_theano_style_file_with_every_option_loads(tmp_path: Path) -> None:
    cfg = GRU4RecConfig.from_dict(parse_param_file(_write(tmp_path, THEANO_FILE)))
    assert cfg.hidden_act == "elu-1.0" and cfg.final_act == "softmax"
    assert cfg.adapt == "rmsprop" and cfg.adapt_params == (0.8,)
    assert (cfg.lmbd, cfg.grad_cap, cfg.sigma, cfg.smoothing) == (1e-5, 5.0, 0.02, 0.1)
    assert cfg.init_as_normal and cfg.train_random_order and not cfg.time_sort
    assert cfg.layers == (100, 50) and cfg.embedding == 64


def test_pytorch_style_file_means_the_same_as_the_theano_spelling(tmp_path: Path) -> None:
    pytorch = GRU4RecConfig.from_dict(parse_param_file(_write(tmp_path, PYTORCH_FILE)))
    theano_text = PYTORCH_FILE.replace("('elu_param', 0.5)", "('final_act', 'elu-0.5')")
    theano = GRU4RecConfig.from_dict(parse_param_file(_write(tmp_path, theano_text, "t.py")))
    assert pytorch == theano
    assert pytorch.final_act == "elu-0.5" and pytorch.elu_param == 0.5
    assert pytorch.adapt == "adagrad" and pytorch.hidden_act == "tanh"


def test_adapt_none_is_plain_sgd(tmp_path: Path) -> None:
    text = "gru4rec_params = {'adapt': None, 'learning_rate': 0.01}\n"
    assert GRU4RecConfig.from_dict(parse_param_file(_write(tmp_path, text))).adapt == "sgd"
    assert GRU4RecConfig.from_dict({"adapt": "None"}).adapt == "sgd"


def test_adapt_params_default_per_optimiser_and_follow_a_change_of_adapt() -> None:
    assert GRU4RecConfig().replace(adapt="adam").adapt_params == (0.9, 0.999)
    cfg = GRU4RecConfig().replace(adapt="rmsprop", adapt_params="0.7")
    assert cfg.adapt_params == (0.7,)
    assert cfg.replace(adapt="adadelta").adapt_params == (0.95,)
    assert GRU4RecConfig().replace(adapt="adam", adapt_params="0.8/0.99").adapt_params == (
        0.8, 0.99)


def test_a_bad_file_lists_every_problem_at_once(tmp_path: Path) -> None:
    text = ("gru4rec_params = {'loss': 'top1-max', 'n_layers': 2, 'batch_size': 'big', "
            "'hidden_act': 'softmax', 'adapt': 'adam', 'adapt_params': [0.9], "
            "'grad_cap': -1, 'smoothing': 0.5, 'init_as_normal': 'sometimes'}\n")
    with pytest.raises(ConfigError) as err:
        GRU4RecConfig.from_dict(parse_param_file(_write(tmp_path, text)))
    problems = err.value.problems
    for expected in ("unknown parameter(s) 'n_layers'", "batch_size='big': expected an "
                     "integer", "init_as_normal='sometimes': expected True or False"):
        assert any(expected in p for p in problems), (expected, problems)
    # the value problems are reported together in the same error once the types are valid
    with pytest.raises(ConfigError) as err:
        GRU4RecConfig.from_dict({"loss": "top1-max", "hidden_act": "softmax",
                                 "adapt": "adam", "adapt_params": [0.9], "grad_cap": -1,
                                 "smoothing": 0.5})
    text = str(err.value)
    for expected in ("hidden_act: unknown activation 'softmax'",
                     "adapt=adam takes 2 adapt_params", "grad_cap must be >= 0",
                     "smoothing applies to the cross-entropy losses only"):
        assert expected in text, text


@pytest.mark.parametrize(("loss", "act", "usual"), [
    ("bpr-max", "softmax", "linear or elu-X"), ("cross-entropy", "linear", "softmax"),
    ("xe_logit", "softmax", "softmax_logit"), ("top1-max", "softmax_logit", "linear")])
def test_odd_pairings_run_with_a_warning_naming_the_usual_one(caplog, loss: str, act: str,
                                                              usual: str) -> None:
    with caplog.at_level(logging.WARNING, logger="gru4rec"):
        cfg = GRU4RecConfig().replace(loss=loss, final_act=act)
    assert cfg.final_act == act
    assert "unusual pairing" in caplog.text and usual in caplog.text


@pytest.mark.parametrize(("loss", "act"), [
    ("bpr-max", "elu-0.5"), ("cross-entropy", "softmax"), ("top1-max", "linear"),
    ("xe_logit", "softmax_logit"), ("top1", "tanh"), ("bpr", "relu")])
def test_usual_pairings_do_not_warn(caplog, loss: str, act: str) -> None:
    with caplog.at_level(logging.WARNING, logger="gru4rec"):
        GRU4RecConfig().replace(loss=loss, final_act=act)
    assert caplog.text == ""


@pytest.mark.parametrize(("loss", "act"), [("cross-entropy", "softmax"),
                                           ("xe_logit", "softmax_logit"),
                                           ("top1-max", "elu-0.5"), ("bpr", "elu-0.5")])
def test_default_final_activation_follows_the_loss(loss: str, act: str) -> None:
    assert GRU4RecConfig().replace(loss=loss).final_act == act


CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.py")), ids=lambda p: p.name)
def test_every_preset_loads_and_starts_with_its_command(path: Path) -> None:
    cfg = GRU4RecConfig.from_dict(parse_param_file(path))
    first = path.read_text().splitlines()[0]
    assert first.startswith("# gru4rec run ") and first.endswith(f"-pf configs/{path.name}")
    assert cfg.n_epochs == 10 and cfg.n_sample == 2048 and cfg.adapt == "adagrad"


def test_presets_cover_the_paper_and_the_six_datasets() -> None:
    names = {p.stem for p in CONFIG_DIR.glob("*.py")}
    assert {"rsc15_bprmax", "rsc15_bprmax_shared", "rsc15_xe", "rsc15_xe_logq_shared",
            "rsc15_xe_logq_shared_b64"} <= names
    for dataset in ("rsc15", "yoochoose", "rees46", "coveo", "retailrocket", "diginetica"):
        assert f"best_{dataset}" in names
    coveo = GRU4RecConfig.from_dict(parse_param_file(CONFIG_DIR / "best_coveo.py"))
    assert (coveo.loss, coveo.elu_param, coveo.layers, coveo.batch_size, coveo.bpreg) == (
        "bpr-max", 1.0, (512,), 144, 1.85)
