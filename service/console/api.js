// The API client: the user's key from session storage, JSON in and out, errors as ApiError.

const KEY_NAME = "fraudwatch.console.key";
// The API sits beside the console: /console/ → /v1/… (keeps working behind a path prefix).
const BASE = new URL("../", document.baseURI);

export function storedKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_NAME, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_NAME);
}

/** An API answer other than 2xx: `status`, the body's `error` code and a readable message. */
export class ApiError extends Error {
  constructor(status, body) {
    super(describe(status, body));
    this.status = status;
    this.code = body && body.error;
    this.body = body;
  }
}

function describe(status, body) {
  const detail = body && body.detail;
  if (Array.isArray(detail)) {
    return detail.map((p) => `${p.parameter}: ${p.message}`).join("; ");
  }
  if (typeof detail === "string") return detail;
  return `the API answered ${status}`;
}

let onUnauthorized = () => {};

/** Called when a request is refused as unauthorised (key unknown or revoked). */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export function apiUrl(path, query) {
  const url = new URL(path.replace(/^\//, ""), BASE);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  return url;
}

/** Call the API; resolves to the parsed body (null for 204), rejects with ApiError. */
export async function api(path, { method = "GET", query, json, text, contentType, key } = {}) {
  const headers = { Authorization: `Bearer ${key || storedKey() || ""}` };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (text !== undefined) {
    headers["Content-Type"] = contentType || "text/plain";
    body = text;
  }
  const response = await fetch(apiUrl(path, query), { method, headers, body });
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !key) onUnauthorized(error);
    throw error;
  }
  return data;
}
