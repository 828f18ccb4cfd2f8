// Small DOM helpers. Text always goes in as text (textContent), never as markup.

export const $ = (id) => document.getElementById(id);

// Names compared with the numbers in them as numbers: agent-2 before agent-10; ISO dates stay in
// date order.
export const naturalOrder = new Intl.Collator(undefined, { numeric: true });

export function el(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  if (options.class) node.className = options.class;
  if (options.text !== undefined) node.textContent = options.text;
  for (const [name, value] of Object.entries(options.attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

export function button(text, onClick, options = {}) {
  const node = el("button", { class: options.class, text, attrs: { type: "button", ...(options.attrs || {}) } });
  node.addEventListener("click", onClick);
  return node;
}

export function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}
