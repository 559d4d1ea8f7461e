// The public /v1 API, as any client calls it: JSON requests, multipart uploads, and
// server-sent events read with fetch + ReadableStream.

const KEY_STORAGE = "assistants-playground.api-key";

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const auth = {
  get key() {
    return localStorage.getItem(KEY_STORAGE) || "";
  },
  set key(value) {
    if (value) localStorage.setItem(KEY_STORAGE, value);
    else localStorage.removeItem(KEY_STORAGE);
  },
};

function headers(extra = {}) {
  const h = { "OpenAI-Beta": "assistants=v2", ...extra };
  if (auth.key) h.Authorization = `Bearer ${auth.key}`;
  return h;
}

async function failure(response) {
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch {
    // not JSON: keep the status
  }
  return new APIError(response.status, message);
}

/** A JSON request to /v1; returns the decoded answer or throws APIError. */
export async function call(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/v1${path}`, init);
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** Uploads a browser File with purpose "assistants". */
export async function upload(file) {
  const form = new FormData();
  form.append("purpose", "assistants");
  form.append("file", file, file.name);
  const response = await fetch("/v1/files", { method: "POST", headers: headers(), body: form });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** The bytes of a file (through the API, with the key) as a blob: URL. */
export async function blobURL(fileID) {
  const response = await fetch(`/v1/files/${encodeURIComponent(fileID)}/content`, { headers: headers() });
  if (!response.ok) throw await failure(response);
  return URL.createObjectURL(await response.blob());
}

/**
 * POSTs `body` (with stream: true) and calls onEvent(name, data) for each server-sent
 * event until `data: [DONE]` or the end of the stream.
 */
export async function stream(path, body, onEvent) {
  const response = await fetch(`/v1${path}`, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify({ ...body, stream: true }),
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    if (done) buffer += decoder.decode();
    buffer = buffer.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") name = text;
        else if (field === "data") data.push(text);
      }
      if (data.length === 0) continue;
      const payload = data.join("\n");
      if (payload === "[DONE]") {
        await reader.cancel().catch(() => {});
        return;
      }
      let parsed;
      try {
        parsed = JSON.parse(payload);
      } catch {
        parsed = payload;
      }
      onEvent(name, parsed);
    }
    if (done) return;
  }
}
