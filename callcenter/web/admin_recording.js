// Recording, retention and transcription: which calls are recorded (all, none or a percentage,
// per queue if wanted, and the IVR part or not), the file format, how long recordings are kept,
// who may listen, and what the local transcriber listens for. One PUT /api/recording-settings.

import { api, t } from '/static/shell.js';
import { h, field, input, select, header, table, onSubmit, button } from '/static/admin_ui.js';

const MODES = ['all', 'none', 'percent'];

export function create(root) {
  let settings = null;
  let queues = [];
  let rules = [];  // per-queue rules [{queue, mode, percent}], edited as a table
  const form = h('form', { id: 'recording-form', className: 'card', novalidate: true });
  root.replaceChildren(header('admin.recording.title', 'admin.recording.intro'), form);

  const modeItems = () => MODES.map((m) => ({ value: m, label: t(`admin.recording.mode.${m}`) }));

  function ruleRows() {
    return rules.map((rule, i) => [
      select(`queue.${i}`, queues.map((q) => ({ value: q.name, label: q.name })), rule.queue,
        { 'aria-label': t('admin.recording.queue'), on: { change: (e) => { rule.queue = e.target.value; } } }),
      select(`mode.${i}`, modeItems(), rule.mode, { 'aria-label': t('admin.recording.mode'), on: { change: (e) => { rule.mode = e.target.value; } } }),
      input(`percent.${i}`, { type: 'number', min: '0', max: '100', value: rule.percent, 'aria-label': t('admin.recording.percent'),
        on: { input: (e) => { rule.percent = Number(e.target.value); } } }),
      button('admin.common.remove', () => { rules.splice(i, 1); render(); }, 'btn btn-secondary btn-sm',
        { 'aria-label': t('admin.common.remove_n', { n: i + 1 }) }),
    ]);
  }

  function render() {
    if (!settings) return;
    const s = settings;
    const policy = s.recording_policy;
    const check = (name, checked, labelKey) => h('label', { className: 'check' },
      h('input', { type: 'checkbox', name, checked }), h('span', { i18n: labelKey }));
    form.replaceChildren(
      h('h3', { i18n: 'admin.recording.which' }),
      h('div', { className: 'form-grid' },
        field('admin.recording.mode', select('mode', modeItems(), policy.mode, { id: 'recording-mode' })),
        field('admin.recording.percent', input('percent', { type: 'number', min: '0', max: '100', value: policy.percent, id: 'recording-percent' }),
          'admin.recording.percent_hint'),
        check('ivr', policy.ivr, 'admin.recording.ivr')),
      h('h4', { i18n: 'admin.recording.per_queue' }),
      table(['admin.recording.queue', 'admin.recording.mode', 'admin.recording.percent', ''], ruleRows(), 'admin.recording.no_rules',
        { className: 'data-table compact' }),
      queues.length ? button('admin.recording.add_rule', () => {
        rules.push({ queue: queues[0].name, mode: 'all', percent: 100 });
        render();
      }, 'btn btn-secondary btn-sm') : null,
      h('h3', { i18n: 'admin.recording.storage' }),
      h('div', { className: 'form-grid' },
        field('admin.recording.format', select('recording_format', [{ value: 'opus', label: 'Ogg Opus' }, { value: 'flac', label: 'FLAC' }],
          s.recording_format, { id: 'recording-format' })),
        field('admin.recording.retention', input('retention_days', { type: 'number', min: '1', max: '36500', id: 'recording-retention',
          value: s.retention_days ?? '' }), 'admin.recording.retention_hint'),
        check('keep_forever', s.retention_days === null, 'admin.recording.keep_forever'),
        check('agents_hear_own_calls', s.agents_hear_own_calls, 'admin.recording.agents_hear'),
        check('recording_pause_allowed', s.recording_pause_allowed, 'admin.recording.pause_allowed')),
      h('h3', { i18n: 'admin.recording.transcription' }),
      h('div', { className: 'form-grid' },
        field('admin.recording.transcription_mode', select('transcription_mode', ['vocabulary', 'free'].map((m) => ({
          value: m, label: t(`admin.recording.transcription_mode.${m}`) })), s.transcription_mode, { id: 'transcription-mode' })),
        field('admin.recording.vocabulary', h('textarea', { name: 'transcription_vocabulary', rows: '4', id: 'transcription-vocabulary',
          value: (s.transcription_vocabulary || []).join('\n') }), 'admin.recording.vocabulary_hint')),
      h('div', { className: 'form-actions' }, h('button', { type: 'submit', className: 'btn btn-primary', id: 'recording-save', i18n: 'admin.common.save' })));
  }

  onSubmit(form, async (data) => {
    const queueRules = Object.fromEntries(rules.map((r) => [r.queue, { mode: r.mode, percent: r.percent }]));
    const keepForever = data.get('keep_forever') === 'on';
    settings = await api('PUT', '/api/recording-settings', {
      recording_policy: { mode: data.get('mode'), percent: Number(data.get('percent')), ivr: data.get('ivr') === 'on', queues: queueRules },
      recording_format: data.get('recording_format'),
      keep_forever: keepForever,
      retention_days: keepForever || data.get('retention_days') === '' ? null : Number(data.get('retention_days')),
      agents_hear_own_calls: data.get('agents_hear_own_calls') === 'on',
      recording_pause_allowed: data.get('recording_pause_allowed') === 'on',
      transcription_mode: data.get('transcription_mode'),
      transcription_vocabulary: data.get('transcription_vocabulary').split('\n').map((w) => w.trim()).filter(Boolean),
    });
    render();
  }, 'admin.common.saved');

  async function load() {
    [settings, queues] = await Promise.all([api('GET', '/api/recording-settings'), api('GET', '/api/queues')]);
    rules = Object.entries(settings.recording_policy.queues || {}).map(([queue, rule]) => ({ queue, ...rule }));
    render();
  }

  return { load, render };
}
