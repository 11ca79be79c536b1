// Queues: skill, routing strategy, relaxation steps (after N seconds of waiting, lower the
// proficiency asked or add skills), wrap-up, and where a caller goes when the queue is full or
// the wait too long. Destinations are picked from lists (other queues, the flows' node ids),
// never typed; settings are acd_config.QueueSettings, checked by the server.

import { api, t } from '/static/shell.js';
import { h, field, input, select, setOptions, header, table, onSubmit, button, deleteButton, nameOf } from '/static/admin_ui.js';

const STRATEGIES = ['longest_idle', 'fewest_calls', 'round_robin', 'most_proficient', 'ring_all'];
const FALLBACKS = ['voicemail', 'callback', 'queue', 'ivr', 'hangup'];
const LEVELS = [1, 2, 3, 4, 5];
const KEYS = ['*', '#', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
const DEFAULTS = { skill: null, strategy: 'longest_idle', min_proficiency: 1, relax: [], max_size: null, on_full: { kind: 'hangup', target: null },
  max_wait: null, on_timeout: { kind: 'voicemail', target: null }, ring_timeout: 15, wrapup: 10, announce_every: 30,
  sl_threshold: 20, sl_target: 0.8, callback_key: '*', callback_retries: 2, callback_retry_delay: 60, caller_id: null, faq_bot: false };

const num = (value) => (value === '' || value === null ? null : Number(value));
const skillList = (text) => text.split(/[,，\s]+/).map((s) => s.trim()).filter(Boolean);

export function create(root) {
  let queues = [];
  let skills = [];      // every skill agents or queues mention, for the datalists
  let nodeIds = [];     // the flows' node ids, the targets of an "ivr" fallback
  let numbers = [];     // the tenant's numbers, the caller IDs a queue may default to
  let editing = null;   // {id|null, name, settings}: kept across re-renders
  const listBox = h('div', { id: 'queues-list' });
  const editor = h('div', { id: 'queue-editor' });
  const skillOptions = h('datalist', { id: 'skill-options' });
  root.replaceChildren(header('admin.queues.title', 'admin.queues.intro',
    button('admin.queues.new', () => edit(null), 'btn btn-primary', { id: 'queue-new' })), listBox, editor, skillOptions);

  function edit(queue) {
    const settings = structuredClone(queue ? { ...DEFAULTS, ...queue } : DEFAULTS);
    editing = { id: queue ? queue.id : null, name: queue ? queue.name : '', settings };
    renderEditor();
    editor.querySelector('input, select').focus();
  }

  /** Kind select plus the target select its kind needs (a queue, an IVR node, or none). */
  function fallback(name, value) {
    const kind = select(`${name}.kind`, FALLBACKS.map((k) => ({ value: k, label: t(`admin.queues.fallback.${k}`) })), value.kind,
      { id: `queue-${name}-kind` });
    const target = select(`${name}.target`, [], value.target, { id: `queue-${name}-target`, 'aria-label': t('admin.queues.target') });
    const sync = () => {
      value.kind = kind.value;
      const items = kind.value === 'queue' ? queues.filter((q) => q.name !== editing.name).map((q) => ({ value: q.name, label: q.name }))
        : kind.value === 'ivr' ? nodeIds.map((id) => ({ value: id, label: id })) : [];
      setOptions(target, items);
      if (value.target && items.some((i) => i.value === value.target)) target.value = value.target;
      target.hidden = !items.length;
      value.target = items.length ? target.value : null;
    };
    kind.addEventListener('change', sync);
    target.addEventListener('change', () => { value.target = target.value; });
    sync();
    return h('div', { className: 'inline' }, kind, target);
  }

  function relaxRows(s) {
    return s.relax.map((step, i) => {
      const after = h('input', { type: 'number', name: `relax.${i}.after`, min: '1', max: '3600', value: step.after,
        'aria-label': t('admin.queues.relax_after'), on: { input: (e) => { step.after = num(e.target.value); } } });
      const level = select(`relax.${i}.min_proficiency`, [{ value: '', label: t('admin.queues.relax_same') },
        ...LEVELS.map((l) => ({ value: l, label: String(l) }))], step.min_proficiency ?? '',
      { 'aria-label': t('admin.queues.relax_level'), on: { change: (e) => { step.min_proficiency = num(e.target.value); } } });
      const add = input(`relax.${i}.add_skills`, { value: step.add_skills.join(', '), list: 'skill-options',
        'aria-label': t('admin.queues.relax_skills'), on: { input: (e) => { step.add_skills = skillList(e.target.value); } } });
      const cell = (control) => h('div', {}, control, h('span', { className: 'field-error', hidden: true }));
      return [cell(after), cell(level), cell(add), button('admin.common.remove', () => { s.relax.splice(i, 1); renderEditor(); },
        'btn btn-secondary btn-sm', { 'aria-label': t('admin.queues.relax_remove', { n: i + 1 }) })];
    });
  }

  function renderEditor() {
    if (!editing) { editor.replaceChildren(); return; }
    const s = editing.settings;
    const bind = (name, props = {}) => input(name, { value: s[name] ?? '', ...props,
      on: { input: (e) => { s[name] = props.type === 'number' ? num(e.target.value) : e.target.value; } } });
    const pick = (name, items, props = {}) => select(name, items, s[name] ?? '', { ...props,
      on: { change: (e) => { s[name] = typeof s[name] === 'number' ? Number(e.target.value) : (e.target.value || null); } } });
    const form = h('form', { id: 'queue-form', className: 'card', novalidate: true },
      h('h3', { text: editing.id ? t('admin.queues.editing', { name: editing.name }) : t('admin.queues.new') }),
      h('div', { className: 'form-grid' },
        editing.id ? null : field('admin.queues.name', input('name', { id: 'queue-name', required: true, value: editing.name,
          on: { input: (e) => { editing.name = e.target.value; } } }), 'admin.common.name_hint'),
        field('admin.queues.skill', bind('skill', { id: 'queue-skill', list: 'skill-options', placeholder: t('admin.queues.skill_default') })),
        field('admin.queues.strategy', pick('strategy', STRATEGIES.map((k) => ({ value: k, label: t(`admin.queues.strategy.${k}`) })), { id: 'queue-strategy' })),
        field('admin.queues.min_proficiency', pick('min_proficiency', LEVELS.map((l) => ({ value: l, label: String(l) })), { id: 'queue-min-proficiency' })),
        field('admin.queues.wrapup', bind('wrapup', { id: 'queue-wrapup', type: 'number', min: '0', max: '3600' }), 'admin.queues.seconds'),
        field('admin.queues.ring_timeout', bind('ring_timeout', { id: 'queue-ring-timeout', type: 'number', min: '5', max: '120' }), 'admin.queues.seconds'),
        h('div', {},
          h('label', { className: 'check' }, h('input', { type: 'checkbox', name: 'faq_bot', id: 'queue-faq-bot', checked: s.faq_bot,
            on: { change: (e) => { s.faq_bot = e.target.checked; } } }), h('span', { i18n: 'admin.queues.faq_bot' })),
          h('span', { className: 'field-hint muted', i18n: 'admin.queues.faq_bot_hint' }))),
      h('h4', { i18n: 'admin.queues.relax' }),
      h('p', { className: 'muted', i18n: 'admin.queues.relax_hint' }),
      table(['admin.queues.relax_after', 'admin.queues.relax_level', 'admin.queues.relax_skills', ''], relaxRows(s), 'admin.queues.relax_none',
        { className: 'data-table compact', id: 'queue-relax' }),
      button('admin.queues.relax_add', () => {
        const last = s.relax[s.relax.length - 1];
        s.relax.push({ after: last ? last.after + 30 : 30, min_proficiency: null, add_skills: [] });
        renderEditor();
      }, 'btn btn-secondary btn-sm', { id: 'queue-relax-add' }),
      h('h4', { i18n: 'admin.queues.overflow' }),
      h('div', { className: 'form-grid' },
        field('admin.queues.max_size', bind('max_size', { id: 'queue-max-size', type: 'number', min: '1', placeholder: t('admin.queues.unlimited') })),
        field('admin.queues.on_full', fallback('on_full', s.on_full)),
        field('admin.queues.max_wait', bind('max_wait', { id: 'queue-max-wait', type: 'number', min: '1', placeholder: t('admin.queues.unlimited') }), 'admin.queues.seconds'),
        field('admin.queues.on_timeout', fallback('on_timeout', s.on_timeout))),
      h('details', { className: 'more' }, h('summary', { i18n: 'admin.queues.more' }),
        h('div', { className: 'form-grid' },
          field('admin.queues.announce_every', bind('announce_every', { type: 'number', min: '10', placeholder: t('admin.queues.never') }), 'admin.queues.seconds'),
          field('admin.queues.sl_threshold', bind('sl_threshold', { type: 'number', min: '1' }), 'admin.queues.seconds'),
          field('admin.queues.sl_target', bind('sl_target', { type: 'number', min: '0.01', max: '1', step: '0.01' })),
          field('admin.queues.callback_key', pick('callback_key', [{ value: '', label: t('admin.queues.no_callbacks') },
            ...KEYS.map((k) => ({ value: k, label: k }))])),
          field('admin.queues.callback_retries', bind('callback_retries', { type: 'number', min: '0', max: '10' })),
          field('admin.queues.callback_retry_delay', bind('callback_retry_delay', { type: 'number', min: '1' }), 'admin.queues.seconds'),
          field('admin.queues.caller_id', pick('caller_id', [{ value: '', label: t('admin.queues.caller_id_tenant') },
            ...numbers.map((n) => ({ value: n, label: n }))], { id: 'queue-caller-id' }), 'admin.queues.caller_id_hint'))),
      h('div', { className: 'form-actions' },
        button('admin.common.cancel', () => { editing = null; renderEditor(); }),
        h('button', { type: 'submit', className: 'btn btn-primary', id: 'queue-save', i18n: 'admin.common.save' })));
    onSubmit(form, async () => {
      const body = { ...s, skill: s.skill || null };
      delete body.id;
      delete body.name;
      if (editing.id) await api('PATCH', `/api/queues/${editing.id}`, body);
      else await api('POST', '/api/queues', { name: nameOf(form), ...body });
      editing = null;
      await load();
    }, 'admin.common.saved');
    editor.replaceChildren(form);
  }

  const overflowText = (f) => (f.target ? `${t(`admin.queues.fallback.${f.kind}`)} → ${f.target}` : t(`admin.queues.fallback.${f.kind}`));

  function render() {
    skillOptions.replaceChildren(...skills.map((s) => h('option', { value: s })));
    listBox.replaceChildren(table(['admin.queues.name', 'admin.queues.skill', 'admin.queues.strategy', 'admin.queues.wrapup',
      'admin.queues.overflow', ''], queues.map((q) => {
      const cells = [h('span', { className: 'mono', text: q.name }), q.skill || q.name, t(`admin.queues.strategy.${q.strategy}`),
        t('admin.queues.seconds_n', { n: q.wrapup }),
        `${t('admin.queues.on_full')}: ${overflowText(q.on_full)} · ${t('admin.queues.on_timeout')}: ${overflowText(q.on_timeout)}`,
        h('div', { className: 'inline' }, button('admin.common.edit', () => edit(q), 'btn btn-secondary btn-sm',
          { 'aria-label': t('admin.common.edit_named', { name: q.name }) }),
        deleteButton(q.name, async () => { await api('DELETE', `/api/queues/${q.id}`); await load(); }))];
      cells.key = q.name;
      return cells;
    }), 'admin.queues.empty', { id: 'queues-table' }));
    renderEditor();
  }

  async function load() {
    const [qs, agents, flows, ns] = await Promise.all([api('GET', '/api/queues'), api('GET', '/api/agents'),
      api('GET', '/api/flows'), api('GET', '/api/numbers')]);
    numbers = ns.map((n) => n.number);
    const documents = await Promise.all(flows.filter((f) => f.latest_version !== null)
      .map((f) => api('GET', `/api/flows/${encodeURIComponent(f.name)}`)));
    queues = qs;
    skills = [...new Set([...qs.map((q) => q.skill || q.name), ...agents.flatMap((a) => Object.keys(a.skills))])].sort();
    nodeIds = [...new Set(documents.flatMap((d) => (d.nodes || []).map((n) => n.id)))].sort();
    render();
  }

  return { load, render };
}
