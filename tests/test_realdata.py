"""Accuracy band on the real yoochoose100k sample (RSC15 preprocessing, train_full -> test),
and the ``require_realdata`` helper of conftest.py that every real-data test goes through.

The setting is the official ``rsc15_xe_shared_100_best`` parameter file (cross-entropy, logQ,
shared embedding, 100 units) cut to 3 epochs. The band was set from runs with seeds 42, 1 and 7
on CPU (one thread): Recall@20 0.6490 / 0.6468 / 0.6433 (mean 0.646), MRR@20 0.3383 / 0.3412 /
0.3342 (mean 0.338), conservative ties; the band is the mean +- 0.02.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gru4rec import GRU4Rec, evaluate

RECALL_20_BAND = (0.626, 0.666)
MRR_20_BAND = (0.318, 0.358)

PARAMS = {
    "loss": "cross-entropy",
    "constrained_embedding": True,
    "layers": [100],
    "n_epochs": 3,
    "batch_size": 32,
    "dropout_p_embed": 0.0,
    "dropout_p_hidden": 0.4,
    "learning_rate": 0.2,
    "momentum": 0.2,
    "n_sample": 2048,
    "sample_alpha": 0.5,
    "logq": 1.0,
}


@pytest.mark.realdata
@pytest.mark.slow
def test_yoochoose100k_accuracy_band(data_dir: Path,
                                     require_realdata: Callable[..., Path]) -> None:
    folder = require_realdata(data_dir)
    train = folder / "yoochoose-clicks-100k_train_full.txt"
    test = folder / "yoochoose-clicks-100k_test.txt"
    model = GRU4Rec(device="cpu", seed=42, **PARAMS).fit(train)
    losses = [r.loss for r in model.history_]
    assert losses == sorted(losses, reverse=True)  # the training loss goes down every epoch
    assert model.history_[0].n_events == 70_278 - 17_794  # events - sessions

    result = evaluate(model, test, cutoffs=[5, 20], mode="conservative")
    assert result.n_predictions == 10_152  # 13,568 events - 3,416 sessions
    assert result.n_dropped_events == 0
    recall, mrr = result["Recall@20"], result["MRR@20"]
    assert RECALL_20_BAND[0] <= recall <= RECALL_20_BAND[1], result.metrics
    assert MRR_20_BAND[0] <= mrr <= MRR_20_BAND[1], result.metrics


def test_missing_real_data_skips_or_fails_under_ci(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   require_realdata: Callable[..., Path]
                                                   ) -> None:
    absent = tmp_path / "yoochoose100k"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="is absent"):
        require_realdata(absent)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required when the CI"):
        require_realdata(absent)
    assert require_realdata(tmp_path) == tmp_path


def test_require_data_dir_skips_or_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         require_realdata: Callable[..., Path]) -> None:
    assert require_realdata(tmp_path) == tmp_path
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="is absent"):
        require_realdata(tmp_path / "absent")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="required when the CI environment"):
        require_realdata(tmp_path / "absent")
