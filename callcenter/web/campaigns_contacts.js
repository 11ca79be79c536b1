// A campaign's contacts (/campaigns): the CSV import, sent as it is (the server decodes UTF-8 or
// GB18030 and checks every row), with its report per row; and the contacts page by page with where
// each stands. The report is kept until the next import so that it survives a language change.

import { api, t, formatTime, showError } from '/static/shell.js';
import { h, field, select, button, table, onSubmit, request } from '/static/admin_ui.js';

const PAGE = 50;
const CONTACT_STATUSES = ['pending', 'dialing', 'done', 'exhausted', 'skipped'];
const OUTCOMES = ['person', 'abandoned', 'machine', 'busy', 'no_answer', 'failed', 'dnc', 'invalid'];
/** The per-row problems of an import that have words of their own (campaigns.row_error.<id>). */
const ROW_ERRORS = new Set(['duplicate', 'phone-invalid', 'phone-missing', 'phone-too-short', 'phone-too-long', 'timezone-invalid',
  'cell-too-long', 'too-many-columns', 'number-not-allowed']);

function outcomeLabel(outcome) {
  if (!outcome) return '–';
  return OUTCOMES.includes(outcome) ? t(`campaigns.outcome.${outcome}`) : outcome;
}

/** Why a row (or a do-not-call number) was refused, {error_id, message}, in the page's language. */
export function problemText(problem) {
  return ROW_ERRORS.has(problem.error_id) ? t(`campaigns.row_error.${problem.error_id}`) : problem.message || problem.error_id;
}

/** "1–50 of 120" with previous / next buttons in `box`; `go(offset)` on a click. */
export function renderPager(box, { offset, shown, total, size, id }, go) {
  const last = Math.min(offset + shown, total);
  box.replaceChildren(
    h('span', { className: 'muted', id: `${id}-range`, text: total ? t('campaigns.pager.range', { from: offset + 1, to: last, total }) : '' }),
    button('campaigns.pager.previous', () => go(Math.max(0, offset - size)), 'btn btn-secondary btn-sm',
      { id: `${id}-prev`, disabled: offset === 0 }),
    button('campaigns.pager.next', () => go(offset + size), 'btn btn-secondary btn-sm', { id: `${id}-next`, disabled: last >= total }));
}

/** The contacts part of a campaign's view; `onImported()` after an import (figures changed). */
export function createContacts(root, { onImported }) {
  let campaign = null;
  let report = null;  // the last import's answer
  let page = { contacts: [], total: 0 };
  let offset = 0;

  const file = h('input', { type: 'file', name: 'csv', id: 'contacts-file', accept: '.csv,text/csv' });
  const reportBox = h('div', { id: 'contacts-report' });
  const importForm = h('form', { id: 'contacts-import', className: 'card', novalidate: true },
    h('h3', { i18n: 'campaigns.contacts.import' }),
    h('p', { className: 'muted', i18n: 'campaigns.contacts.import_hint' }),
    h('pre', { className: 'csv-sample', i18n: 'campaigns.contacts.sample' }),
    field('campaigns.contacts.file', file),
    h('div', { className: 'form-actions' },
      h('button', { type: 'submit', className: 'btn btn-primary', id: 'contacts-import-submit', i18n: 'campaigns.contacts.import_submit' })),
    reportBox);
  onSubmit(importForm, async () => {
    if (!file.files.length) return;
    const reply = await request('POST', `/api/campaigns/${campaign.id}/contacts`, file.files[0], { 'Content-Type': 'text/csv' });
    report = await reply.json();
    importForm.reset();
    renderReport();
    offset = 0;
    await Promise.all([load(), onImported()]);
  });

  const statusFilter = select('status', [{ value: '', label: '' }], '', { id: 'contacts-status' });
  statusFilter.addEventListener('change', () => { offset = 0; load().catch(showError); });
  const listBox = h('div', { id: 'contacts-list' });
  const pager = h('div', { className: 'pager inline', id: 'contacts-pager' });
  const listCard = h('div', { className: 'card' },
    h('div', { className: 'section-head' }, h('h3', { i18n: 'campaigns.contacts.title' }),
      h('label', { className: 'inline' }, h('span', { className: 'field-label', i18n: 'campaigns.contacts.filter' }), statusFilter)),
    listBox, pager);
  root.replaceChildren(listCard, importForm);

  function renderReport() {
    if (!report) { reportBox.replaceChildren(); return; }
    const problems = [...report.duplicates, ...report.invalid].sort((a, b) => a.row - b.row);
    reportBox.replaceChildren(
      h('p', { className: 'import-summary', role: 'status', id: 'contacts-report-summary', text: t('campaigns.contacts.report_summary', {
        total: report.total_rows, imported: report.imported, duplicates: report.duplicates.length, invalid: report.invalid.length }) }),
      problems.length ? table(['campaigns.contacts.row', 'campaigns.contacts.value', 'campaigns.contacts.reason'],
        problems.map((p) => {
          const cells = [String(p.row), h('span', { className: 'mono', text: p.value }),
            h('span', { className: 'result-error', 'data-error': p.error_id, text: problemText(p) })];
          cells.key = String(p.row);
          return cells;
        }), 'campaigns.empty', { id: 'contacts-report-table' }) : null);
  }

  function renderList() {
    const options = [{ value: '', label: t('campaigns.contacts.all') },
      ...CONTACT_STATUSES.map((s) => ({ value: s, label: t(`campaigns.contact_status.${s}`) }))];
    const current = statusFilter.value;
    statusFilter.replaceChildren(...options.map((o) => h('option', { value: o.value, text: o.label, selected: o.value === current })));
    listBox.replaceChildren(table(['campaigns.contacts.phone', 'campaigns.contacts.name', 'campaigns.contacts.status',
      'campaigns.contacts.attempts', 'campaigns.contacts.last_outcome', 'campaigns.contacts.next_attempt'],
    page.contacts.map((c) => {
      const cells = [h('span', { className: 'mono', text: c.phone }), c.name || '',
        h('span', { className: 'chip contact-status', 'data-status': c.status,
          text: CONTACT_STATUSES.includes(c.status) ? t(`campaigns.contact_status.${c.status}`) : c.status }),
        String(c.attempts), outcomeLabel(c.last_outcome), c.next_attempt_at ? formatTime(c.next_attempt_at, { date: true }) : '–'];
      cells.key = c.phone;
      return cells;
    }), 'campaigns.contacts.empty', { id: 'contacts-table' }));
    renderPager(pager, { offset, shown: page.contacts.length, total: page.total, size: PAGE, id: 'contacts' },
      (to) => { offset = to; load().catch(showError); });
  }

  async function load() {
    if (!campaign) return;
    const query = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    if (statusFilter.value) query.set('status', statusFilter.value);
    page = await api('GET', `/api/campaigns/${campaign.id}/contacts?${query}`);
    renderList();
  }

  return {
    /** Show `c`'s contacts (a new campaign: from the first page, without the last import's report). */
    async show(c) {
      if (!campaign || campaign.id !== c.id) { offset = 0; report = null; statusFilter.value = ''; renderReport(); }
      campaign = c;
      await load();
    },
    load,
    render() { renderList(); renderReport(); },
  };
}
