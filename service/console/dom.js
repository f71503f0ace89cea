// Small DOM helpers: elements built from data (never innerHTML), formatting, announcements.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function setAttributes(element, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
}

/** An HTML element: h("a", {href: "#/x", class: "y"}, "text", child, [more]). */
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attrs);
  append(element, children);
  return element;
}

/** An SVG element, same calling convention as `h`. */
export function s(tag, attrs, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  setAttributes(element, attrs);
  append(element, children);
  return element;
}

/** Append children to an existing element, skipping null/false (Element.append would print them). */
export function put(parent, ...children) {
  append(parent, children);
  return parent;
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

/** Say something to screen-reader users without moving focus (polite live region). */
export function announce(message) {
  const region = document.getElementById("announce");
  region.textContent = "";
  // A fresh text node on the next frame, so repeating the same words is announced again.
  requestAnimationFrame(() => {
    region.textContent = message;
  });
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** 2026-03-02 09:03:00 in the browser's time zone. */
export function formatTime(iso) {
  if (!iso) return "—";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return (
    `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ` +
    `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`
  );
}

export function formatClock(iso) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return `${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

/** A time element showing local time, the original in its title. */
export function timeEl(iso) {
  return h("time", { datetime: iso, title: iso }, formatTime(iso));
}

const MONEY = new Intl.NumberFormat("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** "9900.00" → "9,900.00" (decimal strings stay exact up to 2^53 minor units). */
export function formatMoney(amount, currency) {
  const text = MONEY.format(Number(amount));
  return currency ? `${text} ${currency}` : text;
}

export function badge(kind, value) {
  return h("span", { class: `badge ${kind}-${value}` }, value.replace("_", " "));
}

/** datetime-local value ("2026-03-02T09:00") → RFC 3339 UTC, or "" */
export function localToIso(value) {
  if (!value) return "";
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? "" : at.toISOString();
}

/** An error box a screen reader reads at once. */
export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, error.message || String(error));
}

export function field(id, labelText, control, help) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, labelText),
    control,
    help ? h("p", { class: "help", id: `${id}-help` }, help) : null,
  );
}

export function select(id, options, value) {
  return h(
    "select",
    { id, name: id },
    options.map(([optionValue, text]) =>
      h("option", { value: optionValue, selected: optionValue === value }, text),
    ),
  );
}
