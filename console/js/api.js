// The public HTTP API (docs/api.md), and nothing else: every call carries the business API key.

export class ApiError extends Error {
  constructor(status, code, message, field = null, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.details = details;
  }

  // Every problem the API named, as [{field, message}] (one entry when it sent no details).
  problems() {
    if (this.details && this.details.length) return this.details.map((d) => ({ field: d.field ?? null, message: d.message }));
    return [{ field: this.field, message: this.message }];
  }
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: a proxy or gateway page; the status says enough.
  }
  const error = body && body.error;
  if (error && typeof error.message === "string") {
    return new ApiError(response.status, error.code ?? "ERROR", error.message, error.field ?? null, error.details ?? []);
  }
  // API Gateway's own answers: {"message": "Unauthorized"} and the like.
  const message = (body && body.message) || response.statusText || "request failed";
  return new ApiError(response.status, `HTTP_${response.status}`, message);
}

export class Api {
  // baseUrl: "" for the origin the console is served from, else the API's URL (config.json, written at deploy time).
  constructor(baseUrl, apiKey, onUnauthorized) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.apiKey = apiKey;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.apiKey}`, Accept: "application/json" };
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, init);
    } catch {
      throw new ApiError(0, "NETWORK", `cannot reach the API at ${this.baseUrl || window.location.origin}`);
    }
    if (response.status === 204) return null;
    if (!response.ok) {
      const error = await errorFrom(response);
      if (response.status === 401 && this.onUnauthorized) this.onUnauthorized(error);
      throw error;
    }
    return response.json();
  }

  // A page of a listing: {items, nextToken}.
  page(path, params = {}) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
    }
    const suffix = query.toString() ? `?${query}` : "";
    return this.request("GET", `${path}${suffix}`);
  }

  // Every page, up to maxPages; {items, complete} tells whether the listing was read to its end.
  async all(path, params = {}, maxPages = 20) {
    const items = [];
    let nextToken = null;
    for (let page = 0; page < maxPages; page += 1) {
      const answer = await this.page(path, { ...params, limit: 100, nextToken });
      items.push(...answer.items);
      nextToken = answer.nextToken;
      if (!nextToken) return { items, complete: true };
    }
    return { items, complete: false };
  }

  listAccounts() { return this.all("/api/whatsapp/accounts"); }
  createAccount(body) { return this.request("POST", "/api/whatsapp/accounts", body); }
  updateAccount(id, body) { return this.request("PUT", `/api/whatsapp/accounts/${encodeURIComponent(id)}`, body); }
  deleteAccount(id) { return this.request("DELETE", `/api/whatsapp/accounts/${encodeURIComponent(id)}`); }

  listQueues(params) { return this.page("/api/whatsapp/queue", params); }
  allQueues(params) { return this.all("/api/whatsapp/queue", params); }
  createQueue(body) { return this.request("POST", "/api/whatsapp/queue", body); }
  progress(id) { return this.request("GET", `/api/whatsapp/queue/${encodeURIComponent(id)}/process`); }
  // action: process | pause | resume | cancel | retry-failed
  queueAction(id, action) { return this.request("POST", `/api/whatsapp/queue/${encodeURIComponent(id)}/${action}`); }

  upsertContacts(contacts) { return this.request("POST", "/api/whatsapp/contacts", { contacts }); }
}
