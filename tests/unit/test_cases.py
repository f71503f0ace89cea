"""Grouping alerts into cases: one per suspect within the window, rings merged by alerted money
flows, hubs never linking rings, the same cases however the alerts are batched."""

from __future__ import annotations

from models.cases import CaseInput, case_id_for, case_status, group, priority
from models.features import MS_PER_HOUR, MS_PER_MINUTE
from streams.state.case_memory import MemoryCases

T0 = 1_772_413_200_000


def alert(n: int, payer: str, payee: str, minutes: float, suspect: str = "payer",
          amount: int = 990_000, severity: str = "medium") -> CaseInput:  # fmt: skip
    """Alert `n` on a transfer from `payer` to `payee`, suspecting one of them."""
    suspected = payer if suspect == "payer" else payee
    return CaseInput(f"al_{n:024x}", payer, payee, suspected, T0 + int(minutes * MS_PER_MINUTE),
                     amount, "CNY", severity, "open")  # fmt: skip


def grouped(alerts: list[CaseInput], batch: int = 500) -> tuple[MemoryCases, dict[str, str]]:
    cases = MemoryCases()
    cased: dict[str, str] = {}
    for start in range(0, len(alerts), batch):
        part, _ = group(cases, alerts[start : start + batch], cases.settings)
        cased.update(part)
    # Merges after an alert was grouped move it: every alert's case as it stands at the end.
    return cases, {a: cases.alert_case[a] for a in cased}


def test_a_24_transfer_split_by_one_mule_is_one_case() -> None:
    split = [alert(i, "mule", f"layer2-{i}", 2 * i) for i in range(24)]
    cases, cased = grouped(split)
    assert set(cased.values()) == {case_id_for("mule", split[0].alert_id)}
    (record,) = cases.open_cases()
    assert (record.alerts, record.amounts, record.suspects) == (24, {"CNY": 24 * 990_000},
                                                                ["mule"])  # fmt: skip
    assert record.status == "open"
    assert len(cases.case_accounts[record.case_id]) == 25


def test_a_split_first_blamed_on_its_payees_is_one_case_once_its_payer_is_suspected() -> None:
    # The model names the payees of the first payouts; the split shows from the eighth on.
    split = [alert(i, "mule", f"layer2-{i}", i / 2, "payee" if i < 7 else "payer")
             for i in range(12)]  # fmt: skip
    cases, cased = grouped(split)
    assert set(cased.values()) == {case_id_for("layer2-0", split[0].alert_id)}
    (record,) = cases.open_cases()
    assert record.alerts == 12
    assert record.suspects == sorted(["mule", *(f"layer2-{i}" for i in range(7))])
    # An ATM whose alert (another ring's cash-out) blamed the ATM is not pulled in.
    atm = [alert(30, "other-mule", "atm", 0, "payee"), alert(31, "mule", "atm", 1, "payee")]
    _, cased = grouped(atm + split)
    assert cased[atm[0].alert_id] != cased[split[-1].alert_id]
    # Payouts more than the link window before the payer is suspected stay cases of their own.
    later = [alert(20, "mule", "layer2-20", 25 * 60), alert(21, "mule", "layer2-21", 25 * 60)]
    _, cased = grouped(split[:7] + later)
    assert len(set(cased.values())) == 8


def test_the_same_suspect_after_the_window_opens_a_new_case() -> None:
    later = 72 * 60 + 1
    _, cased = grouped([alert(1, "mule", "x", 0), alert(2, "mule", "y", later)])
    assert len(set(cased.values())) == 2


def test_suspects_linked_by_alerted_money_are_one_ring_case_named_by_its_first() -> None:
    # Victims pay a collector (suspect the payee), which splits to mules (suspect the payer),
    # which pass the money on to cash-out accounts (suspect the payer).
    ring = [alert(1, "victim-1", "collector", 0, "payee"),
            alert(2, "victim-2", "collector", 5, "payee")]  # fmt: skip
    ring += [alert(10 + i, "collector", f"mule-{i}", 30 + i) for i in range(3)]
    ring += [alert(20 + i, f"mule-{i}", f"cash-{i}", 90 + i) for i in range(3)]
    cases, cased = grouped(ring)
    assert set(cased.values()) == {case_id_for("collector", ring[0].alert_id)}
    (record,) = cases.open_cases()
    assert record.suspects == ["collector", "mule-0", "mule-1", "mule-2"]
    # The other way round (the mules alert first): still one case, named by the earliest.
    reordered = ring[5:] + ring[:5]
    _, again = grouped(reordered)
    assert len(set(again.values())) == 1


def test_a_mule_that_alerts_before_its_link_joins_when_the_link_alerts() -> None:
    first = [alert(1, "mule-b", "cash", 0), alert(2, "victim", "collector", 10, "payee")]
    link = [alert(3, "collector", "mule-b", 20)]
    cases, cased = grouped(first + link)
    assert len(set(cased.values())) == 1
    assert cases.open_cases()[0].suspects == ["collector", "mule-b"]


def test_links_older_than_the_link_window_do_not_merge() -> None:
    far = 25 * 60  # minutes: beyond the 24-hour link window
    _, cased = grouped([alert(1, "a", "b", 0), alert(2, "b", "c", far)])
    assert len(set(cased.values())) == 2


def test_an_atm_that_many_rings_cash_out_at_never_links_them() -> None:
    rings = [alert(i, f"mule-{i}", "atm-7", i) for i in range(12)]
    # The ATM itself alerts (its fan-in looks like collection): an account that passed no
    # money on, its alert follows the paying mule's money into that mule's case.
    rings.append(alert(99, "mule-3", "atm-7", 30, "payee"))
    cases, cased = grouped(rings)
    assert len(set(cased.values())) == 12
    assert cased[rings[-1].alert_id] == cased[rings[3].alert_id]
    mule_case = cases.records[cased[rings[3].alert_id]]
    assert mule_case.suspects == ["mule-3"]  # the ATM is a party of it, not a suspect


def test_a_victim_links_nothing_but_its_own_payments_to_its_ring() -> None:
    # One victim pays two rings' collectors; each collector passes the money on.
    flows = [alert(1, "victim", "collector-a", 0, "payee"),
             alert(2, "victim", "collector-b", 10, "payee"),
             alert(3, "collector-a", "mule-a", 40), alert(4, "collector-b", "mule-b", 50),
             alert(5, "mule-a", "cash-a", 80), alert(6, "mule-b", "cash-b", 90)]  # fmt: skip
    _, cased = grouped(flows)
    assert len(set(cased.values())) == 2
    assert cased[flows[0].alert_id] == cased[flows[4].alert_id]


def test_the_same_alerts_give_the_same_cases_however_they_are_batched() -> None:
    ring = [alert(i, f"m{i % 5}", f"m{(i + 1) % 5}", 3 * i) for i in range(40)]
    ring += [alert(100 + i, f"x{i}", "shop", 50 * i, "payee") for i in range(20)]
    one, whole = grouped(ring)
    for batch in (1, 7, 13):
        other, cased = grouped(ring, batch)
        assert cased == whole
        assert {k: (r.alerts, r.suspects, r.merged_into) for k, r in other.records.items()} == {
            k: (r.alerts, r.suspects, r.merged_into) for k, r in one.records.items()
        }
    # Grouping again changes nothing.
    _, changes = group(one, ring, one.settings)
    assert changes == []


def test_status_priority_and_severity() -> None:
    assert case_status({"open": 1, "confirmed": 23}) == "open"
    assert case_status({"confirmed": 20, "dismissed": 4}) == "confirmed"
    assert case_status({"dismissed": 3}) == "dismissed"
    assert case_status({"escalated": 1, "appealed": 2}) == "escalated"
    now = T0
    fresh = priority(now, "low", {"CNY": 10_000})
    assert priority(now - 12 * MS_PER_HOUR, "critical", {"CNY": 10_000}) > fresh
    assert priority(now - 30 * MS_PER_HOUR, "high", {"CNY": 10_000}) < fresh
    assert priority(now, "low", {"CNY": 100_000_000}) > fresh
    # Yen count at their value in yuan: a million yen (48,000 CNY) is not a million yuan.
    assert priority(now, "low", {"JPY": 100_000_000}) == priority(now, "low", {"CNY": 4_800_000})
    cases, _ = grouped(
        [alert(1, "m", "a", 0, severity="low"), alert(2, "m", "b", 1, severity="critical")]
    )
    assert cases.open_cases()[0].severity == "critical"
