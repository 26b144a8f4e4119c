"""Micro-batching of the events endpoint (gru4rec.serve.batcher)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from gru4rec.serve.batcher import Batcher  # noqa: E402


@pytest.fixture(scope="module")
def model(make_model):
    return make_model(30, layers=(12, 10))


@pytest.mark.parametrize("threaded", [False, True])
def test_concurrent_events_share_one_step_and_keep_their_order(model, threaded: bool) -> None:
    tracker = model.session_tracker()
    calls = []
    real_step = tracker.step

    def counting_step(*args: object, **kwargs: object):
        calls.append(len(args[0]))
        return real_step(*args, **kwargs)

    tracker.step = counting_step
    batcher = Batcher(tracker, executor=ThreadPoolExecutor(1) if threaded else None)
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


def test_events_that_arrive_while_a_batch_runs_form_the_next_batch(model) -> None:
    tracker = model.session_tracker()
    calls, release = [], threading.Event()
    real_step = tracker.step

    def slow_step(*args: object, **kwargs: object):
        calls.append(list(args[1]))
        release.wait(5)  # the first batch is still running while more events come
        return real_step(*args, **kwargs)

    tracker.step = slow_step
    batcher = Batcher(tracker, max_batch=2, executor=ThreadPoolExecutor(1))

    async def go() -> list:
        first = asyncio.ensure_future(batcher.step("a", 101, 3, False))
        await asyncio.sleep(0.05)  # the batch of 101 is running in the model thread
        later = [asyncio.ensure_future(batcher.step("a", i, 3, False)) for i in (102, 103, 104)]
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.gather(first, *later)

    results = asyncio.run(go())
    assert calls == [[101], [102, 103], [104]]  # in order, at most max_batch per step
    assert [r[2] for r in results] == [1, 2, 3, 4]
    want = model.recommend([[101, 102, 103, 104]], k=3)
    np.testing.assert_allclose(results[-1][1], want.scores[0], atol=1e-5)


def test_a_failed_batch_fails_its_requests_only(model) -> None:
    tracker = model.session_tracker()
    real_step = tracker.step

    def flaky(*args: object, **kwargs: object):
        if 666 in args[1]:
            raise RuntimeError("boom")
        return real_step(*args, **kwargs)

    tracker.step = flaky
    batcher = Batcher(tracker, max_batch=1, executor=ThreadPoolExecutor(1))

    async def go() -> list:
        return await asyncio.gather(*(batcher.step("a", i, 3, False) for i in (101, 666, 102)),
                                    return_exceptions=True)

    ok, bad, after = asyncio.run(go())
    assert isinstance(bad, RuntimeError) and ok[2] == 1 and after[2] == 2
