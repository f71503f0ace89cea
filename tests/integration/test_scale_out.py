"""Scale-out: K workers in one consumer group end where one worker ends.

One worker (the baseline) and then groups of 2 and 3 workers (a third joins mid-stream; one of
three leaves on SIGTERM; one of three is SIGKILLed) consume the same simulated traffic from a
topic of P = 3 partitions, each run in its own consumer group and its own Redis database. Every
run must end with exactly the baseline's state (per-transfer facts caches, alerts and the
alert marks that follow them aside), with every transfer applied once, and must raise the
baseline's alerts except where a feature that spans partitions sees another interleaving at a
window's edge: that overlap is measured
(|A ∩ B| / |A ∪ B| of alerted transfer ids, also before and after the change) and must be at
least 99 %. `pytest -s` prints it, with the cached facts behind every differing alert.

How the runs are made realistic:
- Input: four 1,000-account simulator days merged (seeds 1, 4, 7, 10), hours 08:00-12:00,
  where their fraud rings are busiest: ~1,700 transfers, ~500 alerts (rules and the model),
  keyed by `src_account`; profiles of the accounts involved first.
- Paced in event time: live traffic reaches every partition at once in event-time order, so
  the test produces while the workers run, 90 s of event time per tick of at least 25 ms, and
  never more than one tick ahead of the group's commits: partitions stay within ~3 event
  minutes of each other, however loaded the machine. A pre-loaded topic lets each worker race
  through its partitions hours of event time apart (and an open-loop pace does the same when
  a worker falls a second behind): fan-in features then see interleavings production never
  shows, and the overlap says nothing.
- Membership changes freeze the event clock: production pauses until the group has
  rebalanced and committed everything sent so far. A rebalance takes the broker seconds, which
  in production are seconds of traffic; at this pace they would be hours.
- Workers are threads (`worker_thread`): each has its own Kafka consumer and producer and
  Redis client, so the group protocol, partition ownership and commits are those of separate
  processes, without paying a process start (seconds under load) per worker on a shared
  2-core machine. The worker that leaves on SIGTERM or dies on SIGKILL is a real
  `fraudwatch worker` process, since signals are what is under test there.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import orjson
import pytest
import redis
from kafka import KafkaAdminClient, KafkaProducer

from loadtest.kafka_tools import PartitionCounter, Produced, committed_total
from models.events import parse_transfer
from models.simulator import SimulationConfig, simulate
from service import wiring
from service.settings import Settings
from streams.batch import BatchProcessor, MemoryAlertSink, Message
from streams.state import spec
from streams.state.base import EntityHasher
from streams.state.keys import OBSERVED_SINCE_KEY
from streams.state.memory import MemoryStateStore
from streams.state.redis_store import payee_facts, payer_facts
from streams.topics import ensure_topics
from streams.worker import Worker
from tests.integration.conftest import TEST_API_KEY, SettingsFactory, TopicFactory
from tests.integration.harness import (
    CLAIMS_PREFIX,
    redis_dump_pipelined,
    start_worker_process_as_configured,
    wait_for,
    without_chain_link,
    worker_thread,
)

PARTITIONS = 3
SEEDS = (1, 4, 7, 10)
ACCOUNTS = 1000
HOURS = (8, 12)
# Fraud-rich (real prevalence is far lower): many alerts on cross-partition features.
FRAUD_SHARE = 0.2
TICK_S = 0.025
EVENT_MS_PER_TICK = 90_000
MIN_OVERLAP = 0.99
BASELINE_DB = 2
MS_PER_HOUR = 3_600_000

# An account's meta hash: the facts it gave each transfer are fields `>tid` / `<tid`.
_ACCOUNT_META = re.compile(rb"^fw:\{a:[^}]*\}:m$")
_PAYER_FACTS = spec.PAYER_SIDE.facts_prefix.encode()
_PAYEE_FACTS = spec.PAYEE_SIDE.facts_prefix.encode()
_TAINT = spec.META_FIELDS["taint"].encode()
# A device's, phone's or IP's sorted set: its per-transfer facts are members `f<tid>`.
_ENTITY_SET = re.compile(rb"^fw:\{e:([^:}]*):[^}]*\}:w$")
_ALERTS = b"fw:{al}:"
_ALERT_BODY = b"fw:{al}:a:"


@dataclass(frozen=True)
class Traffic:
    """Profiles, then transfers in delivery order with the tick of event time they go in."""

    profiles: list[tuple[bytes, bytes]]
    transfers: list[tuple[int, bytes, bytes]]  # (tick, key, value)
    ticks: int
    first_half: frozenset[str]  # transfer ids sent before the midway tick

    @property
    def midway(self) -> int:
        """The tick before which membership changes."""
        return self.ticks // 2


@dataclass(frozen=True)
class Scenario:
    """Worker threads from the start, and what happens mid-stream."""

    name: str
    threads: int
    change: str | None = None  # "join", "sigterm" or "sigkill"


@dataclass
class Outcome:
    """What a run left in Redis, split the way the comparison needs it."""

    state: dict[bytes, object]
    facts: dict[tuple[str, str], object]  # (transfer id, payer|payee|entity kind) -> cached facts
    alerts: dict[str, list[str]]  # alerted transfer id -> rules of its reasons
    payer_facts: int
    payee_facts: int
    seconds: float
    timeline: str


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The configured model, copied once so that every run scores with the same one; empty
    (rules alone) when there is none."""
    field = Settings.model_fields.get("model_path")
    source = getattr(field, "default", None)
    if source is None or not Path(source).exists():
        return ""
    from models.registry import metadata_path

    target = tmp_path_factory.mktemp("scale-out-model") / Path(source).name
    shutil.copy2(metadata_path(Path(source)), metadata_path(target))
    shutil.copy2(source, target)
    return str(target)


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    """Merged simulator days, sliced to their busiest fraud hours."""
    profiles: list[tuple[bytes, bytes]] = []
    rows: list[tuple[int, int, int, bytes, bytes]] = []
    for n, seed in enumerate(SEEDS):
        sim = simulate(
            SimulationConfig(seed=seed, accounts=ACCOUNTS, days=1, fraud_share=FRAUD_SHARE)
        )
        low, high = (sim.config.start_ms + h * MS_PER_HOUR for h in HOURS)
        clock = 0
        for position, transfer in enumerate(sim.transfers):
            value = orjson.dumps(transfer)
            ts = parse_transfer(value).ts_ms
            if low <= ts < high:
                clock = max(clock, ts)  # a late event is delivered when its stream is at `clock`
                rows.append((clock, n, position, str(transfer["src_account"]).encode(), value))
        profiles += [(str(p["account_id"]).encode(), orjson.dumps(p)) for p in sim.accounts]
    seen = {row[3] for row in rows} | {orjson.loads(row[4])["dst_account"].encode() for row in rows}
    profiles = [(key, value) for key, value in profiles if key in seen]
    rows.sort()
    start = rows[0][0]
    transfers = [
        ((clock - start) // EVENT_MS_PER_TICK, key, value) for clock, *_, key, value in rows
    ]
    ticks = transfers[-1][0] + 1
    first_half = frozenset(
        orjson.loads(value)["transfer_id"] for tick, _, value in transfers if tick < ticks // 2
    )
    return Traffic(profiles, transfers, ticks, first_half)


def _producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)


def _produce_profiles(bootstrap: str, topic: str, traffic: Traffic) -> Produced:
    producer, counter = _producer(bootstrap), PartitionCounter(topic)
    try:
        for key, value in traffic.profiles:
            counter.send(producer, key, value)
        producer.flush()
    finally:
        producer.close()
    counter.raise_failures()
    return counter.produced


def _produce_paced(
    bootstrap: str,
    topic: str,
    traffic: Traffic,
    done: Callable[[Produced], bool],
    midway: Callable[[Produced], None] | None,
) -> Produced:
    """Send each tick's share of event time, at most one tick per `TICK_S` and never more than
    one tick ahead of the group's commits (`done(sent)`: everything in `sent` committed), so
    no partition's event time runs ahead of another's by more than two ticks; `midway` runs
    halfway, with what has been sent, while the event clock stands still."""
    ticks: dict[int, list[tuple[bytes, bytes]]] = {}
    for tick, key, value in traffic.transfers:
        ticks.setdefault(tick, []).append((key, value))
    producer, counter = _producer(bootstrap), PartitionCounter(topic)
    previous = Produced(topic)
    try:
        for tick in range(traffic.ticks):
            next_tick = time.monotonic() + TICK_S
            if midway is not None and tick == traffic.midway:
                midway(counter.produced)
            _await(partial(done, previous), f"tick {tick - 2} committed")
            previous = Produced(topic, dict(counter.produced.per_partition))
            for key, value in ticks.get(tick, []):
                counter.send(producer, key, value)
            producer.flush()
            counter.raise_failures()
            time.sleep(max(0.0, next_tick - time.monotonic()))
    finally:
        producer.close()
    return counter.produced


def _await(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """`wait_for` with a short poll, for waits measured in milliseconds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.003)


def _owned(workers: list[Worker], topic: str) -> list[set[int]]:
    """The transfer partitions each worker thread holds right now."""
    return [
        {tp.partition for tp in worker.consumer.assignment() if tp.topic == topic}
        for worker in workers
    ]


def _settled(workers: list[Worker], topic: str, hidden: int) -> bool:
    """True when the thread workers hold what a group of them plus `hidden` process
    workers is assigned: everything between them, or a 1/members share each."""
    owned = _owned(workers, topic)
    if hidden:
        share = PARTITIONS // (len(workers) + hidden)
        return all(len(parts) == share for parts in owned)
    held = [p for parts in owned for p in parts]
    return all(owned) and sorted(held) == list(range(PARTITIONS))


def _committed(admin: KafkaAdminClient, group: str, produced: Produced) -> bool:
    return not produced.per_partition or committed_total(admin, group, produced) == produced.total


@contextlib.contextmanager
def _admin(bootstrap: str) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        yield admin
    finally:
        admin.close()


def _run(
    settings: Settings, client: redis.Redis, traffic: Traffic, scenario: Scenario, log: Path
) -> Outcome:
    """One run: start the workers, wait for the group, pace the traffic, drain, dump Redis."""
    began = time.monotonic()
    marks: list[str] = []

    def mark(what: str) -> None:
        marks.append(f"{what} {time.monotonic() - began:.1f} s")

    topic, group = settings.topic_transfers, settings.consumer_group
    bootstrap = settings.kafka_bootstrap
    assert bootstrap is not None
    process: subprocess.Popen[bytes] | None = None
    with contextlib.ExitStack() as stack, _admin(bootstrap) as admin:
        workers = [stack.enter_context(worker_thread(settings)) for _ in range(scenario.threads)]
        # Built (rules, model, clients) up front: midway costs only the group's rebalance.
        joiner = wiring.build_worker(settings) if scenario.change == "join" else None
        if scenario.change in ("sigterm", "sigkill"):
            process = start_worker_process_as_configured(settings, log)
            stack.callback(_stop_process, process)
        hidden = 1 if process is not None else 0
        profiles = _produce_profiles(bootstrap, settings.topic_accounts, traffic)
        wait_for(
            lambda: _settled(workers, topic, hidden) and _committed(admin, group, profiles),
            timeout_s=90,
            what=f"{scenario.name}: group assigned and profiles consumed",
        )
        mark("group ready")

        def midway(sent: Produced) -> None:
            nonlocal hidden
            mark("change")
            if joiner is not None:
                workers.append(stack.enter_context(_started(joiner)))
            elif process is not None:
                kill = signal.SIGTERM if scenario.change == "sigterm" else signal.SIGKILL
                process.send_signal(kill)
                assert process.wait(timeout=30) == (0 if kill == signal.SIGTERM else -kill)
                hidden = 0
            wait_for(
                lambda: _settled(workers, topic, hidden) and _committed(admin, group, sent),
                timeout_s=60,
                what=f"{scenario.name}: group settled after the change",
            )
            mark("settled")

        produced = _produce_paced(
            bootstrap,
            topic,
            traffic,
            lambda sent: _committed(admin, group, sent),
            midway if scenario.change else None,
        )
        assert produced.total == len(traffic.transfers)
        wait_for(
            lambda: _committed(admin, group, produced),
            timeout_s=60,
            what=f"{scenario.name}: every transfer committed",
        )
        mark("all committed")
    return _outcome(redis_dump_pipelined(client), time.monotonic() - began, ", ".join(marks))


@contextlib.contextmanager
def _started(worker: Worker) -> Iterator[Worker]:
    """Run an already built worker in a thread until the block ends (as `worker_thread`)."""
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "worker did not stop"


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _outcome(dump: dict[bytes, object], seconds: float, timeline: str) -> Outcome:
    state: dict[bytes, object] = {}
    facts: dict[tuple[str, str], object] = {}
    alerts: dict[str, list[str]] = {}
    payer = payee = 0
    for key, value in dump.items():
        if key == OBSERVED_SINCE_KEY.encode():
            # The first transfer any worker applies: like the cross-partition features, it
            # depends on which partition is read first (README, Scaling out).
            continue
        if key.startswith(CLAIMS_PREFIX):
            continue  # the workers' partition claims, named after their group
        if key.startswith(_ALERTS):
            if key.startswith(_ALERT_BODY) and isinstance(value, bytes):
                body = orjson.loads(value)
                alerts[body["transfer_id"]] = [r["rule"] for r in body["reasons"]]
        elif _ACCOUNT_META.match(key) and isinstance(value, dict):
            rest = {}
            for name, stored in value.items():
                if name.startswith(_PAYER_FACTS):
                    payer += 1
                    facts[(name[1:].decode(), "payer")] = stored
                elif name.startswith(_PAYEE_FACTS):
                    payee += 1
                    facts[(name[1:].decode(), "payee")] = stored
                elif name == _TAINT:
                    continue  # alert marks follow the alerts, compared as alerts
                else:
                    rest[name] = stored
            state[key] = without_chain_link(key, rest)
        elif (entity := _ENTITY_SET.match(key)) and isinstance(value, list):
            kind, prefix = entity.group(1).decode(), spec.ENTITY_FACTS.encode()
            for member, score in value:
                if member.startswith(prefix):
                    facts[(member[1:].decode(), kind)] = int(-score - 1) % spec.ENTITY_COUNT_SPAN
            kept = [(m, s) for m, s in value if not m.startswith(prefix)]
            state[key] = without_chain_link(key, kept)
        else:
            state[key] = value
    return Outcome(state, facts, alerts, payer, payee, seconds, timeline)


def _fact_changes(tid: str, a: Outcome, b: Outcome) -> str:
    """Which cached facts of a transfer differ between two runs, e.g. `payee.in_n_1h 4→5`."""
    changes = []
    for role, decode in (("payer", payer_facts), ("payee", payee_facts)):
        left, right = a.facts.get((tid, role)), b.facts.get((tid, role))
        if isinstance(left, bytes) and isinstance(right, bytes) and left != right:
            was, now = decode(left), decode(right)
            for name, x, y in zip(was._fields, was, now, strict=True):
                if x != y:
                    changes.append(f"{role}.{name} {x}→{y}")
    for kind in ("device", "phone", "ip"):
        left, right = a.facts.get((tid, kind)), b.facts.get((tid, kind))
        if left != right:
            changes.append(f"{kind}_accounts_7d {left!r}→{right!r}")
    return ", ".join(changes) or "no cached fact differs"


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _overlap_report(
    name: str, base: Outcome, run: Outcome, first_half: frozenset[str] | None = None
) -> tuple[float, str]:
    """The alert overlap and a readable account of every alert raised by one run only."""
    a, b = set(base.alerts), set(run.alerts)
    overlap = _overlap(a, b)
    line = (
        f"{name}: alert overlap {overlap:.2%} ({len(a & b)} shared of {len(a | b)}; "
        f"{len(a - b)} only in the baseline, {len(b - a)} only here"
    )
    if first_half is not None:
        before = _overlap(a & first_half, b & first_half)
        after = _overlap(a - first_half, b - first_half)
        line += f"; {before:.2%} before the change, {after:.2%} after it"
    lines = [line + f")\n  run took {run.seconds:.1f} s: {run.timeline}"]
    for tid in sorted(a ^ b):
        rules = base.alerts.get(tid) or run.alerts.get(tid)
        side = "baseline only" if tid in a else "this run only"
        lines.append(f"  {tid} ({side}, rules {rules}): {_fact_changes(tid, base, run)}")
    return overlap, "\n".join(lines)


def _state_differences(base: dict[bytes, object], run: dict[bytes, object]) -> list[str]:
    diffs = [f"missing {k!r}" for k in sorted(base.keys() - run.keys())]
    diffs += [f"extra {k!r}" for k in sorted(run.keys() - base.keys())]
    diffs += [f"differs {k!r}" for k in sorted(base.keys() & run.keys()) if base[k] != run[k]]
    return diffs


@pytest.fixture(scope="module")
def baseline(
    services, traffic: Traffic, model_path: str, tmp_path_factory: pytest.TempPathFactory
) -> Outcome:
    """One worker over the same partitions, on its own Redis database."""
    home = tmp_path_factory.mktemp("scale-out-baseline")
    suffix = home.name.replace("-", "")[-10:]
    names = [f"{n}-so-{suffix}" for n in ("transfers", "accounts", "alerts", "transfers.dlq")]
    ensure_topics(services.kafka_bootstrap, names, PARTITIONS)
    url = services.redis_url.rsplit("/", 1)[0] + f"/{BASELINE_DB}"
    settings = Settings(
        home=home / "fraudwatch-home", kafka_bootstrap=services.kafka_bootstrap, redis_url=url,
        partitions=PARTITIONS, topic_transfers=names[0], topic_accounts=names[1],
        topic_alerts=names[2], topic_dlq=names[3], consumer_group=f"fw-so-{suffix}",
        max_poll_interval_ms=3000, session_timeout_ms=6000, batch_wait_ms=20,
        api_keys=TEST_API_KEY, worker_metrics_port=0, api_port=0, model_path=model_path,
        purge_interval_minutes=0,
    )  # fmt: skip
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        outcome = _run(settings, client, traffic, Scenario("1 worker", 1), home / "worker.log")
    finally:
        client.flushdb()
        client.close()
    backtest = _backtest(settings, traffic)
    one_order = _overlap_report("1 worker vs backtest in delivery order", _as_outcome(backtest),
                                outcome)[1].splitlines()  # fmt: skip
    model = Path(model_path).name if model_path else "none (rules alone)"
    print(f"\nscale-out input: {len(traffic.transfers)} transfers; model: {model}; "
          f"{len(outcome.alerts)} alerts by one worker")  # fmt: skip
    print("\n".join(one_order[:2]))
    return outcome


def _backtest(settings: Settings, traffic: Traffic) -> dict[str, list[str]]:
    """Alerts of the same input on one partition in delivery order (in memory, as
    `fraudwatch backtest` runs it: the worker's batch processor on the in-memory store)."""
    sink = MemoryAlertSink()
    processor = BatchProcessor(
        MemoryStateStore(EntityHasher("scale-out")),
        sink,
        wiring.build_scorer(settings),
    )
    processor.process(
        [
            Message("profile", settings.topic_accounts, 0, n, v)
            for n, (_, v) in enumerate(traffic.profiles)
        ]
    )
    values = [value for _, _, value in traffic.transfers]
    for start in range(0, len(values), 500):
        batch = values[start : start + 500]
        processor.process(
            [
                Message("transfer", settings.topic_transfers, 0, start + n, v)
                for n, v in enumerate(batch)
            ]
        )
    return {a.transfer_id: [r.rule for r in a.reasons] for a in sink.alerts.values()}


def _as_outcome(alerts: dict[str, list[str]]) -> Outcome:
    return Outcome({}, {}, alerts, 0, 0, 0.0, "")


# Each run has both sizes: K workers before the change and K ± 1 after it.
SCENARIOS = [
    Scenario("2 workers, a third joins mid-stream", 2, "join"),
    Scenario("3 workers, one leaves on SIGTERM mid-stream", 2, "sigterm"),
    Scenario("3 workers, one is SIGKILLed mid-stream", 2, "sigkill"),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.change)
def test_k_workers_end_with_the_single_workers_state_and_alerts(
    services, redis_client: redis.Redis, make_topics: TopicFactory,
    settings_for: SettingsFactory, traffic: Traffic, baseline: Outcome, model_path: str,
    scenario: Scenario, tmp_path: Path,
) -> None:  # fmt: skip
    topics = make_topics(partitions=PARTITIONS)
    # Members hear of a rebalance at their next heartbeat (a third of the session timeout), and
    # a SIGKILLed member holds its partitions until its session times out: keep both short.
    settings = settings_for(topics, model_path=model_path, session_timeout_ms=3000)
    outcome = _run(settings, redis_client, traffic, scenario, tmp_path / "worker.log")
    overlap, report = _overlap_report(scenario.name, baseline, outcome, traffic.first_half)
    print("\n" + report)

    count = len(traffic.transfers)
    assert baseline.payer_facts == baseline.payee_facts == count, "baseline lost transfers"
    assert (outcome.payer_facts, outcome.payee_facts) == (count, count), (
        f"{scenario.name}: payer/payee facts for {outcome.payer_facts}/{outcome.payee_facts} "
        f"of {count} transfers"
    )
    differences = _state_differences(baseline.state, outcome.state)
    assert not differences, f"{scenario.name}: state differs from one worker's: {differences[:20]}"
    assert overlap >= MIN_OVERLAP, report
