#!/usr/bin/env python3
"""Tansu: static members (group.instance.id) are never expired by the session
timeout when every member of the group is static, so a static member that goes
away (crash, or close(): static members never send LeaveGroup, KIP-345) stays
group leader forever and a static member with a *different* instance id never
gets an assignment.

Needs only kafka-python (tested with 3.0.12) and a running broker:

    python repro_static_member_expiry.py 127.0.0.1:9092 [--scenario stable|mid-join] [--wait 45]

  --scenario stable   (default) A (instance "a") joins, syncs and owns all
                      partitions, then closes (no LeaveGroup, as for any static
                      member).
  --scenario mid-join A closes while its first JoinGroup is still held by the
                      coordinator (A is elected leader but never syncs).
  Then B (instance "b") joins the same group and polls.

Expected (Apache Kafka): A is removed once session_timeout_ms (6 s) has passed
without a heartbeat and B owns all partitions after ~6-10 s.
Actual (Tansu 0.6.0 / nisshi HEAD): B's JoinGroup names A as leader forever,
B's SyncGroup answers REBALANCE_IN_PROGRESS forever -> FAIL.

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

SESSION_MS = 6000


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bootstrap", help="host:port of a running Tansu broker")
    p.add_argument("--scenario", choices=["stable", "mid-join"], default="stable")
    p.add_argument("--wait", type=float, default=45.0, help="seconds to wait for B (default 45)")
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )

    joins, names = [], {}
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

    def consumer(name, instance):
        c = KafkaConsumer(
            bootstrap_servers=args.bootstrap,
            group_id=group,
            client_id=name,
            group_instance_id=instance,
            enable_auto_commit=False,
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=2000,
            max_poll_interval_ms=SESSION_MS,
        )
        c.subscribe([topic])
        names[id(c._coordinator)] = name
        return c

    a = consumer("A", "a")
    t0 = time.monotonic()
    if args.scenario == "stable":
        while time.monotonic() - t0 < 30 and not a.assignment():
            a.poll(timeout_ms=200)
        assert a.assignment(), "A never got its partitions"
    else:
        while time.monotonic() - t0 < 1.0:
            a.poll(timeout_ms=100)
    print(
        f"A (instance 'a'): state={a._coordinator.state} assignment={len(a.assignment())} "
        f"partition(s) after {time.monotonic() - t0:.1f}s -> close() (static: no LeaveGroup)"
    )
    a.close(autocommit=False)

    b = consumer("B", "b")
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
        print(f"PASS: B (instance 'b') got {len(got)} partition(s) after {took:.1f}s")
        return 0
    print(
        f"FAIL: B (instance 'b') got no partitions in {took:.0f}s; "
        "departed static member A was never expired"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
