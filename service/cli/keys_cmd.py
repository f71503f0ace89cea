"""`fraudwatch keys create|list|revoke`: API keys of the running stack, held hashed in Redis.

Like `produce`, these find the running embedded stack through its run file; with
FRAUDWATCH_REDIS_URL set they use that Redis instead. Creating and revoking a key is audited
as the API's key routes are, by the operating-system user who ran the command.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from models.alerts import rfc3339_now
from service.audit import record_cli_change
from service.auth import ROLES

if TYPE_CHECKING:
    from service.keys_store import KeyStore
    from streams.state.pipelines import AnyRedis


def _store() -> tuple[KeyStore, AnyRedis] | None:
    from service import wiring
    from service.keys_store import KeyStore
    from service.stack_runtime import resolve_settings

    settings = resolve_settings()
    if not settings.redis_url:
        print(
            "no running stack found (start `fraudwatch up`) and FRAUDWATCH_REDIS_URL is not set",
            file=sys.stderr,
        )
        return None
    client = wiring.redis_client(settings)
    return KeyStore(client), client


def _create(args: argparse.Namespace) -> int:
    opened = _store()
    if opened is None:
        return 2
    store, client = opened
    secret, record = store.create(args.role, args.name or args.role, rfc3339_now())
    record_cli_change(client, "keys create", f"key {record.key_id} created")
    print(f"created {record.key_id} ({record.role}); the key is shown only now", file=sys.stderr)
    print(secret)
    return 0


def _list(_: argparse.Namespace) -> int:
    opened = _store()
    if opened is None:
        return 2
    for r in opened[0].list():
        state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
        print(f"{r.key_id}  {r.role:<12}  created {r.created_at}  {state:<32}  {r.name}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    opened = _store()
    if opened is None:
        return 2
    store, client = opened
    record = store.revoke(args.key_id, rfc3339_now())
    if record is None:
        print(f"no key {args.key_id}", file=sys.stderr)
        return 1
    record_cli_change(client, "keys revoke", f"key {record.key_id} revoked")
    print(f"revoked {record.key_id} at {record.revoked_at}; API processes refuse it within "
          "FRAUDWATCH_KEY_CACHE_SECONDS")  # fmt: skip
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `keys` command family to the `fraudwatch` parser."""
    keys = subparsers.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="keys_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key; prints the key alone on stdout")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", default="", help="who holds the key (default: the role)")
    create.set_defaults(run=_create)
    listing = actions.add_parser("list", help="list keys (ids, roles, dates; never secrets)")
    listing.set_defaults(run=_list)
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id", metavar="KEY_ID")
    revoke.set_defaults(run=_revoke)
