"""The investigator console in a real browser (Debian's Chromium through Playwright) against
the embedded stack: a real worker scores a fan-out ring and a layered mule ring from the
session broker, the API serves the console and the data, and the tests click through it as
an investigator, an admin, an analyst and a bank would.

Screenshots of each page land in tests/artifacts/; with FRAUDWATCH_UPDATE_SCREENSHOTS=1 the
queue and the money trail are also copied to service/console/screenshots/ for the README."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
import redis
from playwright import sync_api

from models.alerts import Alert, ModelVerdict, Reason, alert_id_for
from models.watchlist import make_entry, now_ms
from service import wiring
from streams.state.alert_store import AlertStore
from streams.state.watchlists import WatchlistStore
from tests.integration.conftest import TEST_API_KEY, SettingsFactory, TopicSet
from tests.integration.console_browser import (
    CHROMIUM,
    VIEWPORT,
    api_server,
    launch_chromium,
    rules_only,
    screenshot,
)
from tests.integration.harness import committed, produce, wait_for, worker_thread
from tests.integration.keyed_api import api_settings, score_ring
from tests.integration.test_trace import layered_ring
from tests.traffic import T0, fan_out_ring

# The browser tests are part of CI: a missing browser fails them, it never skips them.
assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"

ADMIN = {"Authorization": f"Bearer {TEST_API_KEY}"}
README = os.environ.get("FRAUDWATCH_UPDATE_SCREENSHOTS") == "1"
DOWNSTREAM = {"mule1", "mule2a", "mule2b", "cash1", "cash2"}
expect = sync_api.expect
NOTICE_CSV = b"""kind,value,source,reason,expires_at
account,cash1,police notice 2026-0312,cash-out account,
account,,police notice 2026-0312,no value,
account,cash2,police notice 2026-0312,cash-out account,yesterday
account,cash3,police notice 2026-0312,cash-out account,2030-01-01T00:00:00Z
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module's tests (each test opens its own context)."""
    with sync_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


def new_page(browser: Any, base: str) -> tuple[Any, list[str]]:
    """A fresh tab (own session storage) on the console, polling for new alerts every 1 s,
    and the list its uncaught script errors go to."""
    context = browser.new_context(
        viewport=VIEWPORT, timezone_id="Asia/Shanghai", locale="en-US", accept_downloads=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base}/console/?poll=1000")
    return page, errors


def sign_in(page: Any, key: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def create_key(base: str, role: str, name: str) -> str:
    response = httpx.post(f"{base}/v1/keys", json={"role": role, "name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def events_json(events: list[dict]) -> list[bytes]:
    return [json.dumps(e).encode() for e in sorted(events, key=lambda e: e["ts"])]


def with_model_reason(alert: Alert) -> Alert:
    """The alert as a model would also have explained it (its own transfer and id)."""
    explained = Reason(
        "model", "Model: fraudwatch-gbt 1",
        {"src_distinct_payees_1h": 8, "src_out_amount_24h_minor": 7_920_000},
        score=0.91, summary="fraud probability 91%; strongest signals: distinct payees",
    )  # fmt: skip
    return msgspec.structs.replace(
        alert, alert_id=alert_id_for("ring-modelled"), transfer_id="ring-modelled",
        reasons=[*alert.reasons, explained], model=ModelVerdict("fraudwatch-gbt", "1", 0.91),
    )  # fmt: skip


def list_mule(client: redis.Redis, settings) -> None:
    """Put the layered ring's first mule on the account watchlist before the worker runs,
    so transfers touching it alert at high severity."""
    entry = make_entry(
        "account", "mule1", "police notice 2026-0311", "collection account of an investment scam",
        None, now_ms=now_ms(), pseudonymise=wiring.entity_hasher(settings),
    )  # fmt: skip
    WatchlistStore(client).put([entry])


def test_investigator_works_an_alert_and_follows_the_money(
    services, redis_client: redis.Redis, topics: TopicSet, settings_for: SettingsFactory, browser
) -> None:
    settings = rules_only(settings_for(topics))
    list_mule(redis_client, settings)
    first = fan_out_ring("ring") + layered_ring()
    produce(settings.kafka_bootstrap, topics.transfers, events_json(first))
    with worker_thread(settings), api_server(settings) as base:
        wait_for(lambda: committed(settings, topics.transfers) == len(first), what="commit")
        desk = create_key(base, "investigator", "anti-fraud desk 3")
        page, errors = new_page(browser, base)

        # Sign in: who and which role; an investigator has no watchlists. The console opens
        # on the case queue; the single alerts are one click away.
        sign_in(page, desk)
        expect(page.locator("#who")).to_contain_text("anti-fraud desk 3 (investigator)")
        expect(page.get_by_role("link", name="Watchlists")).to_be_hidden()
        expect(page.get_by_role("heading", level=1)).to_have_text("Case queue")
        page.locator("#nav").get_by_role("link", name="Alerts").click()
        queue = page.locator("table.queue tbody tr")
        expect(queue.first).to_be_visible()
        total = queue.count()
        assert total >= 8, total
        expect(page.locator(".counts [data-status=open] .count")).to_have_text(str(total))
        screenshot(page, "queue", for_readme=README)

        # Filter: severity high keeps the transfers that touch the listed mule.
        page.get_by_label("Severity").select_option("high")
        page.get_by_role("button", name="Apply filters").click()
        expect(page).to_have_url(re.compile(r"#/alerts\?severity=high$"))
        expect(queue.first.locator(".sev-high")).to_be_visible()
        high = queue.count()
        assert 0 < high < total
        for index in range(high):
            expect(queue.nth(index).locator("td").nth(4)).to_have_text("high")
        page.get_by_label("Rule").select_option("fan_out_rapid")
        page.get_by_label("Severity").select_option("")
        page.get_by_role("button", name="Apply filters").click()
        expect(queue.first.locator(".reason")).to_contain_text("payees")
        assert queue.count() == 5
        screenshot(page, "queue-filtered")

        # Open the victim's transfer to the listed mule, confirm it with a note.
        page.goto(f"{base}/console/?poll=1000#/alerts?account=victim&severity=high")
        expect(queue).to_have_count(1)
        queue.first.get_by_role("link", name=re.compile("Open alert")).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("50,000.00 CNY")
        expect(page.locator(".reason-card").first).to_contain_text(re.compile("watchlist", re.I))
        expect(page.locator(".evidence").first).to_contain_text("on a watchlist")
        confirm = page.get_by_role("button", name="Confirm fraud")
        expect(confirm).to_be_disabled()
        expect(page.get_by_role("button", name="Record customer appeal")).to_have_count(0)
        page.get_by_label("Note (required)").fill("Payee is a listed collection account.")
        expect(confirm).to_be_enabled()
        screenshot(page, "alert")
        alert_id = page.url.rsplit("/", 1)[-1]
        confirm.click()
        expect(page.locator("#alert-status")).to_have_text("confirmed")
        expect(page.locator("table.history")).to_contain_text("listed collection account")
        expect(page.get_by_role("button", name="Record customer appeal")).to_be_visible()
        expect(page.get_by_role("button", name="Confirm fraud")).to_have_count(0)
        stored = httpx.get(f"{base}/v1/alerts/{alert_id}", headers=ADMIN).json()
        assert stored["status"] == "confirmed"
        assert stored["transfer_id"] == "x-victim"

        # A colleague records the customer's appeal meanwhile: this page's own is refused
        # (409) and the page redraws the alert as it is now, saying why.
        appeal = {"action": "appeal", "note": "customer called the branch"}
        colleague = httpx.post(f"{base}/v1/alerts/{alert_id}/actions", json=appeal, headers=ADMIN)
        assert colleague.status_code == 200
        page.get_by_label("Note (required)").fill("Customer disputes the restriction.")
        page.get_by_role("button", name="Record customer appeal").click()
        expect(page.locator("#alert-status")).to_have_text("appealed")
        expect(page.locator(".decide .error")).to_contain_text("decided meanwhile")
        expect(page.locator("table.history")).to_contain_text("customer called the branch")
        expect(page.get_by_role("button", name="Record customer appeal")).to_have_count(0)

        # Follow the money: the layered ring left to right, export, through to a mule.
        page.get_by_role("link", name="Follow the money").click()
        trail = page.locator("svg.trail")
        expect(trail).to_be_visible()
        nodes = trail.locator("a.trail-node")
        expect(nodes).to_have_count(len(DOWNSTREAM) + 1)
        expect(trail.locator("[data-account=mule1] rect.listed")).to_have_count(1)
        xs = {
            account: float(trail.locator(f"[data-account={account}] rect").get_attribute("x"))
            for account in ("victim", "mule1", "mule2a", "cash1")
        }
        assert xs["victim"] < xs["mule1"] < xs["mule2a"] < xs["cash1"], xs
        screenshot(page, "trail", for_readme=README)
        with page.expect_download() as download:
            page.get_by_role("button", name=re.compile("Export for freezing request")).click()
        rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
        assert {row["account"] for row in rows} == DOWNSTREAM
        cash1 = next(row for row in rows if row["account"] == "cash1")
        assert (cash1["amount"], cash1["currency"], cash1["counterparty"]) == (
            "24000.00", "CNY", "mule2a",
        )  # fmt: skip
        assert cash1["at"] == "2026-03-02T01:20:00.000Z"
        trail.locator("[data-account=mule2a]").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Account mule2a")
        expect(page.locator("table.transfers-in")).to_contain_text("mule1")
        expect(page.locator("table.transfers-out")).to_contain_text("cash1")
        screenshot(page, "account")
        page.locator("table.transfers-in").get_by_role("link", name="mule1").click()
        expect(page.locator("#watchlist-status")).to_contain_text("Listed")
        expect(page.locator("#risk-level")).to_have_text("critical")

        # New alerts appear in the open queue without a reload, and are announced.
        page.goto(f"{base}/console/?poll=1000#/alerts")
        expect(queue).to_have_count(total)
        late = fan_out_ring("late", start=T0 + timedelta(hours=2))
        produce(settings.kafka_bootstrap, topics.transfers, events_json(late))
        expect(page.locator("table.queue tbody tr.arrived")).to_have_count(5, timeout=30_000)
        expect(queue.first).to_contain_text("late-mule")
        expect(page.locator("#announce")).to_contain_text("new alert")
        page.get_by_label("From (event time)").fill("2026-03-02T10:30")
        page.get_by_role("button", name="Apply filters").click()
        expect(queue).to_have_count(5)

        # Cursor paging, 4 per page: older twice, then back to the same page.
        page.goto(f"{base}/console/?poll=60000#/alerts?rule=fan_out_rapid&limit=4")
        older = page.get_by_role("button", name="Older →")
        newer = page.get_by_role("button", name="← Newer")
        expect(queue).to_have_count(4)
        expect(newer).to_be_disabled()
        older.click()
        expect(page.locator(".page-status")).to_have_text("Page 2 · 4 alerts")
        second = queue.first.get_attribute("data-alert-id")
        older.click()
        expect(page.locator(".page-status")).to_have_text("Page 3 · 2 alerts")
        expect(older).to_be_disabled()
        newer.click()
        expect(page.locator(".page-status")).to_have_text("Page 2 · 4 alerts")
        assert queue.first.get_attribute("data-alert-id") == second
        assert not errors, errors

        # Admin: watchlists, with a CSV import whose bad rows are shown by line.
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, TEST_API_KEY)
        page.get_by_role("link", name="Watchlists").click()
        expect(page.locator("table.watchlist tbody")).to_contain_text("mule1")
        notice = {"name": "notice.csv", "mimeType": "text/csv", "buffer": NOTICE_CSV}
        page.get_by_label("CSV file", exact=True).set_input_files(files=[notice])
        page.get_by_role("button", name="Import").click()
        expect(page.locator("#import-result")).to_contain_text("Imported 2 entries")
        bad_rows = page.locator("table.import-errors tbody tr")
        expect(bad_rows).to_have_count(2)
        expect(bad_rows.first.locator("td").first).to_have_text("3")
        expect(page.locator("table.watchlist tbody")).to_contain_text("cash3")
        screenshot(page, "watchlists")
        page.get_by_role("button", name="Remove cash3").click()
        expect(page.locator("table.watchlist tbody")).not_to_contain_text("cash3")
        listed = httpx.get(f"{base}/v1/watchlists/account", headers=ADMIN).json()["items"]
        assert {e["value"] for e in listed} == {"mule1", "cash1"}
        assert not errors, errors
        page.context.close()


def test_investigator_decides_a_whole_case_from_the_case_queue(
    services, redis_client: redis.Redis, topics: TopicSet, settings_for: SettingsFactory, browser
) -> None:
    settings = rules_only(settings_for(topics))
    list_mule(redis_client, settings)
    events = fan_out_ring("ring") + layered_ring()
    produce(settings.kafka_bootstrap, topics.transfers, events_json(events))
    with worker_thread(settings), api_server(settings) as base:
        wait_for(lambda: committed(settings, topics.transfers) == len(events), what="commit")
        desk = create_key(base, "investigator", "anti-fraud desk 3")
        page, errors = new_page(browser, base)
        sign_in(page, desk)

        # The queue: one case per suspect, the fan-out mule's five alerts in one.
        expect(page.get_by_role("heading", level=1)).to_have_text("Case queue")
        cases = page.locator("table.case-queue tbody tr")
        expect(cases).to_have_count(2)
        ring = cases.filter(has_text="ring-mule")
        expect(ring.locator("td").nth(2)).to_have_text("5")
        expect(ring).to_contain_text("49,500.00 CNY")
        screenshot(page, "cases", for_readme=README)

        # The case: its accounts, the money trail of its alerts, one decision for all.
        ring.get_by_role("link", name=re.compile("Open case")).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("ring-mule")
        expect(page.locator("table.case-accounts tbody tr")).to_have_count(6)
        expect(page.locator("table.case-accounts tbody tr").first).to_contain_text("suspect")
        expect(page.locator("svg.trail a.trail-node")).to_have_count(6)
        expect(page.locator("table.case-alerts tbody tr")).to_have_count(5)
        confirm = page.get_by_role("button", name="Confirm fraud")
        expect(confirm).to_be_disabled()
        page.get_by_label("Note (required)").fill("Rented card; the victim called the bank.")
        screenshot(page, "case", for_readme=README)
        confirm.click()
        expect(page.locator(".success")).to_contain_text("5 alerts moved")
        expect(page.locator(".success")).to_contain_text("ring-mule put on the account watchlist")
        expect(page.locator("table.case-accounts tbody tr").first).to_contain_text("listed")
        # The listing flagged the mule's earlier transfers: new alerts in its case, open again.
        expect(page.locator(".success")).to_contain_text("8 past transfers of it flagged")
        expect(page.locator("#case-status")).to_have_text("open")
        expect(page.locator("table.case-alerts tbody tr")).to_have_count(13)
        page.get_by_label("Note (required)").fill("Its earlier transfers: the same victim's money.")
        page.get_by_role("button", name="Confirm fraud").click()
        expect(page.locator(".success")).to_contain_text("8 alerts moved; 5 left as they were")
        expect(page.locator("#case-status")).to_have_text("confirmed")
        alerts = httpx.get(f"{base}/v1/alerts", params={"account": "ring-mule"},
                           headers=ADMIN).json()["items"]  # fmt: skip
        fan_out = [a for a in alerts if a["suspect_account"] == "ring-mule"
                   and a["reasons"][0]["rule"] == "fan_out_rapid"]  # fmt: skip
        assert len(fan_out) == 5 and {a["status"] for a in fan_out} == {"confirmed"}

        # Its alert names the suspect and links back to the case.
        leg = page.locator("table.case-alerts tbody tr").filter(has_text="ring-layer2-11")
        leg.get_by_role("link").click()
        expect(page.locator("#alert-suspect")).to_contain_text("ring-mule (the payer)")
        page.locator("#alert-case").click()
        expect(page.locator("#case-status")).to_have_text("confirmed")
        page.get_by_role("link", name="ring-mule").first.click()
        expect(page.locator("#watchlist-status")).to_contain_text("Listed by investigation")

        # The listed mule's case, dismissed: its patterns are suppressed for it, on its page;
        # its listing is not (a listed party always alerts: lifting it is the list's business).
        page.goto(f"{base}/console/?poll=1000#/cases")
        cases.filter(has_text="mule1").get_by_role("link", name=re.compile("Open case")).click()
        page.get_by_label("Note (required)").fill("Police notice withdrawn.")
        page.get_by_role("button", name="Dismiss (false positive)").click()
        expect(page.locator("#case-status")).to_have_text("dismissed")
        page.goto(f"{base}/console/?poll=1000#/accounts/mule1")
        expect(page.locator("#suppressed-rules")).to_contain_text("layering_split")
        expect(page.locator("#suppressed-rules")).not_to_contain_text("watchlist_hit")
        expect(page.locator("#suppressed-hits")).to_contain_text("0 alerts held back")
        assert not errors, errors
        page.context.close()


def test_analyst_reads_only_and_a_bank_key_is_refused(
    services, redis_client: redis.Redis, tmp_path, browser
) -> None:
    settings = rules_only(api_settings(services, tmp_path))
    outcome = score_ring(settings, redis_client)
    alert_id = outcome.new_alerts[0].alert_id
    modelled = with_model_reason(outcome.new_alerts[-1])
    AlertStore(redis_client).put_alerts([modelled])
    with api_server(settings) as base:
        analyst = create_key(base, "analyst", "risk analyst")
        bank = create_key(base, "bank", "core banking")
        page, errors = new_page(browser, base)

        sign_in(page, bank)
        expect(page.get_by_role("alert")).to_contain_text("Bank keys are for the API")
        expect(page.locator("#who")).to_be_hidden()
        sign_in(page, "not-a-key")
        expect(page.get_by_role("alert")).to_contain_text("does not know this key")

        sign_in(page, analyst)
        expect(page.locator("#who")).to_contain_text("(analyst)")
        page.locator("#nav").get_by_role("link", name="Alerts").click()
        expect(page.locator("table.queue tbody tr").first).to_be_visible()
        # Accounts are plain text for an analyst: the account pages are not theirs.
        expect(page.locator("table.queue a.acct")).to_have_count(0)
        page.goto(f"{base}/console/#/alerts/{alert_id}")
        expect(page.locator(".decide")).to_contain_text("may read alerts but not decide")
        expect(page.locator(".decide button")).to_have_count(0)
        expect(page.get_by_role("link", name="Follow the money")).to_have_count(0)
        screenshot(page, "alert-analyst")
        page.goto(f"{base}/console/#/alerts/{modelled.alert_id}")
        model = page.get_by_role("region", name="The model's top features")
        expect(model).to_contain_text("fraud probability 91%")
        expect(model.locator("tr", has_text="payees the payer last paid")).to_contain_text("8")
        expect(model.locator("tr", has_text="money the payer sent")).to_contain_text("79,200.00")
        # Kept in fen, shown as money: the label names the currency, not its minor unit.
        expect(model.locator("tr", has_text="money the payer sent")).to_contain_text("(CNY)")
        expect(model).not_to_contain_text("fen")
        expect(page.locator("dl.facts")).to_contain_text("91% fraud probability")

        # Forcing the action anyway: the API refuses it, and nothing changes.
        refused = page.evaluate(
            """async (alertId) => {
                const key = sessionStorage.getItem("fraudwatch.console.key");
                const response = await fetch(`/v1/alerts/${alertId}/actions`, {
                    method: "POST",
                    headers: {"Authorization": `Bearer ${key}`, "Content-Type": "application/json"},
                    body: JSON.stringify({action: "confirm_fraud", note: "forced"}),
                });
                return {status: response.status, body: await response.json()};
            }""",
            alert_id,
        )
        assert refused["status"] == 403, refused
        assert "analyst" in refused["body"]["detail"]
        stored = httpx.get(f"{base}/v1/alerts/{alert_id}", headers=ADMIN).json()
        assert stored["status"] == "open"

        # Pages outside the role show the API's refusal.
        page.goto(f"{base}/console/#/accounts/ring-mule")
        expect(page.get_by_role("alert")).to_contain_text("role 'analyst' may not use this route")
        page.goto(f"{base}/console/#/watchlists")
        expect(page.get_by_role("alert")).to_contain_text("managed by admins")
        assert not errors, errors
        page.context.close()


def test_api_docs_render_every_operation_with_the_network_cut(
    services, redis_client: redis.Redis, tmp_path, browser
) -> None:
    """A bank's isolated network: every request to another host fails, and /docs still shows
    the whole API (its files come from the API itself, not a CDN)."""
    settings = api_settings(services, tmp_path)
    with api_server(settings) as base:
        operations = sum(
            len(methods) for methods in httpx.get(f"{base}/openapi.json").json()["paths"].values()
        )
        context = browser.new_context(viewport=VIEWPORT)
        outside: list[str] = []

        def cut_the_network(route: Any) -> None:
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort("internetdisconnected")

        context.route("**/*", cut_the_network)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/docs")
        expect(page.locator(".opblock")).to_have_count(operations, timeout=15_000)
        expect(page.locator(".opblock-summary-path", has_text="/v1/screen")).to_be_visible()
        expect(page.locator(".info .title")).to_contain_text("fraudwatch")
        screenshot(page, "docs")
        assert outside == [] and not errors, (outside, errors)
        assert httpx.get(f"{base}/redoc").status_code == 404  # no CDN page left behind
        context.close()
