// The audit log: every admin write, newest first, filtered by action, user and a date range.
// Dates are days in the tenant's time zone (as the times in the table are shown).

import { api, t, formatTime } from '/static/shell.js';
import { h, field, input, select, header, table, onSubmit } from '/static/admin_ui.js';

const LIMIT = 200;

/** Milliseconds `zone` is ahead of UTC at the instant `ms`. */
function zoneOffset(ms, zone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric',
    month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
    .formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second) - Math.floor(ms / 1000) * 1000;
}

/** The instant a "YYYY-MM-DD" day starts in `zone` (plus `days`), as ISO 8601. */
function dayStart(date, zone, days = 0) {
  const [y, m, d] = date.split('-').map(Number);
  const wall = Date.UTC(y, m - 1, d + days);
  return new Date(wall - zoneOffset(wall - zoneOffset(wall, zone), zone)).toISOString();
}

export function create(root, { me }) {
  let rows = [];
  let users = [];
  const seen = new Set();  // actions met so far, offered in the action field (a filter keeps them all)
  const zone = (me.tenant && me.tenant.timezone) || 'Asia/Shanghai';
  const actions = h('datalist', { id: 'audit-actions' });
  const userSelect = select('user_id', [], '', { id: 'audit-user' });
  const listBox = h('div', { id: 'audit-list' });
  const form = h('form', { id: 'audit-filters', className: 'card filters', novalidate: true },
    field('admin.audit.action', input('action', { id: 'audit-action', list: 'audit-actions', placeholder: t('admin.audit.any') })),
    field('admin.audit.user', userSelect),
    field('admin.audit.from', h('input', { type: 'date', name: 'from', id: 'audit-from' })),
    field('admin.audit.to', h('input', { type: 'date', name: 'to', id: 'audit-to' })),
    h('div', { className: 'form-actions' }, h('button', { type: 'submit', className: 'btn btn-primary', id: 'audit-apply', i18n: 'admin.audit.apply' })));
  onSubmit(form, () => load());
  root.replaceChildren(header('admin.audit.title', 'admin.audit.intro'), form, listBox, actions);

  function query() {
    const data = new FormData(form);
    const params = new URLSearchParams({ limit: String(LIMIT) });
    if (data.get('action').trim()) params.set('action', data.get('action').trim());
    if (data.get('user_id')) params.set('user_id', data.get('user_id'));
    if (data.get('from')) params.set('since', dayStart(data.get('from'), zone));
    if (data.get('to')) params.set('until', dayStart(data.get('to'), zone, 1));  // the "to" day included
    return params;
  }

  function render() {
    const chosen = userSelect.value;
    userSelect.replaceChildren(h('option', { value: '', text: t('admin.audit.anyone') }),
      ...users.map((u) => h('option', { value: u.id, text: u.username })));
    userSelect.value = chosen;
    form.elements.action.placeholder = t('admin.audit.any');
    const names = new Map(users.map((u) => [u.id, u.username]));
    actions.replaceChildren(...[...seen].sort().map((a) => h('option', { value: a })));
    listBox.replaceChildren(
      rows.length === LIMIT ? h('p', { className: 'muted', text: t('admin.audit.newest', { n: LIMIT }) }) : '',
      table(['admin.audit.time', 'admin.audit.user', 'admin.audit.action', 'admin.audit.target', 'admin.audit.detail'], rows.map((r) => [
        formatTime(r.at, { date: true }), r.user_id === null ? t('admin.audit.system') : (names.get(r.user_id) ?? `#${r.user_id}`),
        h('span', { className: 'mono', text: r.action }), h('span', { className: 'mono', text: r.target }),
        h('code', { className: 'audit-detail', text: JSON.stringify(r.detail) }),
      ]), 'admin.audit.empty', { id: 'audit-table' }));
  }

  async function load() {
    [rows, users] = await Promise.all([api('GET', `/api/audit?${query()}`), api('GET', '/api/users')]);
    for (const r of rows) seen.add(r.action);
    render();
  }

  return { load, render };
}
