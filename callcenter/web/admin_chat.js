// Web chat: the tag a tenant puts on its pages (this node's widget.js with the tenant's widget key),
// a new key when the old one leaked, the widget's settings (one PUT /api/chat/settings, the server
// checks the sites allowed and the ranges), and the messages visitors left when nobody could chat
// (GET /api/chat/offline, each marked handled once followed up).

import { api, t, formatTime, showError, toast } from '/static/shell.js';
import { h, field, input, select, header, table, onSubmit, button, confirmAction } from '/static/admin_ui.js';

const LIMIT = 200;
/** The offline list's filters: [value, label, the API's `handled` query ('': every message)]. */
const FILTERS = [['open', 'admin.chat.filter.open', 'false'], ['handled', 'admin.chat.filter.handled', 'true'],
  ['all', 'admin.chat.filter.all', '']];

function offlinePath(filter) {
  const handled = FILTERS.find(([value]) => value === filter)[2];
  return `/api/chat/offline?limit=${LIMIT}${handled ? `&handled=${handled}` : ''}`;
}

/** The tag for the tenant's pages: the widget is served by this node, so it names this node's origin. */
const snippet = (key) => `<script src="${location.origin}/widget.js" data-key="${key}" async></script>`;

/** The lines of a textarea, trimmed, without the empty ones. */
const lines = (text) => text.split('\n').map((line) => line.trim()).filter(Boolean);

/** A number field's value for the API: null when empty, so the server says the field is missing a number. */
const number = (value) => (value === '' ? null : Number(value));

export function create(root) {
  let settings = null;
  let queues = [];
  let messages = [];
  let filter = 'open';
  const embed = h('div', { id: 'chat-embed', className: 'card' });
  const form = h('form', { id: 'chat-form', className: 'card', novalidate: true });
  const filterSelect = select('handled', [], filter, { id: 'chat-offline-filter', on: { change: (e) => { filter = e.target.value; loadMessages(); } } });
  const listBox = h('div', { id: 'chat-offline-list' });
  const offline = h('div', { id: 'chat-offline', className: 'card' },
    h('div', { className: 'section-head' },
      h('div', {}, h('h3', { i18n: 'admin.chat.offline' }), h('p', { className: 'muted', i18n: 'admin.chat.offline_hint' })),
      h('label', { className: 'field' }, h('span', { className: 'field-label', i18n: 'admin.chat.show' }), filterSelect)),
    listBox);
  root.replaceChildren(header('admin.chat.title', 'admin.chat.intro'), embed, form, offline);

  async function copy() {
    const box = embed.querySelector('#chat-snippet');
    try {
      await navigator.clipboard.writeText(box.value);
      toast(t('admin.chat.copied'), 'info', 3000);
    } catch (_) {  // no clipboard (plain HTTP on another host, permission refused): the person copies
      box.focus();
      box.select();
      toast(t('admin.chat.copy_yourself'), 'info', 5000);
    }
  }

  async function newKey() {
    if (!(await confirmAction(t('admin.chat.confirm_new_key'), 'admin.chat.new_key'))) return;
    try {
      // the settings as saved (not the form's unsaved edits, which stay in the form), with an empty key
      settings = await api('PUT', '/api/chat/settings', { ...settings, widget_key: '' });
      renderEmbed();
      toast(t('admin.chat.key_changed'), 'info', 5000);
    } catch (err) { showError(err); }
  }

  function renderEmbed() {
    embed.replaceChildren(
      h('h3', { i18n: 'admin.chat.embed' }),
      h('p', { className: 'muted', i18n: 'admin.chat.embed_hint' }),
      h('textarea', { id: 'chat-snippet', className: 'mono chat-snippet', rows: '2', readonly: true, spellcheck: 'false',
        'aria-label': t('admin.chat.embed'), value: snippet(settings.widget_key) }),
      h('div', { className: 'inline' },
        button('admin.chat.copy', copy, 'btn btn-primary btn-sm', { id: 'chat-copy' }),
        button('admin.chat.new_key', newKey, 'btn btn-outline-danger btn-sm', { id: 'chat-new-key' })));
  }

  function renderForm() {
    const s = settings;
    const check = (name, labelKey) => h('label', { className: 'check' },
      h('input', { type: 'checkbox', name, id: `chat-${name.replaceAll('_', '-')}`, checked: s[name] }), h('span', { i18n: labelKey }));
    const queueItems = [{ value: '', label: t('admin.chat.first_queue') }, ...queues.map((q) => ({ value: q.name, label: q.name }))];
    form.replaceChildren(
      h('h3', { i18n: 'admin.chat.settings' }),
      check('enabled', 'admin.chat.enabled'),
      h('div', { className: 'form-grid' },
        field('admin.chat.allowed_origins', h('textarea', { name: 'allowed_origins', id: 'chat-origins', rows: '4', spellcheck: 'false',
          value: s.allowed_origins.join('\n') }), 'admin.chat.allowed_origins_hint'),
        field('admin.chat.greeting', h('textarea', { name: 'greeting', id: 'chat-greeting', rows: '4', maxlength: '500',
          value: s.greeting }), 'admin.chat.greeting_hint'),
        field('admin.chat.queue', select('queue', queueItems, s.queue ?? '', { id: 'chat-queue' })),
        field('admin.chat.chat_capacity', input('chat_capacity', { type: 'number', min: '0', max: '10', id: 'chat-capacity',
          value: s.chat_capacity }), 'admin.chat.chat_capacity_hint'),
        field('admin.chat.grace', input('visitor_grace_seconds', { type: 'number', min: '10', max: '3600', id: 'chat-grace',
          value: s.visitor_grace_seconds }), 'admin.chat.grace_hint'),
        field('admin.chat.max_attachment', input('max_attachment_mb', { type: 'number', min: '1', max: '10', id: 'chat-max-attachment',
          value: s.max_attachment_mb }), 'admin.chat.max_attachment_hint')),
      check('calls_while_chatting', 'admin.chat.calls_while_chatting'),
      h('div', { className: 'form-actions' },
        h('button', { type: 'submit', className: 'btn btn-primary', id: 'chat-save', i18n: 'admin.common.save' })));
  }

  onSubmit(form, async (data) => {
    settings = await api('PUT', '/api/chat/settings', {
      widget_key: settings.widget_key,  // any non-empty value keeps the key
      enabled: data.get('enabled') === 'on',
      allowed_origins: lines(data.get('allowed_origins')),
      queue: data.get('queue') || null,
      chat_capacity: number(data.get('chat_capacity')),
      calls_while_chatting: data.get('calls_while_chatting') === 'on',
      visitor_grace_seconds: number(data.get('visitor_grace_seconds')),
      greeting: data.get('greeting').trim(),
      max_attachment_mb: number(data.get('max_attachment_mb')),
    });
    render();  // the sites as the server wrote them (lower case, no default port, sorted)
  }, 'admin.common.saved');

  async function markHandled(message) {
    try {
      await api('POST', `/api/chat/offline/${message.id}/handled`);
      await loadMessages();
    } catch (err) { showError(err); }
  }

  function renderMessages() {
    const status = (m) => (m.handled_at === null
      ? button('admin.chat.mark_handled', () => markHandled(m), 'btn btn-secondary btn-sm',
        { 'aria-label': t('admin.chat.mark_handled_of', { time: formatTime(m.created_at, { date: true }) }) })
      : h('span', { className: 'muted', text: m.handled_by
        ? t('admin.chat.handled_by', { user: m.handled_by, time: formatTime(m.handled_at, { date: true }) })
        : t('admin.chat.handled_at', { time: formatTime(m.handled_at, { date: true }) }) }));
    listBox.replaceChildren(
      messages.length === LIMIT ? h('p', { className: 'muted', text: t('admin.chat.newest', { n: LIMIT }) }) : '',
      table(['admin.chat.time', 'admin.chat.visitor', 'admin.chat.message', 'admin.chat.page', ''],
        messages.map((m) => {
          const visitor = h('div', { className: 'chat-offline-visitor' }, m.name ? h('strong', { text: m.name }) : null,
            m.phone ? h('span', { className: 'mono', text: m.phone }) : null, m.email ? h('span', { text: m.email }) : null);
          const cells = [formatTime(m.created_at, { date: true }), visitor, h('span', { className: 'chat-offline-text', text: m.message }),
            h('span', { className: 'chat-offline-page', title: m.page_url, text: m.page_url }), status(m)];
          cells.key = String(m.id);
          return cells;
        }), 'admin.chat.no_messages', { id: 'chat-offline-table' }));
  }

  function render() {
    if (!settings) return;
    renderEmbed();
    renderForm();
    filterSelect.replaceChildren(...FILTERS.map(([value, label]) => h('option', { value, text: t(label) })));
    filterSelect.value = filter;
    renderMessages();
  }

  async function loadMessages() {
    try {
      messages = (await api('GET', offlinePath(filter))).messages;
      renderMessages();
    } catch (err) { showError(err); }
  }

  async function load() {
    let reply;
    [settings, queues, reply] = await Promise.all([api('GET', '/api/chat/settings'), api('GET', '/api/queues'),
      api('GET', offlinePath(filter))]);
    messages = reply.messages;
    render();
  }

  return { load, render };
}
