// The console's shell: sign-in, who is signed in, what the role may see, hash routing.

import { ApiError, api, forgetKey, storeKey, storedKey, whenUnauthorized } from "./api.js";
import { clear, errorBox, field, h } from "./dom.js";
import { renderAccount } from "./account.js";
import { renderAlert } from "./alert.js";
import { renderCase } from "./case.js";
import { renderCases } from "./cases.js";
import { renderQueue } from "./queue.js";
import { renderTrace } from "./trace.js";
import { renderWatchlists } from "./watchlists.js";

const CONSOLE_ROLES = ["admin", "investigator", "analyst"];

/** What each role may do in the console (the API enforces the same). */
function capabilities(role) {
  const investigates = role === "admin" || role === "investigator";
  return { decide: investigates, accounts: investigates, trace: investigates, watchlists: role === "admin" };
}

const main = document.getElementById("main");
let session = null; // {me, caps, glossary}
let cleanup = null;

const ROUTES = [
  [/^\/cases\/?$/, "cases", (ctx) => renderCases(main, ctx)],
  [/^\/cases\/([^/]+)$/, "cases", (ctx, id) => renderCase(main, ctx, id)],
  [/^\/alerts\/?$/, "alerts", (ctx) => renderQueue(main, ctx)],
  [/^\/alerts\/([^/]+)$/, "alerts", (ctx, id) => renderAlert(main, ctx, id)],
  [/^\/accounts\/(.+)$/, "alerts", (ctx, id) => renderAccount(main, ctx, id)],
  [/^\/trace\/(.+)$/, "alerts", (ctx, id) => renderTrace(main, ctx, id)],
  [/^\/watchlists\/?$/, "watchlists", (ctx) => renderWatchlists(main, ctx)],
];

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/cases";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

function focusHeading() {
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

async function route() {
  if (!session) return;
  if (cleanup) cleanup();
  cleanup = null;
  const { path, params } = parseHash();
  const ctx = { ...session, params, navigate };
  for (const [pattern, section, render] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    markSection(section);
    clear(main);
    main.setAttribute("aria-busy", "true");
    try {
      cleanup = (await render(ctx, ...match.slice(1).map(decodeURIComponent))) || null;
    } catch (error) {
      clear(main).append(h("h1", {}, "Something went wrong"), errorBox(error));
    } finally {
      main.removeAttribute("aria-busy");
    }
    focusHeading();
    return;
  }
  clear(main).append(h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/cases" }, "Go to the case queue")));
  document.title = "Not found · fraudwatch";
}

function markSection(section) {
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function showShell(me, caps) {
  document.getElementById("who-name").textContent = me.name || me.key_id;
  document.getElementById("who-role").textContent = me.role;
  document.getElementById("who").hidden = false;
  document.getElementById("nav").hidden = false;
  for (const item of document.querySelectorAll("[data-cap]")) item.hidden = !caps[item.dataset.cap];
}

function hideShell() {
  document.getElementById("who").hidden = true;
  document.getElementById("nav").hidden = true;
}

/** Who is this key? Refuses keys the console is not for; resolves to the session. */
async function open(key) {
  const me = await api("/v1/me", { key });
  if (!CONSOLE_ROLES.includes(me.role)) {
    const error = new Error(
      `This is a ${me.role} key. Bank keys are for the API (screening and account risk); ` +
        "the console needs an investigator, analyst or admin key.",
    );
    error.refused = true;
    throw error;
  }
  const glossary = await api("/v1/glossary", { key });
  return { me, caps: capabilities(me.role), glossary };
}

function signInView(message) {
  hideShell();
  document.title = "Sign in · fraudwatch";
  const input = h("input", {
    id: "api-key", name: "api-key", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "api-key-help", spellcheck: "false",
  });
  const status = h("div", { id: "sign-in-status" }, message ? errorBox({ message }) : null);
  const form = h(
    "form",
    { class: "sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    field("api-key", "API key", input,
      "An investigator, analyst or admin key. It is kept in this browser tab only and forgotten when the tab closes."),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    clear(status).append(h("p", { role: "status" }, "Checking the key…"));
    try {
      session = await open(key);
    } catch (error) {
      const text = error instanceof ApiError && error.status === 401
        ? "The API does not know this key (or it was revoked)."
        : error.message;
      clear(status).append(errorBox({ message: text }));
      input.focus();
      return;
    }
    storeKey(key);
    start();
  });
  clear(main).append(form);
  input.focus();
}

function start() {
  showShell(session.me, session.caps);
  if (!location.hash || location.hash === "#" || location.hash === "#/") location.hash = "#/cases";
  else route();
}

function signOut(message) {
  if (cleanup) cleanup();
  cleanup = null;
  session = null;
  forgetKey();
  signInView(message);
}

document.getElementById("sign-out").addEventListener("click", () => signOut());
whenUnauthorized(() => signOut("Your key is no longer accepted; sign in again."));
window.addEventListener("hashchange", route);

async function boot() {
  const key = storedKey();
  if (!key) return signInView();
  try {
    session = await open(key);
  } catch (error) {
    forgetKey();
    return signInView(error.refused ? error.message : "Sign in again: the stored key was not accepted.");
  }
  start();
}

boot();
