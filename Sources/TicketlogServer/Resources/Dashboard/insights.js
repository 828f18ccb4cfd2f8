// Analytics (first response and resolution times by agent and by week, as SVG bar charts with
// their numbers in a table) and integrity (the chain verified, the newest signed checkpoint).
import { $, el, when, naturalOrder } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

function median(values) {
  if (!values.length) return null;
  const sorted = values.slice().sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function hours(seconds) { return seconds == null ? "—" : (seconds / 3600).toFixed(1); }

// The Monday (UTC) of the week of an ISO time, as YYYY-MM-DD.
function week(iso) {
  const date = new Date(iso);
  const day = (date.getUTCDay() + 6) % 7;
  date.setUTCDate(date.getUTCDate() - day);
  return date.toISOString().slice(0, 10);
}

function groups(tickets, key) {
  const map = new Map();
  for (const ticket of tickets) {
    const name = key(ticket);
    if (name == null) continue;
    if (!map.has(name)) map.set(name, []);
    map.get(name).push(ticket);
  }
  return [...map.entries()].sort(([a], [b]) => naturalOrder.compare(a, b));
}

// A horizontal bar chart: one bar per row, its value written beside it.
function barChart(title, rows, unit) {
  const figure = el("figure");
  const heading = el("figcaption", { text: title });
  const width = 640;
  const rowHeight = 22;
  const label = 150;
  const max = Math.max(1, ...rows.map((row) => row.value ?? 0));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${rows.length * rowHeight + 10}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}: ${rows.map((r) => `${r.name} ${r.value == null ? "none" : r.value.toFixed(1)} ${unit}`).join(", ")}`);
  rows.forEach((row, index) => {
    const y = index * rowHeight + 5;
    const name = document.createElementNS(SVG, "text");
    name.setAttribute("x", "0");
    name.setAttribute("y", String(y + 14));
    name.textContent = row.name;
    const bar = document.createElementNS(SVG, "rect");
    const length = row.value == null ? 0 : ((width - label - 70) * row.value) / max;
    bar.setAttribute("class", "bar");
    bar.setAttribute("x", String(label));
    bar.setAttribute("y", String(y));
    bar.setAttribute("width", String(Math.max(length, 0)));
    bar.setAttribute("height", String(rowHeight - 6));
    const value = document.createElementNS(SVG, "text");
    value.setAttribute("x", String(label + length + 6));
    value.setAttribute("y", String(y + 14));
    value.textContent = row.value == null ? "—" : `${row.value.toFixed(1)} ${unit}`;
    svg.append(name, bar, value);
  });
  figure.append(heading, svg);
  return figure;
}

function table(caption, headers, rows) {
  const node = el("table");
  node.append(el("caption", { text: caption }));
  node.append(el("thead", {}, [el("tr", {}, headers.map((h) => el("th", { text: h, attrs: { scope: "col" } })))]));
  node.append(el("tbody", {}, rows.map((row) => el("tr", {}, row.map((cell) => el("td", { text: cell }))))));
  return node;
}

export async function showAnalytics(api) {
  const charts = $("charts");
  charts.replaceChildren();
  try {
    const { tickets } = await api.get("/api/analytics/tickets");
    const responded = tickets.filter((t) => t.firstAgentResponseSeconds != null);
    const resolved = tickets.filter((t) => t.resolutionSeconds != null);
    $("analytics-summary").textContent =
      `${tickets.length} ticket(s): ${responded.length} answered by an agent (median ${hours(median(responded.map((t) => t.firstAgentResponseSeconds)))} h), ` +
      `${resolved.length} resolved (median ${hours(median(resolved.map((t) => t.resolutionSeconds)))} h).`;
    const byAgent = groups(tickets, (t) => t.agent || "unassigned");
    const agentRows = byAgent.map(([name, group]) => ({
      name,
      response: median(group.filter((t) => t.firstAgentResponseSeconds != null).map((t) => t.firstAgentResponseSeconds / 3600)),
      resolution: median(group.filter((t) => t.resolutionSeconds != null).map((t) => t.resolutionSeconds / 3600)),
      count: group.length,
    }));
    const byWeek = groups(tickets.filter((t) => t.openedAt), (t) => week(t.openedAt));
    const weekRows = byWeek.map(([name, group]) => ({
      name: `week of ${name}`,
      response: median(group.filter((t) => t.firstAgentResponseSeconds != null).map((t) => t.firstAgentResponseSeconds / 3600)),
      resolution: median(group.filter((t) => t.resolutionSeconds != null).map((t) => t.resolutionSeconds / 3600)),
      count: group.length,
    }));
    charts.append(
      barChart("Median first response by agent", agentRows.map((r) => ({ name: r.name, value: r.response })), "h"),
      barChart("Median resolution by agent", agentRows.map((r) => ({ name: r.name, value: r.resolution })), "h"),
      barChart("Median first response by week opened", weekRows.map((r) => ({ name: r.name, value: r.response })), "h"),
      barChart("Median resolution by week opened", weekRows.map((r) => ({ name: r.name, value: r.resolution })), "h"),
      table("The numbers by agent", ["agent", "tickets", "median first response (h)", "median resolution (h)"],
        agentRows.map((r) => [r.name, String(r.count), r.response == null ? "—" : r.response.toFixed(1), r.resolution == null ? "—" : r.resolution.toFixed(1)])),
      table("The numbers by week", ["week", "tickets", "median first response (h)", "median resolution (h)"],
        weekRows.map((r) => [r.name, String(r.count), r.response == null ? "—" : r.response.toFixed(1), r.resolution == null ? "—" : r.resolution.toFixed(1)])),
    );
  } catch (error) {
    $("analytics-summary").textContent = error.message;
  }
}

export async function showIntegrity(api) {
  const view = $("integrity-report");
  view.replaceChildren(el("p", { text: "Verifying the hash chain…" }));
  try {
    const { verification, checkpoint } = await api.get("/api/integrity");
    const status = el("p");
    status.append(
      el("span", { class: verification.ok ? "ok" : "bad", text: verification.ok ? "Verified" : "FAILED" }),
      ` — ${verification.eventsVerified} events, head position ${verification.headPosition}, checked ${when(verification.checkedAt)}`,
    );
    const parts = [status, el("p", { text: `Head hash ${verification.headHash}` })];
    if (verification.failure) parts.push(el("p", { class: "bad", text: verification.failure }));
    for (const warning of verification.warnings) parts.push(el("p", { class: "bad", text: `Warning: ${warning}` }));
    if (checkpoint) {
      parts.push(el("h3", { text: "Newest signed checkpoint" }),
        el("p", { text: `${checkpoint.origin}: the first ${checkpoint.size} events, signed ${when(checkpoint.signedAt)}` }),
        el("pre", { class: "note", text: checkpoint.note }));
    } else {
      parts.push(el("p", { text: "No checkpoint has been signed yet (serve --checkpoint-key, or ticketlog checkpoint)." }));
    }
    view.replaceChildren(...parts);
  } catch (error) {
    view.replaceChildren(el("p", { class: "bad", text: error.message }));
  }
}
