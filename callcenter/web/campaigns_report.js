// A campaign's report (/campaigns): its attempts by day or by agent as a table, and the same as
// a CSV download (a plain link: the session cookie goes with it).

import { api, t } from '/static/shell.js';
import { h, select, button, table } from '/static/admin_ui.js';

/** The report's columns that have words (campaigns.report.col.<name>); others show their name. */
const COLUMNS = new Set(['day', 'agent', 'dialed', 'persons', 'machines', 'abandoned', 'abandon_rate', 'busy', 'no_answer', 'failed',
  'talk_seconds', 'calls', 'average_talk_seconds']);
const RATES = new Set(['abandon_rate']);

function columnLabel(name) {
  return COLUMNS.has(name) ? t(`campaigns.report.col.${name}`) : name;
}

function cellText(name, value) {
  if (value === null || value === undefined) return '–';
  if (RATES.has(name) && typeof value === 'number') return `${(value * 100).toFixed(1)}%`;
  if (typeof value === 'number' && !Number.isInteger(value)) return value.toFixed(1);
  return String(value);
}

export function createReport(root) {
  let campaign = null;
  let rows = [];
  const by = select('by', [], 'day', { id: 'report-by' });
  by.addEventListener('change', () => load());
  const csv = h('a', { id: 'report-csv', className: 'btn btn-secondary btn-sm', download: '', i18n: 'campaigns.report.csv' });
  const body = h('div', { id: 'report-body' });
  root.replaceChildren(h('div', { className: 'card' },
    h('div', { className: 'section-head' }, h('h3', { i18n: 'campaigns.report.title' }),
      h('div', { className: 'section-tools' },
        h('label', { className: 'inline' }, h('span', { className: 'field-label', i18n: 'campaigns.report.by' }), by),
        button('campaigns.report.refresh', () => load(), 'btn btn-secondary btn-sm', { id: 'report-refresh' }), csv)),
    body));

  function render() {
    const current = by.value || 'day';
    by.replaceChildren(...['day', 'agent'].map((v) => h('option', { value: v, text: t(`campaigns.report.by_${v}`), selected: v === current })));
    const columns = rows.length ? Object.keys(rows[0]) : [];
    // the header's words are built here (not data-i18n keys): column names come from the server
    const tableEl = table(columns.map(() => ''), rows.map((row) => columns.map((c) => cellText(c, row[c]))),
      'campaigns.report.empty', { id: 'report-table' });
    tableEl.querySelectorAll('thead th').forEach((th, i) => { th.textContent = columnLabel(columns[i]); });
    body.replaceChildren(tableEl);
  }

  async function load() {
    if (!campaign) return;
    const query = new URLSearchParams({ by: by.value || 'day' });
    csv.href = `/api/campaigns/${campaign.id}/report?${query}&format=csv`;
    rows = (await api('GET', `/api/campaigns/${campaign.id}/report?${query}`)).rows || [];
    render();
  }

  return {
    async show(c) { campaign = c; await load(); },
    load,
    render,
  };
}
