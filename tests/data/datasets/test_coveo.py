"""coveo recipe (RecSys 2023 protocol): a hand-made browsing_train.csv with known counts and
splits, and a differential test against the plain pandas rendering of the protocol in
conftest.py."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pandas as pd
import pytest

pl = pytest.importorskip("polars")

from gru4rec.data.datasets import run_recipe  # noqa: E402

H_MS, D_MS = 3_600_000, 86_400_000


# Session hashes sa..sg, SKU hashes x (9 events), y (7), z (1), w (5, only in test). sa's
# second view is exactly 1 h after the first (same session), its third 1 h + 1 ms after the
# second (new session). Pageviews, add events and a detail without SKU are dropped; sb's two
# y views collapse. The header spells the product column product_skus_hash.
_C0 = 1_550_000_000_000


def _coveo_text() -> str:
    rows = [
        ("sa", "event_product", "detail", "x", _C0), ("sa", "event_product", "detail", "y",
                                                       _C0 + H_MS),
        ("sa", "event_product", "detail", "x", _C0 + 2 * H_MS + 1),
        ("sa", "event_product", "detail", "y", _C0 + 2 * H_MS + 100_001),
        ("sb", "pageview", "", "", _C0 + 10_000), ("sb", "event_product", "detail", "x",
                                                    _C0 + 20_000),
        ("sb", "event_product", "add", "y", _C0 + 30_000),
        ("sb", "event_product", "detail", "", _C0 + 35_000),
        ("sb", "event_product", "detail", "y", _C0 + 40_000),
        ("sb", "event_product", "detail", "y", _C0 + 50_000),
        ("sc", "event_product", "detail", "z", _C0 + 60_000),
        *[("sd", "event_product", "detail", s, _C0 + D_MS + k * 1000)
          for k, s in enumerate("xyx", 1)],
        *[("se", "event_product", "detail", s, _C0 + 2 * D_MS + k * 1000)
          for k, s in enumerate("xyw", 1)],
        *[("sf", "event_product", "detail", s, _C0 + 2 * D_MS + 10_000 + k * 1000)
          for k, s in enumerate("wxwywxw")],
        ("sg", "event_product", "detail", "x", _C0 + 3 * D_MS - 60_000),
        ("sg", "event_product", "detail", "y", _C0 + 3 * D_MS),
    ]
    lines = ["session_id_hash,event_type,product_action,product_skus_hash,"
             "server_timestamp_epoch_ms,hashed_url"]
    lines += [f"{s},{e},{a},{i},{t},u{n}" for n, (s, e, a, i, t) in enumerate(rows)]
    return "\n".join(lines) + "\n"


def test_coveo_known_answer(run_raw, steps, sessions, split_steps) -> None:
    report = run_raw("coveo", browsing_train__csv=_coveo_text())
    assert steps(report) == [
        ("view events", 23, 7, 4), ("sessions (1 hour gap)", 23, 8, 4),
        ("consecutive repeats removed", 22, 8, 4),
        ("round 1: sessions >= 2", 21, 7, 3), ("round 1: items >= 5", 21, 7, 3),
        ("round 2: sessions >= 2", 21, 7, 3), ("round 2: items >= 5", 21, 7, 3),
        *zip(split_steps, [12, 9, 7, 3, 6, 3], [3, 4, 3, 1, 3, 1], [3, 2, 2, 2, 2, 2],
             strict=True),
    ]
    assert report.cuts["end"] == _C0 + 3 * D_MS
    assert sessions(report, "train_full") == [["x", "y"], ["x", "y"], ["x", "y"],
                                               ["x", "y", "x"]]
    assert report.frames["train_full"]["SessionId"].unique().to_list() == [1, 2, 3, 5]
    assert sessions(report, "test") == [["x", "y"], ["x", "y", "x"], ["x", "y"]]
    assert sessions(report, "train_tr") == [["x", "y"], ["x", "y"], ["x", "y"]]
    assert sessions(report, "train_valid") == [["x", "y", "x"]]
    assert report.frames["train_full"].rows()[1] == (1, "y", _C0 + H_MS)


def test_coveo_matches_reference(tmp_path, random_events, reference_protocol, reference_sessions,
                                 check_splits) -> None:
    ev = random_events(3, _C0, 4)
    action = np.where(ev["kind"] == "view", "detail", "add")
    text = ("session_id_hash,event_type,product_action,product_sku_hash,"
            "server_timestamp_epoch_ms,hashed_url\n" + "".join(
                f"h{u:04x},event_product,{a},sku{i:02x},{t},url\n"
                for u, a, i, t in zip(ev["user"], action, ev["item"], ev["ms"], strict=True)))
    path = tmp_path / "browsing_train.csv"
    path.write_text(text)
    raw = pd.read_csv(StringIO(text))
    raw = raw[raw["product_action"] == "detail"]
    data = pd.DataFrame({"user": raw["session_id_hash"], "ItemId": raw["product_sku_hash"],
                         "Time": raw["server_timestamp_epoch_ms"]})
    expected = reference_protocol(reference_sessions(data, "user", H_MS), None, D_MS)
    check_splits(run_recipe("coveo", [path]).frames, expected)
