"""The model file through GRU4Rec.save / GRU4Rec.load: identical round trips (scores,
metrics, config, item ids of both kinds), loading with ``weights_only``, and every damaged,
foreign or unsafe file refused with a ModelFileError."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gru4rec import GRU4Rec, ModelFileError, evaluate
from gru4rec.data.events import Events
from gru4rec.model_file import payload_digest

# ----------------------------------------------------------------------------- round trips


def test_save_load_gives_identical_scores_and_metrics(fitted: GRU4Rec, successor_test: Events,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    fitted.save(path)
    loaded = GRU4Rec.load(path, device="cpu")
    sessions = [[0, 1, 2], [17], [49, 0], [5, 6, 7, 8, 9]]
    ids_a, scores_a = fitted.recommend(sessions, k=10)
    ids_b, scores_b = loaded.recommend(sessions, k=10)
    np.testing.assert_array_equal(ids_a, ids_b)
    np.testing.assert_array_equal(scores_a, scores_b)
    assert ids_a[:, 0].tolist() == [3, 18, 1, 10]  # the successor of the last item
    m_a = evaluate(fitted, successor_test, cutoffs=[1, 5], mode="conservative")
    m_b = evaluate(loaded, successor_test, cutoffs=[1, 5], mode="conservative")
    assert m_a.metrics == m_b.metrics
    assert loaded.config == fitted.config
    np.testing.assert_array_equal(loaded.item_support_, fitted.item_support_)


def test_model_file_loads_with_weights_only(fitted: GRU4Rec, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    fitted.save(path)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "gru4rec-model"
    assert payload["config"]["layers"] == [32]
    assert all(t.dtype == torch.float32 for t in payload["params"].values())
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temp file left behind


@pytest.mark.parametrize("kind", ["str", "int"])
def test_item_ids_come_back_unchanged(kind: str, tmp_path: Path,
                                      events_of: Callable[..., Events],
                                      small_params: dict[str, Any]) -> None:
    n = 12
    names: list[Any] = (["a1"] + [f"{i:03d}" for i in range(1, n)] if kind == "str"
                        else [10**12 + 7 * i for i in range(n)])
    rng = np.random.default_rng(0)
    sessions = [[names[(s + k) % n] for k in range(5)] for s in rng.integers(0, n, size=120)]
    model = GRU4Rec(device="cpu", n_epochs=8, **{**small_params, "batch_size": 8}).fit(
        events_of(sessions))
    assert sorted(model.item_index_.to_list()) == sorted(names)
    path = tmp_path / "ids.pt"
    model.save(path)
    loaded = GRU4Rec.load(path, device="cpu")
    assert loaded.item_index_.to_list() == model.item_index_.to_list()
    query = [[names[5], names[6], names[7]], [names[n - 1]]]  # "005" "006" "007" -> "008"
    for m in (model, loaded):
        ids, _ = m.recommend(query, k=3)
        assert ids[:, 0].tolist() == [names[8], names[0]]
        assert all(type(x) is type(names[0]) for x in ids.ravel().tolist())
        assert set(ids.ravel().tolist()) <= set(names)


def test_save_load_keeps_the_exact_config(successor_train: Events, tmp_path: Path,
                                          small_params: dict[str, Any]) -> None:
    model = GRU4Rec(device="cpu", n_epochs=1, loss="bpr-max", elu_param=0.123456789,
                    **small_params).fit(successor_train)
    model.save(tmp_path / "m.pt")
    loaded = GRU4Rec.load(tmp_path / "m.pt", device="cpu")
    assert loaded.config.elu_param == 0.123456789
    assert loaded.config == model.config


# ----------------------------------------------------------------------------- bad files


def tamper(path: Path, change: Callable[[dict], None], restamp: bool = True) -> None:
    """Change the saved payload; ``restamp``: recompute its checksum, as someone rewriting
    the file could, so that the structural checks behind the checksum are reached."""
    payload = torch.load(path, weights_only=True)
    change(payload)
    if restamp:
        payload["checksum"] = payload_digest(payload)
    torch.save(payload, path)


class RunsCode:
    """Unpickling this runs a shell command: a model file must never do that."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"echo pwned > {self.marker}",))


def _set(key: str, value: Any) -> Callable[[dict], None]:
    return lambda p: p.__setitem__(key, value)


def _set_param(name: str, value: torch.Tensor) -> Callable[[dict], None]:
    return lambda p: p["params"].__setitem__(name, value)


TAMPERS = {
    "shape": (_set_param("Wyb", torch.zeros(3, 3)), "should have shape"),
    "format_version": (_set("format_version", 99), "format version 99, newer than this"),
    "format": (_set("format", "something-else"), "not a gru4rec model file"),
    "nan_param": (_set_param("Wh0", torch.full((32, 32), float("nan"))), "finite"),
    "missing_param": (lambda p: p["params"].pop("Wh0"), "do not match"),
    "bad_config": (_set("config", {"batch_size": -4}), "batch_size must be >= 1"),
    "item_count": (_set("item_support", torch.zeros(3, dtype=torch.int64)), "item_support"),
    "item_ids": (_set("item_ids", [1.5, 2.5]), "item_ids"),
}


@pytest.mark.parametrize("case", list(TAMPERS))
def test_tampered_model_file(fitted: GRU4Rec, tmp_path: Path, case: str) -> None:
    path = tmp_path / "model.pt"
    fitted.save(path)
    change, message = TAMPERS[case]
    tamper(path, change)
    with pytest.raises(ModelFileError, match=message):
        GRU4Rec.load(path)


ALTER = {  # the smallest changes: one value, same shape and type
    "a weight": lambda p: p["params"]["Wyb"][0].add_(1e-6),
    "an item id": lambda p: p["item_ids"].__setitem__(0, p["item_ids"][0] + 1),
    "a setting": lambda p: p["config"].__setitem__("learning_rate",
                                                   p["config"]["learning_rate"] * 1.5),
}


@pytest.mark.parametrize("what", list(ALTER))
def test_a_changed_value_breaks_the_checksum(fitted: GRU4Rec, tmp_path: Path,
                                             what: str) -> None:
    path = tmp_path / "model.pt"
    fitted.save(path)
    tamper(path, ALTER[what], restamp=False)
    with pytest.raises(ModelFileError, match="its checksum does not match its contents"):
        GRU4Rec.load(path)


def test_a_flipped_byte_is_never_loaded(fitted: GRU4Rec, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    fitted.save(path)
    data = bytearray(path.read_bytes())
    for at in range(len(data) // 4, len(data) * 3 // 4, len(data) // 16):
        flipped = bytearray(data)
        flipped[at] ^= 0x10
        path.write_bytes(flipped)
        with pytest.raises(ModelFileError):
            GRU4Rec.load(path)


def test_a_version_1_file_without_checksum_loads_with_a_warning(
        fitted: GRU4Rec, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "model.pt"
    fitted.save(path)
    tamper(path, lambda p: (p.pop("checksum"), p.__setitem__("format_version", 1)),
           restamp=False)
    with caplog.at_level("WARNING", logger="gru4rec"):
        loaded = GRU4Rec.load(path)
    assert "without a checksum" in caplog.text
    assert torch.equal(loaded.net_.params["Wyb"], fitted.net_.params["Wyb"].cpu())


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        GRU4Rec.load(tmp_path / "nope.pt")


def test_truncated_model_file(fitted: GRU4Rec, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    fitted.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a readable gru4rec model file"):
        GRU4Rec.load(path)


@pytest.mark.parametrize("content", [b"", np.random.default_rng(0).bytes(4096),
                                     b"SessionId\tItemId\tTime\n1\t2\t3.0\n"])
def test_garbage_model_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a readable gru4rec model file"):
        GRU4Rec.load(path)


def test_foreign_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, path)
    with pytest.raises(ModelFileError, match="not a gru4rec model file"):
        GRU4Rec.load(path)


@pytest.mark.parametrize("writer", ["pickle", "torch"])
def test_model_file_that_would_run_code_is_refused(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    payload = {"format": "gru4rec-model", "format_version": 1, "x": RunsCode(marker)}
    if writer == "pickle":
        with path.open("wb") as fh:
            pickle.dump(payload, fh, protocol=2)
    else:
        torch.save(payload, path)
    with pytest.raises(ModelFileError, match="not a readable gru4rec model file"):
        GRU4Rec.load(path)
    assert not marker.exists()


def test_save_into_missing_folder(fitted: GRU4Rec, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        fitted.save(tmp_path / "no" / "such" / "model.pt")
