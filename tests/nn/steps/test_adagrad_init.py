"""adagrad_init: the starting value of Adagrad's accumulator, through every step and backend.

The first update of a weight with gradient g is -lr g / sqrt(adagrad_init + g^2 + 1e-6)
(docs/algorithm.md §6). The gradient of the step is taken from the autograd step with plain
SGD (lr 1: p1 = p0 - g) on a copy of the same network, so the expected update is computed
from the formula, independently of the Adagrad code.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from gru4rec import GRU4Rec, GRU4RecConfig
from gru4rec.backend import select_backend
from gru4rec.data.events import Events
from gru4rec.errors import ConfigError
from gru4rec.nn.network import Network
from gru4rec.nn.optim import SparseOptimizer
from gru4rec.nn.steps import AutogradStep, ManualStep, StepBatch

N_ITEMS, LR, INIT = 20, 0.2, 1e-4
INPUTS = torch.tensor([3, 7, 3, 11])
COLUMNS = torch.tensor([4, 8, 1, 12, 5, 17, 4])  # 4 targets, then 3 shared negatives


def _config(loss: str, mode: str, **extra: object) -> GRU4RecConfig:
    return GRU4RecConfig().replace(
        loss=loss, layers=[8], batch_size=4, n_sample=3, learning_rate=LR, logq=0.0,
        constrained_embedding=mode == "shared", embedding=6 if mode == "separate" else 0,
        **extra)


def _net(cfg: GRU4RecConfig) -> Network:
    net = Network.initialize(N_ITEMS, cfg, torch.Generator().manual_seed(0),
                             torch.device("cpu"))
    # non-zero biases, so that their gradients are not special
    for name, p in net.params.items():
        if name.startswith("b") or name == "Wyb":
            p.add_(torch.rand(p.shape, generator=torch.Generator().manual_seed(1)) * 0.1)
    return net


def _one_step(cfg: GRU4RecConfig, kind: str, backend: str) -> tuple[dict, dict]:
    """Parameters before and after one step of ``kind`` on ``backend``."""
    net = _net(cfg)
    before = {n: p.clone() for n, p in net.params.items()}
    ops = select_backend("cpu", compiled=backend == "compiled")
    opt = SparseOptimizer.from_config(net.params, cfg, ops)
    weight = torch.ones(4) if kind == "fixed-shape" else None
    step = AutogradStep(net, opt, cfg) if kind == "autograd" \
        else ManualStep(net, opt, cfg, ops)
    # a carried (non-zero) state, so that the recurrent weights get gradients too
    state = [torch.rand(4, h, generator=torch.Generator().manual_seed(2)) - 0.5
             for h in net.layers]
    step.step(StepBatch(INPUTS, COLUMNS, None, weight), state)
    return before, {n: p.detach().clone() for n, p in net.params.items()}


def _gradients(cfg: GRU4RecConfig) -> dict[str, torch.Tensor]:
    """d loss / d p of the same step, from the autograd step with SGD at lr 1."""
    sgd = cfg.replace(adapt="sgd", learning_rate=1.0, adagrad_init=0.0)
    before, after = _one_step(sgd, "autograd", "pytorch")
    return {n: before[n] - after[n] for n in before}


CASES = list(itertools.product(["bpr-max", "cross-entropy"], ["shared", "separate", "onehot"],
                               ["manual", "fixed-shape", "autograd"], ["compiled", "pytorch"],
                               [0.0, INIT]))


@pytest.mark.parametrize(("loss", "mode", "kind", "backend", "init"), CASES)
def test_the_first_update_follows_the_formula(loss: str, mode: str, kind: str,
                                              backend: str, init: float) -> None:
    # init 0 is the original's first step, g / sqrt(g^2 + 1e-6) (about ±1 for most weights)
    cfg = _config(loss, mode, adagrad_init=init)
    grads = _gradients(cfg)
    before, after = _one_step(cfg, kind, backend)
    for name, g in grads.items():
        g64 = g.double()
        want = before[name].double() - LR * g64 / torch.sqrt(init + g64 * g64 + 1e-6)
        torch.testing.assert_close(after[name].double(), want, rtol=1e-4, atol=2e-6,
                                   msg=f"{name} ({kind} on {backend})")
    if init == 0:
        return
    # from a zero accumulator every touched weight moves further: the option is applied
    _, plain = _one_step(cfg.replace(adagrad_init=0.0), kind, backend)
    for name in (n for n, g in grads.items() if g.any()):
        damped = (after[name] - before[name]).abs().sum()
        assert float(damped) < float((plain[name] - before[name]).abs().sum()), name


def test_zero_starts_the_accumulator_at_exactly_zero() -> None:
    cfg = _config("bpr-max", "onehot")
    opt = SparseOptimizer.from_config(_net(cfg).params, cfg)
    assert all(not a.any() for a in opt.acc.values())
    opt = SparseOptimizer.from_config(_net(cfg).params, cfg.replace(adagrad_init=INIT))
    assert all(bool((a == torch.tensor(INIT)).all()) for a in opt.acc.values())


def test_adagrad_init_needs_adagrad_and_is_not_negative() -> None:
    with pytest.raises(ConfigError, match="adagrad_init applies to adapt=adagrad only"):
        GRU4RecConfig().replace(adapt="adam", adagrad_init=1e-4)
    with pytest.raises(ConfigError, match="adagrad_init must be >= 0"):
        GRU4RecConfig().replace(adagrad_init=-1.0)


def test_adagrad_init_survives_save_and_load(successor_train: Events, tmp_path: Path) -> None:
    model = GRU4Rec(device="cpu", layers=[8], batch_size=16, n_sample=8, n_epochs=1,
                    adagrad_init=INIT, sample_store_size=10_000).fit(successor_train)
    model.save(tmp_path / "m.pt")
    assert GRU4Rec.load(tmp_path / "m.pt").config.adagrad_init == INIT


def test_adagrad_init_is_read_from_a_parameter_string_and_file(tmp_path: Path) -> None:
    from gru4rec.params import parse_param_file, parse_param_string

    cfg = GRU4RecConfig.from_dict(parse_param_string("loss=bpr-max,adagrad_init=1e-4"))
    assert cfg.adagrad_init == pytest.approx(1e-4)
    path = tmp_path / "p.py"
    path.write_text("from collections import OrderedDict\n"
                    "gru4rec_params = OrderedDict([('adagrad_init', 0.001)])\n")
    assert GRU4RecConfig.from_dict(parse_param_file(path)).adagrad_init == 0.001
