"""Every account and entity applies a batch's transfers in batch order, even when Redis refuses
some calls of a pipeline and accepts later ones (a refusal that clears while Redis still works
through the pipeline): the later calls on the same owner are refused too (`spec.chain_link`),
and the batch sent again ends exactly as an undisturbed one. Calls refused because another
writer came between them go again without failing the batch."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal

import msgspec
import pytest
import redis
from prometheus_client import REGISTRY
from redis.connection import Connection

from models.events import Transfer
from streams.metrics import count_state_resends
from streams.state import spec
from streams.state.base import EntityHasher
from streams.state.pipelines import AnyRedis
from streams.state.redis_store import PendingFacts, RedisStateStore
from streams.state.spec import CHAIN_REFUSED
from streams.state.transport import packed
from tests.integration.harness import comparable, redis_dump

BASE_MS = 1772374503000
RESENT = "fraudwatch_state_calls_resent_total"
ACCOUNTS = [f"A{i}" for i in range(12)]


def _batch(seed: int, count: int) -> list[Transfer]:
    """Transfers among a few accounts and devices: every owner appears many times."""
    rng = random.Random(seed)
    events = []
    for i in range(count):
        src, dst = rng.sample(ACCOUNTS, 2)
        amount = rng.randint(100, 10**6)
        events.append(Transfer(
            transfer_id=f"t{seed}-{i}", ts="-", ts_ms=BASE_MS + i * 7_000, utc_offset_min=480,
            src_account=src, dst_account=dst, amount=Decimal(amount) / 100,
            amount_minor=amount, currency="CNY", device_id=rng.choice([None, "d1", "d2"]),
        ))  # fmt: skip
    return events


def _undisturbed(client: redis.Redis, batch: list[Transfer]) -> dict[bytes, object]:
    """The state one undisturbed application of the batch leaves (in database 1)."""
    reference = redis.Redis(connection_pool=redis.ConnectionPool(
        **{**client.connection_pool.connection_kwargs, "db": 1}))  # fmt: skip
    reference.flushdb()
    RedisStateStore(reference, EntityHasher("order")).apply_transfers(batch)
    dump = comparable(redis_dump(reference))
    reference.flushdb()
    return dump


def _replies(client: redis.Redis, commands: Sequence[tuple[object, ...]]) -> list[object]:
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(pipe.execute(raise_on_error=False))


def _refused_for_order(reply: object) -> bool:
    return isinstance(reply, redis.ResponseError) and str(reply).startswith(CHAIN_REFUSED)


def test_a_call_after_a_failed_one_on_the_same_account_is_refused_and_writes_nothing(
    redis_client: redis.Redis,
) -> None:
    store = RedisStateStore(redis_client, EntityHasher("order"))
    batch = _batch(seed=1, count=40)
    expected = _undisturbed(redis_client, batch)
    store.load_functions()

    # The first transfer's payer call fails (an amount that is not a number), before it writes.
    commands = list(store.prepare_transfers(batch).commands)
    first_payer = 1  # after the observation start's SET
    broken = list(commands[first_payer])
    broken[8] = "not-a-number"
    commands[first_payer] = tuple(broken)
    payer = batch[0].src_account
    later = [i for i, c in enumerate(commands) if i > first_payer and c[0] == "FCALL"
             and f"{{a:{payer}}}" in str(c[3])]  # fmt: skip
    replies = _replies(redis_client, commands)

    assert isinstance(replies[first_payer], redis.ResponseError)
    assert not _refused_for_order(replies[first_payer])
    assert later and all(_refused_for_order(replies[i]) for i in later)
    others = [r for i, r in enumerate(replies) if i != first_payer and i not in later]
    assert not any(isinstance(r, redis.ResponseError) for r in others)

    # Sent again whole, the batch ends as if nothing had gone wrong.
    store.apply_transfers(batch)
    assert comparable(redis_dump(redis_client)) == expected


def test_writes_refused_then_accepted_mid_pipeline_leave_every_owner_in_batch_order(
    redis_client: redis.Redis,
) -> None:
    """Redis refuses writes (out of memory) for the first half of a batch's pipeline and
    accepts them again for the second half, as when memory is freed while Redis works through
    the pipeline: no call of the second half on an owner that a refused call touched may run,
    and the batch sent again ends exactly as an undisturbed one."""
    store = RedisStateStore(redis_client, EntityHasher("order"))
    batch = _batch(seed=2, count=200)
    # Last, two accounts of their own: their calls, the only ones on their owners, must run
    # once Redis accepts writes again.
    batch.append(msgspec.structs.replace(
        batch[-1], transfer_id="t2-fresh", src_account="fresh-payer", dst_account="fresh-payee",
        ts_ms=batch[-1].ts_ms + 7_000, device_id=None,
    ))  # fmt: skip
    expected = _undisturbed(redis_client, batch)
    store.load_functions()
    commands = list(store.prepare_transfers(batch).commands)
    half = len(commands) // 2

    connection = redis_client.connection_pool.get_connection()
    try:
        redis_client.config_set("maxmemory", 1)
        connection.send_packed_command([packed(commands[:half])], check_health=False)
        first = [_reply(connection) for _ in range(half)]
        redis_client.config_set("maxmemory", 0)
        connection.send_packed_command([packed(commands[half:])], check_health=False)
        second = [_reply(connection) for _ in range(len(commands) - half)]
    finally:
        redis_client.config_set("maxmemory", 0)
        redis_client.connection_pool.release(connection)

    assert all(isinstance(r, redis.exceptions.OutOfMemoryError) for r in first)
    assert any(_refused_for_order(r) for r in second)
    assert any(not isinstance(r, redis.ResponseError) for r in second)
    store.apply_transfers(batch)
    assert comparable(redis_dump(redis_client)) == expected


@pytest.mark.parametrize("target", ["redis_client", "cluster_client"])
def test_another_writer_between_a_batchs_calls_on_one_owner_costs_no_retry(
    target: str, redis_client: redis.Redis, request: pytest.FixtureRequest
) -> None:
    """Another worker's call on a shared payee or device lands between two calls of this
    batch on it (as two workers' pipelines interleave): the later call is refused for order,
    but the transport runs the owner's calls again from its first instead of failing the
    batch, on one Redis and on a cluster. Facts, first-delivery flags and state end as in an
    undisturbed run."""
    batch = _batch(seed=3, count=60)
    expected_state = _undisturbed(redis_client, batch)
    expected_facts = RedisStateStore(redis_client, EntityHasher("order")).apply_transfers(batch)
    client: AnyRedis = request.getfixturevalue(target)
    client.flushdb()

    store = RedisStateStore(client, EntityHasher("order"), on_resend=count_state_resends)
    store.load_functions()
    store.claim_transfer_ids(batch)
    commands = list(store.prepare_transfers(batch).commands)
    # Another writer's chain link, written into each owner's chain after the batch's first
    # third of calls: the owners' later calls in the batch are refused for order.
    foreign = spec.chain_link(spec.CHAIN_TOKENS - 1, 1)
    third = len(commands) // 3
    owners = {str(c[3]) for c in commands[1:third] if c[0] == "FCALL"}
    writes = [
        ("ZADD", owner, foreign, spec.ENTITY_CHAIN) if "{e:" in owner
        else ("HSET", owner[:-1] + "m", spec.META_FIELDS["chain"], foreign)
        for owner in sorted(owners)
    ]  # fmt: skip
    disturbed = [*commands[:third], *writes, *commands[third:]]
    if target == "redis_client":  # (the refusals themselves, seen without the transport)
        assert any(_refused_for_order(r) for r in _replies(redis_client, disturbed))
        redis_client.flushdb()
        store.load_functions()
        store.claim_transfer_ids(batch)

    resent_before = REGISTRY.get_sample_value(RESENT, {"reason": "another_writer"}) or 0
    replies = store.transport.send(disturbed).replies()
    facts = PendingFacts.facts(store._calls(batch, dry=False)[1], [
        r for i, r in enumerate(replies) if not third <= i < third + len(writes)
    ])  # fmt: skip

    resent = REGISTRY.get_sample_value(RESENT, {"reason": "another_writer"})
    assert resent is not None and resent > resent_before
    assert facts == expected_facts
    assert all(f.first_delivery for f in facts)
    assert comparable(redis_dump(client)) == expected_state


def _reply(connection: Connection) -> object:
    try:
        return connection.read_response()
    except redis.ResponseError as error:
        return error
