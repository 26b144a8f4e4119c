"""Back-propagation through time (``bptt=T``): the update after a window of T steps is
the one that autograd gives over the unrolled T-step graph, in float64 on tiny sizes.

The reference builds the whole window as one graph from full parameter tensors (no item
row leaves, no merging of rows across steps) through the same resets and dropped slots
that the schedule applies between steps, and takes plain SGD steps: p1 = p0 - lr * grad.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from gru4rec import GRU4Rec, GRU4RecConfig
from gru4rec.backend import select_backend
from gru4rec.data.events import Events
from gru4rec.errors import ConfigError
from gru4rec.nn.losses import step_loss
from gru4rec.nn.network import Network
from gru4rec.nn.optim import SparseOptimizer
from gru4rec.nn.steps import BPTTStep, StepBatch, make_step

N_ITEMS, LR, B = 15, 0.3, 3
# a window of 4 steps: item 4 repeats across steps (its rows are read several times); slot
# 1 starts a new session before step 2 (its state is zeroed), and slot 2 drops out before
# step 3 (the batch shrinks to 2 rows)
STEPS = [
    (torch.tensor([1, 4, 7]), torch.tensor([2, 5, 8, 11, 4])),
    (torch.tensor([2, 5, 8]), torch.tensor([3, 4, 9, 12, 0])),
    (torch.tensor([3, 10, 9]), torch.tensor([4, 11, 6, 13, 2])),
    (torch.tensor([4, 11]), torch.tensor([6, 12, 4, 14])),
]
RESET_BEFORE = {2: torch.tensor([[1.0], [0.0], [1.0]], dtype=torch.float64)}
KEEP_BEFORE = {3: torch.tensor([0, 1])}


def _config(loss: str, mode: str, bptt: int, **extra: object) -> GRU4RecConfig:
    return GRU4RecConfig().replace(
        loss=loss, layers=[5, 4] if mode == "shared" else [6], batch_size=B, n_sample=2,
        learning_rate=LR, adapt="sgd", bptt=bptt, constrained_embedding=mode == "shared",
        embedding=4 if mode == "separate" else 0, **extra)


def _net(cfg: GRU4RecConfig) -> Network:
    net = Network.initialize(N_ITEMS, cfg, torch.Generator().manual_seed(0),
                             torch.device("cpu"))
    gen = torch.Generator().manual_seed(1)
    params = {n: (p + 0.1 * torch.rand(p.shape, generator=gen)).double()
              for n, p in net.params.items()}  # non-zero biases; float64
    return Network(params, cfg)


def _carry(t: int, state: list[torch.Tensor]) -> list[torch.Tensor]:
    """What the schedule does to the state entering step t."""
    if t in KEEP_BEFORE:
        state = [h.index_select(0, KEEP_BEFORE[t]) for h in state]
    if t in RESET_BEFORE:
        state = [h * RESET_BEFORE[t] for h in state]
    return state


def _initial_state(net: Network) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    return [torch.rand(B, h, generator=gen, dtype=torch.float64) - 0.5 for h in net.layers]


def _bptt_window(cfg: GRU4RecConfig) -> dict[str, torch.Tensor]:
    """Parameters after the window, trained by BPTTStep."""
    net = _net(cfg)
    opt = SparseOptimizer.from_config(net.params, cfg, select_backend("cpu", compiled=False))
    step = BPTTStep(net, opt, cfg)
    state = _initial_state(net)
    for t, (inp, cols) in enumerate(STEPS):
        state = _carry(t, state)
        _, state = step.step(StepBatch(inp, cols), state)
    step.flush()  # no-op when the window filled up exactly
    return {n: p.detach().clone() for n, p in net.params.items()}


def _unrolled(cfg: GRU4RecConfig, n_steps: int) -> dict[str, torch.Tensor]:
    """Parameters after SGD on the gradient of the unrolled graph of ``n_steps`` steps."""
    net = _net(cfg)
    params = {n: p.clone().requires_grad_(True) for n, p in net.params.items()}
    ref = Network(params, cfg)
    state, total = _initial_state(ref), torch.zeros((), dtype=torch.float64)
    for t, (inp, cols) in enumerate(STEPS[:n_steps]):
        state = _carry(t, state)
        state = ref.hidden(ref.input_rows(inp), state, training=False)
        h_aug = torch.cat([state[-1], torch.ones(len(inp), 1, dtype=torch.float64)], 1)
        total = total + step_loss(h_aug @ params["Wyb"][cols].t(), cfg, None)
    grads = torch.autograd.grad(total, list(params.values()))
    return {n: (p - LR * g).detach() for (n, p), g in zip(params.items(), grads, strict=True)}


@pytest.mark.parametrize(("loss", "mode"), list(itertools.product(
    ["cross-entropy", "bpr-max"], ["shared", "separate", "onehot"])))
def test_a_window_is_one_sgd_step_on_the_unrolled_graph(loss: str, mode: str) -> None:
    cfg = _config(loss, mode, bptt=4)
    got, want = _bptt_window(cfg), _unrolled(cfg, 4)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-12,
                                   msg=lambda m, n=name: f"{n}: {m}")
    # the recurrent weights really got the gradient through time: it differs from the
    # sum of the steps' one-step gradients (the same window with the state cut each step)
    cut = _config(loss, mode, bptt=1)
    one_step = _bptt_like_steps(cut)
    assert not torch.allclose(one_step["Wh0"], want["Wh0"], rtol=0, atol=1e-9)


def _bptt_like_steps(cfg: GRU4RecConfig) -> dict[str, torch.Tensor]:
    """Parameters after SGD on the summed one-step gradients (state detached each step),
    taken at the window's starting weights."""
    net = _net(cfg)
    params = {n: p.clone().requires_grad_(True) for n, p in net.params.items()}
    ref = Network(params, cfg)
    state, total = _initial_state(ref), torch.zeros((), dtype=torch.float64)
    for t, (inp, cols) in enumerate(STEPS):
        state = [h.detach() for h in _carry(t, state)]
        state = ref.hidden(ref.input_rows(inp), state, training=False)
        h_aug = torch.cat([state[-1], torch.ones(len(inp), 1, dtype=torch.float64)], 1)
        total = total + step_loss(h_aug @ params["Wyb"][cols].t(), cfg, None)
    grads = torch.autograd.grad(total, list(params.values()))
    return {n: (p - LR * g).detach() for (n, p), g in zip(params.items(), grads, strict=True)}


def test_the_last_short_window_is_applied_by_flush() -> None:
    cfg = _config("cross-entropy", "shared", bptt=3)
    net = _net(cfg)
    opt = SparseOptimizer.from_config(net.params, cfg, select_backend("cpu", compiled=False))
    step = BPTTStep(net, opt, cfg)
    state = _initial_state(net)
    for t, (inp, cols) in enumerate(STEPS):  # 4 steps: a window of 3, then one of 1
        state = _carry(t, state)
        _, state = step.step(StepBatch(inp, cols), state)
    pending = {n: p.detach().clone() for n, p in net.params.items()}
    step.flush()
    after = {n: p.detach().clone() for n, p in net.params.items()}
    assert any(not torch.equal(pending[n], after[n]) for n in after)
    step.flush()  # nothing left
    assert all(torch.equal(after[n], p) for n, p in net.params.items())


def test_bptt_refuses_fixed_shapes() -> None:
    cfg = _config("cross-entropy", "shared", bptt=2)
    net = _net(cfg)
    opt = SparseOptimizer.from_config(net.params, cfg, select_backend("cpu", compiled=False))
    with pytest.raises(ConfigError, match="bptt=2"):
        make_step(net, opt, cfg, select_backend("cpu", compiled=False), static=True)


def test_bptt_trains_a_model_and_1_is_the_plain_step() -> None:
    rng = torch.Generator().manual_seed(0)
    items = torch.randint(0, 30, (600,), generator=rng).numpy()
    sessions = (torch.arange(600) // 6).numpy()
    events = Events(sessions, items, torch.arange(600, dtype=torch.float64).numpy())
    params = {"layers": [16], "batch_size": 8, "n_sample": 8, "n_epochs": 2}
    plain = GRU4Rec(device="cpu", **params).fit(events)
    one = GRU4Rec(device="cpu", bptt=1, **params).fit(events)
    assert [r.loss for r in one.history_] == [r.loss for r in plain.history_]
    five = GRU4Rec(device="cpu", bptt=5, **params).fit(events)
    assert all(torch.isfinite(torch.tensor(r.loss)) for r in five.history_)
    assert [r.loss for r in five.history_] != [r.loss for r in plain.history_]
