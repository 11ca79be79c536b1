// The outline of a flow: its settings, then one part per section (the main flow and each
// subflow) with its start node, its nodes as collapsible cards (id, move up/down, delete,
// description and the form generated from the schema) and "add node"; subflows can be added and
// removed. Works on the editor's draft (editor.doc) and reports every change to editor.changed().

import { h, t, button, allNodes, REF_FIELDS } from '/static/admin_flows_util.js';
import { nodeForm, newNode } from '/static/admin_flows_form.js';

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** The sections of the draft: [key ('' for the main flow), body {start, nodes}]. */
function sections(doc) {
  return [['', doc], ...Object.entries(doc.subflows || {})];
}

export function renderOutline(editor) {
  const doc = editor.doc;
  editor.lists.subflow = Object.keys(doc.subflows || {});
  const voice = h('select', { id: 'flows-voice', 'data-field': 'voice', on: { change: () => { doc.voice = voice.value; editor.changed(false); } } },
    ['en', 'zh', 'ko'].map((v) => h('option', { value: v, text: t(`flows.voice.${v}`), selected: v === (doc.voice || 'en') })));
  const newSub = h('input', { type: 'text', id: 'flows-new-subflow', autocomplete: 'off', 'aria-label': t('flows.new_subflow') });
  const addSub = () => {
    const name = newSub.value.trim();
    if (!NAME_RE.test(name) || (doc.subflows || {})[name]) { showNameError(newSub); return; }
    const id = freeId(doc, name);
    doc.subflows = { ...(doc.subflows || {}), [name]: { start: id, nodes: [{ id, type: 'play', prompt: { tts: '' } }] } };
    editor.changed(true);
  };
  const subflowNames = h('datalist', { id: 'flows-list-subflow' }, Object.keys(doc.subflows || {}).map((n) => h('option', { value: n })));
  editor.outline.replaceChildren(
    h('div', { className: 'flows-settings' },
      h('label', { className: 'field' }, h('span', { className: 'field-label', text: t('flows.voice') }), voice)),
    ...sections(doc).map(([key, body]) => section(editor, key, body)),
    h('div', { className: 'flows-add' },
      h('label', { className: 'field' }, h('span', { className: 'field-label', text: t('flows.new_subflow') }), newSub),
      button(t('flows.add_subflow'), addSub, 'btn btn-secondary', { id: 'flows-add-subflow' })),
    subflowNames);
}

function showNameError(input) {
  input.setCustomValidity(t('flows.bad_name'));
  input.reportValidity();
  input.addEventListener('input', () => input.setCustomValidity(''), { once: true });
}

function section(editor, key, body) {
  const doc = editor.doc;
  const ids = body.nodes.map((n) => n.id);
  const startField = key ? `subflows.${key}.start` : 'start';
  const start = h('select', { id: key ? null : 'flows-start', 'data-field': startField, 'aria-label': t('flows.start'),
    on: { change: () => { body.start = start.value; editor.changed(false); } } },
  (ids.includes(body.start) ? [] : [body.start]).concat(ids).map((id) => h('option', { value: id, text: id, selected: id === body.start })));
  const type = h('select', { id: key ? null : 'flows-add-type', 'aria-label': t('flows.node_type') },
    editor.schema.node_types.map((tp) => h('option', { value: tp, text: `${t(`flows.type.${tp}`)} (${tp})` })));
  const remove = key ? button(t('flows.delete_subflow'), () => {
    const { [key]: _, ...rest } = doc.subflows;
    doc.subflows = rest;
    editor.changed(true);
  }, 'btn btn-outline-danger btn-small') : null;
  return h('section', { className: 'flows-section', 'data-section': key },
    h('div', { className: 'flows-section-head' },
      h('h3', { text: key ? t('flows.subflow', { name: key }) : t('flows.nodes') }),
      h('label', { className: 'field' }, h('span', { className: 'field-label', text: t('flows.start') }), start), remove),
    h('div', { className: 'flows-cards' }, body.nodes.map((node, index) => card(editor, node, index, body, ids))),
    h('div', { className: 'flows-add' }, type,
      button(t('flows.add_node'), () => addNode(editor, body, type.value), 'btn btn-secondary', { id: key ? null : 'flows-add' })));
}

function card(editor, node, index, body, sectionIds) {
  const list = body.nodes;
  const move = (delta) => {
    const to = index + delta;
    if (to < 0 || to >= list.length) return;
    [list[index], list[to]] = [list[to], list[index]];
    editor.changed(true);
    editor.outline.querySelector(`[data-card="${CSS.escape(node.id)}"] [data-move="${delta}"]`)?.focus();
  };
  const idInput = h('input', { type: 'text', value: node.id, 'data-field': 'id', size: 16,
    on: { change: () => rename(editor, node, idInput.value.trim()) } });
  const form = nodeForm(node, { schema: editor.schema, lists: editor.lists, ids: () => sectionIds, changed: (s) => editor.changed(s) });
  const details = h('details', { className: `flow-card${node.id === editor.selected ? ' selected' : ''}`, 'data-card': node.id,
    open: node.id === editor.selected || editor.expanded.has(node.id),
    on: { toggle: () => { if (details.open) editor.expanded.add(node.id); else editor.expanded.delete(node.id); } } },
  h('summary', { on: { click: () => { editor.selected = node.id; editor.drawGraph(); } } },
    h('span', { className: 'mono flow-card-id', text: node.id }), ' ',
    h('span', { className: 'chip', text: t(`flows.type.${node.type}`) }),
    node.id === body.start ? h('span', { className: 'chip chip-start', text: t('flows.start') }) : null),
  h('div', { className: 'flow-card-body' },
    h('div', { className: 'flow-card-tools' },
      h('label', { className: 'field' }, h('span', { className: 'field-label', text: t('flows.node_id') }), idInput),
      button('↑', () => move(-1), 'btn btn-secondary btn-small', { 'aria-label': t('flows.move_up'), 'data-move': -1 }),
      button('↓', () => move(1), 'btn btn-secondary btn-small', { 'aria-label': t('flows.move_down'), 'data-move': 1 }),
      button(t('flows.delete_node'), () => { list.splice(index, 1); editor.changed(true); }, 'btn btn-outline-danger btn-small')),
    h('label', { className: 'field' }, h('span', { className: 'field-label', text: t('flows.field.description') }),
      h('input', { type: 'text', value: node.description || '', 'data-field': 'description',
        on: { input: (e) => { if (e.target.value) node.description = e.target.value; else delete node.description; editor.changed(false); } } })),
    form));
  return details;
}

/** A node's new id, and every branch and start that named its old one. */
function rename(editor, node, id) {
  const old = node.id;
  if (!id || id === old) return;
  node.id = id;
  for (const { node: other } of allNodes(editor.doc)) {
    for (const key of REF_FIELDS) if (other[key] === old) other[key] = id;
    for (const list of ['options', 'branches']) for (const item of other[list] || []) if (item.next === old) item.next = id;
  }
  for (const [, body] of sections(editor.doc)) if (body.start === old) body.start = id;
  if (editor.selected === old) editor.selected = id;
  if (editor.expanded.delete(old)) editor.expanded.add(id);
  editor.changed(true);
}

function freeId(doc, base) {
  const taken = new Set(allNodes(doc).map(({ node }) => node.id));
  let n = 1;
  while (taken.has(`${base}_${n}`)) n += 1;
  return `${base}_${n}`;
}

function addNode(editor, body, type) {
  const node = newNode(editor.schema, type, freeId(editor.doc, type));
  body.nodes.push(node);
  editor.selected = node.id;
  editor.changed(true);
  editor.select(node.id);
}
