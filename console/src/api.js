// Calls to the gateway's public API. The token lives in this module's
// memory only: never localStorage, sessionStorage or a cookie; a reload
// signs the user out.

let token = "";

export function signedIn() {
  return token !== "";
}

export function signOut() {
  token = "";
}

/** An error from the API, with the message to show and the status. */
export class ApiError extends Error {
  constructor(status, message, reason) {
    super(message);
    this.status = status;
    this.reason = reason || "";
  }
}

function explain(status, body) {
  const error = (body && body.error) || {};
  const reason = (error.details || []).map((d) => d.reason).find(Boolean) || "";
  let message = typeof error === "string" ? body.error_description || error : error.message;
  if (!message) message = `the gateway answered ${status}`;
  if (status === 401) message = `Not signed in or the session expired: ${message}`;
  else if (status === 403) message = `Your account may not do this: ${message}`;
  else if (status === 503) message = `The platform is unavailable right now: ${message}`;
  return new ApiError(status, message, reason);
}

async function parse(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return { error: { message: text.slice(0, 200) } };
  }
}

export async function signIn(clientId, clientSecret) {
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: clientId,
    client_secret: clientSecret,
  });
  let response;
  try {
    response = await fetch("/v1/ignite/token", { method: "POST", body: form });
  } catch (e) {
    throw new ApiError(0, `The gateway cannot be reached: ${e.message}`);
  }
  const body = await parse(response);
  if (!response.ok) {
    if (response.status === 401) {
      throw new ApiError(401, "Those client credentials were not accepted.", "invalid_client");
    }
    throw explain(response.status, body);
  }
  token = body.access_token;
  return body;
}

export async function call(method, path, body) {
  if (!token) throw new ApiError(401, "Not signed in.");
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body ? { "Content-Type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new ApiError(0, `The gateway cannot be reached: ${e.message}`);
  }
  const parsed = await parse(response);
  if (!response.ok) throw explain(response.status, parsed);
  return parsed;
}

/**
 * Follow an NDJSON stream (ReadLogs with follow=true): onEntry for each log
 * entry, until the returned function is called.
 */
export function follow(path, onEntry, onError) {
  const controller = new AbortController();
  (async () => {
    try {
      const response = await fetch(path, {
        headers: { Authorization: `Bearer ${token}` },
        signal: controller.signal,
      });
      if (!response.ok) throw explain(response.status, await parse(response));
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (!line) continue;
          const message = JSON.parse(line);
          if (message.error) throw explain(message.error.code || 500, message);
          if (message.result && message.result.entry) onEntry(message.result.entry);
        }
      }
    } catch (e) {
      if (e.name !== "AbortError") onError(e);
    }
  })();
  return () => controller.abort();
}
