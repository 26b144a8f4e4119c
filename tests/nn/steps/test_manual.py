"""The hand-written training step (nn/steps/manual.py), on the compiled kernels and on
PyTorch ops, against the autograd reference step."""

from __future__ import annotations

import itertools

import pytest
import torch

from gru4rec import GRU4RecConfig
from gru4rec.nn.network import Network
from gru4rec.training import Trainer


@pytest.fixture(scope="module")
def data(synthetic_sessions: tuple) -> tuple:
    return synthetic_sessions


def _config(loss: str, mode: str, layers: list[int], dropout: float, n_sample: int
            ) -> GRU4RecConfig:
    params = dict(loss=loss, layers=layers, batch_size=16, n_sample=n_sample,
                  dropout_p_hidden=dropout, dropout_p_embed=dropout / 2, momentum=0.3,
                  learning_rate=0.1, constrained_embedding=mode == "shared",
                  embedding=12 if mode == "separate" else 0, sample_alpha=0.5)
    if loss == "cross-entropy":
        params["logq"] = 1.0
    return GRU4RecConfig().replace(**params)


def _train(data: tuple, cfg: GRU4RecConfig, reference: bool, n_steps: int | None,
           epochs: int = 1, native: bool = True) -> tuple[Network, list[float]]:
    sessions, support, n_items = data
    net = Network.initialize(n_items, cfg, torch.Generator().manual_seed(0),
                             torch.device("cpu"))
    trainer = Trainer(net, cfg, sessions, support, seed=3, reference=reference,
                      sample_store_size=10_000, compiled=native)
    if n_steps is not None:
        trainer.sched.n_steps = n_steps  # stop the epoch early
    return net, [trainer.run_epoch().loss for _ in range(epochs)]


CASES = list(itertools.product(["bpr-max", "cross-entropy"], ["shared", "separate", "onehot"],
                               [[32], [24, 16]], [0.0, 0.3], [0, 64], [True, False]))


@pytest.mark.parametrize(("loss", "mode", "layers", "dropout", "n_sample", "native"), CASES)
def test_fast_step_updates_equal_the_autograd_reference(data: tuple, loss: str, mode: str,
                                                        layers: list[int], dropout: float,
                                                        n_sample: int, native: bool) -> None:
    cfg = _config(loss, mode, layers, dropout, n_sample)
    for n_steps in (1, 5):
        ref, ref_loss = _train(data, cfg, True, n_steps)
        fast, fast_loss = _train(data, cfg, False, n_steps, native=native)
        assert fast_loss == pytest.approx(ref_loss, rel=1e-5)
        # float32 rounding of the two loss gradients differs in the last bits; Adagrad's
        # g / sqrt(g^2 + 1e-6) magnifies that near g ~ 1e-3, hence atol 1e-5 (a wrong
        # gradient moves weights by ~1e-2)
        for name, value in ref.params.items():
            torch.testing.assert_close(fast.params[name], value.detach(), rtol=1e-4,
                                       atol=1e-5, msg=f"{name} after {n_steps} steps")


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("loss", ["bpr-max", "cross-entropy"])
def test_fast_path_epoch_losses_equal_the_reference(data: tuple, loss: str,
                                                    native: bool) -> None:
    cfg = _config(loss, "shared" if loss == "cross-entropy" else "onehot", [32], 0.2, 64)
    _, ref_losses = _train(data, cfg, True, None, epochs=2)
    _, fast_losses = _train(data, cfg, False, None, epochs=2, native=native)
    assert fast_losses == pytest.approx(ref_losses, rel=1e-5)
