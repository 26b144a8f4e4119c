"""GRU4RecConfig and the parameter parsers: parameter files in both spellings, every option
of the original, parameter strings, activation spellings, and the validation of every value
(directly and through the GRU4Rec constructor)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from gru4rec import GRU4Rec, GRU4RecConfig
from gru4rec.config import canonical_activation, parse_param_file, parse_param_string
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


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*_stable.py")), ids=lambda p: p.name)
def test_a_stable_preset_is_its_base_preset_with_a_damped_first_step(path: Path) -> None:
    base = parse_param_file(CONFIG_DIR / path.name.replace("_stable", ""))
    stable = parse_param_file(path)
    assert stable.pop("adagrad_init") > 0
    assert stable == base


# ----------------------------------------------------------------------------- validation


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


# ------------------------------------------------------------------- parameter strings and files


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
    ("none.py", "settings = {'loss': 'bpr-max'}\n", "does not define gru4rec_params"),
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


# ----------------------------------------------------------------------------- activation spellings


@pytest.mark.parametrize(("spec", "final", "want"), [
    ("elu-0.50", True, "elu-0.5"), ("elu-1", False, "elu-1.0"), (" tanh ", False, "tanh"),
    ("selu-1-2", False, "selu-1.0-2.0"), ("leaky-0.01", True, "leaky-0.01"),
    ("softmax_logit", True, "softmax_logit")])
def test_canonical_spelling(spec: str, final: bool, want: str) -> None:
    assert canonical_activation(spec, final=final) == want


@pytest.mark.parametrize(("spec", "final"), [
    ("softmax", False), ("elu", True), ("elu-x", True), ("selu-1", True), ("sigmoid", True),
    ("leaky-1-2", False)])
def test_bad_activation_names_the_valid_forms(spec: str, final: bool) -> None:
    with pytest.raises(ValueError, match="unknown activation .*; use one of .*elu-X"):
        canonical_activation(spec, final=final)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", float("nan"), float("inf")])
def test_a_non_finite_number_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="expected a finite number"):
        GRU4RecConfig.from_dict({"elu_param": value})
