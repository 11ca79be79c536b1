// The campaign editor (/campaigns): a new campaign or the settings of one, in the units people
// think in (abandon rate in %, retry delays in minutes) while the API takes fractions and seconds.
// Queues, flows and caller IDs are picked from the tenant's own; a list the role may not read
// (a supervisor's flows and numbers) offers only the campaign's current value.

import { api, t, translate, errorText, ApiError } from '/static/shell.js';
import { h, field, input, select, button, onSubmit, FieldProblem } from '/static/admin_ui.js';

export const MODES = ['preview', 'progressive', 'predictive', 'agentless'];
/** Outcomes that may be tried again, each with its own delay (the contract's retry_delays). */
const RETRY_OUTCOMES = ['busy', 'no_answer', 'machine', 'failed', 'abandoned'];
const DAYS = [1, 2, 3, 4, 5, 6, 7];

/** What a new campaign starts with (the API's defaults; empty messages: the API's default wording). */
const DEFAULTS = {
  name: '', mode: 'progressive', queue: '', flow: '', caller_id: '', max_lines: 10, max_abandon_rate: 0.03,
  caller_id_per_minute: 30, max_attempts: 3,
  retry_delays: { busy: 300, no_answer: 1800, machine: 7200, failed: 600, abandoned: 600 },
  window: { start: '09:00', end: '21:00', days: [1, 2, 3, 4, 5, 6, 7] }, timezone: '', voice: 'zh',
  machine_action: 'message', machine_message: '', abandon_message: '',
};

/** API errors about one field: shown next to it rather than in the banner. */
const ERROR_FIELDS = {
  'campaign-exists': 'name', 'no-such-queue': 'queue', 'queue-required': 'queue', 'flow-required': 'flow',
  'no-such-flow': 'flow', 'bad-caller-id': 'caller_id',
};

/** The tenant's queues, flows and numbers a campaign may name (admins and supervisors alike). */
export async function loadChoices() {
  return api('GET', '/api/campaigns/choices');
}

/** `names` as select items, the current `value` kept even when the list does not have it. */
function choices(names, value, noneKey) {
  const all = value && !names.includes(value) ? [value, ...names] : names;
  return [{ value: '', label: t(noneKey) }, ...all.map((name) => ({ value: name, label: name }))];
}

function numberInput(name, value, props = {}) {
  return input(name, { type: 'number', value: String(value ?? ''), inputmode: 'numeric', ...props });
}

const minutes = (seconds) => (seconds === null || seconds === undefined ? '' : String(Math.round(seconds / 60 * 100) / 100));

/**
 * The editor of `campaign` (null: a new one) in `root`; `onSaved(campaign)` after the API took it,
 * `onCancel()` when left. `tenantZone` is the zone of a campaign that names none (its placeholder).
 */
export function renderEditor(root, { campaign, choicesOf, tenantZone, onSaved, onCancel }) {
  const c = { ...DEFAULTS, ...(campaign || {}) };
  const delays = { ...DEFAULTS.retry_delays, ...(c.retry_delays || {}) };
  const hours = { ...DEFAULTS.window, ...(c.window || {}) };
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];

  const mode = select('mode', MODES.map((m) => ({ value: m, label: t(`campaigns.mode.${m}`) })), c.mode, { id: 'campaign-mode' });
  const queueField = field('campaigns.form.queue',
    select('queue', choices(choicesOf.queues, c.queue, 'campaigns.form.pick'), c.queue, { id: 'campaign-queue' }));
  const flowField = field('campaigns.form.flow',
    select('flow', choices(choicesOf.flows, c.flow, 'campaigns.form.pick'), c.flow, { id: 'campaign-flow' }),
    'campaigns.form.flow_hint');
  const machineAction = select('machine_action', ['hangup', 'message'].map((a) => ({ value: a, label: t(`campaigns.machine.${a}`) })),
    c.machine_action, { id: 'campaign-machine-action' });
  const machineMessage = field('campaigns.form.machine_message',
    h('textarea', { name: 'machine_message', id: 'campaign-machine-message', rows: 2, maxlength: 1000, value: c.machine_message || '',
      'data-i18n-placeholder': 'campaigns.form.default_message' }));
  const showFor = () => {
    queueField.hidden = mode.value === 'agentless';
    flowField.hidden = mode.value !== 'agentless';
    machineMessage.hidden = machineAction.value !== 'message';
  };
  mode.addEventListener('change', showFor);
  machineAction.addEventListener('change', showFor);

  const form = h('form', { id: 'campaign-form', className: 'card form-grid', novalidate: true },
    h('h3', { i18n: campaign ? 'campaigns.form.edit_title' : 'campaigns.form.new_title' }),
    field('campaigns.form.name', input('name', { id: 'campaign-name', value: c.name, required: true, maxlength: 64 })),
    field('campaigns.form.mode', mode, 'campaigns.form.mode_hint'),
    queueField,
    flowField,
    field('campaigns.form.caller_id', select('caller_id', choices(choicesOf.numbers, c.caller_id, 'campaigns.form.pick'), c.caller_id,
      { id: 'campaign-caller-id' })),
    field('campaigns.form.max_lines', numberInput('max_lines', c.max_lines, { id: 'campaign-max-lines', min: 1, max: 500 })),
    field('campaigns.form.max_abandon_rate', numberInput('max_abandon_rate', Math.round(c.max_abandon_rate * 1000) / 10,
      { id: 'campaign-max-abandon', min: 0, max: 20, step: 0.1, inputmode: 'decimal' }), 'campaigns.form.max_abandon_hint'),
    field('campaigns.form.caller_id_per_minute', numberInput('caller_id_per_minute', c.caller_id_per_minute,
      { id: 'campaign-cid-rate', min: 1 })),
    field('campaigns.form.max_attempts', numberInput('max_attempts', c.max_attempts, { id: 'campaign-max-attempts', min: 1, max: 10 })),
    h('h4', { i18n: 'campaigns.form.retry_title' }),
    ...RETRY_OUTCOMES.map((o) => field(`campaigns.form.retry.${o}`, numberInput(`retry_delays.${o}`, minutes(delays[o]),
      { id: `campaign-retry-${o}`, min: 0, step: 1 }))),
    h('h4', { i18n: 'campaigns.form.window_title' }),
    field('campaigns.form.window_start', input('window.start', { type: 'time', id: 'campaign-window-start', value: hours.start })),
    field('campaigns.form.window_end', input('window.end', { type: 'time', id: 'campaign-window-end', value: hours.end })),
    field('campaigns.form.timezone', input('timezone', { id: 'campaign-timezone', value: c.timezone || '', list: 'campaign-zones',
      placeholder: tenantZone, autocapitalize: 'off', spellcheck: 'false' }), 'campaigns.form.timezone_hint'),
    h('datalist', { id: 'campaign-zones' }, zones.map((z) => h('option', { value: z }))),
    h('fieldset', { className: 'field weekdays', name: 'window.days' },
      h('legend', { className: 'field-label', i18n: 'campaigns.form.window_days' }),
      h('div', { className: 'inline' }, DAYS.map((d) => h('label', { className: 'check' },
        h('input', { type: 'checkbox', name: 'day', value: String(d), checked: hours.days.includes(d) }),
        h('span', { i18n: `campaigns.day.${d}` })))),
      h('span', { className: 'field-error', role: 'alert', hidden: true })),
    h('h4', { i18n: 'campaigns.form.messages_title' }),
    field('campaigns.form.voice', select('voice', ['zh', 'en'].map((v) => ({ value: v, label: t(`campaigns.voice.${v}`) })), c.voice,
      { id: 'campaign-voice' })),
    field('campaigns.form.machine_action', machineAction),
    machineMessage,
    field('campaigns.form.abandon_message', h('textarea', { name: 'abandon_message', id: 'campaign-abandon-message', rows: 2,
      maxlength: 1000, value: c.abandon_message || '', 'data-i18n-placeholder': 'campaigns.form.default_message' }),
    'campaigns.form.abandon_hint'),
    h('div', { className: 'form-actions' },
      button('admin.common.cancel', onCancel, 'btn btn-secondary', { id: 'campaign-cancel' }),
      h('button', { type: 'submit', className: 'btn btn-primary', id: 'campaign-save', i18n: 'admin.common.save' })));
  showFor();
  translate(form);

  onSubmit(form, async (data) => {
    const body = bodyOf(form, data);
    try {
      const saved = campaign ? await api('PATCH', `/api/campaigns/${campaign.id}`, patchOf(body))
        : await api('POST', '/api/campaigns', body);
      await onSaved(saved);
    } catch (err) {
      // a PATCH's settings are nested ({settings: {max_lines}}): their fields are the form's flat ones
      if (err instanceof ApiError && err.detail && Array.isArray(err.detail.details)) {
        for (const detail of err.detail.details) detail.loc = (detail.loc || []).filter((part) => part !== 'settings');
      }
      const name = err instanceof ApiError && ERROR_FIELDS[err.errorId];
      if (name) throw new FieldProblem(form.elements[name], errorText(err));
      throw err;
    }
  }, 'admin.common.saved');
  root.replaceChildren(form);
  form.elements.name.focus();
}

/** A number field's value, or null when empty (the API keeps its default). */
function numberOf(form, name) {
  const raw = form.elements[name].value.trim();
  if (raw === '') return null;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new FieldProblem(form.elements[name], t('campaigns.form.not_a_number'));
  return value;
}

function bodyOf(form, data) {
  const name = String(data.get('name') || '').trim();
  if (!name) throw new FieldProblem(form.elements.name, t('campaigns.form.name_required'));
  const rate = numberOf(form, 'max_abandon_rate');
  const delays = {};
  for (const o of RETRY_OUTCOMES) {
    const value = numberOf(form, `retry_delays.${o}`);
    if (value !== null) delays[o] = Math.round(value * 60);
  }
  const body = {
    name,
    mode: data.get('mode'),
    queue: data.get('mode') === 'agentless' ? null : data.get('queue') || null,
    flow: data.get('mode') === 'agentless' ? data.get('flow') || null : null,
    caller_id: data.get('caller_id') || null,
    max_lines: numberOf(form, 'max_lines'),
    max_abandon_rate: rate === null ? null : rate / 100,
    caller_id_per_minute: numberOf(form, 'caller_id_per_minute'),
    max_attempts: numberOf(form, 'max_attempts'),
    retry_delays: delays,
    window: { start: data.get('window.start'), end: data.get('window.end'), days: data.getAll('day').map(Number) },
    timezone: String(data.get('timezone') || '').trim() || null,
    voice: data.get('voice'),
    machine_action: data.get('machine_action'),
    machine_message: String(data.get('machine_message') || '').trim() || null,
    abandon_message: String(data.get('abandon_message') || '').trim() || null,
  };
  // Empty numbers, zone and messages: left to the API's defaults rather than sent as null.
  return Object.fromEntries(Object.entries(body).filter(([key, value]) => value !== null || ['queue', 'flow', 'caller_id', 'timezone'].includes(key)));
}

/** A PATCH carries the campaign's own fields flat and its settings (the rest) under `settings`. */
function patchOf(body) {
  const own = ['name', 'mode', 'queue', 'flow', 'caller_id'];
  const settings = Object.fromEntries(Object.entries(body).filter(([key]) => !own.includes(key)));
  return { ...Object.fromEntries(own.filter((key) => key in body).map((key) => [key, body[key]])), settings };
}
