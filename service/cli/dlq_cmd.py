"""`fraudwatch dlq`: what the dead-letter topic holds, and sending messages from it again once
their cause is fixed."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import TYPE_CHECKING

from service.cli.model_cmd import friendly_errors

if TYPE_CHECKING:
    from service.settings import Settings


def _since_ms(args: argparse.Namespace) -> int | None:
    from models.trace import parse_window_ms
    from models.watchlist import now_ms

    return None if args.since is None else now_ms() - parse_window_ms(args.since)


def _settings_with_broker() -> tuple[Settings, str]:
    """The stack's settings and its broker's address (`NotConfigured` without one)."""
    from service.stack_runtime import resolve_settings
    from service.wiring import kafka_bootstrap

    settings = resolve_settings()
    return settings, kafka_bootstrap(settings)


def _summary(args: argparse.Namespace) -> int:
    from models.watchlist import iso_ms
    from streams.dead_letter_review import read_dead_letters

    since_ms = _since_ms(args)
    settings, bootstrap = _settings_with_broker()
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    last: dict[str, tuple[int, str]] = {}
    for letter in read_dead_letters(bootstrap, settings.topic_dlq, since_ms):
        code = letter.reason_code
        counts[code] += 1
        # (partitions are read one after another: earliest and latest by the broker's time)
        first[code] = min(first.get(code, letter.timestamp_ms), letter.timestamp_ms)
        last[code] = max(last.get(code, (letter.timestamp_ms, letter.source)),
                         (letter.timestamp_ms, letter.source))  # fmt: skip
    if not counts:
        print(f"{settings.topic_dlq}: no dead letters" + (f" in the last {args.since}"
                                                          if args.since else ""))  # fmt: skip
        return 0
    # Reason codes and positions only: a reason quotes the rejected value, which may be
    # personal data (a malformed phone number); read those with a Kafka console consumer.
    print(f"{'reason_code':<24} {'count':>7}  {'first':<24} {'last':<24} last from")
    for code, count in counts.most_common():
        at, source = last[code]
        print(f"{code:<24} {count:>7}  {iso_ms(first[code]) or '':<24} {iso_ms(at) or '':<24} "
              f"{source}")  # fmt: skip
    return 0


def _resend(args: argparse.Namespace) -> int:
    from streams.dead_letter_review import read_dead_letters, resend
    from streams.kafka_io import acked_producer

    since_ms = _since_ms(args)
    settings, bootstrap = _settings_with_broker()
    dead = read_dead_letters(bootstrap, settings.topic_dlq, since_ms)
    letters = [letter for letter in dead if letter.reason_code == args.reason]
    if args.dry_run:
        truncated = sum(letter.original() is None for letter in letters)
        print(f"would send {len(letters) - truncated} dead letters with reason_code "
              f"{args.reason} again ({truncated} cut to fit, which cannot be)")  # fmt: skip
        return 0
    key_fields = {settings.topic_transfers: "src_account", settings.topic_accounts: "account_id"}
    producer = acked_producer(bootstrap, client_id="fraudwatch-dlq")
    try:
        done = resend(letters, producer, key_fields)
    finally:
        producer.close()
    print(f"sent {done.sent} dead letters with reason_code {args.reason} again to the topics "
          f"they came from")  # fmt: skip
    _audit_resend(settings, f"dlq resend: {done.sent} dead letters of {args.reason}")
    if done.truncated:
        print(f"{done.truncated} were not sent: their envelopes hold only the beginning of the "
              "message (FRAUDWATCH_DLQ_ORIGINAL_MAX_BYTES); have the producer send them again",
              file=sys.stderr)  # fmt: skip
    return 0


def _audit_resend(settings: Settings, resource: str) -> None:
    """Audit a resend in the stack's Redis, where the audit log is (none configured: the
    command reaches only the broker, and says it could not)."""
    from service import wiring
    from service.audit import record_cli_change

    if not settings.redis_url:
        print("not audited: no Redis is configured (FRAUDWATCH_REDIS_URL)", file=sys.stderr)
        return
    client = wiring.redis_client(settings)
    try:
        record_cli_change(client, "dlq resend", resource)
    finally:
        client.close()


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `dlq summary` and `dlq resend`."""
    dlq = subparsers.add_parser(
        "dlq",
        help="what the dead-letter topic holds; send messages from it again",
        description="Read the dead-letter topic (FRAUDWATCH_TOPIC_DLQ) of the running stack, or "
        "of FRAUDWATCH_KAFKA_BOOTSTRAP. Reads without a consumer group: it changes nothing.",
    )
    commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    since = {"metavar": "SPAN", "help": "only dead letters of the last SPAN (30m, 72h, 3d)"}
    summary = commands.add_parser("summary", help="dead letters by reason_code")
    summary.add_argument("--since", **since)
    summary.set_defaults(run=friendly_errors(_summary))
    again = commands.add_parser(
        "resend",
        help="send the originals of one reason_code again to the topics they came from",
        description="For dead letters whose cause is fixed (processing_failed after the fault "
        "is repaired; ts_out_of_range after the accepted range was widened): each original is "
        "sent with its key and headers to its topic and scored as if it had just arrived; one "
        "that was scored already changes nothing, one that still breaks the contract is "
        "dead-lettered again. Messages that break the contract need their producer to send "
        "them again, corrected.",
    )
    again.add_argument("--reason", required=True, metavar="REASON_CODE")
    again.add_argument("--since", **since)
    again.add_argument("--dry-run", action="store_true", help="count, send nothing")
    again.set_defaults(run=friendly_errors(_resend))
