"""How the state transport reads a batch's error replies: a call refused only because the call
before it on the same owner was refused (`spec.chain_link`) follows that call when it is sent
again, and never hides the error that caused it."""

from __future__ import annotations

import pytest
import redis

from streams.failures import Failure, classify
from streams.state.redis_store import ChainLinks
from streams.state.spec import CHAIN_REFUSED, chain_link
from streams.state.transport import _raise_first, _with_followers

ORDER = redis.ResponseError(f"{CHAIN_REFUSED} the call before this one in its batch did not ...")


def test_calls_refused_for_order_go_again_with_the_calls_they_wait_for() -> None:
    replies = [b"ok", redis.ResponseError("Function not found"), b"ok", ORDER, ORDER]
    assert _with_followers([1], replies) == [1, 3, 4]
    assert _with_followers([], replies) == []


def test_the_cause_is_raised_not_the_calls_that_waited_for_it() -> None:
    wrongtype = redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        _raise_first([b"ok", ORDER, wrongtype, ORDER])
    with pytest.raises(redis.ResponseError, match=CHAIN_REFUSED):
        _raise_first([b"ok", ORDER])
    assert _raise_first([b"ok", 1]) == [b"ok", 1]


def test_a_refusal_for_order_alone_is_retried() -> None:
    assert classify(ORDER) is Failure.TRANSIENT


def test_chain_links_pack_token_and_position_below_an_entitys_account_times() -> None:
    assert chain_link(3, 1) + 1 == chain_link(3, 2)
    assert chain_link(2**23 - 1, 2**16 - 1) < 900_000_000_000
    with pytest.raises(ValueError):
        chain_link(0, 1)
    with pytest.raises(ValueError):
        chain_link(1, 0)


def test_only_an_owner_with_several_calls_in_the_batch_is_chained() -> None:
    links = ChainLinks(["a:payer", "a:once", "a:payer", "e:ip:x"], chained=True)
    first = links.next("a:payer")
    assert links.next("a:once") == 0  # nothing after it in the batch waits for it
    assert links.next("a:payer") == first + 1
    assert links.next("e:ip:x") == 0
    assert first % 2**16 == 1


def test_a_dry_run_chains_nothing() -> None:
    links = ChainLinks(["a:payer", "a:payer"], chained=False)
    assert [links.next("a:payer"), links.next("a:payer")] == [0, 0]
