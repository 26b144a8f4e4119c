"""Every kernel wrapper refuses, with a ValueError naming it and the argument, what would
make C read or write the wrong memory: a wrong dtype, device, layout or shape (for the
session-kNN wrappers, which take numpy arrays: dtype, layout, shape or byte order)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from gru4rec.kernels import Kernels

M, H, N, R, C = 3, 4, 10, 12, 5  # rows, hidden units, score columns, table rows, width
EPS = 1e-6


def _rows_apply() -> dict[str, Any]:
    slot = torch.full((R,), -1, dtype=torch.int32)
    slot[2], slot[5] = 0, 1
    return dict(p=torch.randn(R, C), acc=torch.zeros(R, C), vel=torch.zeros(R, C), slot=slot,
                buf=torch.randn(2, C), uniq=torch.tensor([2, 5]), u=2, lr=0.1, momentum=0.3,
                eps=EPS)


def _sample_cdf() -> dict[str, Any]:
    cdf = torch.cumsum(torch.rand(N, dtype=torch.float64), 0)
    cdf /= cdf[-1].clone()
    guide = torch.searchsorted(cdf, torch.arange(N, dtype=torch.float64) / N, right=True)
    return dict(cdf=cdf, guide=guide, u=torch.rand(20, dtype=torch.float64),
                out=torch.empty(20, dtype=torch.int64))


def _knn_index() -> dict[str, np.ndarray]:
    """A tiny session-kNN index: sessions {0, 1}, {2}, {0, 3} by rank; item -> ranks."""
    return dict(session_indptr=np.array([0, 2, 3, 5]),
                session_items=np.array([0, 1, 2, 0, 3], dtype=np.int32),
                item_indptr=np.array([0, 2, 3, 4, 5]),
                item_sessions=np.array([0, 2, 0, 1, 2], dtype=np.int32))


def _knn_neighbours() -> dict[str, Any]:
    index = _knn_index()
    del index["session_items"]
    return dict(**index, pair_start=np.array([0, 2, 3]), pair_item=np.array([0, 1, 3]),
                pair_weight=np.array([0.5, 1.0, 1.0]), row_const=np.array([2.0, 1.0]),
                similarity="vec", sample_size=2, k=1)


def _knn_item_groups() -> dict[str, Any]:
    index = _knn_index()
    return dict(session_indptr=index["session_indptr"], session_items=index["session_items"],
                src_row=np.array([0, 0, 1]), src_session=np.array([0, 2, 1]),
                extra_row=np.array([1, 1]), extra_item=np.array([2, 3]), n_rows=2,
                n_cols=4, c_bits=2, k_bits=3)


# valid arguments of every wrapper (fresh for each call: the kernels write in place)
VALID: dict[str, Callable[[], dict[str, Any]]] = {
    "bpr_max_": lambda: dict(r=torch.randn(M, N), batch_size=M, bpreg=1.0, elu_param=0.5),
    "cross_entropy_": lambda: dict(r=torch.randn(M, N), batch_size=M, log_q=torch.rand(N),
                                   logq=1.0),
    "adagrad_dense": lambda: dict(p=torch.randn(R, C), acc=torch.zeros(R, C),
                                  vel=torch.zeros(R, C), g=torch.randn(R, C), lr=0.1,
                                  momentum=0.3, eps=EPS),
    "rows_accumulate": lambda: dict(slot=torch.full((R,), -1, dtype=torch.int32),
                                    buf=torch.empty(6, C),
                                    uniq=torch.empty(6, dtype=torch.int64), u=0,
                                    idx=torch.tensor([1, 3, 1]), g=torch.randn(3, C)),
    "rows_apply": _rows_apply,
    "outer_rows_update": lambda: dict(
        p=torch.randn(R, C), acc=torch.zeros(R, C), vel=torch.zeros(R, C),
        slot=torch.full((R,), -1, dtype=torch.int32), cols=torch.randint(0, R, (N,)),
        g=torch.randn(M, N), h=torch.randn(M, C), idx2=torch.tensor([0, 1, 2]),
        g2=torch.randn(M, C - 1), work=torch.empty(3 * (N + M) + 1, dtype=torch.int64),
        lr=0.1, momentum=0.3, eps=EPS),
    "gru_gates": lambda: dict(a=torch.randn(M, 3 * H), hr=torch.randn(M, 2 * H),
                              h=torch.randn(M, H), rz=torch.empty(M, 2 * H),
                              rh=torch.empty(M, H)),
    "gru_output": lambda: dict(a=torch.randn(M, 3 * H), hc=torch.randn(M, H),
                               h=torch.randn(M, H), rz=torch.rand(M, 2 * H),
                               mask=torch.ones(M, H), c=torch.empty(M, H),
                               out=torch.empty(M, H), h_aug=torch.ones(M, H + 1)),
    "gru_back_out": lambda: dict(dout=torch.randn(M, H), mask=torch.ones(M, H),
                                 rz=torch.rand(M, 2 * H), c=torch.randn(M, H),
                                 h=torch.randn(M, H), dvx=torch.empty(M, 3 * H)),
    "gru_back_gates": lambda: dict(dr=torch.randn(M, H), h=torch.randn(M, H),
                                   rz=torch.rand(M, 2 * H), dvx=torch.randn(M, 3 * H),
                                   db=torch.empty(3 * H)),
    "pack_panels": lambda: dict(w=torch.randn(N, H)),
    "score_rows": lambda: dict(h=torch.randn(M, H),
                               panels=Kernels.pack_panels(torch.randn(N, H)),
                               b=torch.randn(N), out=torch.empty(M, N)),
    "sample_cdf": _sample_cdf,
    "log_q_columns": lambda: dict(out=torch.empty(N), cols=torch.randint(0, R, (N,)), m=M,
                                  log_support=torch.rand(R), alpha=0.5),
    "count_vs_target": lambda: dict(scores=torch.randn(M, N), target_scores=torch.randn(M),
                                    greater=torch.zeros(M, dtype=torch.int64),
                                    equal=torch.zeros(M, dtype=torch.int64)),
    "knn_neighbours": _knn_neighbours,
    "knn_item_groups": _knn_item_groups,
    "knn_item_sums": lambda: dict(packed=np.array([0, 1, 2]), first=np.array([0, 2]),
                                  values=np.array([1.0, 2.0]), factor=np.array([1.0, 3.0]),
                                  c_bits=1, k_bits=1),
}

# wrong shapes where "one more along the last dim" would still be valid (or not wrong)
BAD_SHAPE: dict[tuple[str, str], tuple[int, ...]] = {
    ("bpr_max_", "r"): (N + 1, N),  # more rows than columns: row j's target is column j
    ("cross_entropy_", "r"): (N + 1, N),
    ("rows_accumulate", "slot"): (R, 1),
    ("rows_accumulate", "buf"): (2, C),  # fewer rows than u + K
    ("rows_accumulate", "uniq"): (2,),
    ("rows_accumulate", "idx"): (4,),
    ("rows_apply", "buf"): (2, C + 1),
    ("rows_apply", "uniq"): (1,),  # shorter than u
    ("outer_rows_update", "idx2"): (M + 1,),
    ("outer_rows_update", "g2"): (M, C + 1),  # wider than the table
    ("outer_rows_update", "work"): (3 * (N + M),),
    ("pack_panels", "w"): (N,),
    ("sample_cdf", "cdf"): (0,),
    ("sample_cdf", "guide"): (0,),
    ("sample_cdf", "u"): (21,),
    ("log_q_columns", "log_support"): (R, 1),
    ("count_vs_target", "scores"): (M + 1, N),
}
ANY_LAYOUT = {("pack_panels", "w")}  # copied by the wrapper: any strides are fine
_OTHER_DTYPE = {torch.float32: torch.float64, torch.float64: torch.float32,
                torch.int64: torch.int32, torch.int32: torch.int64}


def _bad_shape(fn: str, arg: str, t: torch.Tensor) -> tuple[int, ...]:
    return BAD_SHAPE.get((fn, arg), (*t.shape[:-1], t.shape[-1] + 1))


def _strided(t: torch.Tensor) -> torch.Tensor:
    """Same shape and values, every second element along the last dim: not contiguous."""
    wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
    wide[..., ::2] = t
    return wide[..., ::2]


MUTATIONS: dict[str, Callable[[str, str, torch.Tensor], torch.Tensor]] = {
    "dtype": lambda fn, arg, t: t.to(_OTHER_DTYPE[t.dtype]),
    "non-contiguous": lambda fn, arg, t: _strided(t),
    "shape": lambda fn, arg, t: torch.zeros(_bad_shape(fn, arg, t), dtype=t.dtype),
    "device": lambda fn, arg, t: t.to("meta"),
}

CASES = [(fn, arg, mutation) for fn, make in VALID.items()
         for arg, value in make().items() if isinstance(value, torch.Tensor)
         for mutation in MUTATIONS
         if not (mutation == "non-contiguous" and (fn, arg) in ANY_LAYOUT)]


_NP_OTHER = {np.dtype(np.int64): np.int32, np.dtype(np.int32): np.float32,
             np.dtype(np.float64): np.float32}
NP_MUTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "dtype": lambda a: a.astype(_NP_OTHER[a.dtype]),
    "non-contiguous": lambda a: np.repeat(a, 2)[::2],
    "shape": lambda a: a[None, :],
    "byte order": lambda a: a.astype(a.dtype.newbyteorder()),
}
NP_CASES = [(fn, arg, mutation) for fn, make in VALID.items()
            for arg, value in make().items() if isinstance(value, np.ndarray)
            for mutation in NP_MUTATIONS]


def test_every_wrapper_is_covered() -> None:
    public = {name for name, _ in inspect.getmembers(Kernels, callable)
              if not name.startswith("_")}
    assert public == set(VALID)


@pytest.mark.parametrize("fn", list(VALID))
def test_the_valid_call_passes(k: Kernels, fn: str) -> None:
    getattr(k, fn)(**VALID[fn]())


@pytest.mark.parametrize(("fn", "arg", "mutation"), CASES,
                         ids=[f"{fn}-{arg}-{mutation}" for fn, arg, mutation in CASES])
def test_a_wrong_argument_raises_value_error(k: Kernels, fn: str, arg: str,
                                             mutation: str) -> None:
    kwargs = VALID[fn]()
    kwargs[arg] = MUTATIONS[mutation](fn, arg, kwargs[arg])
    with pytest.raises(ValueError, match=rf"^{fn}: ") as err:
        getattr(k, fn)(**kwargs)
    if mutation != "shape":  # a wrong size may show first in a dependent argument
        assert err.value.args[0].startswith(f"{fn}: {arg} must be "), err.value


@pytest.mark.parametrize(("fn", "arg", "mutation"), NP_CASES,
                         ids=[f"{fn}-{arg}-{mutation}" for fn, arg, mutation in NP_CASES])
def test_a_wrong_array_raises_value_error(k: Kernels, fn: str, arg: str,
                                          mutation: str) -> None:
    kwargs = VALID[fn]()
    kwargs[arg] = NP_MUTATIONS[mutation](kwargs[arg])
    with pytest.raises(ValueError, match=rf"^{fn}: {arg} must be "):
        getattr(k, fn)(**kwargs)


def test_the_message_says_what_was_expected_and_what_was_given(k: Kernels) -> None:
    kwargs = VALID["gru_gates"]()
    kwargs["rz"] = torch.empty(M, H)
    with pytest.raises(ValueError) as err:
        k.gru_gates(**kwargs)
    assert str(err.value) == ("gru_gates: rz must be a contiguous CPU float32 tensor of shape "
                              f"(M, 2H) = ({M}, {2 * H}); got a contiguous cpu float32 "
                              f"tensor of shape ({M}, {H})")


@pytest.mark.parametrize(("fn", "arg", "value"), [
    ("bpr_max_", "r", np.zeros((M, N), dtype=np.float32)),  # not a tensor
    ("bpr_max_", "batch_size", 0),
    ("cross_entropy_", "batch_size", -1),
    ("rows_accumulate", "u", -1),
    ("rows_apply", "u", 3),  # more distinct rows than buf holds
    ("adagrad_dense", "vel", None),  # momentum needs the velocity
    ("rows_apply", "vel", None),
    ("outer_rows_update", "vel", None),
    ("outer_rows_update", "g2", None),  # idx2 without its gradient rows
    ("outer_rows_update", "idx2", None),
])
def test_a_wrong_other_argument_raises_value_error(k: Kernels, fn: str, arg: str,
                                                   value: Any) -> None:
    kwargs = VALID[fn]()
    kwargs[arg] = value
    with pytest.raises(ValueError, match=rf"^{fn}: {arg} must be "):
        getattr(k, fn)(**kwargs)


def test_documented_strided_rows_are_accepted(k: Kernels) -> None:
    """The arguments whose rows may be strided: a column block of a wider matrix."""
    block = torch.randn(M, N + 7)[:, 3:3 + N]
    kwargs = VALID["count_vs_target"]()
    kwargs["scores"] = block
    k.count_vs_target(**kwargs)
    assert torch.equal(kwargs["greater"], (block > kwargs["target_scores"][:, None]).sum(1))
    kwargs = VALID["gru_gates"]()
    kwargs["a"] = torch.randn(M, 4 * H)[:, H:]
    k.gru_gates(**kwargs)
    kwargs = VALID["rows_accumulate"]()
    kwargs["g"] = torch.randn(3, 2 * C)[:, :C]
    assert k.rows_accumulate(**kwargs) == 2
    kwargs = VALID["pack_panels"]()
    assert torch.equal(k.pack_panels(kwargs["w"].t().contiguous().t()),
                       k.pack_panels(kwargs["w"]))


def test_optional_arguments_may_be_none(k: Kernels) -> None:
    kwargs = VALID["gru_output"]()
    kwargs["mask"] = kwargs["h_aug"] = None
    k.gru_output(**kwargs)
    kwargs = VALID["outer_rows_update"]()
    kwargs["idx2"] = kwargs["g2"] = kwargs["vel"] = None
    kwargs["momentum"] = 0.0
    assert k.outer_rows_update(**kwargs) > 0
    kwargs = VALID["cross_entropy_"]()
    kwargs["log_q"] = None
    k.cross_entropy_(**kwargs)
