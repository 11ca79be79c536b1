// One node's form, generated from the flow schema the server validates (GET /api/flow-schema):
// each property of the node type's model becomes a control by its JSON-schema type; properties
// that name another node (the schema's node-id pattern) become the branch table "outcome -> next
// node", options and condition branches tables of their own. Every control carries
// data-field="<field path>" (as the server's validation issues name it) so an issue can focus it.

import { h, t, button, branchLabel } from '/static/admin_flows_util.js';

const SKIP = new Set(['id', 'type', 'description']);  // the outline edits these itself

/** The schema of a property without its "or null": [schema, nullable]. */
function unwrap(prop) {
  if (prop.anyOf) {
    const inner = prop.anyOf.filter((p) => p.type !== 'null');
    return [{ ...inner[0], default: prop.default, description: prop.description }, inner.length < prop.anyOf.length];
  }
  return [prop, false];
}

function refName(prop) {
  return prop.$ref ? prop.$ref.split('/').pop() : null;
}

/** A node's skeleton of a type: id, type and its required properties with empty values. */
export function newNode(schema, type, id) {
  const model = schema.schema.$defs[modelOf(schema, type)];
  const node = { id, type };
  for (const name of model.required || []) {
    if (SKIP.has(name)) continue;
    node[name] = emptyValue(schema, unwrap(model.properties[name])[0]);
  }
  return node;
}

function emptyValue(schema, prop) {
  const ref = refName(prop);
  if (ref === 'Prompt') return { tts: '' };
  if (prop.type === 'array' && prop.items && prop.items.$ref) {
    const item = schema.schema.$defs[refName(prop.items)];
    return [Object.fromEntries((item.required || []).map((n) => [n, '']))];
  }
  if (prop.enum) return prop.enum[0];
  if (prop.type === 'array') return [];
  if (prop.type === 'object') return {};
  return '';
}

/** Node type -> {property: its default} from the schema. */
export function schemaDefaults(schema) {
  return Object.fromEntries(schema.node_types.map((type) => {
    const model = schema.schema.$defs[modelOf(schema, type)];
    return [type, Object.fromEntries(Object.entries(model.properties).filter(([, p]) => 'default' in p).map(([k, p]) => [k, p.default]))];
  }));
}

export function modelOf(schema, type) {
  return Object.keys(schema.schema.$defs).find((name) => schema.schema.$defs[name].properties?.type?.const === type);
}

/**
 * The form of `node` (edited in place). ctx: {schema, ids(): node ids of its section, lists:
 * {calendar, queue, prompts, subflow}, changed(structural)}.
 */
export function nodeForm(node, ctx) {
  const model = ctx.schema.schema.$defs[modelOf(ctx.schema, node.type)];
  const fields = h('div', { className: 'flow-fields' });
  const branches = [];
  for (const [name, raw] of Object.entries(model.properties)) {
    if (SKIP.has(name)) continue;
    const [prop, nullable] = unwrap(raw);
    if (prop.type === 'string' && prop.pattern === ctx.schema.node_ref) { branches.push([name, nullable]); continue; }
    fields.append(control(node, name, prop, nullable, ctx));
  }
  return h('div', { className: 'flow-form' }, fields,
    branches.length ? branchTable(node, branches, ctx) : null);
}

function setValue(obj, name, value, ctx, structural = false) {
  if (value === undefined || value === '' || value === null) delete obj[name];
  else obj[name] = value;
  ctx.changed(structural);
}

function caption(name, prop) {
  const key = `flows.field.${name}`;
  const text = t(key);
  return h('span', { className: 'field-label', text: text === key ? name : text, title: prop.description || null });
}

function control(obj, name, prop, nullable, ctx, path = name) {
  const ref = refName(prop);
  const defs = ctx.schema.schema.$defs;
  if (ref === 'Prompt') return promptControl(obj, name, nullable, ctx, path);
  if (ref) return nestedControl(obj, name, defs[ref], nullable, ctx, path);
  if (prop.type === 'array' && prop.items && prop.items.$ref) return rowsTable(obj, name, defs[refName(prop.items)], ctx, path);
  if (prop.type === 'array') return listControl(obj, name, prop, ctx, path);
  if (prop.type === 'object') return mapTable(obj, name, ctx, path);
  let input;
  const value = obj[name] ?? '';
  if (prop.enum) {
    input = h('select', { 'data-field': path, on: { change: () => setValue(obj, name, input.value, ctx) } },
      (nullable || prop.default !== undefined ? [''] : []).concat(prop.enum).map((v) => h('option', {
        value: v, text: v === '' ? t('flows.default', { value: prop.default ?? '—' }) : v, selected: v === value })));
  } else if (prop.type === 'boolean') {
    input = h('input', { type: 'checkbox', 'data-field': path, checked: obj[name] ?? prop.default ?? false,
      on: { change: () => setValue(obj, name, input.checked, ctx) } });
  } else if (prop.type === 'integer' || prop.type === 'number') {
    input = h('input', { type: 'number', 'data-field': path, value, step: prop.type === 'integer' ? 1 : 'any',
      min: prop.minimum ?? prop.exclusiveMinimum, max: prop.maximum, placeholder: prop.default ?? '',
      on: { input: () => setValue(obj, name, input.value === '' ? '' : Number(input.value), ctx) } });
  } else {
    const list = ctx.lists[name];
    input = h('input', { type: 'text', 'data-field': path, value, placeholder: prop.default ?? '',
      list: list ? `flows-list-${name}` : null, on: { input: () => setValue(obj, name, input.value, ctx) } });
  }
  return h('label', { className: `field flow-field flow-field-${prop.type || 'string'}` }, caption(name, prop), input);
}

function promptControl(obj, name, nullable, ctx, path) {
  const prompt = obj[name];
  const kind = !prompt ? '' : (typeof prompt === 'string' || prompt.tts !== undefined ? 'tts' : 'file');
  const kinds = (nullable ? [''] : []).concat(['tts', 'file']);
  const picker = h('select', { 'data-field': `${path}.kind`, 'aria-label': t('flows.prompt.kind'), on: { change: () => {
    setValue(obj, name, picker.value === 'tts' ? { tts: '' } : picker.value === 'file' ? { file: '' } : undefined, ctx, true);
  } } }, kinds.map((k) => h('option', { value: k, text: t(`flows.prompt.${k || 'none'}`), selected: k === kind })));
  const parts = [picker];
  if (kind === 'tts') {
    const text = typeof prompt === 'string' ? prompt : prompt.tts;
    const area = h('textarea', { rows: 2, 'data-field': `${path}.tts`, value: text, 'aria-label': t('flows.prompt.tts'),
      on: { input: () => { obj[name] = { ...(typeof obj[name] === 'object' ? obj[name] : {}), tts: area.value }; ctx.changed(false); } } });
    parts.push(area);
  } else if (kind === 'file') {
    const files = h('select', { 'data-field': `${path}.file`, 'aria-label': t('flows.prompt.file'),
      on: { change: () => { obj[name] = { file: files.value }; ctx.changed(false); } } },
    [''].concat(ctx.lists.prompts).map((p) => h('option', { value: p, text: p || '—', selected: p === prompt.file })));
    parts.push(files);
  }
  return h('div', { className: 'field flow-field flow-prompt' }, caption(name, {}), h('div', { className: 'flow-prompt-row' }, parts));
}

function nestedControl(obj, name, model, nullable, ctx, path) {
  const on = obj[name] !== undefined && obj[name] !== null;
  const box = h('fieldset', { className: 'flow-nested' }, h('legend', {}, caption(name, model)));
  if (nullable) {
    box.append(h('label', { className: 'flow-check' }, h('input', { type: 'checkbox', checked: on, 'data-field': `${path}.enabled`,
      on: { change: (e) => setValue(obj, name, e.target.checked ? {} : undefined, ctx, true) } }), t('flows.enabled')));
  }
  if (on) {
    for (const [sub, raw] of Object.entries(model.properties)) {
      const [prop, subNullable] = unwrap(raw);
      box.append(control(obj[name], sub, prop, subNullable, ctx, `${path}.${sub}`));
    }
  }
  return box;
}

function listControl(obj, name, prop, ctx, path) {
  const input = h('input', { type: 'text', 'data-field': path, value: (obj[name] || []).join(', '),
    placeholder: (prop.default || []).join(', '), on: { input: () => {
      const items = input.value.split(',').map((s) => s.trim()).filter(Boolean);
      // Emptied: the schema's default (none, or []), or an explicit [] where the default is not empty.
      setValue(obj, name, items.length || prop.default === undefined ? items : undefined, ctx);
    } } });
  return h('label', { className: 'field flow-field' }, caption(name, prop), input, h('span', { className: 'muted', text: t('flows.comma_separated') }));
}

function mapTable(obj, name, ctx, path) {
  obj[name] = obj[name] || {};
  const entries = Object.entries(obj[name]);
  const write = () => {
    obj[name] = Object.fromEntries(entries.filter(([k]) => k !== ''));
    ctx.changed(false);
  };
  const body = entries.map((entry, i) => h('tr', {},
    h('td', {}, h('input', { type: 'text', value: entry[0], 'aria-label': t('flows.map.key'), 'data-field': `${path}.${entry[0]}`,
      on: { change: (e) => { entry[0] = e.target.value.trim(); write(); } } })),
    h('td', {}, h('input', { type: 'text', value: entry[1], 'aria-label': t('flows.map.value'),
      on: { input: (e) => { entry[1] = e.target.value; write(); } } })),
    h('td', {}, button(t('flows.remove'), () => { entries.splice(i, 1); write(); ctx.changed(true); }, 'btn btn-secondary btn-small'))));
  return h('div', { className: 'field flow-field' }, caption(name, {}),
    h('table', { className: 'flow-table' }, h('thead', {}, h('tr', {}, h('th', { text: t('flows.map.key') }),
      h('th', { text: t('flows.map.value') }), h('th', {}))), h('tbody', {}, body)),
    button(t('flows.add_row'), () => { obj[name] = { ...obj[name], [`v${entries.length + 1}`]: '' }; ctx.changed(true); }, 'btn btn-secondary btn-small'));
}

/** Menu options or condition branches: one row per item, its own fields then its next node. */
function rowsTable(obj, name, model, ctx, path) {
  obj[name] = obj[name] || [];
  const cols = Object.entries(model.properties).map(([sub, raw]) => [sub, ...unwrap(raw)]);
  const rows = obj[name].map((item, i) => h('tr', {},
    cols.map(([sub, prop]) => h('td', {}, prop.pattern === ctx.schema.node_ref
      ? nodeSelect(item, sub, false, ctx, `${path}.${i}.${sub}`)
      : cellInput(item, sub, prop, ctx, `${path}.${i}.${sub}`))),
    h('td', {}, button(t('flows.remove'), () => { obj[name].splice(i, 1); ctx.changed(true); }, 'btn btn-secondary btn-small',
      { 'aria-label': t('flows.remove_row', { n: i + 1 }) }))));
  return h('div', { className: 'field flow-field flow-rows' }, caption(name, model),
    h('table', { className: 'flow-table' },
      h('thead', {}, h('tr', {}, cols.map(([sub]) => h('th', { text: sub === 'next' ? t('flows.next_node') : t(`flows.field.${sub}`) })), h('th', {}))),
      h('tbody', {}, rows)),
    button(t('flows.add_row'), () => { obj[name].push(Object.fromEntries((model.required || []).map((n) => [n, '']))); ctx.changed(true); },
      'btn btn-secondary btn-small', { 'data-add': name }));
}

function cellInput(item, sub, prop, ctx, path) {
  const isList = prop.type === 'array';
  const input = h('input', { type: 'text', 'data-field': path, 'aria-label': t(`flows.field.${sub}`),
    value: isList ? (item[sub] || []).join(', ') : (item[sub] ?? ''), size: isList ? 18 : (sub === 'key' ? 3 : 24),
    on: { input: () => {
      const v = isList ? input.value.split(',').map((s) => s.trim()).filter(Boolean) : input.value;
      setValue(item, sub, isList && !v.length ? undefined : v, ctx);
    } } });
  return input;
}

function nodeSelect(obj, name, nullable, ctx, path) {
  const ids = ctx.ids();
  const current = obj[name] || '';
  const choices = [''].concat(ids);
  if (current && !ids.includes(current)) choices.push(current);
  const sel = h('select', { 'data-field': path, 'aria-label': branchLabel(path), on: { change: () => setValue(obj, name, sel.value, ctx, true) } },
    choices.map((id) => h('option', { value: id, selected: id === current,
      text: id === '' ? (nullable ? t('flows.branch_none') : t('flows.choose_node')) : id })));
  return sel;
}

/** The branch table: outcome -> next node, one row per node-reference property. */
function branchTable(node, branches, ctx) {
  return h('table', { className: 'flow-table flow-branches' },
    h('caption', { text: t('flows.branches') }),
    h('thead', {}, h('tr', {}, h('th', { text: t('flows.outcome') }), h('th', { text: t('flows.next_node') }))),
    h('tbody', {}, branches.map(([name, nullable]) => h('tr', {},
      h('th', { scope: 'row', text: branchLabel(name) }),
      h('td', {}, nodeSelect(node, name, nullable, ctx, name))))));
}
