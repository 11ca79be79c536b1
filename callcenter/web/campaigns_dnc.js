// The tenant's do-not-call list (/campaigns): numbers no campaign may dial, added a batch at a
// time (one per line, or separated by commas; a number may hold spaces: 138 0013 8000) with a note, removed one by one.

import { api, t, formatTime, toast, showError } from '/static/shell.js';
import { h, field, input, table, onSubmit, deleteButton } from '/static/admin_ui.js';
import { problemText, renderPager } from '/static/campaigns_contacts.js';

const PAGE = 50;

export function createDnc(root) {
  let page = { numbers: [], total: 0 };
  let offset = 0;
  let rejected = [];  // [{value, error_id, message}] of the last batch: numbers the API did not take

  const numbers = h('textarea', { name: 'numbers', id: 'dnc-numbers', rows: 3, spellcheck: 'false' });
  const form = h('form', { id: 'dnc-add', className: 'card form-grid', novalidate: true },
    h('h3', { i18n: 'campaigns.dnc.add' }),
    field('campaigns.dnc.numbers', numbers, 'campaigns.dnc.numbers_hint'),
    field('campaigns.dnc.note', input('note', { id: 'dnc-note', maxlength: 200 })),
    h('div', { className: 'form-actions' },
      h('button', { type: 'submit', className: 'btn btn-primary', id: 'dnc-add-submit', i18n: 'campaigns.dnc.add_submit' })));
  const rejectedBox = h('p', { id: 'dnc-rejected', className: 'result-error', role: 'status', hidden: true });
  onSubmit(form, async (data) => {
    const list = String(data.get('numbers') || '').split(/[\r\n,;，；、]+/).map((n) => n.trim()).filter(Boolean);
    if (!list.length) return;
    const reply = await api('POST', '/api/dnc', { numbers: list, note: String(data.get('note') || '').trim() });
    rejected = reply.invalid || [];
    toast(t('campaigns.dnc.added', { count: reply.added }), 'info', 3000);
    form.reset();
    offset = 0;
    await load();
  });
  const listBox = h('div', { id: 'dnc-list' });
  const pager = h('div', { className: 'pager inline' });
  root.replaceChildren(
    h('div', { className: 'section-head' },
      h('div', {}, h('h2', { id: 'dnc-title', i18n: 'campaigns.dnc.title' }), h('p', { className: 'muted', i18n: 'campaigns.dnc.intro' }))),
    form, rejectedBox, h('div', { className: 'card' }, listBox, pager));

  function render() {
    rejectedBox.hidden = !rejected.length;
    rejectedBox.textContent = rejected.length ? t('campaigns.dnc.rejected', { numbers: rejected
      .map((r) => t('campaigns.dnc.rejected_one', { value: r.value, reason: problemText(r) })).join(t('campaigns.list_separator')) }) : '';
    listBox.replaceChildren(table(['campaigns.dnc.number', 'campaigns.dnc.note', 'campaigns.dnc.added_at', ''], page.numbers.map((n) => {
      const cells = [h('span', { className: 'mono', text: n.number }), n.note || '', formatTime(n.added_at, { date: true }),
        deleteButton(n.number, async () => { await api('DELETE', `/api/dnc/${encodeURIComponent(n.number)}`); await load(); })];
      cells.key = n.number;
      return cells;
    }), 'campaigns.dnc.empty', { id: 'dnc-table' }));
    renderPager(pager, { offset, shown: page.numbers.length, total: page.total, size: PAGE, id: 'dnc' },
      (to) => { offset = to; load().catch(showError); });
  }

  async function load() {
    page = await api('GET', `/api/dnc?limit=${PAGE}&offset=${offset}`);
    render();
  }

  return { load, render };
}
