// The money trail: a left-to-right SVG flow of a trace (columns by depth), and a CSV export of
// the accounts the money reached, for a freezing request.

import { api } from "./api.js";
import { announce, badge, errorBox, field, formatClock, formatMoney, formatTime, h, s, select, timeEl } from "./dom.js";

const COLUMN_GAP = 270;
const NODE_WIDTH = 178;
const MIN_NODE_HEIGHT = 40;
const MAX_NODE_HEIGHT = 120;
const ROW_GAP = 34;
const MARGIN = 24;
const RISKY = new Set(["high", "critical"]);

const amountOf = (node) => Math.max(Number(node.amount_in), Number(node.amount_out));

/** Column of each node: money flows left to right, so upstream traces are mirrored. */
function columns(trace, direction) {
  const maxDepth = Math.max(0, ...trace.nodes.map((n) => n.depth));
  const byColumn = [];
  for (const node of trace.nodes) {
    const column = direction === "up" ? maxDepth - node.depth : node.depth;
    (byColumn[column] ||= []).push(node);
  }
  return byColumn.map((nodes) => nodes || []);
}

/** Order each column by the mean position of its neighbours in earlier columns (fewer crossings). */
function orderColumns(byColumn, edges) {
  const position = new Map();
  byColumn.forEach((nodes, column) => {
    const score = (node) => {
      const linked = edges
        .filter((e) => e.to === node.account || e.from === node.account)
        .map((e) => (e.to === node.account ? e.from : e.to))
        .filter((other) => position.has(other) && position.get(other).column < column)
        .map((other) => position.get(other).index);
      return linked.length ? linked.reduce((a, b) => a + b, 0) / linked.length : Number.MAX_SAFE_INTEGER;
    };
    const scored = nodes.map((node) => [score(node), node]);
    scored.sort((a, b) => a[0] - b[0] || amountOf(b[1]) - amountOf(a[1]) || a[1].account.localeCompare(b[1].account));
    scored.forEach(([, node], index) => position.set(node.account, { column, index }));
    byColumn[column] = scored.map(([, node]) => node);
  });
  return byColumn;
}

function layout(trace, direction) {
  const byColumn = orderColumns(columns(trace, direction), trace.edges);
  const biggest = Math.max(1, ...trace.nodes.map(amountOf));
  const heightOf = (node) => MIN_NODE_HEIGHT + (MAX_NODE_HEIGHT - MIN_NODE_HEIGHT) * Math.sqrt(amountOf(node) / biggest);
  const columnHeight = (nodes) => nodes.reduce((sum, n) => sum + heightOf(n) + ROW_GAP, -ROW_GAP);
  const tallest = Math.max(...byColumn.map(columnHeight));
  const boxes = new Map();
  byColumn.forEach((nodes, column) => {
    let y = MARGIN + 20 + (tallest - columnHeight(nodes)) / 2;
    for (const node of nodes) {
      const height = heightOf(node);
      boxes.set(node.account, { node, x: MARGIN + column * COLUMN_GAP, y, width: NODE_WIDTH, height, column });
      y += height + ROW_GAP;
    }
  });
  const width = MARGIN * 2 + (byColumn.length - 1) * COLUMN_GAP + NODE_WIDTH;
  return { boxes, width, height: tallest + MARGIN * 2 + 20, columns: byColumn.length };
}

function shortAccount(account) {
  return account.length > 20 ? `${account.slice(0, 8)}…${account.slice(-8)}` : account;
}

function nodeClass(node) {
  if (node.watchlisted) return "node listed";
  if (RISKY.has(node.risk_level)) return "node risky";
  if (node.risk_level === "medium") return "node medium";
  return "node";
}

function drawNode(box) {
  const { node, x, y, width, height } = box;
  const facts = [`depth ${node.depth}`, `received ${formatMoney(node.amount_in)}`, `sent ${formatMoney(node.amount_out)}`,
    `risk ${node.risk_level}`, `${node.alert_count} alert${node.alert_count === 1 ? "" : "s"}`, node.watchlisted ? "on a watchlist" : null].filter(Boolean);
  const tag = node.watchlisted ? "WATCHLIST" : RISKY.has(node.risk_level) ? `RISK ${node.risk_level.toUpperCase()}` : null;
  const received = Number(node.amount_in) > 0;
  const candidates = [received ? `in ${formatMoney(node.amount_in)}` : `sent ${formatMoney(node.amount_out)}`,
    received ? `out ${formatMoney(node.amount_out)}` : null, tag].filter(Boolean);
  const lines = candidates.slice(0, Math.max(1, Math.floor((height - 24) / 16)));
  return s("a", { href: `#/accounts/${encodeURIComponent(node.account)}`, class: "trail-node", "aria-label": `Account ${node.account}: ${facts.join(", ")}`, dataset: { account: node.account } },
    s("title", {}, `${node.account}\n${facts.join("\n")}`),
    s("rect", { x, y, width, height, rx: 6, class: nodeClass(node) }),
    s("text", { x: x + 10, y: y + 17, class: "node-name" }, shortAccount(node.account)),
    lines.map((line, index) => s("text", { x: x + 10, y: y + 33 + 16 * index, class: line === tag ? "node-tag" : "node-amount" }, line)),
    tag && !lines.includes(tag) ? s("text", { x: x + width - 8, y: y + 17, class: "node-tag", "text-anchor": "end" }, "⚑") : null,
  );
}

function drawEdges(trace, boxes) {
  const biggest = Math.max(1, ...trace.edges.map((e) => Number(e.amount)));
  const seen = new Map();
  const paths = [];
  const labels = [];
  for (const edge of trace.edges) {
    const from = boxes.get(edge.from);
    const to = boxes.get(edge.to);
    if (!from || !to) continue;
    const pair = `${edge.from}>${edge.to}`;
    const repeat = seen.get(pair) || 0;
    seen.set(pair, repeat + 1);
    const forward = from.column < to.column;
    const x1 = forward ? from.x + from.width : from.x + from.width / 2;
    const y1 = forward ? from.y + from.height / 2 : from.y + from.height;
    const x2 = forward ? to.x : to.x + to.width / 2;
    const y2 = forward ? to.y + to.height / 2 : to.y + to.height;
    const bend = forward ? (x2 - x1) / 2 : 60;
    const d = forward
      ? `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`
      : `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 + bend} ${x2},${y2}`;
    const widthPx = 1.5 + 7 * Math.sqrt(Number(edge.amount) / biggest);
    paths.push(s("path", { d, class: "edge", "stroke-width": widthPx.toFixed(1), "marker-end": "url(#arrow)" },
      s("title", {}, `${edge.from} → ${edge.to}: ${formatMoney(edge.amount)} at ${formatTime(edge.ts)} (${edge.transfer_id})`)));
    const mx = (x1 + x2) / 2;
    const my = (forward ? (y1 + y2) / 2 - 10 : Math.max(y1, y2) + bend * 0.75) + repeat * 26;
    labels.push(s("text", { x: mx, y: my, class: "edge-label", "text-anchor": "middle" },
      s("tspan", { x: mx }, formatMoney(edge.amount)),
      s("tspan", { x: mx, dy: 13, class: "edge-time" }, formatClock(edge.ts))));
  }
  return [...paths, ...labels];
}

/** The flow graph as SVG, money left to right; `label` names it for screen readers. */
export function drawTrail(trace, direction, label = `Money trail of transfer ${trace.root.transfer_id}`) {
  const { boxes, width, height } = layout(trace, direction);
  return s("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "group", class: "trail",
    "aria-label": `${label}, ${trace.nodes.length} accounts, ${trace.edges.length} transfers. Each account links to its page.`,
  },
  s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
    s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }))),
  s("text", { x: MARGIN, y: MARGIN, class: "axis" }, direction === "up" ? "← where the money came from" : "where the money went →"),
  drawEdges(trace, boxes),
  [...boxes.values()].map(drawNode));
}

const CSV_COLUMNS = ["account", "layer", "amount", "currency", "at", "counterparty", "transfer_id", "account_received_total", "account_sent_total", "risk_level", "alert_count", "watchlisted"];

function csvCell(value) {
  let text = String(value ?? "");
  // Never a formula in a spreadsheet, even after the blanks some importers trim first.
  if (/^\s*[=+\-@]/.test(text) || /^[\t\r\n]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One row per transfer that reached an account past the start (down: money received,
 * counterparty = payer; up: money sent, counterparty = payee): what a freezing request needs.
 * Every amount is in the trace's currency (transfers sent in another at their reference value). */
export function freezeCsv(trace, direction) {
  const currency = trace.currency ?? "";
  const nodes = new Map(trace.nodes.map((n) => [n.account, n]));
  const side = direction === "up" ? "from" : "to";
  const other = direction === "up" ? "to" : "from";
  const rows = trace.edges
    .filter((e) => (nodes.get(e[side])?.depth ?? 0) >= 1)
    .sort((a, b) => nodes.get(a[side]).depth - nodes.get(b[side]).depth || Date.parse(a.ts) - Date.parse(b.ts))
    .map((e) => {
      const n = nodes.get(e[side]);
      return [e[side], n.depth, e.amount, currency, e.ts, e[other], e.transfer_id, n.amount_in, n.amount_out, n.risk_level, n.alert_count, n.watchlisted];
    });
  return [CSV_COLUMNS, ...rows].map((row) => row.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function controls(ctx, transferId, direction, hops, window) {
  const hopsInput = h("input", { id: "t-hops", type: "number", min: 1, max: 6, value: hops, required: true });
  const windowInput = h("input", { id: "t-window", type: "text", value: window, pattern: "\\d+[mhd]", size: 6, "aria-describedby": "t-window-help", required: true });
  const form = h("form", { class: "filters", "aria-label": "Trace settings" },
    field("t-direction", "Direction", select("t-direction", [["down", "Where it went (down)"], ["up", "Where it came from (up)"]], direction)),
    field("t-hops", "Layers (1–6)", hopsInput),
    field("t-window", "Time window", windowInput, "e.g. 30m, 72h, 3d"),
    h("div", { class: "filter-buttons" }, h("button", { type: "submit", class: "primary" }, "Trace")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams({ direction: form.querySelector("#t-direction").value, hops: hopsInput.value, window: windowInput.value.trim() });
    ctx.navigate(`#/trace/${encodeURIComponent(transferId)}?${query}`);
  });
  return form;
}

function accountsTable(ctx, trace) {
  return h("table", { class: "trail-accounts" },
    h("caption", {}, "Accounts in this trail"),
    h("thead", {}, h("tr", {}, ["Account", "Layer", "Received", "Sent on", "Risk", "Alerts", "Watchlist"].map((n) => h("th", { scope: "col" }, n)))),
    h("tbody", {}, [...trace.nodes].sort((a, b) => a.depth - b.depth).map((n) => h("tr", {},
      h("td", {}, h("a", { href: `#/accounts/${encodeURIComponent(n.account)}` }, n.account)),
      h("td", { class: "num" }, String(n.depth)),
      h("td", { class: "num" }, formatMoney(n.amount_in)),
      h("td", { class: "num" }, formatMoney(n.amount_out)),
      h("td", {}, n.risk_level === "none" ? "none" : badge("sev", n.risk_level)),
      h("td", { class: "num" }, String(n.alert_count)),
      h("td", {}, n.watchlisted ? "listed" : "—")))));
}

function transfersTable(trace) {
  return h("table", { class: "trail-transfers" },
    h("caption", {}, "Transfers in this trail"),
    h("thead", {}, h("tr", {}, ["Time", "From", "To", "Amount", "Transfer"].map((n) => h("th", { scope: "col" }, n)))),
    h("tbody", {}, [...trace.edges].sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts)).map((e) => h("tr", {},
      h("td", {}, timeEl(e.ts)),
      h("td", {}, h("a", { href: `#/accounts/${encodeURIComponent(e.from)}` }, e.from)),
      h("td", {}, h("a", { href: `#/accounts/${encodeURIComponent(e.to)}` }, e.to)),
      h("td", { class: "num" }, formatMoney(e.amount)),
      h("td", {}, h("code", {}, e.transfer_id))))));
}

export async function renderTrace(main, ctx, transferId) {
  document.title = `Money trail ${transferId} · fraudwatch`;
  const direction = ctx.params.get("direction") === "up" ? "up" : "down";
  const hops = ctx.params.get("hops") || "3";
  const window = ctx.params.get("window") || "72h";
  main.append(h("p", { class: "crumbs" }, h("a", { href: "#/alerts" }, "← Alert queue")),
    h("h1", {}, "Money trail of ", h("code", {}, transferId)),
    controls(ctx, transferId, direction, hops, window));
  let trace;
  try {
    trace = await api(`/v1/trace/${encodeURIComponent(transferId)}`, { query: { direction, hops, window } });
  } catch (error) {
    main.append(errorBox(error));
    return;
  }
  const reached = trace.nodes.filter((n) => n.depth >= 1).length;
  const exportButton = h("button", { type: "button", class: "primary" },
    direction === "down" ? "Export for freezing request (CSV)" : "Export upstream accounts (CSV)");
  exportButton.addEventListener("click", () => {
    download(`${direction === "down" ? "freeze-request" : "upstream"}-${transferId}.csv`, freezeCsv(trace, direction));
    announce("The CSV file was downloaded.");
  });
  main.append(
    h("p", { class: "trail-summary" },
      `${trace.root.from} paid ${trace.root.to} ${formatMoney(trace.root.amount)} at `, timeEl(trace.root.ts), ". ",
      `${reached} account${reached === 1 ? "" : "s"} ${direction === "down" ? "downstream" : "upstream"} within ${hops} layer${hops === "1" ? "" : "s"} and ${window}.`,
      trace.truncated ? h("strong", {}, " The graph was cut at the edge limit: narrow the window or layers.") : null),
    h("div", { class: "trail-actions" }, exportButton),
    h("div", { class: "legend", "aria-hidden": "true" },
      h("span", { class: "key key-risky" }, "high or critical risk"), h("span", { class: "key key-medium" }, "medium risk"),
      h("span", { class: "key key-listed" }, "on a watchlist"), h("span", {}, "box height and line width grow with the amount")),
    h("div", { class: "trail-wrap" }, drawTrail(trace, direction)),
    h("div", { class: "columns" }, accountsTable(ctx, trace), transfersTable(trace)),
  );
}
