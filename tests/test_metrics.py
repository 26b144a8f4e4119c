"""Tests of gru4rec.metrics: ranks under every tie mode, chunked ranks, Recall/MRR."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gru4rec.errors import ConfigError, DataError
from gru4rec.metrics import TIE_MODES, MetricAccumulator, target_ranks, target_ranks_chunked

DETERMINISTIC_MODES = ("standard", "conservative", "median")


def _ranks(row: list[float], target: int, mode: str, seed: int = 0) -> float:
    """Rank of ``target`` in a single handmade score row."""
    scores = torch.tensor([row])
    targets = torch.tensor([target])
    gen = torch.Generator().manual_seed(seed)
    return float(target_ranks(scores, targets, mode, generator=gen)[0])


ROW = [0.5, 0.9, 0.5, 0.1, 0.5]


@pytest.mark.parametrize(
    ("target", "mode", "expected"),
    [
        (0, "standard", 2.0),
        (0, "conservative", 4.0),
        (0, "median", 3.0),
        (1, "standard", 1.0),
        (1, "conservative", 1.0),
        (1, "median", 1.0),
        (3, "standard", 5.0),
        (3, "conservative", 5.0),
        (3, "median", 5.0),
        (2, "median", 3.0),
    ],
)
def test_handmade_ranks(target: int, mode: str, expected: float) -> None:
    assert _ranks(ROW, target, mode) == expected


def test_tiebreaking_stays_within_tie_block_and_hits_every_position() -> None:
    seen = {_ranks(ROW, 0, "tiebreaking", seed) for seed in range(200)}
    assert seen == {2.0, 3.0, 4.0}


def test_tiebreaking_without_ties_equals_standard() -> None:
    row = [0.3, 0.1, 0.7, 0.2]
    for target in range(4):
        assert _ranks(row, target, "tiebreaking") == _ranks(row, target, "standard")


def test_tiebreaking_does_not_reorder_nearly_equal_scores() -> None:
    big = torch.tensor(1.0e4)
    above = torch.nextafter(big, torch.tensor(math.inf))  # one float32 ulp higher
    row = [float(big), float(above), float(big) - 1.0]
    assert row[1] > row[0]
    for seed in range(20):
        assert _ranks(row, 0, "tiebreaking", seed) == 2.0
        assert _ranks(row, 1, "tiebreaking", seed) == 1.0


def test_tiebreaking_is_reproducible_with_generator() -> None:
    scores = torch.randint(0, 3, (64, 10)).float()
    targets = torch.randint(0, 10, (64,))
    a = target_ranks(scores, targets, "tiebreaking", torch.Generator().manual_seed(7))
    b = target_ranks(scores, targets, "tiebreaking", torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_batch_of_rows() -> None:
    scores = torch.tensor([[1.0, 2.0, 3.0], [3.0, 3.0, 3.0], [0.0, -1.0, 5.0]])
    targets = torch.tensor([0, 1, 1])
    assert target_ranks(scores, targets, "standard").tolist() == [3.0, 1.0, 3.0]
    assert target_ranks(scores, targets, "conservative").tolist() == [3.0, 3.0, 3.0]
    assert target_ranks(scores, targets, "median").tolist() == [3.0, 2.0, 3.0]


def test_unknown_mode_raises_config_error_listing_modes() -> None:
    with pytest.raises(ConfigError, match="valid modes are .*'standard'.*'tiebreaking'"):
        target_ranks(torch.zeros(1, 3), torch.tensor([0]), "optimistic")
    with pytest.raises(ConfigError, match="unknown tie mode"):
        target_ranks_chunked(torch.zeros(1, 2), torch.zeros(3, 2), None, torch.tensor([0]), "x")


def test_bad_shapes_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="2-D"):
        target_ranks(torch.zeros(3), torch.tensor([0]))
    with pytest.raises(ConfigError, match="targets must have shape"):
        target_ranks(torch.zeros(2, 3), torch.tensor([0]))
    with pytest.raises(ConfigError, match="integer"):
        target_ranks(torch.zeros(1, 3), torch.tensor([0.0]))
    with pytest.raises(ConfigError, match="same H"):
        target_ranks_chunked(torch.zeros(1, 2), torch.zeros(3, 4), None, torch.tensor([0]))
    with pytest.raises(ConfigError, match="bias"):
        target_ranks_chunked(
            torch.zeros(1, 2), torch.zeros(3, 2), torch.zeros(2), torch.tensor([0])
        )
    with pytest.raises(ConfigError, match="chunk_items"):
        target_ranks_chunked(
            torch.zeros(1, 2), torch.zeros(3, 2), None, torch.tensor([0]), chunk_items=0
        )


def _integer_problem(
    seed: int, n: int = 40, n_items: int = 103, hidden: int = 3
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Small-integer h, weight and bias: every score is exact, and ties are plentiful."""
    gen = torch.Generator().manual_seed(seed)
    h = torch.randint(-2, 3, (n, hidden), generator=gen).float()
    weight = torch.randint(-2, 3, (n_items, hidden), generator=gen).float()
    bias = torch.randint(-1, 2, (n_items,), generator=gen).float()
    targets = torch.randint(0, n_items, (n,), generator=gen)
    return h, weight, bias, targets


@pytest.mark.parametrize("chunk_items", [1, 7, 50, 103, 1000])
@pytest.mark.parametrize("mode", TIE_MODES)
@pytest.mark.parametrize("seed", [0, 1])
def test_chunked_equals_full(chunk_items: int, mode: str, seed: int) -> None:
    h, weight, bias, targets = _integer_problem(seed)
    full = target_ranks(
        h @ weight.T + bias, targets, mode, generator=torch.Generator().manual_seed(3)
    )
    chunked = target_ranks_chunked(
        h, weight, bias, targets, mode,
        chunk_items=chunk_items, generator=torch.Generator().manual_seed(3),
    )  # fmt: skip
    assert torch.equal(full, chunked)


def test_integer_problem_has_ties() -> None:
    h, weight, bias, targets = _integer_problem(0)
    scores = h @ weight.T + bias
    std = target_ranks(scores, targets, "standard")
    assert (target_ranks(scores, targets, "conservative") > std).sum() > len(targets) // 2


@pytest.mark.parametrize("chunk_items", [5, 64])
def test_chunked_equals_full_random_floats_without_bias(chunk_items: int) -> None:
    gen = torch.Generator().manual_seed(11)
    h = torch.randn(30, 8, generator=gen)
    weight = torch.randn(200, 8, generator=gen)
    weight[100:150] = weight[0]  # a block of identical items: exact ties in any product
    targets = torch.cat([torch.zeros(10, dtype=torch.long), torch.randint(0, 200, (20,))])
    for mode in DETERMINISTIC_MODES:
        chunked = target_ranks_chunked(h, weight, None, targets, mode, chunk_items=chunk_items)
        assert torch.equal(chunked, target_ranks(h @ weight.T, targets, mode))
    assert (target_ranks_chunked(h, weight, None, targets, "conservative")[:10] >= 51).all()


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 6),
    n_items=st.integers(1, 12),
    levels=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_rank_order_property(rows: int, n_items: int, levels: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, levels, (rows, n_items), generator=gen).float()
    targets = torch.randint(0, n_items, (rows,), generator=gen)
    std = target_ranks(scores, targets, "standard")
    med = target_ranks(scores, targets, "median")
    con = target_ranks(scores, targets, "conservative")
    tie = target_ranks(scores, targets, "tiebreaking", generator=gen)
    assert (std <= med).all() and (med <= con).all()
    assert (std <= tie).all() and (tie <= con).all()
    for ranks in (std, med, con, tie):
        assert (ranks >= 1).all() and (ranks <= n_items).all()


def test_accumulator_on_handmade_ranks() -> None:
    acc = MetricAccumulator([1, 3])
    acc.update(torch.tensor([1.0, 2.0, 4.0]))
    acc.update(torch.tensor([3.0]))
    res = acc.result()
    assert res["n"] == 4
    assert res["Recall@1"] == pytest.approx(1 / 4)
    assert res["Recall@3"] == pytest.approx(3 / 4)
    assert res["MRR@1"] == pytest.approx(1 / 4)
    assert res["MRR@3"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 4)
    assert set(res) == {"Recall@1", "Recall@3", "MRR@1", "MRR@3", "n"}


def test_accumulator_median_ranks_and_duplicate_cutoffs() -> None:
    acc = MetricAccumulator([2, 2, 1])
    acc.update(torch.tensor([1.5, 2.5]))
    res = acc.result()
    assert acc.cutoffs == (1, 2)
    assert res["Recall@1"] == 0.0
    assert res["Recall@2"] == pytest.approx(0.5)
    assert res["MRR@2"] == pytest.approx((1 / 1.5) / 2)


def test_accumulator_matches_ranks_from_scores() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]])
    acc = MetricAccumulator([2])
    acc.update(target_ranks(scores, torch.tensor([2, 2])))
    assert acc.result()["Recall@2"] == pytest.approx(0.5)
    assert acc.result()["MRR@2"] == pytest.approx(0.25)


def test_accumulator_without_predictions_raises_data_error() -> None:
    acc = MetricAccumulator([20])
    with pytest.raises(DataError, match="no predictions to evaluate"):
        acc.result()
    acc.update(torch.empty(0))
    with pytest.raises(DataError, match="fewer than 2 known events"):
        acc.result()


@pytest.mark.parametrize("cutoffs", [[], [0], [5, -1], [2.5], [True], "20", 20])
def test_bad_cutoffs_raise_config_error(cutoffs: object) -> None:
    with pytest.raises(ConfigError, match="cutoff"):
        MetricAccumulator(cutoffs)  # type: ignore[arg-type]


def test_accumulator_rejects_2d_ranks() -> None:
    with pytest.raises(ConfigError, match="1-D"):
        MetricAccumulator([5]).update(torch.ones(2, 2))


@pytest.mark.parametrize("chunk_items", [17, 256])
@pytest.mark.parametrize("mode", TIE_MODES)
def test_chunked_band_pass_equals_full_on_float32(chunk_items: int, mode: str) -> None:
    # random float32 scores, no exact ties: every row takes the one-pass band count
    gen = torch.Generator().manual_seed(21)
    h = torch.randn(64, 24, generator=gen)
    weight = torch.randn(1000, 24, generator=gen) * 0.3
    bias = torch.randn(1000, generator=gen) * 0.1
    targets = torch.randint(0, 1000, (64,), generator=gen)
    full = target_ranks(h @ weight.T + bias, targets, mode,
                        generator=torch.Generator().manual_seed(5))
    chunked = target_ranks_chunked(h, weight, bias, targets, mode, chunk_items=chunk_items,
                                   generator=torch.Generator().manual_seed(5))
    assert torch.equal(full, chunked)
