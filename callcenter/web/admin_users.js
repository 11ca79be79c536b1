// Users and roles: admins, supervisors and QA staff (agents have their SIP phone too and are made
// in the Agents section). A password reset makes a random password in the page, sets it through
// PATCH /api/users/{id} (which ends the user's sessions) and shows it once.

import { api, t, showError, toast } from '/static/shell.js';
import { h, field, input, select, header, table, onSubmit, button, deleteButton, confirmAction, secretsBox } from '/static/admin_ui.js';

const STAFF_ROLES = ['admin', 'supervisor', 'qa'];

/** 18 random bytes as URL-safe base64 (like the node's own generated passwords). */
function randomPassword() {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_');
}

export function create(root, { me }) {
  let users = [];
  const secrets = h('div', { id: 'user-secrets' });
  const listBox = h('div', { id: 'users-list' });
  const roleSelect = select('role', [], 'supervisor', { id: 'user-role' });
  const form = h('form', { id: 'user-add', className: 'card form-grid', novalidate: true },
    h('h3', { i18n: 'admin.users.add' }),
    field('admin.users.username', input('username', { id: 'user-username', required: true, autocapitalize: 'off' })),
    field('admin.users.password', input('password', { id: 'user-password', type: 'password', autocomplete: 'new-password', minlength: '8', required: true }),
      'admin.users.password_hint'),
    field('admin.users.role', roleSelect, 'admin.users.role_hint'),
    h('div', { className: 'form-actions' }, h('button', { type: 'submit', className: 'btn btn-primary', i18n: 'admin.users.add_submit' })));
  onSubmit(form, async (data) => {
    await api('POST', '/api/users', { username: data.get('username').trim(), password: data.get('password'), role: data.get('role') });
    form.reset();
    await load();
  }, 'admin.users.added');
  root.replaceChildren(header('admin.users.title', 'admin.users.intro'), secrets, listBox, form);

  async function patch(user, body, undo) {
    try {
      await api('PATCH', `/api/users/${user.id}`, body);
      toast(t('admin.common.saved'), 'info', 2000);
      await load();
    } catch (err) { showError(err); undo(); }
  }

  async function resetPassword(user) {
    if (!(await confirmAction(t('admin.users.confirm_reset', { username: user.username }), 'admin.agents.reset'))) return;
    const password = randomPassword();
    try {
      await api('PATCH', `/api/users/${user.id}`, { password });
      secrets.replaceChildren(secretsBox(t('admin.agents.reset_done', { username: user.username }), [['admin.users.password', password, 'password']]));
      secrets.querySelector('button').focus();
    } catch (err) { showError(err); }
  }

  function row(user) {
    const self = user.id === me.user.id;
    const isAgent = user.role === 'agent';
    const role = isAgent || self ? h('span', { text: t(`admin.users.role.${user.role}`) })
      : select('role', STAFF_ROLES.map((r) => ({ value: r, label: t(`admin.users.role.${r}`) })), user.role,
        { 'aria-label': t('admin.users.role_of', { username: user.username }) });
    if (!isAgent && !self) role.addEventListener('change', () => patch(user, { role: role.value }, () => { role.value = user.role; }));
    const active = h('input', { type: 'checkbox', checked: user.active, disabled: self, 'aria-label': t('admin.users.active_of', { username: user.username }) });
    active.addEventListener('change', async () => {
      // Deactivating ends the user's sessions at once: ask first (activating needs no question).
      if (!active.checked && !(await confirmAction(t('admin.users.confirm_deactivate', { username: user.username }), 'admin.users.deactivate'))) {
        active.checked = true;
        return;
      }
      await patch(user, { active: active.checked }, () => { active.checked = user.active; });
    });
    const cells = [user.username, role, active,
      self ? h('span', { className: 'muted', i18n: 'admin.users.you' }) : h('div', { className: 'inline' },
        isAgent ? h('a', { href: '#agents', i18n: 'admin.users.see_agents' })
          : button('admin.agents.reset_password', () => resetPassword(user), 'btn btn-secondary btn-sm',
            { 'aria-label': t('admin.agents.reset_password_of', { username: user.username }) }),
        deleteButton(user.username, async () => { await api('DELETE', `/api/users/${user.id}`); await load(); }))];
    cells.key = user.username;
    return cells;
  }

  function render() {
    const chosen = roleSelect.value || 'supervisor';
    roleSelect.replaceChildren(...STAFF_ROLES.map((r) => h('option', { value: r, text: t(`admin.users.role.${r}`) })));
    roleSelect.value = chosen;
    listBox.replaceChildren(table(['admin.users.username', 'admin.users.role', 'admin.users.active', ''], users.map(row),
      'admin.common.empty', { id: 'users-table' }));
  }

  async function load() {
    users = await api('GET', '/api/users');
    render();
  }

  return { load, render };
}
