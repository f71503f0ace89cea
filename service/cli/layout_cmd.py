"""`fraudwatch layout`: which state layout the configured Redis holds, and adopting this
release's (`streams/state/layout.py`; the runbook's "Upgrading fraudwatch")."""

from __future__ import annotations

import argparse


def _layout(args: argparse.Namespace) -> int:
    from service import wiring
    from service.settings import shown_url
    from service.stack_runtime import resolve_settings
    from streams.state.layout import LAYOUT_VERSION, adopt_layout, read_layout

    settings = resolve_settings()
    client = wiring.redis_client(settings)  # NotConfigured without an address: one line
    try:
        state = adopt_layout(client) if args.adopt else read_layout(client)
    finally:
        client.close()
    where = shown_url(settings.redis_url or "")
    if state.found is None:
        held = "no fraudwatch state"
    else:
        how = "recorded" if state.recorded else "recognised by its keys"
        held = f"state of layout {state.found} ({how})"
    print(f"Redis at {where} holds {held}; this release keeps layout {LAYOUT_VERSION}")
    if args.adopt:
        print(f"layout {LAYOUT_VERSION} adopted: workers start; accounts' windows begin from "
              "what this layout holds (warm it up with `fraudwatch warmup` before live "
              "traffic to begin from history)")  # fmt: skip
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `layout`."""
    command = subparsers.add_parser(
        "layout",
        help="show which state layout Redis holds; --adopt records this release's",
        description="Show the state layout the configured Redis (or the running stack's) holds "
        "and the one this release keeps. Workers refuse state of another layout; after an "
        "upgrade that changes it, stop the earlier release's workers and run with --adopt "
        "(see deploy/RUNBOOK.md, 'Upgrading fraudwatch').",
    )
    command.add_argument(
        "--adopt", action="store_true",
        help="record this release's layout (the earlier one's keys expire)",
    )
    command.set_defaults(run=_layout)
