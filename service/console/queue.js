// The alert queue: filters, counts per status, cursor paging, new alerts as they arrive.

import { api } from "./api.js";
import { announce, badge, clear, errorBox, field, formatMoney, formatTime, h, localToIso, select, timeEl } from "./dom.js";

const DEFAULT_PAGE_SIZE = 25;
const FILTERS = ["severity", "rule", "status", "account", "since", "until", "limit"];
const SEVERITIES = ["low", "medium", "high", "critical"];
export const STATUSES = ["open", "escalated", "confirmed", "appealed", "dismissed"];

// Position in the result list for the current filters: a stack of the cursors that opened
// each page we went through (null = the first page), so "Newer" goes back exactly.
let paging = { filterKey: null, cursors: [null] };

export function pollMs() {
  const configured = Number(new URLSearchParams(location.search).get("poll"));
  return configured >= 500 ? configured : 5000;
}

export function accountLink(ctx, account) {
  return ctx.caps.accounts
    ? h("a", { href: `#/accounts/${encodeURIComponent(account)}`, class: "acct" }, account)
    : h("span", { class: "acct" }, account);
}

export function topReason(alert) {
  const reason = alert.reasons[0];
  if (!reason) return "";
  return reason.summary || reason.title;
}

function filterQuery(filters) {
  return {
    severity: filters.severity, rule: filters.rule, status: filters.status, account: filters.account,
    since: localToIso(filters.since), until: localToIso(filters.until),
  };
}

function hashFor(filters) {
  const query = new URLSearchParams();
  for (const name of FILTERS) if (filters[name]) query.set(name, filters[name]);
  const text = query.toString();
  return text ? `#/alerts?${text}` : "#/alerts";
}

function filterForm(ctx, filters) {
  const ruleOptions = [["", "any rule"], ...ctx.glossary.rules.map((r) => [r.id, r.title]), ["model", "Model"]];
  const account = h("input", { id: "f-account", name: "account", type: "search", value: filters.account || "", maxlength: 64 });
  const since = h("input", { id: "f-since", name: "since", type: "datetime-local", value: filters.since || "" });
  const until = h("input", { id: "f-until", name: "until", type: "datetime-local", value: filters.until || "" });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Filter alerts" },
    field("f-severity", "Severity", select("f-severity", [["", "any severity"], ...SEVERITIES.map((s) => [s, s])], filters.severity || "")),
    field("f-rule", "Rule", select("f-rule", ruleOptions, filters.rule || "")),
    field("f-status", "Status", select("f-status", [["", "any status"], ...STATUSES.map((s) => [s, s])], filters.status || "")),
    field("f-account", "Account (payer or payee)", account),
    field("f-since", "From (event time)", since),
    field("f-until", "To (event time)", until),
    h("div", { class: "filter-buttons" },
      h("button", { type: "submit", class: "primary" }, "Apply filters"),
      h("a", { href: "#/alerts", class: "button" }, "Clear")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = {
      severity: form.querySelector("#f-severity").value, rule: form.querySelector("#f-rule").value,
      status: form.querySelector("#f-status").value, account: account.value.trim(),
      since: since.value, until: until.value, limit: filters.limit,
    };
    ctx.navigate(hashFor(chosen));
  });
  return form;
}

function countsBar(filters) {
  const list = h("ul", { class: "counts", "aria-label": "Alerts per status" });
  const render = (data) => {
    clear(list);
    list.append(h("li", {}, h("a", { href: hashFor({ ...filters, status: "" }), "aria-current": filters.status ? null : "true" },
      "All ", h("span", { class: "count" }, String(data.total)))));
    for (const status of STATUSES) {
      list.append(h("li", {}, h("a", {
        href: hashFor({ ...filters, status }), "aria-current": filters.status === status ? "true" : null,
        dataset: { status },
      }, `${status} `, h("span", { class: "count" }, String(data.counts[status])))));
    }
  };
  return { element: list, render };
}

function row(ctx, alert) {
  return h(
    "tr",
    { dataset: { alertId: alert.alert_id } },
    h("td", {}, h("a", { href: `#/alerts/${alert.alert_id}`, "aria-label": `Open alert, ${formatTime(alert.ts)}` }, timeEl(alert.ts))),
    h("td", {}, accountLink(ctx, alert.src_account), h("span", { "aria-hidden": "true" }, " → "),
      h("span", { class: "visually-hidden" }, " paid "), accountLink(ctx, alert.dst_account)),
    h("td", { class: "num" }, formatMoney(alert.amount, alert.currency)),
    h("td", { class: "num" }, alert.score.toFixed(2)),
    h("td", {}, badge("sev", alert.severity)),
    h("td", { class: "status-cell" }, badge("st", alert.status)),
    h("td", { class: "reason" }, topReason(alert)),
  );
}

function newerFirst(a, b) {
  const byTime = Date.parse(b.ts) - Date.parse(a.ts);
  return byTime !== 0 ? byTime : b.alert_id.localeCompare(a.alert_id);
}

export async function renderQueue(main, ctx) {
  document.title = "Alerts · fraudwatch";
  const filters = Object.fromEntries(FILTERS.map((name) => [name, ctx.params.get(name) || ""]));
  const pageSize = Math.min(100, Math.max(1, Number(filters.limit) || DEFAULT_PAGE_SIZE));
  const filterKey = hashFor(filters);
  if (paging.filterKey !== filterKey) paging = { filterKey, cursors: [null] };
  const counts = countsBar(filters);
  const status = h("p", { class: "page-status", role: "status" });
  const newer = h("button", { type: "button" }, "← Newer");
  const older = h("button", { type: "button" }, "Older →");
  const notice = h("div", { class: "notice", hidden: true });
  const body = h("tbody");
  const table = h(
    "table",
    { class: "queue" },
    h("caption", { class: "visually-hidden" }, "Alerts, newest first"),
    h("thead", {}, h("tr", {}, ["Time", "Accounts (payer → payee)", "Amount", "Score", "Severity", "Status", "Top reason"]
      .map((name) => h("th", { scope: "col" }, name)))),
    body,
  );
  main.append(
    h("div", { class: "title-row" }, h("h1", {}, "Alert queue"), counts.element),
    filterForm(ctx, filters),
    notice,
    h("div", { class: "table-wrap" }, table),
    h("nav", { class: "pager", "aria-label": "Pages" }, newer, status, older),
  );

  const query = filterQuery(filters);
  let shown = new Map();
  let nextCursor = null;

  const loadCounts = () => api("/v1/alerts/counts").then(counts.render).catch(() => {});
  const load = async () => {
    const page = paging.cursors.length - 1;
    try {
      const data = await api("/v1/alerts", { query: { ...query, limit: pageSize, cursor: paging.cursors[page] } });
      shown = new Map(data.items.map((a) => [a.alert_id, a]));
      nextCursor = data.next_cursor;
      clear(body).append(...data.items.map((a) => row(ctx, a)));
      // A rare filter may answer a short or empty page that still has more to search.
      const none = data.next_cursor
        ? "None found in this stretch of the queue; Older searches further back."
        : "No alerts match these filters.";
      if (!data.items.length) body.append(h("tr", {}, h("td", { colspan: 7 }, none)));
      status.textContent = `Page ${page + 1} · ${data.items.length} alert${data.items.length === 1 ? "" : "s"}`;
    } catch (error) {
      clear(body).append(h("tr", {}, h("td", { colspan: 7 }, errorBox(error))));
      nextCursor = null;
    }
    newer.disabled = page === 0;
    older.disabled = !nextCursor;
    notice.hidden = true;
  };
  newer.addEventListener("click", () => {
    paging.cursors.pop();
    load();
  });
  older.addEventListener("click", () => {
    paging.cursors.push(nextCursor);
    load();
  });

  // New alerts: poll the first page; on it, slot new rows in place, elsewhere offer to go there.
  const poll = async () => {
    loadCounts();
    let fresh;
    try {
      fresh = await api("/v1/alerts", { query: { ...query, limit: pageSize } });
    } catch {
      return;
    }
    const arrived = fresh.items.filter((a) => !shown.has(a.alert_id));
    for (const alert of fresh.items) {
      const known = shown.get(alert.alert_id);
      if (known && known.status !== alert.status) {
        known.status = alert.status;
        const cell = body.querySelector(`tr[data-alert-id="${alert.alert_id}"] .status-cell`);
        if (cell) clear(cell).append(badge("st", alert.status));
      }
    }
    if (!arrived.length) return;
    const words = `${arrived.length} new alert${arrived.length === 1 ? "" : "s"}`;
    if (paging.cursors.length > 1) {
      clear(notice).append(`${words} since this page was loaded. `,
        h("button", { type: "button", onclick: () => { paging.cursors = [null]; load(); } }, "Show newest"));
      notice.hidden = false;
      announce(words);
      return;
    }
    if (shown.size === 0) clear(body);
    for (const alert of arrived.sort(newerFirst)) {
      shown.set(alert.alert_id, alert);
      const element = row(ctx, alert);
      element.classList.add("arrived");
      const before = [...body.rows].find((r) => {
        const other = shown.get(r.dataset.alertId);
        return other && newerFirst(alert, other) < 0;
      });
      body.insertBefore(element, before || null);
    }
    announce(`${words} in the queue`);
  };

  await Promise.all([load(), loadCounts()]);
  const timer = setInterval(poll, pollMs());
  return () => clearInterval(timer);
}
