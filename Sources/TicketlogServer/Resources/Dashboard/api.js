// The API as the page uses it: JSON requests with the caller's token, errors as ApiError with
// the server's own words, and Server-Sent Events read with fetch (EventSource cannot send an
// Authorization header, and a token in the URL would end up in logs).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, "offline", "The server cannot be reached.");
    }
    const text = await response.text();
    const json = text ? safeParse(text) : null;
    if (!response.ok) {
      const error = json && json.error ? json.error : {};
      throw new ApiError(response.status, error.code || "error", error.message || `The server answered ${response.status}.`);
    }
    return json;
  }

  get(path) { return this.request("GET", path); }
  post(path, body) { return this.request("POST", path, body); }

  // Follows an SSE feed from `after` on, reconnecting with Last-Event-ID until `signal` aborts
  // or the server ends it for good (access revoked, token expired, ticket gone).
  async follow(path, { after, onEvent, onState, signal }) {
    let last = after;
    let delay = 500;
    while (!signal.aborted) {
      let response;
      try {
        const headers = { Authorization: `Bearer ${this.token}` };
        // Once an event (or the feed's starting point) was seen, resume after it.
        if (typeof last === "number") headers["Last-Event-ID"] = String(last);
        response = await fetch(path, { headers, signal });
      } catch {
        if (signal.aborted) return;
        response = null;
      }
      if (response && !response.ok) {
        if ([401, 403, 404].includes(response.status)) {
          onState("closed", response.status === 401 ? "Your token was refused: sign in again." : "You can no longer read this ticket.");
          return;
        }
        response = null;
      }
      if (response) {
        onState("live");
        delay = 500;
        const ended = await readFrames(response, signal, (frame) => {
          if (frame.id !== undefined && !Number.isNaN(frame.id)) last = frame.id;
          onEvent(frame);
        });
        if (ended === "access-revoked") {
          onState("closed", "Your access to this ticket has ended.");
          return;
        }
        if (ended === "token-expired") {
          onState("closed", "Your token has expired: sign in again.");
          return;
        }
      }
      if (signal.aborted) return;
      onState("reconnecting");
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 10000);
    }
  }
}

async function readFrames(response, signal, onFrame) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return "closed";
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = parseFrame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (frame.event === "access-revoked" || frame.event === "token-expired") return frame.event;
        if (frame.data !== undefined) onFrame(frame);
      }
    }
  } catch {
    return signal.aborted ? "aborted" : "closed";
  }
}

function parseFrame(text) {
  const frame = {};
  for (const line of text.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const field = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") frame.id = Number(value);
    else if (field === "event") frame.event = value;
    else if (field === "data") frame.data = safeParse(value);
  }
  return frame;
}

function safeParse(text) {
  try { return JSON.parse(text); } catch { return null; }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
