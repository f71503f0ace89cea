"""Opportunistic request batching: each request gets its own result; load shares batches."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from service.batcher import RequestBatcher


def test_requests_arriving_during_a_batch_share_the_next_one() -> None:
    release = threading.Event()
    batches: list[list[int]] = []

    def work(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            release.wait(5)  # the first batch is slow: the others queue behind it
        return [item * 10 for item in items]

    async def scenario() -> list[int]:
        batcher: RequestBatcher[int, int] = RequestBatcher(work, max_batch=3)
        batcher.start()
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        release.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return results

    assert asyncio.run(scenario()) == [0, 10, 20, 30, 40, 50]
    assert batches == [[0], [1, 2, 3], [4, 5]]


def test_a_failing_batch_fails_each_of_its_requests_and_the_next_batch_runs() -> None:
    def work(items: Sequence[int]) -> list[int]:
        if 13 in items:
            raise RuntimeError("state store unavailable")
        return list(items)

    async def scenario() -> int:
        batcher: RequestBatcher[int, int] = RequestBatcher(work)
        batcher.start()
        with pytest.raises(RuntimeError, match="state store unavailable"):
            await batcher.submit(13)
        result = await batcher.submit(7)
        await batcher.stop()
        return result

    assert asyncio.run(scenario()) == 7


def test_a_request_that_gave_up_is_left_out_of_the_batch() -> None:
    seen: list[list[int]] = []
    gate = threading.Event()

    def work(items: Sequence[int]) -> list[int]:
        seen.append(list(items))
        gate.wait(5)
        return list(items)

    async def scenario() -> int:
        batcher: RequestBatcher[int, int] = RequestBatcher(work)
        batcher.start()
        blocker = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.05)
        abandoned = asyncio.create_task(batcher.submit(2))
        kept = asyncio.create_task(batcher.submit(3))
        await asyncio.sleep(0.01)
        abandoned.cancel()  # the client went away while its request waited
        gate.set()
        await blocker
        result = await kept
        await batcher.stop()
        return result

    assert asyncio.run(scenario()) == 3
    assert seen == [[1], [3]]
