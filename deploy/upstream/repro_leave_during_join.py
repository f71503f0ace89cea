#!/usr/bin/env python3
"""Tansu: a LeaveGroup from a member that was just elected leader of a *forming*
group (JoinGroup answered, SyncGroup not yet sent) leaves the group leaderless
forever: every later JoinGroup names the departed member as leader, and every
follower SyncGroup answers REBALANCE_IN_PROGRESS.

Needs only kafka-python (tested with 3.0.12) and a running broker:

    python repro_leave_during_join.py 127.0.0.1:9092 [--wait 45]

Steps
  1. consumer A (dynamic member) subscribes and polls; its JoinGroup is held by
     the coordinator for the rebalance delay (session_timeout_ms / 2 = 3 s here).
  2. while that JoinGroup is in flight, A.close() sends LeaveGroup (kafka-python
     does this whenever it has a member id). Tansu answers the JoinGroup first
     (A = leader, generation 0) and then the LeaveGroup (success).
  3. consumer B joins the same group and polls.

Expected (Apache Kafka): B becomes leader and owns all partitions within a few
seconds.  Actual (Tansu 0.6.0 / nisshi HEAD): B's JoinGroup names A's member id
as leader forever and B never gets an assignment -> FAIL.

Exit status: 0 = PASS, 1 = FAIL.
"""

import argparse
import logging
import sys
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic
from kafka.coordinator.base import BaseCoordinator
from kafka.structs import MemberState

SESSION_MS = 6000  # keeps the coordinator's join delay (session/2) at 3 s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bootstrap", help="host:port of a running Tansu broker")
    p.add_argument("--wait", type=float, default=45.0, help="seconds to wait for B (default 45)")
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )

    # Record what each JoinGroup response says (leader / generation), for the report.
    joins = []
    names = {}  # id(coordinator) -> "A" / "B"
    orig = BaseCoordinator._process_join_group_response

    def spy(self, response, send_time):
        joins.append(
            (
                names.get(id(self), "?"),
                response.error_code,
                response.generation_id,
                response.member_id,
                response.leader,
            )
        )
        return orig(self, response, send_time)

    BaseCoordinator._process_join_group_response = spy

    suffix = uuid.uuid4().hex[:8]
    topic, group = f"repro-t-{suffix}", f"repro-g-{suffix}"
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    admin.create_topics([NewTopic(topic, args.partitions, 1)])
    admin.close()

    def consumer(name):
        c = KafkaConsumer(
            bootstrap_servers=args.bootstrap,
            group_id=group,
            client_id=name,
            enable_auto_commit=False,
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=2000,
            max_poll_interval_ms=SESSION_MS,
        )
        c.subscribe([topic])
        names[id(c._coordinator)] = name
        return c

    # 1. A starts joining; stop polling once its (second, member-id-carrying)
    #    JoinGroup is in flight, i.e. while the coordinator holds it.
    a = consumer("A")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        a.poll(timeout_ms=100)
    coord = a._coordinator
    print(
        f"A: state={coord.state} member_id={coord._generation.member_id!r} "
        f"assignment={a.assignment()} -> close() (LeaveGroup while JoinGroup in flight)"
    )
    assert coord.state is MemberState.REBALANCING, "A already finished joining; broker too fast?"
    # 2. close() sends LeaveGroup; Tansu answers the pending JoinGroup first.
    a.close(autocommit=False)

    # 3. B joins the same group.
    b = consumer("B")
    t0 = time.monotonic()
    while time.monotonic() - t0 < args.wait and not b.assignment():
        b.poll(timeout_ms=200)
    took = time.monotonic() - t0
    got = b.assignment()
    b.close(autocommit=False)

    for client, err, gen, member, leader in joins:
        if err == 0:
            print(f"JoinGroup answer to {client}: generation={gen} member={member} leader={leader}")
    if got:
        print(f"PASS: B got {len(got)} partition(s) after {took:.1f}s")
        return 0
    print(f"FAIL: B got no partitions in {took:.0f}s; the group is stuck with a departed leader")
    return 1


if __name__ == "__main__":
    sys.exit(main())
