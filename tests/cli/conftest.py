"""Fixtures of the CLI tests: one torch thread, and tiny synthetic train/test files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gru4rec.data.events import Events
from gru4rec.data.synthetic import make_sessions, train_test_split_last


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module (``pytestmark = pytest.mark.usefixtures(...)``).

    Tiny models: a second thread only adds waiting, and on a busy machine a lot of it.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _write_tsv(path: Path, events: Events) -> Path:
    lines = ["SessionId\tItemId\tTime"]
    lines += [f"{s}\t{i}\t{t!r}" for s, i, t in
              zip(events.session.tolist(), events.item.tolist(), events.time.tolist(),
                  strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """train.tsv, test.tsv and test_unknown.tsv (test plus one event of an unseen item)."""
    folder = tmp_path_factory.mktemp("cli_data")
    train, test = train_test_split_last(make_sessions(40, 150, seed=3), test_fraction=0.2)
    unknown = Events(session=np.r_[test.session[:1], test.session],
                     item=np.r_[np.array([7], dtype=np.int64), test.item],
                     time=np.r_[test.time[:1] - 1.0, test.time])
    return {"train": _write_tsv(folder / "train.tsv", train),
            "test": _write_tsv(folder / "test.tsv", test),
            "test_unknown": _write_tsv(folder / "test_unknown.tsv", unknown),
            "folder": folder}
