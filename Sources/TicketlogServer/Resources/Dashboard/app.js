// The dashboard: sign-in, the caller's tickets, a ticket's conversation followed live, posting
// (queued while the connection is down), and message search. Everything shown comes from the
// API and is written as text (textContent), never as markup.
import { Api, ApiError } from "./api.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "ticketlog.token";
const QUEUE_KEY = "ticketlog.queue";

const state = {
  api: null,
  caller: null,
  tickets: [],
  open: null, // { channelId, ticketId, feed: AbortController, after, live }
  listTimer: null,
};

// Sign-in ---------------------------------------------------------------------------------

function callerOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload));
    return { id: String(claims.sub ?? "?"), role: String(claims.role ?? "?") };
  } catch {
    return null;
  }
}

async function signIn(token) {
  const caller = callerOf(token);
  if (!caller) throw new ApiError(0, "bad_token", "That is not a token: it should be three parts separated by dots.");
  const api = new Api(token);
  const channels = await api.get("/api/chat/channels?limit=500");
  state.api = api;
  state.caller = caller;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("who").textContent = `Signed in as ${caller.id} (${caller.role})`;
  $("sign-out").hidden = false;
  $("signed-out").hidden = true;
  $("signed-in").hidden = false;
  showTickets(channels.channels);
  state.listTimer = setInterval(refreshTickets, 10000);
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    await signIn($("token").value.trim());
  } catch (error) {
    $("sign-in-error").textContent =
      error.status === 401 ? `The token was refused: ${error.message}` : error.message;
  }
});
$("sign-out").addEventListener("click", signOut);

// The ticket list -------------------------------------------------------------------------

function seenKey() { return `ticketlog.seen.${state.caller.id}`; }
function seen() { try { return JSON.parse(localStorage.getItem(seenKey())) || {}; } catch { return {}; } }
function markSeen(ticket) {
  const all = seen();
  all[ticket.channelId] = ticket.messages;
  localStorage.setItem(seenKey(), JSON.stringify(all));
}

async function refreshTickets() {
  try {
    const channels = await state.api.get("/api/chat/channels?limit=500");
    showTickets(channels.channels);
    $("list-error").textContent = "";
  } catch (error) {
    $("list-error").textContent = error.message;
  }
}

function showTickets(tickets) {
  state.tickets = tickets;
  const status = $("status-filter").value;
  const list = $("ticket-list");
  const read = seen();
  list.replaceChildren();
  for (const ticket of tickets.filter((t) => !status || t.status === status)) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.dataset.channel = ticket.channelId;
    if (state.open && state.open.channelId === ticket.channelId) button.setAttribute("aria-current", "true");
    const title = document.createElement("span");
    title.textContent = ticket.title || ticket.channelId;
    button.append(title);
    const unread = ticket.messages - (read[ticket.channelId] ?? 0);
    if (unread > 0 && !(state.open && state.open.channelId === ticket.channelId)) {
      const badge = document.createElement("span");
      badge.className = "unread";
      badge.textContent = String(unread);
      badge.setAttribute("aria-label", `${unread} unread`);
      button.append(" ", badge);
    }
    const meta = document.createElement("span");
    meta.className = "ticket-meta";
    meta.textContent = `${ticket.status} · ${ticket.agent ? `agent ${ticket.agent}` : "unassigned"} · ${when(ticket.lastActivityAt)}`;
    button.append(meta);
    button.addEventListener("click", () => openTicket(ticket.ticketId || ticket.channelId));
    item.append(button);
    list.append(item);
  }
  if (!list.children.length) {
    const item = document.createElement("li");
    item.textContent = tickets.length ? "No ticket has this status." : "You have no tickets.";
    list.append(item);
  }
}
$("status-filter").addEventListener("change", () => showTickets(state.tickets));

// A ticket --------------------------------------------------------------------------------

async function openTicket(ticketId) {
  if (state.open) state.open.feed.abort();
  $("search-results").hidden = true;
  $("empty").hidden = true;
  $("ticket").hidden = false;
  const open = { ticketId, channelId: `ticket-${ticketId}`, feed: new AbortController(), after: 0, live: false };
  state.open = open;
  await loadTicket(open);
  if (state.open !== open) return;
  if (navigator.onLine) follow(open);
  else showOffline();
}

// Follows the open ticket's events; each one reloads the conversation.
function follow(open) {
  open.feed.abort();
  open.feed = new AbortController();
  state.api.follow(`/api/chat/tickets/${encodeURIComponent(open.ticketId)}/events`, {
    after: open.after,
    signal: open.feed.signal,
    onEvent: (frame) => {
      open.after = Math.max(open.after, frame.id ?? 0);
      scheduleReload(open);
    },
    onState: (status, message) => {
      open.live = status === "live";
      $("connection").textContent =
        status === "live" ? "Live" : status === "reconnecting" ? "Reconnecting…" : message || "Disconnected";
      if (open.live) flushQueue();
    },
  });
}

let reloadTimer = null;
function scheduleReload(open) {
  clearTimeout(reloadTimer);
  // Offline, the page shows what it has (and what waits to be sent) until the connection is back.
  if (!navigator.onLine) { showTicket(open.info, open.messages); return; }
  reloadTimer = setTimeout(() => { if (state.open === open) loadTicket(open); }, 100);
}

async function loadTicket(open) {
  try {
    const path = `/api/chat/tickets/${encodeURIComponent(open.ticketId)}`;
    const [info, page] = await Promise.all([
      state.api.get(`/api/chat/channels/${encodeURIComponent(open.channelId)}`),
      state.api.get(`${path}/messages?direction=backwards&limit=200`),
    ]);
    if (state.open !== open) return;
    const messages = page.messages.slice().reverse();
    for (const message of messages) open.after = Math.max(open.after, message.position);
    open.info = info;
    open.messages = messages;
    showTicket(info, messages);
    markSeen(info.channel);
    showTickets(state.tickets.map((t) => (t.channelId === info.channel.channelId ? info.channel : t)));
  } catch (error) {
    $("post-error").textContent = error.message;
  }
}

function showTicket(info, messages) {
  const channel = info.channel;
  $("ticket-title").textContent = channel.title || channel.channelId;
  const facts = $("ticket-facts");
  facts.replaceChildren();
  for (const [term, value] of [
    ["Status", channel.status], ["Agent", channel.agent || "unassigned"], ["Brand", channel.brand || "—"],
    ["Creator", channel.creator || "—"], ["Members", info.members.map((m) => `${m.user} (${m.role})`).join(", ") || "none"],
  ]) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    facts.append(dt, dd);
  }
  const list = $("messages");
  list.replaceChildren();
  const shown = new Set();
  for (const message of messages) {
    shown.add(message.messageId);
    list.append(messageItem(message));
  }
  for (const queued of queue().filter((q) => q.channelId === channel.channelId && !shown.has(q.messageId))) {
    list.append(messageItem({ author: state.caller.id, authorRole: state.caller.role, text: queued.text, pending: true }));
  }
}

function messageItem(message) {
  const item = document.createElement("li");
  item.className = "message";
  const meta = document.createElement("div");
  meta.className = "meta";
  let note = "";
  if (message.pending) note = " · not sent yet";
  else if (message.deleted) note = " · deleted";
  else if (message.editedAt) note = ` · edited ${when(message.editedAt)}`;
  meta.textContent = `${message.author} (${message.authorRole})${message.postedAt ? ` · ${when(message.postedAt)}` : ""}${note}`;
  const text = document.createElement("p");
  text.className = "text";
  if (message.pending) item.classList.add("pending");
  if (message.deleted) {
    item.classList.add("deleted");
    text.textContent = "This message was deleted.";
  } else if (message.text === "") {
    item.classList.add("erased");
    text.textContent = "This content was erased.";
  } else {
    text.textContent = message.text;
  }
  item.append(meta, text);
  return item;
}

// Posting, with the offline queue -----------------------------------------------------------

function queue() { try { return JSON.parse(sessionStorage.getItem(QUEUE_KEY)) || []; } catch { return []; } }
function saveQueue(items) { sessionStorage.setItem(QUEUE_KEY, JSON.stringify(items)); }

$("post-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const open = state.open;
  const text = $("post-text").value;
  if (!open || !text.trim()) return;
  $("post-error").textContent = "";
  // The message id is chosen here, so a post sent twice (a retry after a lost answer, the queue
  // flushed on reconnect) is stored once.
  const item = { channelId: open.channelId, ticketId: open.ticketId, messageId: crypto.randomUUID(), text };
  saveQueue([...queue(), item]);
  $("post-text").value = "";
  await flushQueue();
  scheduleReload(open);
});

let flushing = false;
async function flushQueue() {
  if (flushing || !state.api) return;
  flushing = true;
  try {
    for (const item of queue()) {
      try {
        await state.api.post(`/api/chat/tickets/${encodeURIComponent(item.ticketId)}/messages`, {
          messageId: item.messageId,
          text: item.text,
        });
      } catch (error) {
        if (error.status === 0 || error.status >= 500 || error.status === 429) break; // try again on reconnect
        $("post-error").textContent = `Not sent: ${error.message}`;
      }
      saveQueue(queue().filter((q) => q.messageId !== item.messageId));
    }
  } finally {
    flushing = false;
    const left = queue().length;
    $("queued").textContent = left ? `${left} message(s) waiting to be sent.` : "";
  }
}
// The browser knows when it is offline: the feed stops (a stream can outlive the network for a
// while without telling), posts wait in the queue, and both resume when it is back.
function showOffline() {
  $("connection").textContent = "Offline: messages wait here until the connection is back";
}
window.addEventListener("offline", () => {
  if (!state.open) return;
  state.open.feed.abort();
  state.open.live = false;
  showOffline();
});
window.addEventListener("online", () => {
  if (state.open) follow(state.open);
  flushQueue();
});

// Search ----------------------------------------------------------------------------------

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = $("search").value.trim();
  if (!q) return;
  $("search-results").hidden = false;
  $("ticket").hidden = true;
  $("empty").hidden = true;
  const hits = $("hits");
  hits.replaceChildren();
  try {
    const result = await state.api.get(`/api/chat/search?q=${encodeURIComponent(q)}&limit=50`);
    $("search-summary").textContent = result.hits.length
      ? `${result.hits.length} message(s) with every word of “${q}”.`
      : `No message has every word of “${q}”.`;
    for (const hit of result.hits) {
      const item = document.createElement("li");
      const open = document.createElement("button");
      open.type = "button";
      open.className = "link";
      open.textContent = `${hit.channelId} · ${hit.author} (${hit.authorRole}) · ${when(hit.postedAt)}`;
      open.addEventListener("click", () => openTicket(hit.ticketId));
      const passage = document.createElement("p");
      for (const part of hit.snippet) {
        const piece = document.createElement(part.match ? "mark" : "span");
        piece.textContent = part.text;
        passage.append(piece);
      }
      item.append(open, passage);
      hits.append(item);
    }
  } catch (error) {
    $("search-summary").textContent = error.message;
  }
});
$("close-search").addEventListener("click", () => {
  $("search-results").hidden = true;
  if (state.open) $("ticket").hidden = false;
  else $("empty").hidden = false;
});

// ------------------------------------------------------------------------------------------

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

const stored = sessionStorage.getItem(TOKEN_KEY);
if (stored) {
  signIn(stored).catch((error) => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("sign-in-error").textContent = error.message;
  });
}
