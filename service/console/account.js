// One account: early-warning risk, recent transfers, shared devices/phones/IPs, watchlist, alerts.

import { api } from "./api.js";
import { badge, errorBox, formatMoney, h, timeEl } from "./dom.js";
import { accountLink, topReason } from "./queue.js";

/** How many counterparties were new; null in the first week of observation, when it is unknown. */
const firstTime = (count) => (count === null ? "first-time unknown in the first week of observation" : `${count} first-time`);

const KIND_LABELS = { device: "Device", phone: "Phone number", ip: "IP address" };

function section(id, title, ...content) {
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

function riskPanel(risk) {
  const reasons = risk.reasons.length
    ? h("ul", { class: "risk-reasons" }, risk.reasons.map((r) => h("li", {}, badge("sev", r.level === "none" ? "low" : r.level), " ", r.text)))
    : h("p", {}, "Nothing in its recent activity raises concern.");
  const f = risk.facts;
  const ratio = f.pass_through_ratio_24h === null ? "no money in" : `${Math.round(f.pass_through_ratio_24h * 100)}%`;
  return section("risk-title", "Early-warning risk",
    h("p", { class: "risk-level" }, "Risk level: ", h("span", { class: `badge risk-${risk.risk_level}`, id: "risk-level" }, risk.risk_level)),
    reasons,
    h("dl", { class: "facts" },
      h("dt", {}, "As of"), h("dd", {}, f.as_of ? timeEl(f.as_of) : "no transfers seen"),
      h("dt", {}, "Sent (24 h)"), h("dd", {}, `${formatMoney(f.amount_out_24h)} in ${f.fan_out.transfers_24h} transfers to ${f.fan_out.distinct_payees_24h} payees (${firstTime(f.fan_out.first_time_payees_24h)}; ${f.fan_out.distinct_payees_1h} in the last hour)`),
      h("dt", {}, "Received (24 h)"), h("dd", {}, `${formatMoney(f.amount_in_24h)} in ${f.fan_in.transfers_24h} transfers from ${f.fan_in.distinct_payers_24h} payers (${firstTime(f.fan_in.first_time_payers_24h)}; ${f.fan_in.distinct_payers_1h} in the last hour)`),
      h("dt", {}, "Passed through (24 h)"), h("dd", {}, ratio),
      h("dt", {}, "Account age"), h("dd", {}, f.account_age_days === null ? "unknown" : `${f.account_age_days} days`),
      h("dt", {}, "Kind"), h("dd", {}, f.kind || "unknown"),
      h("dt", {}, "Holder born"), h("dd", {}, f.holder_birth_year === null ? "not shown" : String(f.holder_birth_year))),
  );
}

function watchlistPanel(risk) {
  const listing = risk.listing;
  const neighbour = risk.reasons.find((r) => r.code === "watchlist_neighbour");
  return section("watchlist-title", "Watchlist",
    h("p", { id: "watchlist-status" }, listing
      ? [badge("sev", "critical"), ` Listed by ${listing.source} — ${listing.reason}. Payments to it are blocked.`]
      : "Not on the account watchlist."),
    listing && listing.added_at ? h("p", { class: "meta" }, "Since ", timeEl(listing.added_at),
      listing.expires_at ? [" until ", timeEl(listing.expires_at)] : null) : null,
    neighbour ? h("p", {}, badge("sev", "high"), " ", neighbour.text) : null);
}

function suppressionPanel(risk) {
  const held = risk.suppression;
  if (!held || !held.rules.length) return null;
  return section("suppression-title", "Dismissed patterns",
    h("p", {}, "These rules raise no alert on this account until the date shown, unless their evidence grows by half again:"),
    h("ul", { id: "suppressed-rules" }, held.rules.map((r) => h("li", {}, h("code", {}, r.rule), " until ", timeEl(r.until),
      " (dismissed in ", h("a", { href: `#/alerts/${r.dismissed_alert_id}` }, "this alert"), ")"))),
    h("p", { id: "suppressed-hits" }, `${held.suppressed_hits} alert${held.suppressed_hits === 1 ? "" : "s"} held back so far.`),
    held.latest_hits.length ? h("ul", { class: "inline" }, held.latest_hits.map((hit) => h("li", {}, h("code", {}, hit.transfer_id), " ", timeEl(hit.ts)))) : null);
}

function sharedPanel(ctx, risk) {
  const shared = risk.facts.shared_identifiers;
  if (!shared.length) return section("shared-title", "Devices, phones and IPs", h("p", {}, "No device, phone or IP seen in the last 7 days."));
  return section("shared-title", "Devices, phones and IPs (7 days)",
    h("table", {},
      h("caption", { class: "visually-hidden" }, "Identifiers this account used and the other accounts on them"),
      h("thead", {}, h("tr", {}, ["Kind", "Value", "Also used by"].map((n) => h("th", { scope: "col" }, n)))),
      h("tbody", {}, shared.map((i) => h("tr", {},
        h("td", {}, KIND_LABELS[i.kind] || i.kind),
        h("td", {}, h("code", {}, i.value)),
        h("td", { class: i.other_accounts.length ? "shared" : "" },
          i.other_accounts.length
            ? h("ul", { class: "inline" }, i.other_accounts.map((a) => h("li", {}, accountLink(ctx, a))))
            : "no other account"))))));
}

function transfersTable(ctx, direction, data) {
  const who = direction === "in" ? "From" : "To";
  if (data instanceof Error) return errorBox(data);
  if (!data.items.length) return h("p", {}, direction === "in" ? "Nothing received recently." : "Nothing sent recently.");
  return h("table", { class: `transfers-${direction}` },
    h("caption", {}, direction === "in" ? "Money in" : "Money out"),
    h("thead", {}, h("tr", {}, ["Time", who, "Amount", "Transfer"].map((n) => h("th", { scope: "col" }, n)))),
    h("tbody", {}, data.items.map((t) => h("tr", {},
      h("td", {}, timeEl(t.ts)),
      h("td", {}, accountLink(ctx, t.counterparty)),
      h("td", { class: "num" }, formatMoney(t.amount)),
      h("td", {}, ctx.caps.trace
        ? h("a", { href: `#/trace/${encodeURIComponent(t.transfer_id)}`, "aria-label": `Follow the money of ${t.transfer_id}` }, t.transfer_id)
        : t.transfer_id)))));
}

function alertsPanel(ctx, accountId, data) {
  if (data instanceof Error) return section("alerts-title", "Alerts", errorBox(data));
  if (!data.items.length) return section("alerts-title", "Alerts", h("p", {}, "No alerts involve this account."));
  return section("alerts-title", `Alerts (${data.items.length}${data.next_cursor ? "+" : ""})`,
    h("table", {},
      h("caption", { class: "visually-hidden" }, "Alerts on transfers of this account, newest first"),
      h("thead", {}, h("tr", {}, ["Time", "Side", "Amount", "Severity", "Status", "Top reason"].map((n) => h("th", { scope: "col" }, n)))),
      h("tbody", {}, data.items.map((a) => h("tr", {},
        h("td", {}, h("a", { href: `#/alerts/${a.alert_id}` }, timeEl(a.ts))),
        h("td", {}, a.src_account === accountId ? "payer" : "payee"),
        h("td", { class: "num" }, formatMoney(a.amount, a.currency)),
        h("td", {}, badge("sev", a.severity)),
        h("td", {}, badge("st", a.status)),
        h("td", { class: "reason" }, topReason(a)))))),
    data.next_cursor ? h("p", {}, h("a", { href: `#/alerts?account=${encodeURIComponent(accountId)}` }, "All alerts of this account in the queue")) : null);
}

export async function renderAccount(main, ctx, accountId) {
  document.title = `Account ${accountId} · fraudwatch`;
  const path = `/v1/accounts/${encodeURIComponent(accountId)}`;
  const settle = (promise) => promise.catch((error) => error);
  const [risk, outgoing, incoming, alerts] = await Promise.all([
    settle(api(`${path}/risk`)),
    settle(api(`${path}/transfers`, { query: { direction: "out", limit: 20 } })),
    settle(api(`${path}/transfers`, { query: { direction: "in", limit: 20 } })),
    settle(api("/v1/alerts", { query: { account: accountId, limit: 20 } })),
  ]);
  main.append(h("p", { class: "crumbs" }, h("a", { href: "#/cases" }, "← Case queue"), " · ",
    h("a", { href: `#/cases?account=${encodeURIComponent(accountId)}&status=any` }, "its cases")),
    h("h1", {}, "Account ", h("code", {}, accountId)));
  if (risk instanceof Error) {
    main.append(errorBox(risk));
    return;
  }
  main.append(
    h("div", { class: "columns" },
      h("div", {}, riskPanel(risk), watchlistPanel(risk), suppressionPanel(risk)),
      h("div", {}, sharedPanel(ctx, risk))),
    section("transfers-title", "Recent transfers",
      h("div", { class: "columns" }, transfersTable(ctx, "in", incoming), transfersTable(ctx, "out", outgoing))),
    alertsPanel(ctx, accountId, alerts),
  );
}
