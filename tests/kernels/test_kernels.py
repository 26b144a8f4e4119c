"""The compiled CPU kernels (kernels.c) against the float64 formulas and the PyTorch path.

They run on the variant the loader picks: ``GRU4REC_KERNELS`` chooses another (CI runs this
file under each variant the CPU supports).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gru4rec.kernels import Kernels
from gru4rec.nn.losses import bpr_max_loss, cross_entropy_loss


def _f64_value_and_grad(fn, r: torch.Tensor) -> tuple[float, torch.Tensor]:
    x = r.double().requires_grad_(True)
    loss = fn(x)
    loss.backward()
    return float(loss.detach()), x.grad.float()


# widths 2077 and 13 leave a partial vector at the end of each row
@pytest.mark.parametrize(("m", "n"), [(32, 2080), (5, 13), (3, 2077)])
@pytest.mark.parametrize(("bpreg", "elu_param"), [(1.0, 0.5), (0.0, 0.0), (0.5, 1.0)])
def test_bpr_max_kernel_equals_the_float64_formula(k: Kernels, m: int, n: int,
                                                   bpreg: float, elu_param: float) -> None:
    r = torch.randn(m, n, generator=torch.Generator().manual_seed(m + n)) * 2
    want, want_grad = _f64_value_and_grad(lambda x: bpr_max_loss(x, 32, bpreg, elu_param), r)
    g = r.clone()
    got = k.bpr_max_(g, 32, bpreg, elu_param) / 32
    assert got == pytest.approx(want, rel=1e-6)
    torch.testing.assert_close(g, want_grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(("m", "n"), [(32, 2080), (4, 11)])
@pytest.mark.parametrize("logq", [0.0, 1.0])
def test_cross_entropy_kernel_equals_the_float64_formula(k: Kernels, m: int, n: int,
                                                         logq: float) -> None:
    gen = torch.Generator().manual_seed(n)
    r = torch.randn(m, n, generator=gen) * 3
    log_q = torch.rand(n, generator=gen) * 5
    want, want_grad = _f64_value_and_grad(
        lambda x: cross_entropy_loss(x, 32, log_q.double(), logq), r)
    g = r.clone()
    got = k.cross_entropy_(g, 32, log_q, logq) / 32
    assert got == pytest.approx(want, rel=1e-6)
    torch.testing.assert_close(g, want_grad, rtol=1e-4, atol=1e-7)


def test_bpr_max_kernel_stays_finite_when_the_positive_dominates(k: Kernels) -> None:
    # softmax over negatives must not take its max from the positive column: with the
    # positive 200 above the rest every exp(x - max) would underflow to 0 and give 0/0
    r = torch.zeros(2, 9)
    r[0, 0], r[1, 1] = 200.0, 150.0
    got = k.bpr_max_(r, 2, 1.0, 0.0)
    assert np.isfinite(got)
    assert torch.isfinite(r).all()


def test_bpr_max_kernel_stays_finite_when_the_negatives_dominate(k: Kernels) -> None:
    # positive 200 below its negatives: sigmoid(x_j - x_k) underflows, hit ~ 0, and the
    # loss is -log(1e-24) plus the score regulariser, as in the formula
    r = torch.zeros(1, 6)
    r[0, 0] = -200.0
    want = bpr_max_loss(r.double(), 1, 1.0, 0.0)
    got = k.bpr_max_(r, 1, 1.0, 0.0)
    assert got == pytest.approx(float(want), rel=1e-6)
    assert torch.isfinite(r).all()


def test_exp_is_accurate_over_the_float_range(k: Kernels) -> None:
    # a row of zeros plus one score x: softmax weight of x is exp(x) / (exp(x) + n - 1)
    for x in [-80.0, -20.0, -1e-3, 0.0, 1e-3, 5.0, 30.0, 80.0]:
        r = torch.zeros(1, 4)
        r[0, 0] = x
        total = k.cross_entropy_(r, 1, None, 0.0)
        p = 1.0 / (1.0 + 3.0 * np.exp(-np.float64(x)))
        assert total == pytest.approx(-np.log(p + 1e-24), rel=1e-6, abs=1e-6), x


EPS = 1e-6  # the optimiser's


class _TorchAdagrad:
    """Reference: row-sparse Adagrad (+ momentum) in PyTorch ops, as the optimiser computes
    it: each distinct row's gradients summed in order (index_add_ into zeros), one update."""

    def __init__(self, table: torch.Tensor, lr: float, momentum: float) -> None:
        self.p, self.lr, self.momentum = table, lr, momentum
        self.acc, self.vel = torch.zeros_like(table), torch.zeros_like(table)

    def rows(self, parts: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        summed = torch.zeros_like(self.p)
        for idx, g in parts:
            summed[:, : g.shape[1]].index_add_(0, idx, g)
        rows = torch.unique(torch.cat([idx for idx, _ in parts]))
        self._apply(rows, summed[rows])

    def dense(self, g: torch.Tensor) -> None:
        self._apply(torch.arange(self.p.shape[0]), g)

    def _apply(self, rows: torch.Tensor, g: torch.Tensor) -> None:
        acc = self.acc[rows].addcmul_(g, g)
        step = g.div(acc.add(EPS).sqrt_()).mul_(-self.lr)
        self.acc[rows] = acc
        if self.momentum > 0:
            step = self.vel[rows].mul_(self.momentum).add_(step)
            self.vel[rows] = step
        self.p[rows] += step


class _KernelAdagrad:
    """The same updates through the kernels, with the scratch the optimiser keeps."""

    def __init__(self, k: Kernels, table: torch.Tensor, lr: float, momentum: float) -> None:
        self.k, self.p, self.lr, self.momentum = k, table, lr, momentum
        self.acc, self.vel = torch.zeros_like(table), torch.zeros_like(table)
        self.slot = torch.full((table.shape[0],), -1, dtype=torch.int32)

    def rows(self, parts: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        total = sum(idx.shape[0] for idx, _ in parts)
        buf = torch.empty(total, self.p.shape[1])
        uniq = torch.empty(total, dtype=torch.int64)
        u = 0
        for idx, g in parts:
            u = self.k.rows_accumulate(self.slot, buf, uniq, u, idx, g)
        self.k.rows_apply(self.p, self.acc, self.vel, self.slot, buf, uniq, u, self.lr,
                          self.momentum, EPS)

    def outer(self, cols: torch.Tensor, g: torch.Tensor, h: torch.Tensor,
              extra: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        idx2, g2 = extra[0] if extra else (None, None)
        work = torch.empty(3 * (cols.shape[0] + (0 if idx2 is None else idx2.shape[0])) + 1,
                           dtype=torch.int64)
        self.k.outer_rows_update(self.p, self.acc, self.vel, self.slot, cols, g, h, idx2, g2,
                                 work, self.lr, self.momentum, EPS)
        assert (self.slot == -1).all()  # restored for the next step

    def dense(self, g: torch.Tensor) -> None:
        self.k.adagrad_dense(self.p, self.acc, self.vel, g, self.lr, self.momentum, EPS)


@pytest.mark.parametrize("momentum", [0.0, 0.3])
def test_native_row_updates_equal_the_pytorch_ones(k: Kernels,
                                                   momentum: float) -> None:
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(40, 7, generator=gen)
    ref, got = _TorchAdagrad(start.clone(), 0.2, momentum), \
        _KernelAdagrad(k, start.clone(), 0.2, momentum)
    touched = torch.zeros(40, dtype=torch.bool)
    for _ in range(4):
        out_rows = torch.randint(0, 30, (25,), generator=gen)  # with repeats; 30+ untouched
        in_rows = torch.randint(0, 30, (6,), generator=gen)
        touched[out_rows] = touched[in_rows] = True
        g_out = torch.randn(25, 7, generator=gen)
        g_in = torch.randn(6, 6, generator=gen)  # narrower: the leading columns only
        ref.rows([(out_rows, g_out.clone()), (in_rows, g_in.clone())])
        got.rows([(out_rows, g_out.clone()), (in_rows, g_in.clone())])
    assert (got.slot == -1).all()  # slots cleared for the next step
    # equal up to float32 rounding (PyTorch's vectorised sqrt is off by an ulp at times);
    # a wrong duplicate sum or a missed row would differ by ~0.1
    for name in ("acc", "vel") if momentum else ("acc",):
        torch.testing.assert_close(getattr(got, name), getattr(ref, name), rtol=1e-6,
                                   atol=1e-7)
    torch.testing.assert_close(got.p, ref.p, rtol=1e-6, atol=1e-7)
    assert torch.equal(got.p[~touched], start[~touched])
    assert not got.acc[~touched].any()


@pytest.mark.parametrize("momentum", [0.0, 0.3])
@pytest.mark.parametrize(("m", "n", "width", "threads"),
                         [(3, 25, 7, 1), (32, 700, 101, 2), (16, 300, 20, 2)])
def test_outer_row_updates_equal_the_explicit_product(k: Kernels, momentum: float,
                                                      m: int, n: int, width: int,
                                                      threads: int) -> None:
    """Rows updated from g^T h without forming it (the output table of a step), with
    repeated columns and extra input rows, against PyTorch's update of the formed product;
    the large cases run on several threads."""
    gen = torch.Generator().manual_seed(2)
    start = torch.randn(900, width, generator=gen)
    ref, got = _TorchAdagrad(start.clone(), 0.2, momentum), \
        _KernelAdagrad(k, start.clone(), 0.2, momentum)
    touched = torch.zeros(900, dtype=torch.bool)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for step in range(3):
            cols = torch.randint(0, 800, (n,), generator=gen)
            cols[: n // 4] = cols[n // 4: n // 2]  # plenty of repeats
            g = torch.randn(m, n, generator=gen)
            h = torch.randn(m, width, generator=gen)
            extra = [] if step == 0 else [(cols[:m].clone(),
                                           torch.randn(m, width - 1, generator=gen))]
            touched[cols] = True
            ref.rows([(cols, g.t() @ h), *extra])
            got.outer(cols, g, h, extra)
    finally:
        torch.set_num_threads(old_threads)
    # the sums g[:, j]^T h are rounded in another order; where one lands within ~1e-3 of 0,
    # Adagrad's g / sqrt(g^2 + 1e-6) turns that into ~1e-4 of weight (a wrong or missed
    # gradient moves a weight by ~lr = 0.2)
    torch.testing.assert_close(got.p, ref.p, rtol=1e-5, atol=3e-4)
    torch.testing.assert_close(got.acc, ref.acc, rtol=1e-4, atol=1e-5)
    assert torch.equal(got.p[~touched], start[~touched])


def test_kernels_share_pytorchs_openmp_runtime(k: Kernels) -> None:
    """Two OpenMP runtimes in one process would each spin threads on the same cores."""
    with open("/proc/self/maps") as fh:
        runtimes = {line.split()[-1] for line in fh if "libgomp" in line or "libiomp" in line
                    or "libomp" in line}
    assert len(runtimes) <= 1, runtimes


def test_native_dense_update_equals_the_pytorch_one(k: Kernels) -> None:
    gen = torch.Generator().manual_seed(1)
    start = torch.randn(5, 9, generator=gen)
    ref, got = _TorchAdagrad(start.clone(), 0.1, 0.4), _KernelAdagrad(k, start.clone(), 0.1,
                                                                      0.4)
    for _ in range(3):
        g = torch.randn(5, 9, generator=gen)
        ref.dense(g.clone())
        got.dense(g.clone())
    torch.testing.assert_close(got.p, ref.p, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(got.vel, ref.vel, rtol=1e-6, atol=1e-7)


def test_guided_cdf_sampling_equals_searchsorted(k: Kernels) -> None:
    support = torch.tensor([5.0, 0.0, 1.0, 30.0, 0.0, 2.0, 7.0]) ** 0.75  # zero-weight items
    cdf = torch.cumsum(support.double(), 0)
    cdf /= cdf[-1].clone()
    guide = torch.searchsorted(cdf, torch.arange(7, dtype=torch.float64) / 7, right=True)
    # random draws, every cdf value itself, its neighbours, and the bucket edges b / K
    edges = torch.cat([cdf, torch.nextafter(cdf, torch.zeros(7, dtype=torch.float64)),
                       torch.arange(7, dtype=torch.float64) / 7])
    u = torch.cat([torch.rand(20_000, dtype=torch.float64,
                              generator=torch.Generator().manual_seed(0)),
                   edges[edges < 1], torch.tensor([0.0, 1 - 2**-53], dtype=torch.float64)])
    out = torch.empty(u.shape[0], dtype=torch.int64)
    k.sample_cdf(cdf, guide, u, out)
    want = torch.searchsorted(cdf, u, right=True).clamp_(max=6)
    assert torch.equal(out, want)
    assert not torch.isin(out, torch.tensor([1, 4])).any()  # never a zero-weight item


def test_log_q_columns_equal_the_pytorch_expression(k: Kernels) -> None:
    log_support = torch.rand(50) * 4
    cols = torch.randint(0, 50, (30,), generator=torch.Generator().manual_seed(2))
    out = torch.empty(30)
    k.log_q_columns(out, cols, 8, log_support, 0.5)
    want = torch.cat([log_support[cols[:8]], 0.5 * log_support[cols[8:]]])
    assert torch.equal(out, want)


def test_count_vs_target_equals_the_comparison_sums(k: Kernels) -> None:
    gen = torch.Generator().manual_seed(3)
    scores = torch.randint(-3, 4, (6, 45), generator=gen).float()  # many exact ties
    block = scores[:, 5:42]  # strided rows, a width that leaves a partial vector
    t = block[:, 7].clone()
    greater = torch.full((6,), 10, dtype=torch.int64)  # counts are added to
    equal = torch.zeros(6, dtype=torch.int64)
    k.count_vs_target(block, t, greater, equal)
    assert torch.equal(greater, 10 + (block > t[:, None]).sum(1))
    assert torch.equal(equal, (block == t[:, None]).sum(1))


@pytest.mark.parametrize("m", [1, 2, 3, 4, 7, 50])
@pytest.mark.parametrize(("n", "kd"), [(37, 13), (1000, 100), (32, 5)])
def test_score_rows_equals_the_float64_product(k: Kernels, m: int, n: int,
                                               kd: int) -> None:
    """Serving's scores of a few states against packed item weights (all row-group and
    partial-panel cases)."""
    gen = torch.Generator().manual_seed(m * n + kd)
    w, b, h = (torch.randn(n, kd, generator=gen), torch.randn(n, generator=gen),
               torch.randn(m, kd, generator=gen))
    out = torch.full((m, n), float("nan"))
    k.score_rows(h, k.pack_panels(w), b, out)
    expected = (h.double() @ w.double().t() + b.double()).float()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
