// Agents: each is a user with the agent role plus a SIP phone account. The node generates both
// passwords and returns them once (on creation and on a reset); the page shows them once and
// keeps them nowhere. Skills with proficiency 1-5 are edited as a table, with the number of web
// chats the agent takes at once (empty: the tenant's, from the web chat settings). A CSV import creates
// many agents, one API call per row, and reports each row (bad rows are found in the page first).

import { api, t, showError, errorText } from '/static/shell.js';
import { h, field, input, header, table, onSubmit, button, deleteButton, confirmAction, secretsBox, select } from '/static/admin_ui.js';
import { parseCsv } from '/static/admin_csv.js';

const USERNAME = /^[A-Za-z0-9._@-]{1,100}$/;
const SKILL = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const LEVELS = [1, 2, 3, 4, 5];

/** The skills table of a form: rows [{skill, level}] edited in place (skill names offered from #agent-skill-options). */
function skillsEditor(rows) {
  const box = h('div', { className: 'skills-editor' });
  const draw = () => {
    box.replaceChildren(table(['admin.agents.skill', 'admin.agents.proficiency', ''], rows.map((row, i) => [
      input(`skill.${i}`, { value: row.skill, list: 'agent-skill-options', 'aria-label': t('admin.agents.skill_n', { n: i + 1 }),
        on: { input: (e) => { row.skill = e.target.value.trim(); } } }),
      select(`level.${i}`, LEVELS.map((l) => ({ value: l, label: String(l) })), row.level,
        { 'aria-label': t('admin.agents.proficiency_n', { n: i + 1 }), on: { change: (e) => { row.level = Number(e.target.value); } } }),
      button('admin.common.remove', () => { rows.splice(i, 1); draw(); }, 'btn btn-secondary btn-sm',
        { 'aria-label': t('admin.agents.skill_remove', { n: i + 1 }) }),
    ]), 'admin.agents.no_skills', { className: 'data-table compact' }),
    button('admin.agents.skill_add', () => { rows.push({ skill: '', level: 3 }); draw(); box.querySelector(`[name="skill.${rows.length - 1}"]`).focus(); },
      'btn btn-secondary btn-sm skill-add'));
  };
  draw();
  return { box, draw };
}

/** {skill: level} from the table's rows; a row without a skill name is ignored. */
function skillsOf(rows) {
  return Object.fromEntries(rows.filter((r) => r.skill).map((r) => [r.skill, r.level]));
}

/** "sales:5 support:2" (a CSV cell) as {sales: 5, support: 2}, or an error message key. */
function parseSkills(text) {
  const out = {};
  for (const part of text.split(/[;\s]+/).filter(Boolean)) {
    const [skill, level = '3'] = part.split(':');
    if (!SKILL.test(skill)) return { error: 'admin.agents.csv.bad_skill', skill };
    if (!/^[1-5]$/.test(level)) return { error: 'admin.agents.csv.bad_level', skill };
    out[skill] = Number(level);
  }
  return { skills: out };
}

export function create(root) {
  let agents = [];
  let knownSkills = [];
  let report = [];           // CSV import results, kept until the next import (passwords shown once);
                             // a failed row's `error` is a function, so it reads in the current language
  let tenantCapacity = null;  // chats an agent takes at once unless the agent has a number of its own
  let editing = null;  // {agent, rows: its skills, capacity: the chat capacity field's text}
  const secrets = h('div', { id: 'agent-secrets' });
  const listBox = h('div', { id: 'agents-list' });
  const datalist = h('datalist', { id: 'agent-skill-options' });

  const newRows = [];
  const newSkills = skillsEditor(newRows);
  const form = h('form', { id: 'agent-add', className: 'card', novalidate: true },
    h('h3', { i18n: 'admin.agents.add' }),
    field('admin.agents.username', input('username', { id: 'agent-username', required: true, autocapitalize: 'off' })),
    h('h4', { i18n: 'admin.agents.skills' }),
    newSkills.box,
    h('div', { className: 'form-actions' }, h('button', { type: 'submit', className: 'btn btn-primary', id: 'agent-add-submit', i18n: 'admin.agents.add_submit' })));
  onSubmit(form, async (data) => {
    const created = await api('POST', '/api/agents', { username: data.get('username').trim(), skills: skillsOf(newRows) });
    showSecrets('admin.agents.created', created.username, [['admin.agents.password', created.password, 'password'],
      ['admin.agents.sip_user', created.sip_user, 'sip-user'], ['admin.agents.sip_password', created.sip_password, 'sip-password']]);
    form.reset();
    newRows.splice(0);
    newSkills.draw();
    await load();
  });

  const csvFile = h('input', { type: 'file', name: 'csv', id: 'agent-csv', accept: '.csv,text/csv' });
  const reportBox = h('div', { id: 'agent-import-report' });
  const importForm = h('form', { id: 'agent-import', className: 'card', novalidate: true },
    h('h3', { i18n: 'admin.agents.import' }),
    h('p', { className: 'muted', i18n: 'admin.agents.import_hint' }),
    h('pre', { className: 'csv-sample', text: 'username,skills\nalice,sales:5 support:2\nbob,support:4' }),
    field('admin.agents.csv_file', csvFile),
    h('div', { className: 'form-actions' }, h('button', { type: 'submit', className: 'btn btn-primary', id: 'agent-import-submit', i18n: 'admin.agents.import_submit' })),
    reportBox);
  onSubmit(importForm, async () => {
    if (!csvFile.files.length) return;
    report = await importRows(parseCsv(await csvFile.files[0].text()));
    importForm.reset();
    renderReport();
    await load();
  });

  root.replaceChildren(header('admin.agents.title', 'admin.agents.intro'), secrets, listBox, form, importForm, datalist);

  function showSecrets(titleKey, username, pairs) {
    secrets.replaceChildren(secretsBox(t(titleKey, { username }), pairs));
    secrets.querySelector('button').focus();
  }

  /** One POST per row, in order; a row the page can tell is wrong is reported without a request. */
  async function importRows(rows) {
    const header = rows.length && /^user(name)?$/i.test((rows[0].cells[0] || '').trim());
    const out = [];
    for (const row of header ? rows.slice(1) : rows) {
      const [username = '', skillText = ''] = row.cells.map((c) => c.trim());
      const entry = { line: row.line, username };
      const skills = parseSkills(skillText);
      if (!USERNAME.test(username)) entry.error = () => t('admin.agents.csv.bad_username');
      else if (skills.error) entry.error = () => t(skills.error, { skill: skills.skill });
      else {
        try {
          const created = await api('POST', '/api/agents', { username, skills: skills.skills });
          Object.assign(entry, { password: created.password, sip_user: created.sip_user, sip_password: created.sip_password });
        } catch (err) {
          entry.error = () => errorText(err);
        }
      }
      out.push(entry);
    }
    return out;
  }

  function renderReport() {
    if (!report.length) { reportBox.replaceChildren(); return; }
    const ok = report.filter((r) => !r.error).length;
    reportBox.replaceChildren(
      h('p', { className: 'import-summary', role: 'status', text: t('admin.agents.import_summary', { ok, failed: report.length - ok }) }),
      h('p', { className: 'muted', i18n: 'admin.common.shown_once' }),
      table(['admin.agents.csv.line', 'admin.agents.username', 'admin.agents.csv.result', 'admin.agents.password', 'admin.agents.sip_password'],
        report.map((r) => {
          const cells = [String(r.line), r.username,
            h('span', { className: r.error ? 'result-error' : 'result-ok', text: r.error ? r.error() : t('admin.agents.csv.created') }),
            h('span', { className: 'mono', text: r.password || '' }), h('span', { className: 'mono', text: r.sip_password || '' })];
          cells.key = String(r.line);
          return cells;
        }), 'admin.common.empty', { id: 'agent-import-table' }));
  }

  async function reset(agent, what) {
    const question = what === 'password' ? 'admin.agents.confirm_reset_password' : 'admin.agents.confirm_reset_sip';
    if (!(await confirmAction(t(question, { username: agent.username }), 'admin.agents.reset'))) return;
    try {
      const reply = await api('PATCH', `/api/agents/${agent.id}`, what === 'password' ? { reset_password: true } : { reset_sip_password: true });
      showSecrets('admin.agents.reset_done', agent.username, what === 'password'
        ? [['admin.agents.password', reply.password, 'password']]
        : [['admin.agents.sip_user', reply.sip_user, 'sip-user'], ['admin.agents.sip_password', reply.sip_password, 'sip-password']]);
    } catch (err) { showError(err); }
  }

  const capacityText = (a) => (a.chat_capacity ?? t('admin.agents.chat_default', { n: tenantCapacity }));

  function editForm() {
    if (!editing) return null;
    const { agent, rows } = editing;
    const editor = skillsEditor(rows);
    const f = h('form', { id: 'agent-edit-form', className: 'card', novalidate: true },
      h('h3', { text: t('admin.common.edit_named', { name: agent.username }) }),
      h('h4', { i18n: 'admin.agents.skills' }), editor.box,
      h('div', { className: 'form-grid' },
        field('admin.agents.chat_capacity', input('chat_capacity', { type: 'number', min: '0', max: '10', id: 'agent-chat-capacity',
          value: editing.capacity, placeholder: t('admin.agents.chat_default', { n: tenantCapacity }),
          on: { input: (e) => { editing.capacity = e.target.value; } } }), 'admin.agents.chat_capacity_hint')),
      h('div', { className: 'form-actions' }, button('admin.common.cancel', () => { editing = null; render(); }),
        h('button', { type: 'submit', className: 'btn btn-primary', id: 'agent-edit-save', i18n: 'admin.common.save' })));
    return onSubmit(f, async () => {
      const capacity = editing.capacity.trim();
      await api('PATCH', `/api/agents/${agent.id}`, { skills: skillsOf(rows), chat_capacity: capacity === '' ? null : Number(capacity) });
      editing = null;
      await load();
    }, 'admin.common.saved');
  }

  function render() {
    datalist.replaceChildren(...knownSkills.map((s) => h('option', { value: s })));
    newSkills.draw();
    const columns = ['admin.agents.username', 'admin.agents.sip_user', 'admin.agents.skills', 'admin.agents.chat_capacity', ''];
    listBox.replaceChildren(table(columns, agents.map((a) => {
      const cells = [a.username, h('span', { className: 'mono', text: a.sip_user }),
        Object.entries(a.skills).map(([s, l]) => `${s} ${l}`).join(', ') || t('admin.agents.no_skills'), capacityText(a),
        h('div', { className: 'inline' },
          button('admin.common.edit', () => {
            editing = { agent: a, rows: Object.entries(a.skills).map(([skill, level]) => ({ skill, level })),
              capacity: a.chat_capacity === null ? '' : String(a.chat_capacity) };
            render();
            listBox.querySelector('#agent-edit-form input, #agent-edit-form button').focus();
          }, 'btn btn-secondary btn-sm', { 'aria-label': t('admin.common.edit_named', { name: a.username }) }),
          button('admin.agents.reset_password', () => reset(a, 'password'), 'btn btn-secondary btn-sm',
            { 'aria-label': t('admin.agents.reset_password_of', { username: a.username }) }),
          button('admin.agents.reset_sip', () => reset(a, 'sip'), 'btn btn-secondary btn-sm',
            { 'aria-label': t('admin.agents.reset_sip_of', { username: a.username }) }),
          deleteButton(a.username, async () => { await api('DELETE', `/api/agents/${a.id}`); await load(); }))];
      cells.key = a.username;
      return cells;
    }), 'admin.agents.empty', { id: 'agents-table' }), editForm() || '');
    renderReport();
  }

  async function load() {
    const [list, queues, chat] = await Promise.all([api('GET', '/api/agents'), api('GET', '/api/queues'),
      api('GET', '/api/chat/settings')]);
    agents = list;
    tenantCapacity = chat.chat_capacity;
    knownSkills = [...new Set([...queues.map((q) => q.skill || q.name), ...list.flatMap((a) => Object.keys(a.skills))])].sort();
    render();
  }

  return { load, render };
}
