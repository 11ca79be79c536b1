// Dispositions (wrap-up codes agents pick after a call) and break reasons (codes agents give for
// a break): two ordered lists, each edited as a table and saved as a whole (the API replaces the
// list; calls and agents keep the codes they were given).

import { api, t } from '/static/shell.js';
import { h, input, header, table, onSubmit, button } from '/static/admin_ui.js';

/** One editable list: `columns` fields per row, input names "<row>.<field>" (or "<row>" for a bare code). */
function listEditor({ id, titleKey, hintKey, columns, blank, path, toBody, fromReply }) {
  let rows = [];
  const form = h('form', { id, className: 'card', novalidate: true });
  const cell = (control) => h('div', {}, control, h('span', { className: 'field-error', hidden: true }));
  function draw() {
    form.replaceChildren(h('h3', { i18n: titleKey }), h('p', { className: 'muted', i18n: hintKey }),
      table([...columns.map((c) => c.label), ''], rows.map((row, i) => {
        const cells = columns.map((c) => cell(input(c.field ? `${i}.${c.field}` : String(i), {
          value: c.field ? row[c.field] : row.value, maxlength: c.max, 'aria-label': `${t(c.label)} ${i + 1}`,
          on: { input: (e) => { if (c.field) row[c.field] = e.target.value; else row.value = e.target.value; } } })));
        cells.push(button('admin.common.remove', () => { rows.splice(i, 1); draw(); }, 'btn btn-secondary btn-sm',
          { 'aria-label': t('admin.common.remove_n', { n: i + 1 }) }));
        return cells;
      }), 'admin.common.empty', { className: 'data-table compact' }),
      h('div', { className: 'form-actions' },
        button('admin.common.add_row', () => { rows.push(blank()); draw(); form.querySelector(`[name^="${rows.length - 1}"]`).focus(); }),
        h('button', { type: 'submit', className: 'btn btn-primary', i18n: 'admin.common.save' })));
  }
  onSubmit(form, async () => {
    rows = fromReply(await api('PUT', path, toBody(rows)));
    draw();
  }, 'admin.common.saved');
  return { form, draw, set(list) { rows = list; draw(); } };
}

export function create(root) {
  const dispositions = listEditor({
    id: 'dispositions-form', titleKey: 'admin.dispositions.title', hintKey: 'admin.dispositions.hint', path: '/api/dispositions',
    columns: [{ field: 'code', label: 'admin.dispositions.code', max: 64 }, { field: 'label', label: 'admin.dispositions.label', max: 100 }],
    blank: () => ({ code: '', label: '' }),
    toBody: (rows) => rows.map((r) => ({ code: r.code.trim(), label: r.label.trim() })),
    fromReply: (list) => list.map((d) => ({ ...d })),
  });
  const reasons = listEditor({
    id: 'break-reasons-form', titleKey: 'admin.breaks.title', hintKey: 'admin.breaks.hint', path: '/api/break-reasons',
    columns: [{ label: 'admin.breaks.code', max: 64 }],
    blank: () => ({ value: '' }),
    toBody: (rows) => rows.map((r) => r.value.trim()),
    fromReply: (list) => list.map((value) => ({ value })),
  });
  root.replaceChildren(header('admin.dispositions.section', 'admin.dispositions.intro'), dispositions.form, reasons.form);

  async function load() {
    const [codes, breaks] = await Promise.all([api('GET', '/api/dispositions'), api('GET', '/api/break-reasons')]);
    dispositions.set(codes.map((d) => ({ ...d })));
    reasons.set(breaks.map((value) => ({ value })));
  }

  return { load, render: () => { dispositions.draw(); reasons.draw(); } };
}
