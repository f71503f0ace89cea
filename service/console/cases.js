// The case queue (the console's home): cases by priority, money still moving first; filters
// kept in the address; cursor paging; refreshed every few seconds.

import { api } from "./api.js";
import { announce, badge, clear, errorBox, field, formatMoney, h, localToIso, select, timeEl } from "./dom.js";
import { accountLink, pollMs, STATUSES } from "./queue.js";

const DEFAULT_PAGE_SIZE = 25;
const FILTERS = ["status", "severity", "account", "since", "until", "limit"];
const SEVERITIES = ["low", "medium", "high", "critical"];

let paging = { filterKey: null, cursors: [null] };

function hashFor(filters) {
  const query = new URLSearchParams();
  for (const name of FILTERS) if (filters[name]) query.set(name, filters[name]);
  const text = query.toString();
  return text ? `#/cases?${text}` : "#/cases";
}

/** The amounts at risk of a case, one per currency. */
export function atRisk(item) {
  return item.amount_at_risk.map((a) => formatMoney(a.amount, a.currency)).join(", ") || "—";
}

function filterForm(ctx, filters) {
  const account = h("input", { id: "c-account", name: "account", type: "search", value: filters.account || "", maxlength: 64 });
  const since = h("input", { id: "c-since", name: "since", type: "datetime-local", value: filters.since || "" });
  const until = h("input", { id: "c-until", name: "until", type: "datetime-local", value: filters.until || "" });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Filter cases" },
    field("c-status", "Status", select("c-status", [["", "any status"], ...STATUSES.map((s) => [s, s])], filters.status ?? "open")),
    field("c-severity", "Severity", select("c-severity", [["", "any severity"], ...SEVERITIES.map((s) => [s, s])], filters.severity || "")),
    field("c-account", "Account (suspect or party)", account),
    field("c-since", "Active from", since),
    field("c-until", "Active until", until),
    h("div", { class: "filter-buttons" },
      h("button", { type: "submit", class: "primary" }, "Apply filters"),
      h("a", { href: "#/cases", class: "button" }, "Clear")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate(hashFor({
      status: form.querySelector("#c-status").value || "any", severity: form.querySelector("#c-severity").value,
      account: account.value.trim(), since: since.value, until: until.value, limit: filters.limit,
    }));
  });
  return form;
}

function row(ctx, item) {
  const suspects = item.suspects.slice(0, 3);
  const more = item.suspects.length - suspects.length;
  return h(
    "tr",
    { dataset: { caseId: item.case_id } },
    h("td", {}, h("a", { href: `#/cases/${item.case_id}`, "aria-label": `Open case of ${item.suspects.join(", ")}` },
      item.suspects.length > 1 ? `Ring of ${item.suspects.length}` : "Case"),
    item.money_moving ? [" ", h("span", { class: "badge moving" }, "money moving")] : null),
    h("td", {}, h("ul", { class: "inline" }, suspects.map((a) => h("li", {}, accountLink(ctx, a)))),
      more > 0 ? ` and ${more} more` : null),
    h("td", { class: "num" }, String(item.alert_count)),
    h("td", { class: "num" }, atRisk(item)),
    h("td", {}, badge("sev", item.severity)),
    h("td", { class: "status-cell" }, badge("st", item.status)),
    h("td", {}, timeEl(item.last_event_at)),
  );
}

export async function renderCases(main, ctx) {
  document.title = "Cases · fraudwatch";
  const filters = Object.fromEntries(FILTERS.map((name) => [name, ctx.params.get(name) || ""]));
  // The queue shows open cases unless asked otherwise ("any" in the address: every status).
  if (!ctx.params.has("status")) filters.status = "open";
  const status = filters.status === "any" ? "" : filters.status;
  const pageSize = Math.min(100, Math.max(1, Number(filters.limit) || DEFAULT_PAGE_SIZE));
  const filterKey = hashFor(filters);
  if (paging.filterKey !== filterKey) paging = { filterKey, cursors: [null] };
  const pageStatus = h("p", { class: "page-status", role: "status" });
  const newer = h("button", { type: "button" }, "← Higher priority");
  const older = h("button", { type: "button" }, "Lower priority →");
  const body = h("tbody");
  main.append(
    h("div", { class: "title-row" }, h("h1", {}, "Case queue"),
      h("p", {}, h("a", { href: "#/alerts" }, "Single alerts →"))),
    h("p", { class: "lede" }, "One case per suspect account, rings of linked suspects as one case; money still moving first."),
    filterForm(ctx, { ...filters, status }),
    h("div", { class: "table-wrap" }, h("table", { class: "queue case-queue" },
      h("caption", { class: "visually-hidden" }, "Cases, highest priority first"),
      h("thead", {}, h("tr", {}, ["Case", "Suspects", "Alerts", "At risk", "Severity", "Status", "Last event"]
        .map((name) => h("th", { scope: "col" }, name)))),
      body)),
    h("nav", { class: "pager", "aria-label": "Pages" }, newer, pageStatus, older),
  );
  const query = { status, severity: filters.severity, account: filters.account,
    since: localToIso(filters.since), until: localToIso(filters.until) };
  let nextCursor = null;
  let shown = "";

  const load = async () => {
    const page = paging.cursors.length - 1;
    try {
      const data = await api("/v1/cases", { query: { ...query, limit: pageSize, cursor: paging.cursors[page] } });
      nextCursor = data.next_cursor;
      const key = JSON.stringify(data.items.map((c) => [c.case_id, c.status, c.alert_count]));
      if (key !== shown && shown) announce("The case queue changed");
      shown = key;
      clear(body).append(...data.items.map((c) => row(ctx, c)));
      if (!data.items.length) {
        body.append(h("tr", {}, h("td", { colspan: 7 }, data.next_cursor
          ? "None found in this stretch of the queue; Lower priority searches further."
          : "No cases match these filters.")));
      }
      pageStatus.textContent = `Page ${page + 1} · ${data.items.length} case${data.items.length === 1 ? "" : "s"}`;
    } catch (error) {
      clear(body).append(h("tr", {}, h("td", { colspan: 7 }, errorBox(error))));
      nextCursor = null;
    }
    newer.disabled = page === 0;
    older.disabled = !nextCursor;
  };
  newer.addEventListener("click", () => { paging.cursors.pop(); load(); });
  older.addEventListener("click", () => { paging.cursors.push(nextCursor); load(); });
  await load();
  // The first page follows the queue as it changes; later pages stay put while read.
  const timer = setInterval(() => { if (paging.cursors.length === 1) load(); }, pollMs());
  return () => clearInterval(timer);
}
