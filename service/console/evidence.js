// Evidence in plain words: feature names → their descriptions, values → readable numbers.

import { formatMoney, h } from "./dom.js";

/** The description of a feature from the glossary (falls back to the name in words). */
export function featureLabel(glossary, name) {
  const text = glossary.features[name];
  if (!text) return name.replaceAll("_", " ");
  // Amounts are shown as money in the scoring currency: yuan, not the fen they are kept in.
  const label = text.replace(/\(CNY fen\)/, "(CNY)");
  return label.charAt(0).toUpperCase() + label.slice(1);
}

function trimNumber(value) {
  if (Number.isInteger(value)) return value.toLocaleString("en");
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 1 ? 1 : 2;
  return value.toLocaleString("en", { maximumFractionDigits: digits });
}

/** A feature value as a person reads it. */
export function featureValue(name, value) {
  if (value === null || value === undefined || (typeof value === "number" && Number.isNaN(value))) return "unknown";
  if (typeof value !== "number") return String(value);
  if (name.endsWith("_minor")) return formatMoney(value / 100);
  if (name.startsWith("is_") || name.endsWith("_is_business")) return value ? "yes" : "no";
  if (name.includes("pass_through") || name.endsWith("_share_24h")) return `${Math.round(value * 100)}%`;
  if (name === "amount_to_avg_30d") return `${trimNumber(value)}×`;
  if (name === "hour_of_day") return `${String(Math.floor(value)).padStart(2, "0")}:00`;
  if (name.endsWith("_minutes")) return `${trimNumber(value)} min`;
  if (name.endsWith("_days")) return `${trimNumber(value)} days`;
  if (name.endsWith("_age")) return `${trimNumber(value)} years`;
  return trimNumber(value);
}

/** A table of one reason's evidence with human labels. */
export function evidenceTable(glossary, reason, caption) {
  const rows = Object.entries(reason.evidence || {});
  if (!rows.length) return h("p", {}, "No evidence recorded.");
  return h(
    "table",
    { class: "evidence" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "What was measured"), h("th", { scope: "col" }, "Value"))),
    h("tbody", {}, rows.map(([name, value]) =>
      h("tr", {},
        h("th", { scope: "row" }, featureLabel(glossary, name), " ", h("code", {}, name)),
        h("td", { class: "num" }, featureValue(name, value))))),
  );
}
