"""Alert propagation inside the batch path: a batch scored as if one transfer at a time.

A transfer's taint (`models.taint`) counts the marks of the transfers before it in the input
that alerted and paid its payer. They reach it by three paths, each mark counted once:
- state: the marks its payer held when its state call read them (every batch up to the one
  before the previous is marked by then: a batch's marks are written before it commits, and
  the worker sends batch N+1 to state only after batch N-1 is done);
- carried: the marks of the previous batch, which the worker scored after this batch's state
  call was sent (so they may or may not be in what it read);
- in the batch: the transfers before it in this batch that alerted.
Whether a transfer alerts can depend on its taint, and so on the alerts of the transfers
before it in the batch: scoring repeats for the transfers whose taint changed until nothing
does (at most as many rounds as money hops within the batch). So the alerts and marks do not
depend on where batches are cut, nor on a restart: the offset check in `taint_of` keeps out
the marks of later transfers that a redelivered batch may find already stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from models.alerts import Alert
from models.events import Transfer
from models.features import NO_TAINT, Features, Taint
from models.taint import TaintMark, taint_of

# Marks by the account they mark (the payee of the transfer that alerted).
MarksByAccount = Mapping[str, Sequence[TaintMark]]
# Where each transfer sits in its input: (partition, offset).
Place = tuple[int, int]


def mark_of(transfer: Transfer, place: Place) -> TaintMark:
    """The mark a transfer that alerted leaves on its payee."""
    return TaintMark(transfer.transfer_id, transfer.ts_ms, transfer.amount_minor, *place)


def score_in_order(
    transfers: Sequence[Transfer],
    places: Sequence[Place],
    stored: Sequence[Sequence[TaintMark]],
    carried: MarksByAccount,
    featurize: Callable[[int, Taint], Features],
    score: Callable[[Sequence[int], Sequence[Features]], list[Alert | None]],
) -> tuple[list[Features], list[Alert | None], dict[str, list[TaintMark]]]:
    """Score a batch with its taint: each transfer's features (`featurize(index, taint)`),
    its alert or None (`score(indices, features)` scores several at once), and the marks of
    the batch's transfers that alerted, by payee."""
    count = len(transfers)
    taints = [NO_TAINT] * count
    features: list[Features] = [{} for _ in range(count)]
    raised: list[Alert | None] = [None] * count
    pending = list(range(count))
    in_batch: dict[str, list[tuple[int, TaintMark]]] = {}
    while pending:
        for i in pending:
            features[i] = featurize(i, taints[i])
        for i, alert in zip(pending, score(pending, [features[i] for i in pending]),
                            strict=True):  # fmt: skip
            raised[i] = alert
        in_batch = defaultdict(list)
        for i, alert in enumerate(raised):
            if alert is not None:
                in_batch[transfers[i].dst_account].append((i, mark_of(transfers[i], places[i])))
        pending = []
        for j, t in enumerate(transfers):
            earlier = [mark for i, mark in in_batch.get(t.src_account, ()) if i < j]
            marks = [*stored[j], *carried.get(t.src_account, ()), *earlier]
            taint = taint_of(t.transfer_id, t.ts_ms, *places[j], marks) if marks else NO_TAINT
            if taint != taints[j]:
                taints[j] = taint
                pending.append(j)
    # The last round changed no taint, so its marks are those of the alerts returned.
    marked = {payee: [mark for _, mark in kept] for payee, kept in in_batch.items()}
    return features, raised, marked
