// What the flow editor's modules share: its message catalogue (flows.json, loaded here so the
// editor does not depend on which catalogues the console page asked the shell for), an element
// builder and the document helpers (node lists, references between nodes).

import { el, t as shellT, lang, onLanguageChange } from '/static/shell.js';

/** The shell's element builder, by the short name the editor's modules use. */
export const h = el;

let messages = {};
let loadedLang = null;

/** Load flows.json for the page's language (again after a language change, before `then`). */
export async function loadCatalogue() {
  const language = lang();
  if (loadedLang === language) return;
  const reply = await fetch(`/static/i18n/${language}/flows.json`, { credentials: 'same-origin' });
  if (!reply.ok) throw new Error(`catalogue ${language}/flows: HTTP ${reply.status}`);
  messages = await reply.json();
  loadedLang = language;
}

export function onLanguage(fn) {
  onLanguageChange(async () => { await loadCatalogue(); fn(); });
}

/** A flows.* message with {name} placeholders filled; other keys go to the shell's t(). */
export function t(key, params = {}) {
  const message = messages[key];
  if (message === undefined) return shellT(key, params);
  return message.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** A label for a branch field (no_input, options.0.next...): its catalogue word, else the field. */
export function branchLabel(field) {
  const key = `flows.branch.${field.replace(/\.\d+\./, '.*.')}`;
  return key in messages ? t(key, { n: Number((field.match(/\.(\d+)\./) || [0, 0])[1]) + 1 }) : field;
}

/** Re-word the elements under `root` built with a 'data-t' catalogue key (after a language change). */
export function retranslate(root) {
  for (const node of root.querySelectorAll('[data-t]')) node.textContent = t(node.dataset.t);
}

export function button(text, onClick, className = 'btn btn-secondary', props = {}) {
  return h('button', { type: 'button', className, text, on: { click: onClick }, ...props });
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== undefined && value !== null) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

/** Every node of the document with its section ('' for the main flow, else the subflow's name). */
export function allNodes(doc) {
  const out = (doc.nodes || []).map((node) => ({ node, section: '' }));
  for (const [name, sub] of Object.entries(doc.subflows || {})) {
    for (const node of sub.nodes || []) out.push({ node, section: name });
  }
  return out;
}

/** Node properties that name another node (besides options.N.next and branches.N.next). */
export const REF_FIELDS = ['next', 'no_input', 'no_match', 'open', 'closed', 'on_error', 'on_failure', 'default', 'target'];

/** The node-reference fields of a node, as [field path, target id] (the same as the engine's references()). */
export function references(node) {
  const refs = [];
  for (const name of REF_FIELDS) {
    if (typeof node[name] === 'string' && node[name]) refs.push([name, node[name]]);
  }
  for (const list of ['options', 'branches']) {
    (node[list] || []).forEach((item, i) => { if (item && item.next) refs.push([`${list}.${i}.next`, item.next]); });
  }
  return refs;
}
