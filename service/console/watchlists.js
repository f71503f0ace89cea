// Watchlists (admin): list per kind, add, remove, import a CSV with the row errors shown.

import { api } from "./api.js";
import { announce, clear, errorBox, field, h, localToIso, select, timeEl } from "./dom.js";

const KINDS = [["account", "Accounts"], ["device", "Devices"], ["phone", "Phone numbers"], ["ip", "IP addresses"]];
const PAGE_SIZE = 50;

function kindTabs(current) {
  return h("ul", { class: "tabs", "aria-label": "Lists" }, KINDS.map(([kind, label]) =>
    h("li", {}, h("a", { href: `#/watchlists?kind=${kind}`, "aria-current": kind === current ? "page" : null }, label))));
}

function addForm(kind, onAdded) {
  const value = h("input", { id: "w-value", required: true, maxlength: 256 });
  const source = h("input", { id: "w-source", required: true, maxlength: 200 });
  const reason = h("input", { id: "w-reason", required: true, maxlength: 500 });
  const expires = h("input", { id: "w-expires", type: "datetime-local" });
  const result = h("div");
  const form = h("form", { class: "filters", "aria-labelledby": "add-title" },
    h("h2", { id: "add-title" }, "Add to this list"),
    field("w-value", kind === "account" ? "Account id" : kind === "ip" ? "IP address" : kind === "phone" ? "Phone number" : "Device id", value),
    field("w-source", "Source", source, "e.g. police notice 2026-0311"),
    field("w-reason", "Reason", reason),
    field("w-expires", "Expires (optional)", expires),
    h("div", { class: "filter-buttons" }, h("button", { type: "submit", class: "primary" }, "Add")),
    result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api(`/v1/watchlists/${kind}`, { method: "POST", json: {
        value: value.value.trim(), source: source.value.trim(), reason: reason.value.trim(),
        expires_at: localToIso(expires.value) || null,
      } });
    } catch (error) {
      clear(result).append(errorBox(error));
      return;
    }
    announce(`${value.value.trim()} added to the ${kind} list.`);
    onAdded();
  });
  return form;
}

function importForm(onImported) {
  const file = h("input", { id: "w-file", type: "file", accept: ".csv,text/csv", required: true, "aria-describedby": "w-file-help" });
  const kind = select("w-import-kind", [["", "from the file's kind column"], ...KINDS.map(([k, label]) => [k, label])], "");
  const result = h("div", { id: "import-result" });
  const form = h("form", { class: "filters", "aria-labelledby": "import-title" },
    h("h2", { id: "import-title" }, "Import a CSV file"),
    field("w-file", "CSV file", file, "Header row: kind,value,source,reason,expires_at (expires_at empty for never). Bad rows are listed and skipped."),
    field("w-import-kind", "Kind of every row", kind),
    h("div", { class: "filter-buttons" }, h("button", { type: "submit", class: "primary" }, "Import")),
    result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = file.files[0];
    if (!chosen) return;
    let answer;
    try {
      answer = await api("/v1/watchlists/import", { method: "POST", text: await chosen.text(), contentType: "text/csv", query: { kind: kind.value } });
    } catch (error) {
      clear(result).append(errorBox(error));
      return;
    }
    const summary = `Imported ${answer.imported} entr${answer.imported === 1 ? "y" : "ies"} (${answer.new} new, ${answer.replaced} replaced); ${answer.errors.length} row${answer.errors.length === 1 ? "" : "s"} skipped.`;
    clear(result).append(h("p", { class: answer.errors.length ? "warning" : "success", role: "status" }, summary));
    if (answer.errors.length) {
      result.append(h("table", { class: "import-errors" },
        h("caption", {}, "Rows not imported"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Line"), h("th", { scope: "col" }, "Why"))),
        h("tbody", {}, answer.errors.map((e) => h("tr", {}, h("td", { class: "num" }, String(e.line)), h("td", {}, e.reason))))));
    }
    onImported();
  });
  return form;
}

export async function renderWatchlists(main, ctx) {
  document.title = "Watchlists · fraudwatch";
  main.append(h("h1", {}, "Watchlists"));
  if (!ctx.caps.watchlists) {
    main.append(errorBox({ message: `Watchlists are managed by admins; your role is ${ctx.me.role}.` }));
    return;
  }
  const kind = KINDS.some(([k]) => k === ctx.params.get("kind")) ? ctx.params.get("kind") : "account";
  const cursors = [null];
  let nextCursor = null;
  const body = h("tbody");
  const status = h("p", { class: "page-status", role: "status" });
  const previous = h("button", { type: "button" }, "← Previous");
  const next = h("button", { type: "button" }, "Next →");

  const load = async () => {
    try {
      const page = await api(`/v1/watchlists/${kind}`, { query: { limit: PAGE_SIZE, cursor: cursors.at(-1) } });
      nextCursor = page.next_cursor;
      clear(body).append(...page.items.map((entry) => h("tr", {},
        h("td", {}, h("code", {}, entry.value)),
        h("td", {}, entry.source),
        h("td", {}, entry.reason),
        h("td", {}, timeEl(entry.added_at)),
        h("td", {}, entry.expires_at ? timeEl(entry.expires_at) : "never"),
        h("td", {}, entry.active ? "active" : "expired"),
        h("td", {}, h("button", { type: "button", "aria-label": `Remove ${entry.value}`, onclick: () => remove(entry.value) }, "Remove")))));
      if (!page.items.length) body.append(h("tr", {}, h("td", { colspan: 7 }, "This list is empty.")));
      status.textContent = `Page ${cursors.length} · ${page.items.length} entr${page.items.length === 1 ? "y" : "ies"}`;
    } catch (error) {
      clear(body).append(h("tr", {}, h("td", { colspan: 7 }, errorBox(error))));
      nextCursor = null;
    }
    previous.disabled = cursors.length === 1;
    next.disabled = !nextCursor;
  };
  const reload = () => {
    cursors.length = 1;
    load();
  };
  const remove = async (value) => {
    try {
      await api(`/v1/watchlists/${kind}/${encodeURIComponent(value)}`, { method: "DELETE" });
      announce(`${value} removed from the ${kind} list.`);
    } catch (error) {
      announce(error.message);
    }
    load();
  };
  previous.addEventListener("click", () => { cursors.pop(); load(); });
  next.addEventListener("click", () => { cursors.push(nextCursor); load(); });

  main.append(
    kindTabs(kind),
    h("div", { class: "table-wrap" }, h("table", { class: "watchlist" },
      h("caption", {}, `${KINDS.find(([k]) => k === kind)[1]} on the watchlist`),
      h("thead", {}, h("tr", {}, ["Value", "Source", "Reason", "Added", "Expires", "State"].map((n) => h("th", { scope: "col" }, n)), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
      body)),
    h("nav", { class: "pager", "aria-label": "Pages" }, previous, status, next),
    h("div", { class: "columns" }, addForm(kind, reload), importForm(reload)),
  );
  await load();
}
