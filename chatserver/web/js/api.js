// The REST API of docs/protocol.md §12: JSON in and out, `Authorization: Bearer <token>`.

export class ApiError extends Error {
  /** `status` 0 means the server could not be reached. `retryAfter` is in ms. */
  constructor(status, code, message, retryAfter) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const STATUS_CODES = {
  400: "bad_frame", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
  410: "gone", 413: "too_large", 422: "invalid", 429: "rate_limited", 503: "unavailable",
};

export class Api {
  /** `onUnauthorized()` runs when a request with a token gets 401 (the token is no good). */
  constructor({ token = null, onUnauthorized = () => {} } = {}) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return this.answer(() => fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    }));
  }

  /** Upload a File or Blob (docs/protocol.md §12.10): its bytes are the body; → the file object. */
  async upload(file) {
    const headers = { Accept: "application/json" };
    if (file.type) headers["Content-Type"] = file.type;
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return this.answer(() => fetch(withQuery("/api/files", { name: file.name }), { method: "POST", headers, body: file }));
  }

  /** The bytes at `path` (a file or thumbnail) as a Blob, fetched with the token (never in a URL). */
  async blob(path) {
    const headers = this.token ? { Authorization: `Bearer ${this.token}` } : {};
    let response;
    try {
      response = await fetch(path, { headers });
    } catch (err) {
      throw new ApiError(0, "network", "");
    }
    if (!response.ok) throw new ApiError(response.status, STATUS_CODES[response.status] || "internal", "");
    return response.blob();
  }

  /** The JSON of a successful answer to `send()`; an ApiError otherwise. A success whose
   *  body cannot be read whole (the page navigating away mid-read, a proxy cutting it) is a
   *  network error, never `null`: a caller once stored that `null` as the signed-in user. */
  async answer(send) {
    let response;
    try {
      response = await send();
    } catch (err) {
      throw new ApiError(0, "network", "");
    }
    if (response.status === 204) return null;
    let data;
    try {
      data = await response.json();
    } catch (err) {
      if (response.ok) throw new ApiError(0, "network", "");
      data = null;
    }
    if (response.ok) return data;
    const error = (data && data.error) || {};
    const retry = Number(response.headers.get("Retry-After"));
    // 410 is an expired thing; the body's code names the family, the status the case.
    const code = response.status === 410 ? "gone" : error.code || STATUS_CODES[response.status] || "internal";
    const err = new ApiError(response.status, code, error.message || "", retry > 0 ? retry * 1000 : undefined);
    if (response.status === 401 && this.token) this.onUnauthorized(err);
    throw err;
  }

  get(path) { return this.request("GET", path); }
  post(path, body = {}) { return this.request("POST", path, body); }
  put(path, body = {}) { return this.request("PUT", path, body); }
  patch(path, body = {}) { return this.request("PATCH", path, body); }
  del(path) { return this.request("DELETE", path); }
}

/** `path` with a query string of the defined values of `params`. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export const enc = encodeURIComponent;
