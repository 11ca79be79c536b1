// SIP trunks: who may send us calls (IP allow-list or digest), where outbound calls go, outbound
// REGISTER, priority for failover, TLS/SRTP; with each trunk's live state as the SIP node reports it
// (OPTIONS keepalive / registration: up, down, or unknown), refreshed while the section is shown.
// Passwords are write-only: the API says whether one is set, and an empty field keeps it.

import { api, t } from '/static/shell.js';
import { h, field, input, select, header, table, onSubmit, button, deleteButton } from '/static/admin_ui.js';

const TRANSPORTS = ['udp', 'tcp', 'tls'];
const REFRESH_MS = 10_000;

export function create(root) {
  let trunks = [];
  let editing = null;  // a trunk, or {} for a new one
  const listBox = h('div', { id: 'trunks-list' });
  const editor = h('div', { id: 'trunk-editor' });
  root.replaceChildren(header('admin.trunks.title', 'admin.trunks.intro',
    button('admin.trunks.new', () => edit({}), 'btn btn-primary', { id: 'trunk-new' })), listBox, editor);

  // Live state: re-read the list while the section is on screen (the form is left alone); the
  // timer ends when a sign-out empties the section.
  const timer = setInterval(async () => {
    if (!listBox.isConnected) { clearInterval(timer); return; }
    if (root.hidden || document.visibilityState !== 'visible') return;
    try { trunks = await api('GET', '/api/trunks'); renderList(); } catch (_) { /* the next tick retries */ }
  }, REFRESH_MS);

  function edit(trunk) {
    editing = trunk;
    renderEditor();
    editor.querySelector('input').focus();
  }

  function renderEditor() {
    if (!editing) { editor.replaceChildren(); return; }
    const tr = editing;
    const check = (name, checked, labelKey) => h('label', { className: 'check' }, h('input', { type: 'checkbox', name, checked }), h('span', { i18n: labelKey }));
    const secret = (name, isSet) => input(name, { type: 'password', autocomplete: 'new-password',
      placeholder: isSet ? t('admin.trunks.password_kept') : '' });
    const form = h('form', { id: 'trunk-form', className: 'card', novalidate: true },
      h('h3', { text: tr.id ? t('admin.trunks.editing', { name: tr.name }) : t('admin.trunks.new') }),
      h('div', { className: 'form-grid' },
        field('admin.trunks.name', input('name', { value: tr.name || '', id: 'trunk-name', required: true })),
        field('admin.trunks.priority', input('priority', { type: 'number', min: '0', value: tr.priority ?? 100 }), 'admin.trunks.priority_hint'),
        check('enabled', tr.enabled ?? true, 'admin.trunks.enabled')),
      h('h4', { i18n: 'admin.trunks.inbound' }),
      h('div', { className: 'form-grid' },
        field('admin.trunks.inbound_ips', h('textarea', { name: 'inbound_ips', rows: '3', value: (tr.inbound_ips || []).join('\n') }),
          'admin.trunks.inbound_ips_hint'),
        field('admin.trunks.inbound_username', input('inbound_username', { value: tr.inbound_username || '' })),
        field('admin.trunks.inbound_password', secret('inbound_password', tr.has_inbound_password))),
      h('h4', { i18n: 'admin.trunks.outbound' }),
      h('div', { className: 'form-grid' },
        field('admin.trunks.outbound_host', input('outbound_host', { value: tr.outbound_host || '' })),
        field('admin.trunks.outbound_port', input('outbound_port', { type: 'number', min: '1', max: '65535', value: tr.outbound_port ?? '' })),
        field('admin.trunks.transport', select('outbound_transport', TRANSPORTS.map((x) => ({ value: x, label: x.toUpperCase() })),
          tr.outbound_transport || 'udp')),
        check('register', tr.register ?? false, 'admin.trunks.register'),
        field('admin.trunks.register_username', input('register_username', { value: tr.register_username || '' })),
        field('admin.trunks.register_password', secret('register_password', tr.has_register_password)),
        field('admin.trunks.register_expires', input('register_expires', { type: 'number', min: '60', max: '86400', value: tr.register_expires ?? 600 }),
          'admin.queues.seconds')),
      h('h4', { i18n: 'admin.trunks.security' }),
      h('div', { className: 'form-grid' },
        check('require_tls', tr.require_tls ?? false, 'admin.trunks.require_tls'),
        check('require_srtp', tr.require_srtp ?? false, 'admin.trunks.require_srtp')),
      h('div', { className: 'form-actions' },
        button('admin.common.cancel', () => { editing = null; renderEditor(); }),
        h('button', { type: 'submit', className: 'btn btn-primary', id: 'trunk-save', i18n: 'admin.common.save' })));
    onSubmit(form, async (data) => {
      const text = (name) => data.get(name).trim() || null;
      const body = {
        name: data.get('name').trim(), priority: Number(data.get('priority')), enabled: data.get('enabled') === 'on',
        inbound_ips: data.get('inbound_ips').split(/[\s,]+/).filter(Boolean), inbound_username: text('inbound_username'),
        outbound_host: text('outbound_host'), outbound_transport: data.get('outbound_transport'),
        register: data.get('register') === 'on', register_username: text('register_username'),
        register_expires: Number(data.get('register_expires')),
        require_tls: data.get('require_tls') === 'on', require_srtp: data.get('require_srtp') === 'on',
      };
      if (data.get('outbound_port')) body.outbound_port = Number(data.get('outbound_port'));
      for (const name of ['inbound_password', 'register_password']) if (data.get(name)) body[name] = data.get(name);
      if (tr.id) await api('PATCH', `/api/trunks/${tr.id}`, body);
      else await api('POST', '/api/trunks', body);
      editing = null;
      await load();
    }, 'admin.common.saved');
    editor.replaceChildren(form);
  }

  function renderList() {
    listBox.replaceChildren(table(['admin.trunks.state', 'admin.trunks.name', 'admin.trunks.inbound', 'admin.trunks.outbound',
      'admin.trunks.priority', ''], trunks.map((tr) => {
      const state = tr.enabled ? (tr.status || 'unknown') : 'disabled';
      const cells = [h('span', { className: 'trunk-state', 'data-state': state, text: t(`admin.trunks.status.${['up', 'down', 'disabled'].includes(state) ? state : 'unknown'}`) }),
        tr.name, (tr.inbound_ips || []).join(', ') + (tr.inbound_username ? ` · ${tr.inbound_username}` : ''),
        tr.outbound_host ? `${tr.outbound_transport}:${tr.outbound_host}:${tr.outbound_port}${tr.register ? ` · ${t('admin.trunks.registers')}` : ''}` : '',
        String(tr.priority),
        h('div', { className: 'inline' }, button('admin.common.edit', () => edit(tr), 'btn btn-secondary btn-sm', { 'aria-label': t('admin.common.edit_named', { name: tr.name }) }),
          deleteButton(tr.name, async () => { await api('DELETE', `/api/trunks/${tr.id}`); await load(); }))];
      cells.key = tr.name;
      return cells;
    }), 'admin.trunks.empty', { id: 'trunks-table' }));
  }

  function render() {
    renderList();
    renderEditor();
  }

  async function load() {
    trunks = await api('GET', '/api/trunks');
    render();
  }

  return { load, render };
}
