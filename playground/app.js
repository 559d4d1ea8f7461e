// The playground: assistants, threads, a streamed chat, tool calls by hand and run steps.
// Everything a user or the model wrote is put in the page as text (textContent, DOM nodes).

import { APIError, auth, blobURL, call, stream, upload } from "/playground/api.js";

const $ = (id) => document.getElementById(id);

/** A DOM element: el("div", {className: "x", dataset: {role: "user"}}, child, "text", ...). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "testid") node.dataset.testid = value;
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const ACTIVE = new Set(["queued", "in_progress", "requires_action", "cancelling"]);
const INCLUDE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content";

const state = {
  config: { models: [], auth_required: false },
  assistants: [],
  selected: null, // the selected assistant (object), or null for a new one
  threadID: null,
  run: null, // the current run (object)
  messages: new Map(), // message id -> { data, node }
  fileNames: new Map(), // file id -> Promise<filename>
  images: new Map(), // file id -> Promise<blob URL>
  openSteps: new Set(),
  busy: false,
  assistantLoads: 0, // sequence of assistant-list loads: only the latest is shown
};

// ---------------------------------------------------------------- errors and status

function showError(error) {
  const box = $("error");
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  const text = error instanceof APIError ? `${error.message} (HTTP ${error.status})` : String(error.message || error);
  box.textContent = text;
  box.hidden = false;
}

function guarded(fn) {
  return async (...args) => {
    try {
      showError(null);
      await fn(...args);
    } catch (error) {
      showError(error);
    }
  };
}

function setRun(run) {
  state.run = run;
  const status = run ? run.status : "none";
  const badge = $("run-status");
  badge.textContent = status;
  badge.className = `status ${status}`;
  if (run && run.status === "failed" && run.last_error) {
    showError(new Error(`The run failed: ${run.last_error.message} (${run.last_error.code})`));
  }
  updateComposer();
}

function updateComposer() {
  const active = state.busy || (state.run && ACTIVE.has(state.run.status));
  $("message-send").disabled = Boolean(active);
}

// ---------------------------------------------------------------- files

function fileName(fileID) {
  if (!state.fileNames.has(fileID)) {
    state.fileNames.set(fileID, call("GET", `/files/${encodeURIComponent(fileID)}`).then((f) => f.filename, () => fileID));
  }
  return state.fileNames.get(fileID);
}

function image(fileID, alt) {
  const img = el("img", { alt: alt || "image" });
  img.dataset.fileId = fileID;
  if (!state.images.has(fileID)) state.images.set(fileID, blobURL(fileID));
  state.images.get(fileID).then((url) => { img.src = url; }, (error) => { img.alt = `image ${fileID}: ${error.message}`; });
  return img;
}

// ---------------------------------------------------------------- assistants

function functionsOf(assistant) {
  return (assistant.tools || []).filter((t) => t.type === "function").map((t) => t.function);
}

function renderAssistants() {
  const list = $("assistant-list");
  list.replaceChildren();
  for (const a of state.assistants) {
    const item = el("li", { dataset: { assistantId: a.id }, title: a.id },
      el("strong", {}, a.name || "(unnamed)"), el("span", { className: "sub" }, `${a.model} · ${a.id}`));
    if (state.selected && state.selected.id === a.id) item.classList.add("selected");
    item.addEventListener("click", () => selectAssistant(a));
    list.append(item);
  }
  if (state.assistants.length === 0) list.append(el("li", { className: "muted" }, "No assistants yet."));
  const names = new Set([...state.config.models, ...state.assistants.map((a) => a.model)]);
  $("model-names").replaceChildren(...[...names].map((name) => el("option", { value: name })));
}

async function loadAssistants() {
  if (state.config.auth_required && !auth.key) {
    state.assistants = [];
    renderAssistants();
    showError(new Error("Type an API key to use this server."));
    return;
  }
  // Loads can overlap (the first load, and the one after a save): only the latest one counts,
  // so a slow older answer never replaces a newer list.
  const load = ++state.assistantLoads;
  const page = await call("GET", "/assistants?limit=100&order=desc");
  if (load !== state.assistantLoads) return;
  state.assistants = page.data;
  if (state.selected) state.selected = state.assistants.find((a) => a.id === state.selected.id) || null;
  renderAssistants();
}

function selectAssistant(assistant) {
  state.selected = assistant;
  showError(null);
  $("form-title").textContent = assistant ? `Edit ${assistant.name || assistant.id}` : "New assistant";
  $("assistant-name").value = assistant ? assistant.name || "" : "";
  $("assistant-model").value = assistant ? assistant.model : state.config.models[0] || "";
  $("assistant-instructions").value = assistant ? assistant.instructions || "" : "";
  $("assistant-temperature").value = assistant && assistant.temperature !== null && assistant.temperature !== undefined ? assistant.temperature : "";
  const tools = assistant ? assistant.tools || [] : [];
  $("assistant-code-interpreter").checked = tools.some((t) => t.type === "code_interpreter");
  $("assistant-file-search").checked = tools.some((t) => t.type === "file_search");
  const functions = assistant ? functionsOf(assistant) : [];
  $("assistant-functions").value = functions.length ? JSON.stringify(functions, null, 2) : "";
  $("assistant-functions-error").hidden = true;
  $("assistant-files").value = "";
  $("assistant-delete").hidden = !assistant;
  renderAssistantFiles();
  renderAssistants();
}

async function renderAssistantFiles() {
  const list = $("assistant-file-list");
  list.replaceChildren();
  const a = state.selected;
  if (!a || !a.tool_resources) return;
  const ci = (a.tool_resources.code_interpreter || {}).file_ids || [];
  for (const id of ci) {
    const item = el("li", {}, `code_interpreter: ${id}`);
    list.append(item);
    fileName(id).then((name) => { item.textContent = `code_interpreter: ${name}`; });
  }
  for (const vs of (a.tool_resources.file_search || {}).vector_store_ids || []) {
    const item = el("li", {}, `file_search: vector store ${vs}`);
    list.append(item);
    call("GET", `/vector_stores/${encodeURIComponent(vs)}/files?limit=100`).then(async (page) => {
      const names = await Promise.all(page.data.map((f) => fileName(f.id)));
      item.textContent = `file_search: ${names.join(", ") || "(no files)"}`;
    }, () => {});
  }
}

/** The function tools from the textarea, or throws with a message naming what is wrong. */
function parseFunctions(text) {
  if (!text.trim()) return [];
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`Functions: invalid JSON: ${error.message}`);
  }
  if (!Array.isArray(value)) throw new Error("Functions: expected a JSON array of {name, description, parameters}");
  return value.map((entry, i) => {
    const fn = entry && entry.type === "function" && entry.function ? entry.function : entry;
    if (!fn || typeof fn !== "object" || Array.isArray(fn)) throw new Error(`Functions: item ${i} is not an object`);
    if (typeof fn.name !== "string" || !fn.name) throw new Error(`Functions: item ${i} has no "name"`);
    if (fn.parameters !== undefined && (typeof fn.parameters !== "object" || Array.isArray(fn.parameters) || fn.parameters === null)) {
      throw new Error(`Functions: "parameters" of ${fn.name} must be a JSON Schema object`);
    }
    return { type: "function", function: fn };
  });
}

async function saveAssistant(event) {
  event.preventDefault();
  const errorBox = $("assistant-functions-error");
  let functions;
  try {
    functions = parseFunctions($("assistant-functions").value);
    errorBox.hidden = true;
  } catch (error) {
    errorBox.textContent = error.message;
    errorBox.hidden = false;
    return;
  }
  const model = $("assistant-model").value.trim();
  if (!model) throw new Error("Choose a model.");
  const codeInterpreter = $("assistant-code-interpreter").checked;
  const fileSearch = $("assistant-file-search").checked;
  const tools = [];
  if (codeInterpreter) tools.push({ type: "code_interpreter" });
  if (fileSearch) tools.push({ type: "file_search" });
  tools.push(...functions);
  const body = {
    model,
    name: $("assistant-name").value.trim() || null,
    instructions: $("assistant-instructions").value || null,
    tools,
  };
  const temperature = $("assistant-temperature").value;
  if (temperature !== "") body.temperature = Number(temperature);

  // files for the tools: uploaded, then given to code_interpreter and/or a vector store
  const current = state.selected ? state.selected.tool_resources || {} : {};
  const chosen = [...$("assistant-files").files];
  const uploaded = [];
  for (const file of chosen) uploaded.push(await upload(file));
  const resources = {};
  const ciFiles = [...((current.code_interpreter || {}).file_ids || [])];
  if (codeInterpreter) resources.code_interpreter = { file_ids: [...ciFiles, ...uploaded.map((f) => f.id)].slice(0, 20) };
  if (fileSearch) {
    let stores = [...((current.file_search || {}).vector_store_ids || [])];
    if (uploaded.length && stores.length) {
      for (const f of uploaded) await call("POST", `/vector_stores/${encodeURIComponent(stores[0])}/files`, { file_id: f.id });
    } else if (uploaded.length) {
      const vs = await call("POST", "/vector_stores", { name: `${body.name || "assistant"} files`, file_ids: uploaded.map((f) => f.id) });
      stores = [vs.id];
    }
    resources.file_search = { vector_store_ids: stores };
  }
  if (Object.keys(resources).length) body.tool_resources = resources;
  if (uploaded.length && !codeInterpreter && !fileSearch) throw new Error("Turn on code_interpreter or file_search to give it files.");

  const saved = state.selected
    ? await call("POST", `/assistants/${encodeURIComponent(state.selected.id)}`, body)
    : await call("POST", "/assistants", body);
  await loadAssistants();
  selectAssistant(state.assistants.find((a) => a.id === saved.id) || saved);
}

async function deleteAssistant() {
  const a = state.selected;
  if (!a) return;
  if (!window.confirm(`Delete the assistant ${a.name || a.id}?`)) return;
  await call("DELETE", `/assistants/${encodeURIComponent(a.id)}`);
  state.selected = null;
  await loadAssistants();
  selectAssistant(null);
}

// ---------------------------------------------------------------- messages

function mergeContent(target, deltaParts) {
  for (const part of deltaParts || []) {
    const i = part.index ?? target.length;
    const existing = target[i];
    if (!existing) {
      const copy = JSON.parse(JSON.stringify(part));
      delete copy.index;
      if (copy.type === "text") {
        copy.text = copy.text || {};
        copy.text.value = copy.text.value || "";
        copy.text.annotations = copy.text.annotations || [];
      }
      target[i] = copy;
    } else if (part.type === "text" && part.text) {
      existing.text.value += part.text.value || "";
      existing.text.annotations.push(...(part.text.annotations || []));
    } else {
      Object.assign(existing, part);
      delete existing.index;
    }
  }
}

function renderText(part, body, notes) {
  const value = part.text.value || "";
  const annotations = [...(part.text.annotations || [])]
    .filter((a) => Number.isInteger(a.start_index) && Number.isInteger(a.end_index))
    .sort((a, b) => a.start_index - b.start_index);
  let at = 0;
  const span = el("span", { className: "text" });
  for (const a of annotations) {
    if (a.start_index < at) continue;
    span.append(value.slice(at, a.start_index));
    const fileID = a.type === "file_citation" ? (a.file_citation || {}).file_id : (a.file_path || {}).file_id;
    const n = notes.children.length + 1;
    span.append(el("sup", { className: "cite", title: a.text || "" }, `[${n}]`));
    const note = el("li", { dataset: { testid: "footnote", fileId: fileID || "" } },
      `${a.type === "file_path" ? "file" : "source"}: ${fileID || "?"}`);
    notes.append(note);
    if (fileID) {
      fileName(fileID).then((name) => { note.textContent = `${a.type === "file_path" ? "file" : "source"}: ${name}`; });
    }
    at = a.end_index;
  }
  span.append(value.slice(at));
  body.append(span);
}

function renderMessage(entry) {
  const { data } = entry;
  const node = entry.node || el("div", { className: "msg" });
  entry.node = node;
  node.dataset.role = data.role;
  node.dataset.messageId = data.id;
  const body = el("div", { className: "body" });
  const notes = el("ol", { className: "footnotes" });
  for (const part of data.content || []) {
    if (part.type === "text" && part.text) renderText(part, body, notes);
    else if (part.type === "image_file" && part.image_file) body.append(image(part.image_file.file_id, "image from the assistant"));
    else if (part.type === "image_url" && part.image_url) body.append(el("span", { className: "muted" }, `[image: ${part.image_url.url}]`));
  }
  const children = [el("span", { className: "who" }, data.role), body];
  if (notes.children.length) children.push(notes);
  if ((data.attachments || []).length) {
    const att = el("div", { className: "attachments" }, "attached: ");
    for (const a of data.attachments) {
      const s = el("span", {}, `${a.file_id} `);
      att.append(s);
      fileName(a.file_id).then((name) => { s.textContent = `${name} `; });
    }
    children.push(att);
  }
  node.replaceChildren(...children);
  if (!node.isConnected) {
    const box = $("messages");
    box.append(node);
  }
  $("messages").scrollTop = $("messages").scrollHeight;
}

function upsertMessage(data) {
  let entry = state.messages.get(data.id);
  if (!entry) {
    entry = { data: { ...data, content: [] }, node: null };
    state.messages.set(data.id, entry);
  }
  entry.data = { ...entry.data, ...data, content: data.content ? JSON.parse(JSON.stringify(data.content)) : entry.data.content };
  renderMessage(entry);
}

// ---------------------------------------------------------------- threads and runs

function setThread(id) {
  state.threadID = id;
  $("thread-id").textContent = id || "none";
  state.messages.clear();
  $("messages").replaceChildren();
  hideToolCalls();
  setRun(null);
  $("run-steps").replaceChildren(el("p", { className: "muted" }, "No run yet."));
}

async function newThread() {
  const thread = await call("POST", "/threads", {});
  setThread(thread.id);
}

async function openThread() {
  const id = $("thread-pick").value.trim();
  if (!id) throw new Error("Type a thread id.");
  const thread = await call("GET", `/threads/${encodeURIComponent(id)}`);
  setThread(thread.id);
  const page = await call("GET", `/threads/${encodeURIComponent(thread.id)}/messages?limit=100&order=asc`);
  for (const m of page.data) upsertMessage(m);
  const runs = await call("GET", `/threads/${encodeURIComponent(thread.id)}/runs?limit=1&order=desc`);
  if (runs.data.length) {
    setRun(runs.data[0]);
    if (runs.data[0].status === "requires_action") showToolCalls(runs.data[0]);
    await loadSteps();
  }
}

function onEvent(name, data) {
  if (name === "error") {
    showError(new Error((data && data.message) || (data && data.error && data.error.message) || "stream error"));
    return;
  }
  if (name === "thread.created") return;
  if (name.startsWith("thread.run.step.")) {
    if (name !== "thread.run.step.delta") scheduleSteps();
    return;
  }
  if (name.startsWith("thread.run.")) {
    setRun(data);
    if (data.status === "requires_action") showToolCalls(data);
    return;
  }
  if (name === "thread.message.delta") {
    const entry = state.messages.get(data.id);
    if (!entry) return;
    mergeContent(entry.data.content, data.delta && data.delta.content);
    renderMessage(entry);
    return;
  }
  if (name.startsWith("thread.message.")) upsertMessage(data);
}

async function runStream(path, body) {
  state.busy = true;
  updateComposer();
  try {
    await stream(path, body, onEvent);
  } finally {
    state.busy = false;
    updateComposer();
    await loadSteps();
  }
}

async function send(event) {
  if (event) event.preventDefault();
  const input = $("message-input");
  const text = input.value;
  const files = [...$("file-upload").files];
  if (!text.trim() && files.length === 0) return;
  const assistant = state.selected;
  if (!assistant) throw new Error("Select or create an assistant first.");
  state.busy = true;
  updateComposer();
  try {
    if (!state.threadID) await newThread();
    const toolTypes = (assistant.tools || []).map((t) => t.type).filter((t) => t === "file_search" || t === "code_interpreter");
    const attachments = [];
    for (const file of files) {
      const f = await upload(file);
      state.fileNames.set(f.id, Promise.resolve(f.filename));
      attachments.push({ file_id: f.id, tools: (toolTypes.length ? toolTypes : ["file_search"]).map((type) => ({ type })) });
    }
    const message = { role: "user", content: text || "(see the attached files)" };
    if (attachments.length) message.attachments = attachments;
    const created = await call("POST", `/threads/${encodeURIComponent(state.threadID)}/messages`, message);
    upsertMessage(created);
    input.value = "";
    $("file-upload").value = "";
    hideToolCalls();
    if (attachments.some((a) => a.tools.some((t) => t.type === "file_search"))) await waitForThreadFiles();
  } finally {
    state.busy = false;
  }
  await runStream(`/threads/${encodeURIComponent(state.threadID)}/runs`, { assistant_id: assistant.id });
}

/** Waits (up to a minute) until the thread's vector store has indexed the attached files. */
async function waitForThreadFiles() {
  const note = $("indexing");
  note.hidden = false;
  try {
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
      const thread = await call("GET", `/threads/${encodeURIComponent(state.threadID)}`);
      const stores = ((thread.tool_resources || {}).file_search || {}).vector_store_ids || [];
      const counts = await Promise.all(stores.map((id) => call("GET", `/vector_stores/${encodeURIComponent(id)}`)));
      if (counts.every((vs) => vs.file_counts.in_progress === 0)) return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    note.hidden = true;
  }
}

// ---------------------------------------------------------------- tool calls by hand

/** JSON text indented for reading; other text as it came. */
function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text || "";
  }
}

function hideToolCalls() {
  $("tool-calls").hidden = true;
  $("tool-call-list").replaceChildren();
}

function showToolCalls(run) {
  const calls = ((run.required_action || {}).submit_tool_outputs || {}).tool_calls || [];
  const list = $("tool-call-list");
  list.replaceChildren();
  for (const c of calls) {
    const args = pretty(c.function.arguments);
    list.append(el("div", { className: "tool-call", dataset: { testid: "tool-call", callId: c.id } },
      el("div", {}, el("span", { className: "name" }, c.function.name), el("span", { className: "muted" }, `  ${c.id}`)),
      el("pre", { className: "arguments" }, args),
      el("label", {}, "Output ", el("textarea", { rows: 1, dataset: { testid: "tool-output" }, placeholder: "what the function returned" }))));
  }
  $("tool-submit").disabled = false;
  $("tool-calls").hidden = calls.length === 0;
}

async function submitToolOutputs() {
  const run = state.run;
  if (!run || run.status !== "requires_action") return;
  const outputs = [...document.querySelectorAll("[data-testid=tool-call]")].map((node) => ({
    tool_call_id: node.dataset.callId,
    output: node.querySelector("[data-testid=tool-output]").value,
  }));
  $("tool-submit").disabled = true;
  hideToolCalls();
  await runStream(`/threads/${encodeURIComponent(run.thread_id)}/runs/${encodeURIComponent(run.id)}/submit_tool_outputs`,
    { tool_outputs: outputs });
}

// ---------------------------------------------------------------- run steps

let stepsTimer = null;
let stepsShown = "";
function scheduleSteps() {
  clearTimeout(stepsTimer);
  stepsTimer = setTimeout(() => loadSteps().catch(showError), 150);
}

function labelled(label, ...content) {
  return el("div", {}, el("div", { className: "label" }, label), ...content);
}

function renderToolCall(c) {
  const box = el("div", { className: "step-call", dataset: { testid: "step-tool-call", type: c.type } });
  if (c.type === "function") {
    box.append(el("strong", {}, `function ${c.function.name}`), labelled("arguments", el("pre", {}, pretty(c.function.arguments))),
      labelled("output", el("pre", {}, c.function.output === null || c.function.output === undefined ? "(pending)" : c.function.output)));
  } else if (c.type === "code_interpreter") {
    const ci = c.code_interpreter || {};
    box.append(el("strong", {}, "code_interpreter"), labelled("input", el("pre", {}, ci.input || "")));
    for (const o of ci.outputs || []) {
      if (o.type === "logs") box.append(labelled("logs", el("pre", {}, o.logs)));
      else if (o.type === "image" && o.image) box.append(labelled("image", image(o.image.file_id, "code_interpreter image")));
    }
  } else if (c.type === "file_search") {
    const fs = c.file_search || {};
    box.append(el("strong", {}, "file_search"));
    const results = fs.results || [];
    if (results.length === 0) box.append(el("div", { className: "muted" }, "no results"));
    for (const r of results) {
      const text = (r.content || []).map((p) => p.text || "").join("\n");
      box.append(el("div", { className: "result", dataset: { testid: "search-result", fileId: r.file_id } },
        el("div", { className: "result-name" }, `${r.file_name || r.file_id} · score ${Number(r.score).toPrecision(3)}`),
        text ? el("pre", {}, text) : null));
    }
  } else {
    box.append(el("pre", {}, JSON.stringify(c, null, 2)));
  }
  return box;
}

async function loadSteps() {
  const run = state.run;
  if (!run || !run.id) return;
  const query = `limit=100&order=asc&include[]=${encodeURIComponent(INCLUDE_SEARCH_CONTENT)}`;
  const page = await call("GET", `/threads/${encodeURIComponent(run.thread_id)}/runs/${encodeURIComponent(run.id)}/steps?${query}`);
  if (!state.run || state.run.id !== run.id) return;
  const box = $("run-steps");
  const key = JSON.stringify(page.data);
  if (box.dataset.runId === run.id && stepsShown === key) return; // nothing new: keep the nodes (and what is open)
  stepsShown = key;
  box.dataset.runId = run.id;
  const nodes = [el("div", { className: "muted" }, `${run.id}`)];
  for (const step of page.data) {
    const details = el("details", { dataset: { testid: "run-step", stepId: step.id, type: step.type } });
    details.open = state.openSteps.has(step.id);
    details.addEventListener("toggle", () => {
      if (details.open) state.openSteps.add(step.id);
      else state.openSteps.delete(step.id);
    });
    const d = step.step_details || {};
    const title = step.type === "tool_calls"
      ? `tool calls: ${(d.tool_calls || []).map((c) => (c.type === "function" ? c.function.name : c.type)).join(", ")}`
      : "message";
    details.append(el("summary", {}, `${title} — ${step.status}`));
    if (step.type === "tool_calls") for (const c of d.tool_calls || []) details.append(renderToolCall(c));
    else details.append(el("div", { className: "muted" }, `message ${(d.message_creation || {}).message_id || ""}`));
    if (step.last_error) details.append(el("div", { className: "field-error" }, step.last_error.message));
    nodes.push(details);
  }
  box.replaceChildren(...nodes);
}

// ---------------------------------------------------------------- start

async function start() {
  const keyInput = $("api-key");
  keyInput.value = auth.key;
  const applyKey = guarded(async () => {
    auth.key = keyInput.value.trim();
    state.fileNames.clear();
    state.images.clear();
    await loadAssistants();
  });
  keyInput.addEventListener("change", applyKey);
  keyInput.addEventListener("keydown", (e) => { if (e.key === "Enter") applyKey(); });
  $("assistant-refresh").addEventListener("click", guarded(loadAssistants));
  $("assistant-new").addEventListener("click", () => selectAssistant(null));
  $("assistant-form").addEventListener("submit", guarded(saveAssistant));
  $("assistant-delete").addEventListener("click", guarded(deleteAssistant));
  $("thread-new").addEventListener("click", guarded(newThread));
  $("thread-open").addEventListener("click", guarded(openThread));
  $("composer").addEventListener("submit", guarded(send));
  $("message-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) guarded(send)();
  });
  $("tool-submit").addEventListener("click", guarded(submitToolOutputs));
  try {
    const response = await fetch("/playground/config.json");
    if (response.ok) state.config = await response.json();
  } catch {
    // suggestions are optional
  }
  selectAssistant(null);
  if (!state.config.auth_required || auth.key) await guarded(loadAssistants)();
  else showError(new Error("Type an API key to use this server."));
  document.body.dataset.ready = "true";
}

start();
