// One case: what is at stake, its accounts, the money trail of its alerted transfers, its
// alerts, and one decision for all of them.

import { api } from "./api.js";
import { announce, badge, clear, errorBox, field, formatMoney, h, put, timeEl } from "./dom.js";
import { ACTION_LABELS, consequencesText } from "./alert.js";
import { atRisk } from "./cases.js";
import { accountLink, topReason } from "./queue.js";
import { drawTrail } from "./trace.js";

/** The case's flows as a trail the trace drawing takes: each account at the layer the money
 * reached it (accounts nothing in the case paid are the first layer). */
export function caseTrail(detail) {
  const depth = new Map();
  const paid = new Set(detail.flows.map((f) => f.to_account));
  const queue = detail.accounts.map((a) => a.account_id).filter((a) => !paid.has(a));
  for (const account of queue) depth.set(account, 0);
  for (let i = 0; i < queue.length; i += 1) {
    const from = queue[i];
    for (const flow of detail.flows) {
      if (flow.from_account === from && !depth.has(flow.to_account)) {
        depth.set(flow.to_account, depth.get(from) + 1);
        queue.push(flow.to_account);
      }
    }
  }
  const alertsOf = (account) => detail.flows.filter((f) => f.from_account === account || f.to_account === account).length;
  const nodes = detail.accounts.map((a) => ({
    account: a.account_id, depth: depth.get(a.account_id) ?? 0, amount_in: a.amount_in, amount_out: a.amount_out,
    risk_level: a.role === "suspect" ? "high" : "none", alert_count: alertsOf(a.account_id), watchlisted: a.listed,
  }));
  const edges = detail.flows.map((f) => ({ transfer_id: f.transfer_id, from: f.from_account, to: f.to_account, amount: f.amount, ts: f.ts }));
  return { root: edges[0] || null, nodes, edges, truncated: false };
}

function accountsTable(ctx, detail) {
  return h("table", { class: "case-accounts" },
    h("caption", {}, "Accounts"),
    h("thead", {}, h("tr", {}, ["Account", "Role", "Received", "Sent", "Watchlist"].map((n) => h("th", { scope: "col" }, n)))),
    h("tbody", {}, detail.accounts.map((a) => h("tr", {},
      h("td", {}, accountLink(ctx, a.account_id)),
      h("td", {}, a.role === "suspect" ? badge("sev", "high") : "other party", a.role === "suspect" ? " suspect" : null),
      h("td", { class: "num" }, formatMoney(a.amount_in)),
      h("td", { class: "num" }, formatMoney(a.amount_out)),
      h("td", {}, a.listed ? h("strong", {}, "listed") : "—")))));
}

function alertsTable(detail) {
  return h("table", { class: "case-alerts" },
    h("caption", {}, `Alerts (${detail.alert_count}${detail.alerts.length < detail.alert_count ? `, the first ${detail.alerts.length} shown` : ""})`),
    h("thead", {}, h("tr", {}, ["Time", "Payer → payee", "Amount", "Severity", "Status", "Top reason"].map((n) => h("th", { scope: "col" }, n)))),
    h("tbody", {}, detail.alerts.map((a) => h("tr", {},
      h("td", {}, h("a", { href: `#/alerts/${a.alert_id}` }, timeEl(a.ts))),
      h("td", {}, `${a.src_account} → ${a.dst_account}`),
      h("td", { class: "num" }, formatMoney(a.amount, a.currency)),
      h("td", {}, badge("sev", a.severity)),
      h("td", {}, badge("st", a.status)),
      h("td", { class: "reason" }, topReason(a))))));
}

function decisionForm(ctx, detail, onDone) {
  const section = h("section", { class: "decide", "aria-labelledby": "case-decide-title" },
    h("h2", { id: "case-decide-title" }, "Decision on the whole case"));
  if (!ctx.caps.decide) {
    section.append(h("p", { class: "readonly" }, `Your role (${ctx.me.role}) may read cases but not decide on them.`));
    return section;
  }
  const statuses = new Set(detail.alerts.map((a) => a.status));
  const moves = ctx.glossary.actions.filter((move) => move.from.some((from) => statuses.has(from)));
  if (!moves.length) {
    section.append(h("p", {}, `No further action: every alert is ${[...statuses].join(" or ")}.`));
    return section;
  }
  const note = h("textarea", { id: "case-note", name: "note", rows: 3, maxlength: 2000, required: true, "aria-describedby": "case-note-help" });
  const result = h("div", { class: "action-result" });
  const buttons = moves.map((move) => h("button", {
    type: "submit", value: move.action, class: move.action === "confirm_fraud" ? "danger" : "", disabled: true,
  }, ACTION_LABELS[move.action] || move.action));
  const form = h("form", { "aria-labelledby": "case-decide-title" },
    field("case-note", "Note (required)", note, "Recorded in the history of every alert the decision moves, with your name."),
    h("div", { class: "buttons", role: "group", "aria-label": "Actions allowed on some alert of the case" }, buttons),
    result);
  note.addEventListener("input", () => { for (const b of buttons) b.disabled = !note.value.trim(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const action = event.submitter && event.submitter.value;
    const text = note.value.trim();
    if (!action || !text) return;
    for (const b of buttons) b.disabled = true;
    try {
      const answer = await api(`/v1/cases/${detail.case_id}/actions`, { method: "POST", json: { action, note: text } });
      const words = [`${answer.moved.length} alert${answer.moved.length === 1 ? "" : "s"} moved`,
        answer.skipped.length ? `${answer.skipped.length} left as they were` : null,
        consequencesText(answer.consequences)].filter(Boolean).join("; ");
      announce(words);
      onDone(`${words}.`);
    } catch (error) {
      clear(result).append(errorBox(error));
      for (const b of buttons) b.disabled = !note.value.trim();
    }
  });
  section.append(form);
  return section;
}

export async function renderCase(main, ctx, caseId) {
  document.title = "Case · fraudwatch";
  const draw = async (message) => {
    let detail;
    try {
      detail = await api(`/v1/cases/${encodeURIComponent(caseId)}`);
    } catch (error) {
      clear(main).append(h("h1", {}, "Case"), errorBox(error), h("p", {}, h("a", { href: "#/cases" }, "Back to the case queue")));
      return;
    }
    const ring = detail.suspects.length > 1;
    const trail = caseTrail(detail);
    clear(main);
    put(main,
      h("p", { class: "crumbs" }, h("a", { href: "#/cases" }, "← Case queue")),
      h("div", { class: "title-row" },
        h("h1", {}, ring ? `Ring of ${detail.suspects.length} suspects` : "Case of ", ring ? null : h("code", {}, detail.suspects[0])),
        h("p", { class: "badges" }, "Severity ", badge("sev", detail.severity), " Status ",
          h("span", { id: "case-status" }, badge("st", detail.status)),
          detail.money_moving ? [" ", h("span", { class: "badge moving" }, "money moving")] : null)),
      message ? h("p", { class: "success", tabindex: "-1" }, message) : null,
      h("dl", { class: "facts" },
        h("dt", {}, "At risk"), h("dd", {}, atRisk(detail)),
        h("dt", {}, "Alerts"), h("dd", {}, Object.entries(detail.alerts_by_status).map(([s, n]) => `${n} ${s}`).join(", ")),
        h("dt", {}, "Active"), h("dd", {}, timeEl(detail.first_event_at), " to ", timeEl(detail.last_event_at)),
        h("dt", {}, "Case id"), h("dd", {}, h("code", {}, detail.case_id))),
      h("div", { class: "columns" },
        h("div", {}, accountsTable(ctx, detail)),
        h("div", {}, decisionForm(ctx, detail, async (words) => {
          await draw(words);
          main.querySelector(".success")?.focus();
        }))),
      h("section", { "aria-labelledby": "case-trail-title" },
        h("h2", { id: "case-trail-title" }, "Money trail of its alerted transfers"),
        trail.edges.length
          ? h("div", { class: "trail-wrap" }, drawTrail(trail, "down", `Money trail of case ${detail.case_id}`))
          : h("p", {}, "No alerted transfer to draw."),
        trail.edges.length && ctx.caps.trace
          ? h("p", {}, "Follow any transfer further: ",
            h("a", { href: `#/trace/${encodeURIComponent(trail.edges[trail.edges.length - 1].transfer_id)}` }, "the latest one's money trail"))
          : null),
      alertsTable(detail));
  };
  await draw();
}
