"""Opportunistic request batching: each request gets its own result; load shares batches."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from service.batcher import Overloaded, RequestBatcher


def test_requests_arriving_during_a_batch_share_the_next_one() -> None:
    batches: list[list[int]] = []
    late: list[asyncio.Future[int]] = []

    async def scenario() -> list[int]:
        loop = asyncio.get_running_loop()

        def arrive(i: int) -> None:
            late.append(asyncio.ensure_future(batcher.submit(i)))

        async def work(items: Sequence[int]) -> list[int]:
            batches.append(list(items))
            if len(batches) == 1:  # five requests come in while the first batch runs
                for i in range(1, 6):
                    loop.call_soon(arrive, i)
            return [item * 10 for item in items]

        batcher: RequestBatcher[int, int] = RequestBatcher(work, max_batch=3)
        batcher.start()
        first = await batcher.submit(0)
        while len(late) < 5:
            await asyncio.sleep(0)
        rest = await asyncio.gather(*late)
        await batcher.stop()
        return [first, *rest]

    assert asyncio.run(scenario()) == [0, 10, 20, 30, 40, 50]
    assert batches == [[0], [1, 2, 3], [4, 5]]


def test_a_failing_batch_fails_each_of_its_requests_and_the_next_batch_runs() -> None:
    async def work(items: Sequence[int]) -> list[int]:
        if 13 in items:
            raise RuntimeError("state store unavailable")
        return list(items)

    async def scenario() -> int:
        batcher: RequestBatcher[int, int] = RequestBatcher(work)
        batcher.start()
        failing = [asyncio.ensure_future(batcher.submit(i)) for i in (12, 13)]
        for request in failing:
            with pytest.raises(RuntimeError, match="state store unavailable"):
                await request
        result = await batcher.submit(7)
        await batcher.stop()
        return result

    assert asyncio.run(scenario()) == 7


def test_a_request_that_gave_up_is_left_out_of_the_batch() -> None:
    seen: list[list[int]] = []

    async def work(items: Sequence[int]) -> list[int]:
        seen.append(list(items))
        return list(items)

    async def scenario() -> list[int]:
        batcher: RequestBatcher[int, int] = RequestBatcher(work)
        batcher.start()
        requests = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2, 3)]
        await asyncio.sleep(0)  # all three are queued
        requests[1].cancel()  # the client went away while its request waited
        results = [await requests[0], await requests[2]]
        await batcher.stop()
        return results

    assert asyncio.run(scenario()) == [1, 3]
    assert seen == [[1, 3]]


def test_a_request_beyond_the_waiting_bound_is_refused_at_once() -> None:
    """While a batch runs, two requests may wait; the third is told at once, and once the
    queue drains requests are taken again."""

    async def scenario() -> tuple[list[int], bool, int]:
        release = asyncio.Event()

        async def work(items: Sequence[int]) -> list[int]:
            await release.wait()
            return list(items)

        batcher: RequestBatcher[int, int] = RequestBatcher(work, max_batch=1, max_waiting=2)
        batcher.start()
        running = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.01)  # the first batch runs, waiting for release
        waiting = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0)
        try:
            await batcher.submit(3)
            refused = False
        except Overloaded:
            refused = True
        release.set()
        done = await asyncio.gather(running, *waiting)
        later = await batcher.submit(4)
        await batcher.stop()
        return done, refused, later

    assert asyncio.run(scenario()) == ([0, 1, 2], True, 4)
