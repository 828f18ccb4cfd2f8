// The dashboard's shell: sign-in, the views (tickets, analytics, integrity), the caller's ticket
// list and search. The ticket itself is ticket.js; the charts and integrity insights.js.
// Everything shown comes from the API and is written as text, never as markup.
import { Api, ApiError } from "./api.js";
import { $, el, button, when, naturalOrder } from "./dom.js";
import { TicketView } from "./ticket.js";
import { showAnalytics, showIntegrity } from "./insights.js";

const TOKEN_KEY = "ticketlog.token";

const app = {
  api: null,
  caller: null,
  tickets: [],
  view: "tickets",
  ticketSeen(channel) {
    const all = seen();
    all[channel.channelId] = channel.messages;
    localStorage.setItem(seenKey(), JSON.stringify(all));
    showTickets(app.tickets.map((t) => (t.channelId === channel.channelId ? channel : t)));
  },
};
const ticket = new TicketView(app);

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
  app.api = api;
  app.caller = caller;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("who").textContent = `Signed in as ${caller.id} (${caller.role})`;
  $("sign-out").hidden = false;
  $("views").hidden = false;
  document.querySelector('[data-view="integrity"]').hidden = caller.role !== "admin";
  $("signed-out").hidden = true;
  $("signed-in").hidden = false;
  showTickets(channels.channels);
  if (navigator.onLine) followAll();
  else showOffline();
  ticket.flushQueue();
}

// One live feed for the page: the events of every ticket the caller may read, from the moment
// the list was read. Each refreshes the list, and the open ticket when it is one of its events.
let feed = null;
let after = "now";
function followAll() {
  feed?.abort();
  feed = new AbortController();
  app.api.follow(`/api/chat/events?after=${after}`, {
    after,
    signal: feed.signal,
    onEvent: (frame) => {
      if (frame.id !== undefined) after = frame.id;
      if (frame.event === "head") return;
      scheduleListRefresh();
      ticket.eventArrived(frame);
    },
    onState: (status, message) => {
      $("connection").textContent =
        status === "live" ? "Live" : status === "reconnecting" ? "Reconnecting…" : message || "Disconnected";
      if (status === "live") ticket.flushQueue();
    },
  });
}

let listTimer = null;
function scheduleListRefresh() {
  clearTimeout(listTimer);
  listTimer = setTimeout(refreshTickets, 200);
}

// The browser knows when it is offline: the feed stops (a stream can outlive the network for a
// while without telling), posts wait in the queue, and both resume when it is back.
function showOffline() {
  $("connection").textContent = "Offline: messages wait here until the connection is back";
}
window.addEventListener("offline", () => {
  feed?.abort();
  showOffline();
});
window.addEventListener("online", () => {
  if (!app.api) return;
  followAll();
  refreshTickets();
  ticket.flushQueue();
});

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
$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});

// Views -----------------------------------------------------------------------------------

function showView(view) {
  app.view = view;
  for (const node of document.querySelectorAll("#views button")) {
    node.setAttribute("aria-pressed", String(node.dataset.view === view));
  }
  $("search-results").hidden = true;
  $("analytics").hidden = view !== "analytics";
  $("integrity").hidden = view !== "integrity";
  $("ticket").hidden = view !== "tickets" || !ticket.open;
  $("empty").hidden = view !== "tickets" || !!ticket.open;
  if (view === "analytics") showAnalytics(app.api);
  if (view === "integrity") showIntegrity(app.api);
}
for (const node of document.querySelectorAll("#views button")) {
  node.addEventListener("click", () => showView(node.dataset.view));
}

function openTicket(ticketId) {
  showView("tickets");
  $("empty").hidden = true;
  $("ticket").hidden = false;
  ticket.show(ticketId);
  for (const node of document.querySelectorAll("#ticket-list button")) {
    node.setAttribute("aria-current", String(node.dataset.channel === `ticket-${ticketId}`));
  }
}

// The ticket list -------------------------------------------------------------------------

function seenKey() { return `ticketlog.seen.${app.caller.id}`; }
function seen() { try { return JSON.parse(localStorage.getItem(seenKey())) || {}; } catch { return {}; } }

async function refreshTickets() {
  try {
    const channels = await app.api.get("/api/chat/channels?limit=500");
    showTickets(channels.channels);
    $("list-error").textContent = "";
  } catch (error) {
    $("list-error").textContent = error.message;
  }
}

// Keeps a filter's choices to the values the tickets have (and the one chosen).
function fillFilter(id, values, all) {
  const select = $(id);
  const chosen = select.value;
  const options = [...new Set(values.filter(Boolean))].sort(naturalOrder.compare);
  if (chosen && !options.includes(chosen)) options.push(chosen);
  select.replaceChildren(el("option", { text: all, attrs: { value: "" } }),
    ...options.map((value) => el("option", { text: value, attrs: { value } })));
  select.value = chosen;
}

function showTickets(tickets) {
  app.tickets = tickets;
  fillFilter("brand-filter", tickets.map((t) => t.brand), "All brands");
  fillFilter("agent-filter", tickets.map((t) => t.agent), "All agents");
  const status = $("status-filter").value;
  const brand = $("brand-filter").value;
  const agent = $("agent-filter").value;
  const list = $("ticket-list");
  const read = seen();
  const current = ticket.open?.channelId;
  list.replaceChildren();
  const shown = tickets.filter((t) => (!status || t.status === status) && (!brand || t.brand === brand) && (!agent || t.agent === agent));
  for (const item of shown) {
    const node = button("", () => openTicket(item.ticketId || item.channelId), {
      class: "link", attrs: { "data-channel": item.channelId, "aria-current": String(item.channelId === current) },
    });
    node.append(el("span", { text: item.title || item.channelId }));
    const unread = item.messages - (read[item.channelId] ?? 0);
    if (unread > 0 && item.channelId !== current) {
      node.append(" ", el("span", { class: "unread", text: String(unread), attrs: { "aria-label": `${unread} unread` } }));
    }
    node.append(el("span", {
      class: "ticket-meta",
      text: `${item.status} · ${item.agent ? `agent ${item.agent}` : "unassigned"} · ${when(item.lastActivityAt)}`,
    }));
    list.append(el("li", {}, [node]));
  }
  if (!list.children.length) {
    list.append(el("li", { text: tickets.length ? "No ticket matches the filters." : "You have no tickets." }));
  }
}
for (const id of ["status-filter", "brand-filter", "agent-filter"]) {
  $(id).addEventListener("change", () => showTickets(app.tickets));
}

// Search ----------------------------------------------------------------------------------

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = $("search").value.trim();
  if (!q) return;
  for (const id of ["ticket", "empty", "analytics", "integrity"]) $(id).hidden = true;
  $("search-results").hidden = false;
  const hits = $("hits");
  hits.replaceChildren();
  try {
    const result = await app.api.get(`/api/chat/search?q=${encodeURIComponent(q)}&limit=50`);
    $("search-summary").textContent = result.hits.length
      ? `${result.hits.length} message(s) with every word of “${q}”.`
      : `No message has every word of “${q}”.`;
    for (const hit of result.hits) {
      const passage = el("p");
      for (const part of hit.snippet) passage.append(el(part.match ? "mark" : "span", { text: part.text }));
      hits.append(el("li", {}, [
        button(`${hit.channelId} · ${hit.author} (${hit.authorRole}) · ${when(hit.postedAt)}`, () => openTicket(hit.ticketId), { class: "link" }),
        passage,
      ]));
    }
  } catch (error) {
    $("search-summary").textContent = error.message;
  }
});
$("close-search").addEventListener("click", () => showView(app.view));

// ------------------------------------------------------------------------------------------

const stored = sessionStorage.getItem(TOKEN_KEY);
if (stored) {
  signIn(stored).catch((error) => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("sign-in-error").textContent = error.message;
  });
}
