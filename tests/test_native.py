"""The compiled CPU kernels (kernels.c) against the float64 formulas and the PyTorch path."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from gru4rec import native
from gru4rec.nn.losses import bpr_max_loss, cross_entropy_loss
from gru4rec.nn.optim import SparseOptimizer


@pytest.fixture(scope="module")
def k() -> native.Kernels:
    kernels = native.kernels()
    if kernels is None:
        if os.environ.get("CI"):
            pytest.fail("the CPU kernels must compile on the CI machine (is gcc installed?)")
        pytest.skip("no C compiler: the pure-PyTorch path is used instead")
    return kernels


def _f64_value_and_grad(fn, r: torch.Tensor) -> tuple[float, torch.Tensor]:
    x = r.double().requires_grad_(True)
    loss = fn(x)
    loss.backward()
    return float(loss.detach()), x.grad.float()


# widths 2077 and 13 leave a partial vector at the end of each row
@pytest.mark.parametrize(("m", "n"), [(32, 2080), (5, 13), (3, 2077)])
@pytest.mark.parametrize(("bpreg", "elu_param"), [(1.0, 0.5), (0.0, 0.0), (0.5, 1.0)])
def test_bpr_max_kernel_equals_the_float64_formula(k: native.Kernels, m: int, n: int,
                                                   bpreg: float, elu_param: float) -> None:
    r = torch.randn(m, n, generator=torch.Generator().manual_seed(m + n)) * 2
    want, want_grad = _f64_value_and_grad(lambda x: bpr_max_loss(x, 32, bpreg, elu_param), r)
    g = r.clone()
    got = k.bpr_max_(g, 32, bpreg, elu_param) / 32
    assert got == pytest.approx(want, rel=1e-6)
    torch.testing.assert_close(g, want_grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(("m", "n"), [(32, 2080), (4, 11)])
@pytest.mark.parametrize("logq", [0.0, 1.0])
def test_cross_entropy_kernel_equals_the_float64_formula(k: native.Kernels, m: int, n: int,
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


def test_bpr_max_kernel_stays_finite_when_the_positive_dominates(k: native.Kernels) -> None:
    # softmax over negatives must not take its max from the positive column: with the
    # positive 200 above the rest every exp(x - max) would underflow to 0 and give 0/0
    r = torch.zeros(2, 9)
    r[0, 0], r[1, 1] = 200.0, 150.0
    got = k.bpr_max_(r, 2, 1.0, 0.0)
    assert np.isfinite(got)
    assert torch.isfinite(r).all()


def test_bpr_max_kernel_stays_finite_when_the_negatives_dominate(k: native.Kernels) -> None:
    # positive 200 below its negatives: sigmoid(x_j - x_k) underflows, hit ~ 0, and the
    # loss is -log(1e-24) plus the score regulariser, as in the formula
    r = torch.zeros(1, 6)
    r[0, 0] = -200.0
    want = bpr_max_loss(r.double(), 1, 1.0, 0.0)
    got = k.bpr_max_(r, 1, 1.0, 0.0)
    assert got == pytest.approx(float(want), rel=1e-6)
    assert torch.isfinite(r).all()


def test_exp_is_accurate_over_the_float_range(k: native.Kernels) -> None:
    # a row of zeros plus one score x: softmax weight of x is exp(x) / (exp(x) + n - 1)
    for x in [-80.0, -20.0, -1e-3, 0.0, 1e-3, 5.0, 30.0, 80.0]:
        r = torch.zeros(1, 4)
        r[0, 0] = x
        total = k.cross_entropy_(r, 1, None, 0.0)
        p = 1.0 / (1.0 + 3.0 * np.exp(-np.float64(x)))
        assert total == pytest.approx(-np.log(p + 1e-24), rel=1e-6, abs=1e-6), x


@pytest.mark.parametrize("momentum", [0.0, 0.3])
def test_native_row_updates_equal_the_pytorch_ones(k: native.Kernels,
                                                   momentum: float) -> None:
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(40, 7, generator=gen)
    tables = {"torch": start.clone(), "native": start.clone()}
    opts = {"torch": SparseOptimizer({"W": tables["torch"]}, 0.2, momentum),
            "native": SparseOptimizer({"W": tables["native"]}, 0.2, momentum, k)}
    touched = torch.zeros(40, dtype=torch.bool)
    for _ in range(4):
        out_rows = torch.randint(0, 30, (25,), generator=gen)  # with repeats; 30+ untouched
        in_rows = torch.randint(0, 30, (6,), generator=gen)
        touched[out_rows] = touched[in_rows] = True
        g_out = torch.randn(25, 7, generator=gen)
        g_in = torch.randn(6, 6, generator=gen)  # narrower: the leading columns only
        for opt in opts.values():
            opt.step_row_grads("W", [(out_rows, g_out.clone()), (in_rows, g_in.clone())])
    # equal up to float32 rounding (PyTorch's vectorised sqrt is off by an ulp at times);
    # a wrong duplicate sum or a missed row would differ by ~0.1
    for name in ("acc", "vel") if momentum else ("acc",):
        torch.testing.assert_close(getattr(opts["native"], name)["W"],
                                   getattr(opts["torch"], name)["W"], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(tables["native"], tables["torch"], rtol=1e-6, atol=1e-7)
    assert torch.equal(tables["native"][~touched], start[~touched])
    assert not opts["native"].acc["W"][~touched].any()


@pytest.mark.parametrize("momentum", [0.0, 0.3])
@pytest.mark.parametrize(("m", "n", "width", "threads"),
                         [(3, 25, 7, 1), (32, 700, 101, 2), (16, 300, 20, 2)])
def test_outer_row_updates_equal_the_explicit_product(k: native.Kernels, momentum: float,
                                                      m: int, n: int, width: int,
                                                      threads: int) -> None:
    """Rows updated from g^T h without forming it (the output table of a step), with
    repeated columns and extra input rows, against PyTorch's update of the formed product;
    the large cases run on several threads."""
    gen = torch.Generator().manual_seed(2)
    start = torch.randn(900, width, generator=gen)
    tables = {"torch": start.clone(), "native": start.clone()}
    opts = {"torch": SparseOptimizer({"W": tables["torch"]}, 0.2, momentum),
            "native": SparseOptimizer({"W": tables["native"]}, 0.2, momentum, k)}
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
            opts["torch"].step_row_grads("W", [(cols, g.t() @ h), *extra])
            opts["native"].step_outer_rows("W", cols, g, h, extra)
    finally:
        torch.set_num_threads(old_threads)
    # the sums g[:, j]^T h are rounded in another order; where one lands within ~1e-3 of 0,
    # Adagrad's g / sqrt(g^2 + 1e-6) turns that into ~1e-4 of weight (a wrong or missed
    # gradient moves a weight by ~lr = 0.2)
    torch.testing.assert_close(tables["native"], tables["torch"], rtol=1e-5, atol=3e-4)
    torch.testing.assert_close(opts["native"].acc["W"], opts["torch"].acc["W"], rtol=1e-4,
                               atol=1e-5)
    assert torch.equal(tables["native"][~touched], start[~touched])


def test_kernels_share_pytorchs_openmp_runtime(k: native.Kernels) -> None:
    """Two OpenMP runtimes in one process would each spin threads on the same cores."""
    with open("/proc/self/maps") as fh:
        runtimes = {line.split()[-1] for line in fh if "libgomp" in line or "libiomp" in line
                    or "libomp" in line}
    assert len(runtimes) <= 1, runtimes


def test_native_dense_update_equals_the_pytorch_one(k: native.Kernels) -> None:
    gen = torch.Generator().manual_seed(1)
    w = {"torch": torch.randn(5, 9, generator=gen)}
    w["native"] = w["torch"].clone()
    opts = {"torch": SparseOptimizer({"W": w["torch"]}, 0.1, 0.4),
            "native": SparseOptimizer({"W": w["native"]}, 0.1, 0.4, k)}
    for _ in range(3):
        g = torch.randn(5, 9, generator=gen)
        for opt in opts.values():
            opt.step_dense_all(["W"], [g.clone()])
    torch.testing.assert_close(w["native"], w["torch"], rtol=1e-6, atol=1e-7)


def test_kernels_are_cached_per_source_and_machine(tmp_path, monkeypatch) -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("GRU4REC_CACHE_DIR", str(tmp_path))
    path = native._build()
    assert path is not None and path.parent == tmp_path and path.suffix == ".so"
    mtime = path.stat().st_mtime_ns
    assert native._build() == path and path.stat().st_mtime_ns == mtime  # reused
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left


def test_native_can_be_switched_off(monkeypatch) -> None:
    monkeypatch.setenv("GRU4REC_NATIVE", "0")
    assert native.kernels() is None


def test_a_failing_compiler_falls_back_to_pytorch(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("GRU4REC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    assert native._build() is None
    assert "pure-PyTorch" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_guided_cdf_sampling_equals_searchsorted(k: native.Kernels) -> None:
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


def test_log_q_columns_equal_the_pytorch_expression(k: native.Kernels) -> None:
    log_support = torch.rand(50) * 4
    cols = torch.randint(0, 50, (30,), generator=torch.Generator().manual_seed(2))
    out = torch.empty(30)
    k.log_q_columns(out, cols, 8, log_support, 0.5)
    want = torch.cat([log_support[cols[:8]], 0.5 * log_support[cols[8:]]])
    assert torch.equal(out, want)


def test_count_vs_target_equals_the_comparison_sums(k: native.Kernels) -> None:
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
def test_score_rows_equals_the_float64_product(k: native.Kernels, m: int, n: int,
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
