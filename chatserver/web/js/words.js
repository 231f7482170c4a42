// Errors in words: what a person reads when the server refuses something.

const WORDS = {
  bad_frame: "The server could not read that request.",
  unknown_op: "The server does not know that request.",
  invalid: "Something in that is not valid.",
  unauthorized: "Your session has ended. Please sign in again.",
  forbidden: "You are not allowed to do that.",
  not_found: "That does not exist (any more).",
  too_large: "That is too long.",
  rate_limited: "Slow down a little: too many requests.",
  conflict: "That has already been done.",
  unavailable: "The server is unavailable right now. Try again shortly.",
  internal: "Something went wrong on the server.",
  gone: "That has expired.",
  network: "Cannot reach the server. Check your connection.",
};

/** `{code, message, retryAfter}` (an error frame or an ApiError) as a sentence. */
export function errorWords(error) {
  if (!error) return "";
  const code = error.code || "internal";
  let words = WORDS[code] || "Something went wrong.";
  const detail = (error.message || "").trim();
  if (code === "rate_limited" && error.retryAfter) {
    words = `Slow down: try again in ${seconds(error.retryAfter)}.`;
  } else if (code === "invalid" && detail) {
    words = `Not valid: ${detail}.`;
  } else if (detail && !["internal", "unavailable", "network"].includes(code)) {
    words = `${words.replace(/\.$/, "")} (${detail}).`;
  }
  return words;
}

export function seconds(ms) {
  const s = Math.max(1, Math.ceil(ms / 1000));
  return s === 1 ? "1 second" : `${s} seconds`;
}
