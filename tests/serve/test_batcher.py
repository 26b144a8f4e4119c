"""Micro-batching of the events endpoint (gru4rec.serve.batcher)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from gru4rec.serve.batcher import Batcher  # noqa: E402


@pytest.fixture(scope="module")
def model(make_model):
    return make_model(30, layers=(12, 10))


def test_concurrent_events_share_one_step_and_keep_their_order(model) -> None:
    tracker = model.session_tracker()
    calls = []
    real_step = tracker.step

    def counting_step(*args: object, **kwargs: object):
        calls.append(len(args[0]))
        return real_step(*args, **kwargs)

    tracker.step = counting_step
    batcher = Batcher(tracker)
    events = [("a", 101, 3), ("b", 105, 5), ("a", 102, 4), ("a", 103, 3)]

    async def go() -> list:
        return await asyncio.gather(*(batcher.step(s, i, k, False) for s, i, k in events))

    results = asyncio.run(go())
    assert calls == [4]  # one batched step
    want = model.recommend([[101], [105], [101, 102], [101, 102, 103]], k=5)
    for (items, scores, _, unknown), (_, _, k), row in zip(results, events, range(4),
                                                                strict=True):
        assert len(items) == k and not unknown
        np.testing.assert_allclose(scores, want.scores[row, :k], atol=1e-5)
    assert [r[2] for r in results] == [1, 1, 2, 3]
