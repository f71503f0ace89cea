// One alert: its reasons in plain words, the model's top features, history, and decisions.

import { api } from "./api.js";
import { announce, badge, clear, errorBox, field, formatMoney, h, put, timeEl } from "./dom.js";
import { evidenceTable } from "./evidence.js";
import { accountLink } from "./queue.js";

export const ACTION_LABELS = {
  escalate: "Escalate",
  confirm_fraud: "Confirm fraud",
  dismiss: "Dismiss (false positive)",
  appeal: "Record customer appeal",
  restore: "Restore (appeal upheld)",
};
const DONE = {
  escalate: "escalated",
  confirm_fraud: "confirmed as fraud",
  dismiss: "dismissed",
  appeal: "marked as appealed",
  restore: "restored",
};

/** What a decision changed beyond the alert, in words ("" when nothing). */
export function consequencesText(consequences) {
  const { listed, unlisted, suppressed, retro_alerts: retro } = consequences;
  const listedAll = [listed].flat().filter(Boolean);
  const unlistedAll = [unlisted].flat().filter(Boolean);
  return [
    listedAll.length ? `${listedAll.join(", ")} put on the account watchlist: payments to it are blocked` : null,
    retro ? `${retro} past transfer${retro === 1 ? "" : "s"} of it flagged` : null,
    unlistedAll.length ? `${unlistedAll.join(", ")} taken off the watchlist` : null,
    suppressed && suppressed.length ? `${suppressed.join(", ")} suppressed for the suspect account` : null,
  ].filter(Boolean).join("; ");
}

function legalActions(glossary, status) {
  return glossary.actions.filter((move) => move.from.includes(status));
}

function reasonSection(ctx, reason, index) {
  const id = `reason-${index}`;
  const meta = [reason.rule !== "model" ? `rule ${reason.rule}` : null,
    reason.version ? `v${reason.version}` : null,
    reason.score !== null && reason.score !== undefined ? `score ${reason.score.toFixed(2)}` : null].filter(Boolean).join(" · ");
  return h(
    "section",
    { class: "reason-card", "aria-labelledby": id },
    h("h3", { id }, reason.title),
    h("p", { class: "meta" }, meta),
    reason.summary ? h("p", { class: "summary" }, reason.summary) : null,
    evidenceTable(ctx.glossary, reason, reason.rule === "model" ? "Top features" : "Evidence"),
  );
}

function historyTable(items) {
  if (!items.length) return h("p", { id: "history-empty" }, "No decision has been recorded yet.");
  return h(
    "table",
    { class: "history" },
    h("caption", { class: "visually-hidden" }, "Decisions, oldest first"),
    h("thead", {}, h("tr", {}, ["When", "Action", "Status", "By", "Note"].map((n) => h("th", { scope: "col" }, n)))),
    h("tbody", {}, items.map((e) => h("tr", {},
      h("td", {}, timeEl(e.at)),
      h("td", {}, ACTION_LABELS[e.action] || e.action),
      h("td", {}, `${e.from} → ${e.to}`),
      h("td", {}, `${e.by.name || e.by.key_id} (${e.by.role})`),
      h("td", { class: "note" }, e.note)))),
  );
}

function decisionForm(ctx, alert, onDone, onStale) {
  const section = h("section", { class: "decide", "aria-labelledby": "decide-title" }, h("h2", { id: "decide-title" }, "Decision"));
  if (!ctx.caps.decide) {
    section.append(h("p", { class: "readonly" },
      `Your role (${ctx.me.role}) may read alerts but not decide on them.`));
    return section;
  }
  const moves = legalActions(ctx.glossary, alert.status);
  if (!moves.length) {
    section.append(h("p", {}, `No further action: the alert is ${alert.status}.`));
    return section;
  }
  const note = h("textarea", { id: "note", name: "note", rows: 3, maxlength: 2000, required: true, "aria-describedby": "note-help" });
  const result = h("div", { class: "action-result" });
  const buttons = moves.map((move) =>
    h("button", { type: "submit", value: move.action, class: move.action === "confirm_fraud" ? "danger" : "", disabled: true },
      ACTION_LABELS[move.action] || move.action));
  const form = h(
    "form",
    { "aria-labelledby": "decide-title" },
    field("note", "Note (required)", note, "Why you decide this: it goes into the alert's history with your name."),
    h("div", { class: "buttons", role: "group", "aria-label": "Actions allowed now" }, buttons),
    result,
  );
  note.addEventListener("input", () => {
    for (const button of buttons) button.disabled = !note.value.trim();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const action = event.submitter && event.submitter.value;
    const text = note.value.trim();
    if (!action || !text) return;
    for (const button of buttons) button.disabled = true;
    try {
      const answer = await api(`/v1/alerts/${alert.alert_id}/actions`, { method: "POST", json: { action, note: text } });
      const next = consequencesText(answer.consequences);
      const words = `Alert ${DONE[action] || action}: ${answer.entry.from} → ${answer.entry.to}.${next ? ` ${next}.` : ""}`;
      announce(words);
      onDone(answer.alert, words);
    } catch (error) {
      // 409: someone decided since this page was drawn; show the alert as it is now.
      if (error.status === 409) return onStale(error);
      clear(result).append(errorBox(error));
      for (const button of buttons) button.disabled = !note.value.trim();
    }
  });
  section.append(form);
  return section;
}

export async function renderAlert(main, ctx, alertId) {
  document.title = "Alert · fraudwatch";
  let alert;
  let history;
  try {
    [alert, history] = await Promise.all([
      api(`/v1/alerts/${encodeURIComponent(alertId)}`),
      api(`/v1/alerts/${encodeURIComponent(alertId)}/history`, { query: { limit: 500 } }),
    ]);
  } catch (error) {
    main.append(h("h1", {}, `Alert ${alertId}`), errorBox(error), h("p", {}, h("a", { href: "#/alerts" }, "Back to the queue")));
    return;
  }
  const draw = (current, items, message) => {
    clear(main);
    const rules = current.reasons.filter((r) => r.rule !== "model");
    const model = current.reasons.find((r) => r.rule === "model");
    put(
      main,
      h("p", { class: "crumbs" }, h("a", { href: "#/alerts" }, "← Alert queue"),
        current.case_id ? [" · ", h("a", { href: `#/cases/${current.case_id}` }, "its case")] : null),
      h("div", { class: "title-row" },
        h("h1", {}, `Alert: ${formatMoney(current.amount, current.currency)}`),
        h("p", { class: "badges" }, "Severity ", badge("sev", current.severity), " Status ",
          h("span", { id: "alert-status" }, badge("st", current.status)), ` Score ${current.score.toFixed(2)}`)),
      message ? h("p", { class: "success", tabindex: "-1" }, message) : null,
      h("dl", { class: "facts" },
        h("dt", {}, "Transfer"), h("dd", {}, h("code", {}, current.transfer_id), " ",
          ctx.caps.trace ? h("a", { href: `#/trace/${encodeURIComponent(current.transfer_id)}`, class: "button" }, "Follow the money") : null),
        h("dt", {}, "Event time"), h("dd", {}, timeEl(current.ts)),
        h("dt", {}, "Payer"), h("dd", {}, accountLink(ctx, current.src_account)),
        h("dt", {}, "Payee"), h("dd", {}, accountLink(ctx, current.dst_account)),
        current.suspect_account ? [h("dt", {}, "Suspected"), h("dd", { id: "alert-suspect" }, accountLink(ctx, current.suspect_account),
          current.suspect_account === current.src_account ? " (the payer)" : " (the payee)")] : null,
        current.case_id ? [h("dt", {}, "Case"), h("dd", {}, h("a", { href: `#/cases/${current.case_id}`, id: "alert-case" }, "Open its case"),
          " — decide all its alerts at once")] : null,
        h("dt", {}, "Amount"), h("dd", {}, formatMoney(current.amount, current.currency)),
        h("dt", {}, "Raised"), h("dd", {}, timeEl(current.created_at)),
        h("dt", {}, "Alert id"), h("dd", {}, h("code", {}, current.alert_id)),
        current.model ? [h("dt", {}, "Model"), h("dd", {}, `${current.model.name} ${current.model.version}: ${Math.round(current.model.score * 100)}% fraud probability`)] : null),
      h("div", { class: "columns" },
        h("div", {},
          h("section", { "aria-labelledby": "reasons-title" },
            h("h2", { id: "reasons-title" }, `Why it was raised (${rules.length} rule${rules.length === 1 ? "" : "s"})`),
            rules.length ? rules.map((r, i) => reasonSection(ctx, r, i)) : h("p", {}, "No rule fired; the model alone raised it.")),
          h("section", { "aria-labelledby": "model-title" },
            h("h2", { id: "model-title" }, "The model's top features"),
            model ? reasonSection(ctx, model, "model") : h("p", {}, "No model scored this transfer."))),
        h("div", {},
          decisionForm(ctx, current, async (updated, words) => {
            const fresh = await api(`/v1/alerts/${current.alert_id}/history`, { query: { limit: 500 } }).catch(() => ({ items }));
            draw(updated, fresh.items, words);
            main.querySelector(".success")?.focus();
          }, async (conflict) => {
            const [now, fresh] = await Promise.all([
              api(`/v1/alerts/${current.alert_id}`).catch(() => current),
              api(`/v1/alerts/${current.alert_id}/history`, { query: { limit: 500 } }).catch(() => ({ items })),
            ]);
            draw(now, fresh.items);
            const box = errorBox(`${conflict.message} (decided meanwhile; the page now shows the alert as it is)`);
            main.querySelector("#decide-title")?.after(box);
            box.setAttribute("tabindex", "-1");
            box.focus();
          }),
          h("section", { "aria-labelledby": "history-title" },
            h("h2", { id: "history-title" }, "History"), historyTable(items)))),
    );
  };
  draw(alert, history.items);
}
