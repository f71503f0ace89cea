"""The laundering shapes of the IBM AML dataset (Altman et al., NeurIPS 2023): cycle,
scatter-gather, gather-scatter, bipartite and stack, each fed by scam victims."""

from __future__ import annotations

from models.simulator.config import MS_PER_HOUR
from models.simulator.rings import Arrival, Ring
from models.simulator.scams import collect, gather


def cycle(ring: Ring) -> None:
    """Money goes round a loop of 3-7 mules back to the first one, which cashes it out."""
    loop = ring.mules(ring.rnd.randint(3, 7))
    arrivals = collect(ring, ring.rnd.randint(1, 4), loop[0], 4 * MS_PER_HOUR)
    if not arrivals:
        return
    for src, dst in zip(loop, loop[1:] + loop[:1], strict=True):
        arrivals = ring.forward(src, arrivals, [dst], (3, 90))[dst]
    ring.cash_out(loop[0], arrivals)


def scatter_gather(ring: Ring) -> None:
    """One mule scatters to 3-10 intermediates, which all pay one gathering mule."""
    source, target = ring.mules(2)
    middle = ring.mules(ring.rnd.randint(3, 10))
    arrivals = collect(ring, ring.rnd.randint(1, 4), source, 4 * MS_PER_HOUR)
    scattered = ring.forward(source, arrivals, middle, (2, 60))
    gathered = gather([ring.forward(m, got, [target]) for m, got in scattered.items()])
    ring.cash_out(target, gathered.get(target, []))


def gather_scatter(ring: Ring) -> None:
    """5-20 victims gather into a hub that scatters to 3-12 mules, who cash out."""
    hub = ring.mule()
    arrivals = collect(ring, ring.rnd.randint(5, 20), hub, 8 * MS_PER_HOUR)
    for mule, got in ring.forward(hub, arrivals, ring.mules(ring.rnd.randint(3, 12))).items():
        ring.cash_out(mule, got)


def _bipartite_layer(
    ring: Ring, current: dict[int, list[Arrival]], width: int
) -> dict[int, list[Arrival]]:
    """Every mule of the current set pays 2-4 mules of a new set of `width`."""
    layer = ring.mules(width)
    return gather(
        [
            ring.forward(src, got, ring.rnd.sample(layer, ring.rnd.randint(2, min(4, width))))
            for src, got in current.items()
        ]
    )


def _fed_set(ring: Ring, width: int) -> dict[int, list[Arrival]]:
    """A first set of mules, each paid by its own victims."""
    first = ring.mules(width)
    return {m: collect(ring, ring.rnd.randint(1, 3), m, 6 * MS_PER_HOUR) for m in first}


def bipartite(ring: Ring) -> None:
    """A set of 2-5 victim-fed mules pays a second set of 3-6 mules many-to-many."""
    current = _bipartite_layer(ring, _fed_set(ring, ring.rnd.randint(2, 5)), ring.rnd.randint(3, 6))
    for mule, got in current.items():
        ring.cash_out(mule, got)


def stack(ring: Ring) -> None:
    """Two bipartite layers stacked: A pays B many-to-many, B pays C, C cashes out."""
    current = _fed_set(ring, ring.rnd.randint(2, 4))
    for _ in range(2):
        current = _bipartite_layer(ring, current, ring.rnd.randint(3, 6))
    for mule, got in current.items():
        ring.cash_out(mule, got)
