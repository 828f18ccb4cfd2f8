// One ticket: its facts and actions, the conversation (with system lines for status changes,
// deliverables, joins and assignments) reloaded when the caller's feed brings one of its events,
// posting with an offline queue, and the history: the audit trail and a slider showing the
// ticket as it stood after any event.
import { $, el, button, when } from "./dom.js";

const QUEUE_KEY = "ticketlog.queue";
const SYSTEM_TYPES = new Set([
  "ticket.opened", "status.changed", "deliverable.pushed", "member.joined", "member.left",
  "agent.assigned", "agent.unassigned", "erasure.performed",
]);
// The history view shows the ticket's last this many messages at the chosen point.
const HISTORY_MESSAGES = 200;

export class TicketView {
  constructor(app) {
    this.app = app;
    this.open = null; // { ticketId, channelId, info, messages, audit }
    this.reloadTimer = null;
    this.flushing = false;
    this.bind();
  }

  get api() { return this.app.api; }

  bind() {
    $("post-form").addEventListener("submit", (event) => { event.preventDefault(); this.post(); });
    $("status-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const note = $("status-note").value.trim();
      this.act("status", { status: $("status-select").value, ...(note ? { note } : {}) }, () => { $("status-note").value = ""; });
    });
    $("join").addEventListener("click", () => this.act("join"));
    $("leave").addEventListener("click", () => this.act("leave"));
    $("assign-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.act("assign", { agent: $("assign-agent").value.trim() }, () => { $("assign-agent").value = ""; });
    });
    $("deliverable-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const note = $("deliverable-note").value.trim();
      this.act("deliverables", {
        deliverableId: crypto.randomUUID(), title: $("deliverable-title").value, url: $("deliverable-url").value,
        kind: $("deliverable-kind").value, ...(note ? { note } : {}),
      }, () => $("deliverable-form").reset());
    });
    $("evidence").addEventListener("click", () => this.downloadEvidence());
    for (const [tab, panel] of [["tab-conversation", "conversation"], ["tab-history", "history"]]) {
      $(tab).addEventListener("click", () => this.showTab(panel));
    }
    document.querySelector(".tabs").addEventListener("keydown", (event) => {
      if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
      const next = $("tab-conversation").getAttribute("aria-selected") === "true" ? "history" : "conversation";
      this.showTab(next);
      $(`tab-${next}`).focus();
    });
    $("history-slider").addEventListener("input", () => this.showHistory());
  }

  async show(ticketId) {
    const open = { ticketId, channelId: `ticket-${ticketId}` };
    this.open = open;
    $("action-error").textContent = "";
    $("post-error").textContent = "";
    const admin = this.app.caller.role === "admin";
    $("assign-form").hidden = !admin;
    $("evidence").hidden = !admin;
    this.showTab("conversation");
    await this.load(open);
  }

  // An event from the caller's feed (app.js): one of the open ticket's reloads it.
  eventArrived(frame) {
    if (this.open && frame.data && frame.data.stream === this.open.channelId) this.scheduleReload(this.open);
  }

  scheduleReload(open) {
    clearTimeout(this.reloadTimer);
    // Offline, the page shows what it has (and what waits to be sent) until the connection is back.
    if (!navigator.onLine) { if (open.info) this.render(open); return; }
    this.reloadTimer = setTimeout(() => { if (this.open === open) this.load(open); }, 100);
  }

  async load(open) {
    try {
      const path = `/api/chat/tickets/${encodeURIComponent(open.ticketId)}`;
      const [info, page, audit, state] = await Promise.all([
        this.api.get(`/api/chat/channels/${encodeURIComponent(open.channelId)}`),
        this.api.get(`${path}/messages?direction=backwards&limit=200`),
        this.api.get(`${path}/audit?limit=1000`),
        // Only its deliverables are shown from it: none of its messages (the page above has them).
        this.api.get(`${path}/state?messages=0`),
      ]);
      if (this.open !== open) return;
      open.info = info;
      open.deliverables = state.deliverables;
      open.messages = page.messages.slice().reverse();
      open.audit = audit.entries;
      this.render(open);
      this.app.ticketSeen(info.channel);
    } catch (error) {
      $("action-error").textContent = error.message;
    }
  }

  render(open) {
    const { channel, members } = open.info;
    $("ticket-title").textContent = channel.title || channel.channelId;
    $("status-select").value = channel.status;
    const facts = $("ticket-facts");
    facts.replaceChildren();
    for (const [term, value] of [
      ["Status", channel.status], ["Agent", channel.agent || "unassigned"], ["Brand", channel.brand || "—"],
      ["Creator", channel.creator || "—"], ["Members", members.map((m) => `${m.user} (${m.role})`).join(", ") || "none"],
      ["Deliverables", String(channel.deliverables)],
    ]) {
      facts.append(el("dt", { text: term }), el("dd", { text: value }));
    }
    const deliverables = $("deliverables");
    deliverables.replaceChildren();
    for (const deliverable of open.deliverables || []) {
      const item = el("li");
      // A link only to a web address: anything else (javascript:, data:) is shown as text.
      let safe = null;
      try {
        const url = new URL(deliverable.url);
        if (url.protocol === "https:" || url.protocol === "http:") safe = url.href;
      } catch { safe = null; }
      const title = safe
        ? el("a", { text: deliverable.title, attrs: { href: safe, rel: "noopener noreferrer", target: "_blank" } })
        : el("span", { text: `${deliverable.title} (${deliverable.url})` });
      item.append(title, ` · ${deliverable.kind}${deliverable.note ? ` · ${deliverable.note}` : ""}`);
      deliverables.append(item);
    }
    if (!deliverables.children.length) deliverables.append(el("li", { text: "None yet." }));
    const isMember = members.some((m) => m.user === this.app.caller.id);
    $("join").hidden = isMember;
    $("leave").hidden = !isMember;
    this.renderConversation(open);
    this.renderHistory(open);
  }

  renderConversation(open) {
    // Messages and system lines in log order.
    const items = [
      ...open.messages.map((message) => ({ position: message.position, message })),
      ...(open.audit || []).filter((entry) => SYSTEM_TYPES.has(entry.type)).map((entry) => ({ position: entry.position, entry })),
    ].sort((a, b) => a.position - b.position);
    const list = $("messages");
    list.replaceChildren();
    const shown = new Set();
    for (const item of items) {
      if (item.entry) {
        list.append(el("li", { class: "system", text: `${item.entry.summary} · ${when(item.entry.occurredAt)}` }));
      } else {
        shown.add(item.message.messageId);
        list.append(this.messageItem(open, item.message));
      }
    }
    for (const queued of this.queue().filter((q) => q.channelId === open.channelId && !shown.has(q.messageId))) {
      list.append(this.messageItem(open, {
        author: this.app.caller.id, authorRole: this.app.caller.role, text: queued.text, pending: true,
      }));
    }
  }

  messageItem(open, message) {
    const item = el("li", { class: "message" });
    let note = "";
    if (message.pending) note = " · not sent yet";
    else if (message.deleted) note = " · deleted";
    else if (message.editedAt) note = ` · edited ${when(message.editedAt)}`;
    const meta = el("div", {
      class: "meta",
      text: `${message.author} (${message.authorRole})${message.postedAt ? ` · ${when(message.postedAt)}` : ""}${note}`,
    });
    const text = el("p", { class: "text" });
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
    if (message.pending || message.deleted) return item;
    const tools = el("div", { class: "tools" });
    const audience = el("p", { class: "audience", attrs: { hidden: "" } });
    tools.append(button("Who could see it", async () => {
      try {
        const result = await this.api.get(
          `/api/chat/tickets/${encodeURIComponent(open.ticketId)}/messages/${encodeURIComponent(message.messageId)}/audience`);
        audience.textContent = `In the channel when it was posted: ${result.members.map((m) => `${m.user} (${m.role})`).join(", ") || "nobody"}`;
        audience.hidden = false;
      } catch (error) {
        $("action-error").textContent = error.message;
      }
    }, { class: "link" }));
    const mine = message.author === this.app.caller.id;
    if (mine && message.text !== "") {
      tools.append(button("Edit", () => this.edit(open, message, item), { class: "link" }));
    }
    if (mine || ["agent", "admin"].includes(this.app.caller.role)) {
      tools.append(button("Delete", () => this.remove(open, message), { class: "link" }));
    }
    item.append(tools, audience);
    return item;
  }

  edit(open, message, item) {
    const form = el("form", { class: "post" });
    const id = `edit-${message.messageId}`;
    const box = el("textarea", { attrs: { id, rows: "3", required: "", maxlength: "10000" } });
    box.value = message.text;
    form.append(el("label", { text: "Edit message", attrs: { for: id } }), box,
      el("button", { text: "Save", attrs: { type: "submit" } }),
      button("Cancel", () => this.render(open)));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await this.api.request("PATCH",
          `/api/chat/tickets/${encodeURIComponent(open.ticketId)}/messages/${encodeURIComponent(message.messageId)}`,
          { text: box.value });
        this.scheduleReload(open);
      } catch (error) {
        $("action-error").textContent = error.message;
      }
    });
    item.replaceChildren(form);
    box.focus();
  }

  async remove(open, message) {
    if (!confirm("Delete this message? The log keeps that it was posted and deleted.")) return;
    try {
      await this.api.request("DELETE",
        `/api/chat/tickets/${encodeURIComponent(open.ticketId)}/messages/${encodeURIComponent(message.messageId)}`);
      this.scheduleReload(open);
    } catch (error) {
      $("action-error").textContent = error.message;
    }
  }

  async act(action, body, done) {
    const open = this.open;
    if (!open) return;
    $("action-error").textContent = "";
    try {
      await this.api.post(`/api/chat/tickets/${encodeURIComponent(open.ticketId)}/${action}`, body);
      if (done) done();
      this.scheduleReload(open);
    } catch (error) {
      $("action-error").textContent = error.message;
    }
  }

  async downloadEvidence() {
    const open = this.open;
    $("action-error").textContent = "";
    try {
      const response = await fetch(`/api/chat/tickets/${encodeURIComponent(open.ticketId)}/evidence`, {
        headers: { Authorization: `Bearer ${this.api.token}` },
      });
      if (!response.ok) {
        const json = await response.json().catch(() => null);
        throw new Error(json?.error?.message || `The server answered ${response.status}.`);
      }
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { attrs: { href: url, download: `${open.channelId}-evidence.tar` } });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      $("action-error").textContent = error.message;
    }
  }

  // Posting, with the offline queue ---------------------------------------------------------

  queue() { try { return JSON.parse(sessionStorage.getItem(QUEUE_KEY)) || []; } catch { return []; } }
  saveQueue(items) { sessionStorage.setItem(QUEUE_KEY, JSON.stringify(items)); }

  async post() {
    const open = this.open;
    const text = $("post-text").value;
    if (!open || !text.trim()) return;
    $("post-error").textContent = "";
    // The message id is chosen here, so a post sent twice (a retry after a lost answer, the
    // queue flushed on reconnect) is stored once.
    const item = { channelId: open.channelId, ticketId: open.ticketId, messageId: crypto.randomUUID(), text };
    this.saveQueue([...this.queue(), item]);
    $("post-text").value = "";
    await this.flushQueue();
    this.scheduleReload(open);
  }

  async flushQueue() {
    if (this.flushing || !this.api) return;
    this.flushing = true;
    try {
      for (const item of this.queue()) {
        try {
          await this.api.post(`/api/chat/tickets/${encodeURIComponent(item.ticketId)}/messages`, {
            messageId: item.messageId, text: item.text,
          });
        } catch (error) {
          if (error.status === 0 || error.status >= 500 || error.status === 429) break; // again on reconnect
          $("post-error").textContent = `Not sent: ${error.message}`;
        }
        this.saveQueue(this.queue().filter((q) => q.messageId !== item.messageId));
      }
    } finally {
      this.flushing = false;
      const left = this.queue().length;
      $("queued").textContent = left ? `${left} message(s) waiting to be sent.` : "";
    }
  }

  // History ---------------------------------------------------------------------------------

  showTab(panel) {
    for (const name of ["conversation", "history"]) {
      const selected = name === panel;
      $(name).hidden = !selected;
      $(`tab-${name}`).setAttribute("aria-selected", String(selected));
      $(`tab-${name}`).setAttribute("tabindex", selected ? "0" : "-1");
    }
    if (panel === "history" && this.open && this.open.audit) this.showHistory();
  }

  renderHistory(open) {
    const entries = open.audit || [];
    const slider = $("history-slider");
    const atEnd = Number(slider.value) >= Number(slider.max);
    slider.max = String(Math.max(0, entries.length - 1));
    if (atEnd || Number(slider.value) > entries.length - 1) slider.value = slider.max;
    const list = $("audit");
    list.replaceChildren();
    entries.forEach((entry, index) => {
      const item = el("li");
      item.append(button(`#${entry.position} · ${when(entry.occurredAt)} · ${entry.summary}`, () => {
        slider.value = String(index);
        this.showHistory();
        slider.focus();
      }, { class: "link" }));
      list.append(item);
    });
    if (!$("history").hidden) this.showHistory();
  }

  async showHistory() {
    const open = this.open;
    const entries = open?.audit || [];
    if (!entries.length) return;
    const entry = entries[Number($("history-slider").value)];
    $("history-at").textContent = `#${entry.position}`;
    $("history-entry").textContent = `${when(entry.occurredAt)}: ${entry.summary}`;
    try {
      const state = await this.api.get(
        `/api/chat/tickets/${encodeURIComponent(open.ticketId)}/state?at=${entry.position}&messages=${HISTORY_MESSAGES}`);
      if (this.open !== open || entries[Number($("history-slider").value)] !== entry) return;
      const view = $("history-state");
      view.replaceChildren(
        el("p", { text: `Status ${state.status} · agent ${state.agent || "none"} · members ${state.members.map((m) => m.user).join(", ") || "none"} · ${state.deliverables.length} deliverable(s)` }),
      );
      if (state.messagesOmitted > 0) {
        view.append(el("p", { text: `${state.messagesOmitted} earlier message(s) not shown` }));
      }
      const messages = el("ol", { class: "messages", attrs: { "aria-label": `Messages after event ${entry.position}` } });
      for (const message of state.messages) messages.append(this.messageItem(open, { ...message, pending: false, historic: true }));
      for (const tools of messages.querySelectorAll(".tools")) tools.remove();
      view.append(messages);
    } catch (error) {
      $("history-entry").textContent = error.message;
    }
  }
}
