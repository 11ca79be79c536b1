// Canned replies: texts an agent inserts in a chat by typing their short code (/hi). A code is
// 1-32 letters, digits, - or _, unique in the tenant (the API answers 409 canned-reply-exists).

import { api, t, ApiError, errorText } from '/static/shell.js';
import { h, field, input, header, table, onSubmit, button, deleteButton, FieldProblem } from '/static/admin_ui.js';

const CODE = /^[A-Za-z0-9_-]{1,32}$/;

export function create(root) {
  let replies = [];
  let editing = null;  // a reply, or {} for a new one
  const listBox = h('div', { id: 'canned-list' });
  const editor = h('div', { id: 'canned-editor' });
  root.replaceChildren(header('admin.canned.title', 'admin.canned.intro',
    button('admin.canned.new', () => edit({}), 'btn btn-primary', { id: 'canned-new' })), listBox, editor);

  function edit(reply) {
    editing = reply;
    renderEditor();
    editor.querySelector('input').focus();
  }

  function renderEditor() {
    if (!editing) { editor.replaceChildren(); return; }
    const reply = editing;
    const form = h('form', { id: 'canned-form', className: 'card', novalidate: true },
      h('h3', { i18n: reply.id ? 'admin.canned.editing' : 'admin.canned.new' }),
      h('div', { className: 'form-grid' },
        field('admin.canned.code', input('code', { id: 'canned-code', value: reply.code || '', maxlength: '32', required: true,
          autocapitalize: 'off' }), 'admin.canned.code_hint'),
        field('admin.canned.text', h('textarea', { name: 'text', id: 'canned-text', rows: '3', maxlength: '4000', required: true,
          value: reply.text || '' }))),
      h('div', { className: 'form-actions' },
        button('admin.common.cancel', () => { editing = null; renderEditor(); }),
        h('button', { type: 'submit', className: 'btn btn-primary', id: 'canned-save', i18n: 'admin.common.save' })));
    onSubmit(form, async (data) => {
      const code = data.get('code').trim();
      if (!CODE.test(code)) throw new FieldProblem(form.elements.code, t('admin.canned.code_hint'));
      const body = { code, text: data.get('text').trim() };
      try {
        if (reply.id) await api('PUT', `/api/canned-replies/${reply.id}`, body);
        else await api('POST', '/api/canned-replies', body);
      } catch (err) {  // a taken code is the code field's problem
        if (err instanceof ApiError && err.errorId === 'canned-reply-exists') throw new FieldProblem(form.elements.code, errorText(err));
        throw err;
      }
      editing = null;
      await load();
    }, 'admin.common.saved');
    editor.replaceChildren(form);
  }

  function renderList() {
    listBox.replaceChildren(table(['admin.canned.code', 'admin.canned.text', ''], replies.map((reply) => {
      const cells = [h('span', { className: 'mono', text: `/${reply.code}` }), reply.text,
        h('div', { className: 'inline' },
          button('admin.common.edit', () => edit(reply), 'btn btn-secondary btn-sm', { 'aria-label': t('admin.common.edit_named', { name: reply.code }) }),
          deleteButton(`/${reply.code}`, async () => { await api('DELETE', `/api/canned-replies/${reply.id}`); await load(); }))];
      cells.key = reply.code;
      return cells;
    }), 'admin.canned.empty', { id: 'canned-table' }));
  }

  function render() {
    renderList();
    renderEditor();
  }

  async function load() {
    replies = await api('GET', '/api/canned-replies');
    render();
  }

  return { load, render };
}
