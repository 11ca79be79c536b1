// FAQ bot: the question-and-answer pairs the chat's bot answers visitors from (a question, other
// ways to ask it, one per line, the answer, and optionally the one queue whose bot uses it), and a
// box to try the bot: POST /api/faq/try answers as the bot would to a visitor's first question.

import { api, t, lang } from '/static/shell.js';
import { h, field, input, select, setOptions, header, table, onSubmit, button, deleteButton } from '/static/admin_ui.js';

const EVERY_QUEUE = '';

/** The lines of a textarea, trimmed, without the empty ones. */
const lines = (text) => text.split('\n').map((line) => line.trim()).filter(Boolean);

export function create(root) {
  let pairs = [];
  let queues = [];
  let editing = null;  // a pair, or {} for a new one
  let tried = null;  // the bot's last reply in the try box
  const listBox = h('div', { id: 'faq-list' });
  const editor = h('div', { id: 'faq-editor' });
  const tryQueue = select('queue', [], EVERY_QUEUE, { id: 'faq-try-queue' });
  const result = h('div', { id: 'faq-try-result', 'aria-live': 'polite' });
  const tryForm = h('form', { id: 'faq-try', className: 'card form-grid', novalidate: true },
    h('h3', { i18n: 'admin.faq.try' }),
    h('p', { className: 'muted', i18n: 'admin.faq.try_hint' }),
    field('admin.faq.try_text', input('text', { id: 'faq-try-text', maxlength: '500', required: true })),
    field('admin.faq.queue', tryQueue),
    h('div', { className: 'form-actions' }, h('button', { type: 'submit', className: 'btn btn-primary', i18n: 'admin.faq.ask' })),
    result);
  onSubmit(tryForm, async (data) => {
    const body = { text: data.get('text').trim(), locale: lang() };
    if (data.get('queue')) body.queue = data.get('queue');
    tried = await api('POST', '/api/faq/try', body);
    renderResult();
  });
  root.replaceChildren(header('admin.faq.title', 'admin.faq.intro',
    button('admin.faq.new', () => edit({}), 'btn btn-primary', { id: 'faq-new' })), listBox, editor, tryForm);

  const queueChoices = () => [{ value: EVERY_QUEUE, label: t('admin.faq.every_queue') },
    ...queues.map((q) => ({ value: q.name, label: q.name }))];

  function edit(pair) {
    editing = pair;
    renderEditor();
    editor.querySelector('input').focus();
  }

  function renderEditor() {
    if (!editing) { editor.replaceChildren(); return; }
    const pair = editing;
    const form = h('form', { id: 'faq-form', className: 'card', novalidate: true },
      h('h3', { i18n: pair.id ? 'admin.faq.editing' : 'admin.faq.new' }),
      h('div', { className: 'form-grid' },
        field('admin.faq.question', input('question', { id: 'faq-question', value: pair.question || '', maxlength: '500', required: true })),
        field('admin.faq.alternatives', h('textarea', { name: 'alternatives', id: 'faq-alternatives', rows: '4',
          value: (pair.alternatives || []).join('\n') }), 'admin.faq.alternatives_hint'),
        field('admin.faq.answer', h('textarea', { name: 'answer', id: 'faq-answer', rows: '4', maxlength: '4000', required: true,
          value: pair.answer || '' })),
        field('admin.faq.queue', select('queue', queueChoices(), pair.queue ?? EVERY_QUEUE, { id: 'faq-queue' }), 'admin.faq.queue_hint')),
      h('div', { className: 'form-actions' },
        button('admin.common.cancel', () => { editing = null; renderEditor(); }),
        h('button', { type: 'submit', className: 'btn btn-primary', id: 'faq-save', i18n: 'admin.common.save' })));
    onSubmit(form, async (data) => {
      const body = { question: data.get('question').trim(), alternatives: lines(data.get('alternatives')),
        answer: data.get('answer').trim(), queue: data.get('queue') || null };
      if (pair.id) await api('PUT', `/api/faq/${pair.id}`, body);
      else await api('POST', '/api/faq', body);
      editing = null;
      await load();
    }, 'admin.common.saved');
    editor.replaceChildren(form);
  }

  function renderResult() {
    if (!tried) { result.replaceChildren(); return; }
    const confidence = tried.confidence === null ? '' : t('admin.faq.confidence', {
      value: new Intl.NumberFormat(lang(), { style: 'percent' }).format(tried.confidence) });
    const matched = pairs.find((p) => p.id === tried.entry_id);
    result.replaceChildren(h('div', { className: 'faq-reply', 'data-kind': tried.kind },
      h('strong', { text: t(`admin.faq.kind.${tried.kind}`) }),
      matched ? h('span', { className: 'muted', text: ` · ${matched.question}` }) : null,
      confidence ? h('span', { className: 'muted', text: ` · ${confidence}` }) : null,
      h('p', { className: 'faq-reply-text', text: tried.text })));
  }

  function renderList() {
    listBox.replaceChildren(table(['admin.faq.question', 'admin.faq.answer', 'admin.faq.queue', ''], pairs.map((pair) => {
      const question = h('div', {}, h('div', { text: pair.question }),
        pair.alternatives.length ? h('div', { className: 'muted', text: t('admin.faq.more_phrasings', { n: pair.alternatives.length }) }) : null);
      const cells = [question, pair.answer, pair.queue ?? t('admin.faq.every_queue'),
        h('div', { className: 'inline' },
          button('admin.common.edit', () => edit(pair), 'btn btn-secondary btn-sm', { 'aria-label': t('admin.common.edit_named', { name: pair.question }) }),
          deleteButton(pair.question, async () => { await api('DELETE', `/api/faq/${pair.id}`); await load(); }))];
      cells.key = String(pair.id);
      return cells;
    }), 'admin.faq.empty', { id: 'faq-table' }));
  }

  function render() {
    renderList();
    renderEditor();
    setOptions(tryQueue, queueChoices());
    renderResult();
  }

  async function load() {
    [pairs, queues] = await Promise.all([api('GET', '/api/faq'), api('GET', '/api/queues')]);
    render();
  }

  return { load, render };
}
