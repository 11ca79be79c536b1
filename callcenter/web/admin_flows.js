// The flow editor of the console (#section-flows, mounted by admin.js with mountFlows): the
// tenant's flows, and for one flow an outline (one form per node, generated from the flow schema;
// add, delete, reorder nodes; the start node), a graph preview, validation while editing (errors
// block publishing and jump to their node and field; warnings for unreachable nodes and unhandled
// branches), versions with publish / roll back / import / export, the simulator and the test call.
// A deep link #flows/<name> opens a flow.

import { api, ApiError, showError, lang, validationText } from '/static/shell.js';
import { h, t, button, loadCatalogue, onLanguage, retranslate } from '/static/admin_flows_util.js';
import { schemaDefaults } from '/static/admin_flows_form.js';
import { renderOutline } from '/static/admin_flows_outline.js';
import { drawGraph } from '/static/admin_flows_graph.js';
import { simulatorPanel } from '/static/admin_flows_sim.js';
import { testCallPanel } from '/static/admin_flows_testcall.js';
import { versionsPanel, importFile, exportDraft } from '/static/admin_flows_versions.js';

const VALIDATE_DELAY = 400;
const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Mount the editor in `root` (admin.js passes {me} too; the editor needs nothing from it). */
export async function mountFlows(root) {
  await loadCatalogue();
  if (!document.querySelector('link[href="/static/admin_flows.css"]')) {
    document.head.append(h('link', { rel: 'stylesheet', href: '/static/admin_flows.css' }));
  }
  const [schema, lists] = await Promise.all([api('GET', '/api/flow-schema'), tenantLists()]);
  if (!current) {  // mounted again after a sign-out: the listeners serve whichever editor is current
    onLanguage(() => current.rerender());
    window.addEventListener('hashchange', () => current.followHash());
  }
  current = new FlowEditor(root, schema, lists);
  await current.start();
}

let current = null;

async function tenantLists() {
  const [calendars, prompts, queues] = await Promise.all([
    api('GET', '/api/calendars'), api('GET', '/api/prompts'), api('GET', '/api/queues').catch(() => [])]);
  return { calendar: Object.keys(calendars), prompts, queue: queues.map((q) => q.name) };
}

class FlowEditor {
  constructor(root, schema, lists) {
    Object.assign(this, { root, schema, lists });
    this.flows = [];
    this.doc = null;          // the draft being edited
    this.savedAs = null;      // version number the draft equals, null once edited
    this.selected = null;
    this.expanded = new Set();  // ids of the node cards left open
    this.errors = [];
    this.warnings = [];
    this.path = [];
    this.timer = null;
    this.validations = 0;
    const showPath = (p) => { this.path = p; this.drawGraph(); };
    this.sim = simulatorPanel({ doc: () => this.doc, select: (id) => this.select(id), showPath });
    this.testCall = testCallPanel({ name: () => this.doc.name, version: () => this.savedAs, save: () => this.save(), showPath });
    this.versions = versionsPanel({ name: () => this.doc.name, doc: () => this.doc, saved: () => this.savedAs,
      hasErrors: () => this.errors.length > 0, saveDraft: () => this.save(), open: (v) => this.open(this.doc.name, v),
      published: () => this.loadList(), defaults: schemaDefaults(schema) });
  }

  async start() {
    this.layout();
    await this.loadList();
    await this.followHash();
  }

  async followHash() {
    const [section, name] = decodeURIComponent(location.hash.replace(/^#/, '')).split('/');
    if (section === 'flows' && name && name !== this.doc?.name) await this.open(name);
  }

  layout() {
    this.list = h('ul', { className: 'flows-list', id: 'flows-list' });
    this.newName = h('input', { type: 'text', id: 'flows-new-name', autocomplete: 'off', pattern: NAME_RE.source });
    this.importInput = h('input', { type: 'file', id: 'flows-import', accept: '.json,.yaml,.yml,application/json,application/yaml',
      on: { change: () => this.importChosen() } });
    this.main = h('div', { className: 'flows-main', hidden: true });
    const datalists = ['calendar', 'queue'].map((name) => h('datalist', { id: `flows-list-${name}` },
      this.lists[name].map((v) => h('option', { value: v }))));
    this.root.replaceChildren(h('div', { className: 'flows' },
      h('aside', { className: 'flows-aside' },
        h('h2', { 'data-t': 'flows.title', text: t('flows.title') }),
        this.list,
        h('form', { className: 'flows-new', on: { submit: (e) => { e.preventDefault(); this.create(); } } },
          h('label', { className: 'field' }, h('span', { className: 'field-label', 'data-t': 'flows.new_name', text: t('flows.new_name') }), this.newName),
          h('button', { type: 'submit', className: 'btn btn-primary', id: 'flows-new', 'data-t': 'flows.new', text: t('flows.new') })),
        h('label', { className: 'field' }, h('span', { className: 'field-label', 'data-t': 'flows.import', text: t('flows.import') }), this.importInput)),
      this.main, ...datalists));
  }

  async loadList() {
    this.flows = await api('GET', '/api/flows');
    this.renderList();
  }

  renderList() {
    this.list.replaceChildren(...this.flows.map((f) => h('li', {}, button(
      `${f.name} · ${f.published.length ? t('flows.live_count', { count: f.published.length }) : t('flows.not_live')}`,
      () => { location.hash = `#flows/${encodeURIComponent(f.name)}`; },
      `link-button${this.doc?.name === f.name ? ' current' : ''}`, { 'data-flow': f.name }))));
    if (!this.flows.length) this.list.append(h('li', { className: 'muted', text: t('flows.none') }));
  }

  create() {
    const name = this.newName.value.trim();
    if (!NAME_RE.test(name)) { showError(t('flows.bad_name')); return; }
    if (this.flows.some((f) => f.name === name)) { location.hash = `#flows/${name}`; return; }
    this.doc = { name, voice: lang() === 'zh-CN' ? 'zh' : 'en', start: 'start',
      nodes: [{ id: 'start', type: 'hangup' }] };
    this.savedAs = null;
    this.newName.value = '';
    this.opened('start');
  }

  async open(name, version) {
    try {
      this.doc = await api('GET', `/api/flows/${encodeURIComponent(name)}${version ? `?version=${version}` : ''}`);
    } catch (err) { showError(err); return; }
    const flow = this.flows.find((f) => f.name === name);
    this.savedAs = version || flow?.latest_version || null;
    this.opened(this.doc.start);
  }

  opened(selected) {
    history.replaceState(null, '', `#flows/${encodeURIComponent(this.doc.name)}`);
    this.selected = selected;
    this.expanded = new Set();
    this.path = [];
    this.main.hidden = false;
    this.renderEditor();
    this.sim.reset();
    this.testCall.reset();
    this.versions.load().catch(showError);
    this.validateNow();
    this.renderList();
  }

  /** The draft changed: structural changes redraw the outline; every change is validated after a pause. */
  changed(structural) {
    this.savedAs = null;
    this.status.textContent = t('flows.unsaved');
    if (structural) this.renderOutline();
    this.drawGraph();
    this.sim.docChanged();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.validateNow(), VALIDATE_DELAY);
  }

  async validateNow() {
    clearTimeout(this.timer);
    const seq = ++this.validations;  // only the answer about the latest draft counts
    try {
      const reply = await api('POST', '/api/flows/validate', this.doc);
      if (seq !== this.validations) return;
      this.errors = [];
      this.warnings = reply.warnings || [];
    } catch (err) {
      if (seq !== this.validations) return;
      if (!(err instanceof ApiError) || err.status !== 422) { showError(err); return; }
      this.errors = err.detail?.issues || [{ node: null, field: '', reason: err.message }];
      this.warnings = [];
    }
    this.renderIssues();
    this.versions.render();
    this.drawGraph();
  }

  async save() {
    await this.validateNow();
    if (this.errors.length) { showError(t('flows.publish_blocked')); return null; }
    try {
      const reply = await api('POST', '/api/flows', this.doc);
      this.savedAs = reply.version;
      this.status.textContent = t('flows.saved_as', { version: reply.version });
      await this.loadList();
      await this.versions.load();
      return reply.version;
    } catch (err) { showError(err); return null; }
  }

  async importChosen() {
    const file = this.importInput.files[0];
    if (!file) return;
    try {
      const reply = await importFile(file);
      await this.loadList();
      await this.open(reply.flow, reply.version);
    } catch (err) { showError(err); }
    this.importInput.value = '';
  }

  renderEditor() {
    this.status = h('span', { className: 'flows-status', id: 'flows-status', role: 'status',
      text: this.savedAs ? t('flows.saved_as', { version: this.savedAs }) : t('flows.unsaved') });
    this.issues = h('div', { className: 'flows-issues', id: 'flows-issues' });
    this.outline = h('div', { className: 'flows-outline', id: 'flows-outline' });
    this.graph = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    this.graph.setAttribute('id', 'flows-graph');
    this.graph.setAttribute('role', 'group');
    this.main.replaceChildren(
      h('div', { className: 'flows-toolbar' },
        h('h3', { className: 'mono', text: this.doc.name }), this.status,
        button(t('flows.save'), () => this.save(), 'btn btn-secondary', { id: 'flows-save', 'data-t': 'flows.save' }),
        button(t('flows.export_json'), () => exportDraft(this.doc), 'btn btn-secondary', { id: 'flows-export', 'data-t': 'flows.export_json' })),
      this.issues,
      h('div', { className: 'flows-panes' },
        this.outline,
        h('div', { className: 'flows-side' },
          h('section', { className: 'flows-card flows-graph-card' },
            h('h3', { 'data-t': 'flows.graph', text: t('flows.graph') }), h('div', { className: 'flows-graph-scroll' }, this.graph)),
          this.sim.element, this.testCall.element, this.versions.element)));
    this.graph.setAttribute('aria-label', t('flows.graph'));
    this.renderOutline();
    this.renderIssues();
    this.drawGraph();
  }

  rerender() {
    retranslate(this.root);
    this.renderList();
    if (!this.doc) return;
    this.status.textContent = this.savedAs ? t('flows.saved_as', { version: this.savedAs }) : t('flows.unsaved');
    this.renderOutline();
    this.renderIssues();
    this.drawGraph();
    this.sim.render();
    this.testCall.render();
    this.versions.render();
  }

  drawGraph() {
    if (!this.graph || !this.doc) return;
    const issues = {};
    for (const w of this.warnings) if (w.node) issues[w.node] = 'warning';
    for (const e of this.errors) if (e.node) issues[e.node] = 'error';
    drawGraph(this.graph, this.doc, { selected: this.selected, path: this.path, issues, onSelect: (id) => this.select(id) });
  }

  renderIssues() {
    const item = (issue, kind) => {
      const where = [issue.node, issue.field].filter(Boolean).join(' · ') || t('flows.document');
      // a schema error's pydantic type and ctx in the page's language; the node's own reasons after a lead
      const text = kind === 'error' ? validationText({ type: issue.type, msg: issue.reason, ctx: issue.ctx })
        : t(`flows.warning.${issue.code}`, { field: issue.field, node: issue.node });
      return h('li', { className: `issue-${kind}` }, button(`${where}: ${text}`, () => this.jump(issue), 'link-button',
        { 'data-issue-node': issue.node || '', 'data-issue-field': issue.field || '' }));
    };
    this.issues.replaceChildren(...[
      this.errors.length ? h('div', { className: 'issues-errors', role: 'alert' }, h('h4', { text: t('flows.errors', { count: this.errors.length }) }),
        h('ul', {}, this.errors.map((e) => item(e, 'error')))) : h('p', { className: 'issues-ok', text: t('flows.valid') }),
      this.warnings.length ? h('div', { className: 'issues-warnings' }, h('h4', { text: t('flows.warnings', { count: this.warnings.length }) }),
        h('ul', {}, this.warnings.map((w) => item(w, 'warning')))) : null].filter(Boolean));
    for (const card of this.outline.querySelectorAll('[data-card]')) {
      card.classList.toggle('has-error', this.errors.some((e) => e.node === card.dataset.card));
      card.classList.toggle('has-warning', this.warnings.some((w) => w.node === card.dataset.card));
    }
  }

  /** Select a node and put the focus on the field an issue names (or the node's heading). */
  jump(issue) {
    if (!issue.node || issue.node.startsWith('#')) {
      this.outline.querySelector(`[data-field="${CSS.escape(issue.field || 'start')}"]`)?.focus();
      return;
    }
    this.select(issue.node);
    const card = this.outline.querySelector(`[data-card="${CSS.escape(issue.node)}"]`);
    const field = issue.field || '';
    const target = (field && (card?.querySelector(`[data-field="${CSS.escape(field)}"]`)
      || card?.querySelector(`[data-field^="${CSS.escape(field.split('.')[0])}"]`))) || card?.querySelector('summary');
    target?.focus();
  }

  select(id) {
    this.selected = id;
    for (const card of this.outline.querySelectorAll('[data-card]')) {
      const on = card.dataset.card === id;
      card.classList.toggle('selected', on);
      if (on) { card.open = true; card.scrollIntoView({ block: 'nearest' }); card.querySelector('summary').focus(); }
    }
    this.drawGraph();
  }

  renderOutline() {
    renderOutline(this);
  }
}
