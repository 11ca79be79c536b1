// The operator's page (/operator): customer tenants (create with a first admin whose password is
// shown once, quotas, suspend/resume, export, delete after an export) and their usage per day.
// Everything goes through /api/operator/*; the page shell signs in and translates.

import { startPage, t, api, ApiError, showError, toast, onLanguageChange, formatTime, el } from '/static/shell.js';

const $ = (id) => document.getElementById(id);
const QUOTAS = [
  ['quota_concurrent_calls', 'quota-concurrent-calls'],
  ['quota_agents', 'quota-agents'],
  ['quota_recording_mb', 'quota-recording-mb'],
  ['quota_transcription_minutes', 'quota-transcription-minutes'],
];
/** Refusals the page explains in its own words (others: the server's message, via the shell). */
const KNOWN_ERRORS = new Set(['tenant-slug-taken', 'tenant-name-taken', 'slug-reserved', 'invalid-timezone',
  'export-required', 'tenant-not-found']);
const MB = 1024 * 1024;

const state = { tenants: [], usage: [], editing: null };

function fail(err) {
  if (err instanceof ApiError && KNOWN_ERRORS.has(err.errorId)) showError(t(`operator.error.${err.errorId}`));
  else showError(err);
}

function number(value, digits = 0) {
  return new Intl.NumberFormat(document.documentElement.lang, { maximumFractionDigits: digits }).format(value);
}

function quota(value, used) {
  const limit = value === null || value === undefined ? t('operator.quota.none') : number(value);
  return used === undefined ? limit : t('operator.quota.used', { used: number(used), limit });
}

// ------------------------------------------------------------------ tenants

async function loadTenants() {
  state.tenants = await api('GET', '/api/operator/tenants');
  renderTenants();
  renderTenantChoice();
}

function renderTenants() {
  const rows = state.tenants.map((tenant) => {
    const suspended = tenant.status === 'suspended';
    const exported = Boolean(tenant.exported_at);
    const actions = el('div', { className: 'actions' },
      el('button', { type: 'button', className: 'btn btn-secondary', 'data-action': 'edit', text: t('operator.action.edit'),
        onclick: () => openForm(tenant) }),
      el('button', { type: 'button', className: suspended ? 'btn btn-success' : 'btn btn-outline-danger',
        'data-action': suspended ? 'resume' : 'suspend',
        text: t(suspended ? 'operator.action.resume' : 'operator.action.suspend'),
        onclick: () => (suspended ? resume(tenant) : suspend(tenant)) }),
      el('button', { type: 'button', className: 'btn btn-secondary', 'data-action': 'export', text: t('operator.action.export'),
        onclick: (event) => exportTenant(tenant, event.currentTarget) }),
      el('button', { type: 'button', className: 'btn btn-outline-danger', 'data-action': 'delete', text: t('operator.action.delete'),
        disabled: !exported, title: exported ? t('operator.delete.after', { time: formatTime(tenant.exported_at, { date: true }) })
          : t('operator.delete.export_first'), onclick: () => remove(tenant) }));
    return el('tr', { 'data-slug': tenant.slug },
      el('th', { scope: 'row' }, el('div', { text: tenant.name }), el('div', { className: 'muted mono', text: tenant.slug })),
      el('td', { className: `status-${tenant.status}`, text: t(`operator.status.${tenant.status}`) }),
      el('td', { className: 'num', text: tenant.calls_in_progress === null ? '–' : number(tenant.calls_in_progress) }),
      el('td', { className: 'num', text: number(tenant.today.calls) }),
      el('td', { className: 'num', text: quota(tenant.quota_concurrent_calls) }),
      el('td', { className: 'num', text: quota(tenant.quota_agents, tenant.agents) }),
      el('td', { className: 'num', text: quota(tenant.quota_recording_mb, Math.round(tenant.recording_bytes / MB)) }),
      el('td', { className: 'num', text: quota(tenant.quota_transcription_minutes) }),
      el('td', {}, actions));
  });
  $('tenant-rows').replaceChildren(...rows);
  $('tenants-empty').hidden = rows.length > 0;
}

function quotaBody() {
  const body = {};
  for (const [name, id] of QUOTAS) {
    const raw = $(id).value.trim();
    body[name] = raw === '' ? null : Number(raw);
  }
  return body;
}

function openForm(tenant) {
  state.editing = tenant;
  $('tenant-dialog-title').textContent = t(tenant ? 'operator.form.edit_title' : 'operator.form.new_title', { name: tenant ? tenant.name : '' });
  $('tenant-save').textContent = t(tenant ? 'operator.form.save' : 'operator.form.create');
  $('tenant-form-slug').value = tenant ? tenant.slug : '';
  $('tenant-form-slug').disabled = Boolean(tenant);
  $('tenant-form-name').value = tenant ? tenant.name : '';
  for (const [name, id] of QUOTAS) $(id).value = tenant && tenant[name] !== null ? tenant[name] : '';
  $('tenant-form-error').hidden = true;
  $('tenant-dialog').showModal();
  (tenant ? $('tenant-form-name') : $('tenant-form-slug')).focus();
}

async function saveTenant(event) {
  event.preventDefault();
  const form = $('tenant-form');
  if (!form.reportValidity()) return;
  const editing = state.editing;
  const body = { name: $('tenant-form-name').value.trim(), ...quotaBody() };
  try {
    if (editing) {
      await api('PATCH', `/api/operator/tenants/${encodeURIComponent(editing.slug)}`, body);
      $('tenant-dialog').close();
      toast(t('operator.saved', { name: body.name }), 'info');
    } else {
      const created = await api('POST', '/api/operator/tenants', { slug: $('tenant-form-slug').value.trim(), ...body });
      $('tenant-dialog').close();
      showCreated(created);
    }
  } catch (err) {
    const box = $('tenant-form-error');
    box.textContent = err instanceof ApiError && KNOWN_ERRORS.has(err.errorId) ? t(`operator.error.${err.errorId}`) : err.message;
    box.hidden = false;
    return;
  }
  await refresh();
}

function showCreated(created) {
  $('created-company').textContent = created.tenant.slug;
  $('created-username').textContent = created.admin.username;
  $('created-password').textContent = created.admin.password;
  $('copy-status').textContent = '';
  $('created-dialog').showModal();
  $('btn-copy-password').focus();
}

async function copyPassword() {
  try {
    await navigator.clipboard.writeText($('created-password').textContent);
    $('copy-status').textContent = t('operator.created.copied');
  } catch (_) {  // no clipboard (plain HTTP): select it for Ctrl+C
    const range = document.createRange();
    range.selectNodeContents($('created-password'));
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    $('copy-status').textContent = t('operator.created.copy_by_hand');
  }
}

function closeCreated() {
  $('created-password').textContent = '';  // shown once: gone from the page when closed
  $('created-dialog').close();
}

/** Ask before a step; with `typed`, the user must type it (the tenant's slug) to go on. */
function confirmStep(text, okText, typed) {
  return new Promise((resolve) => {
    const dialog = $('confirm-dialog');
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okText;
    $('confirm-typed').hidden = !typed;
    $('confirm-input').value = '';
    $('confirm-ok').disabled = Boolean(typed);
    if (typed) $('confirm-typed-label').textContent = t('operator.delete.type', { slug: typed });
    const onInput = () => { $('confirm-ok').disabled = $('confirm-input').value.trim() !== typed; };
    const finish = (answer) => {
      $('confirm-input').removeEventListener('input', onInput);
      $('confirm-form').removeEventListener('submit', onSubmit);
      $('confirm-cancel').removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onSubmit = (event) => { event.preventDefault(); if (!$('confirm-ok').disabled) finish(true); };
    const onCancel = (event) => { event.preventDefault(); finish(false); };
    $('confirm-input').addEventListener('input', onInput);
    $('confirm-form').addEventListener('submit', onSubmit);
    $('confirm-cancel').addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    (typed ? $('confirm-input') : $('confirm-cancel')).focus();
  });
}

async function suspend(tenant) {
  if (!await confirmStep(t('operator.suspend.confirm', { name: tenant.name }), t('operator.action.suspend'))) return;
  try {
    await api('POST', `/api/operator/tenants/${encodeURIComponent(tenant.slug)}/suspend`);
    toast(t('operator.suspend.done', { name: tenant.name }), 'info');
  } catch (err) { fail(err); }
  await refresh();
}

async function resume(tenant) {
  if (!await confirmStep(t('operator.resume.confirm', { name: tenant.name }), t('operator.action.resume'))) return;
  try {
    await api('POST', `/api/operator/tenants/${encodeURIComponent(tenant.slug)}/resume`);
    toast(t('operator.resume.done', { name: tenant.name }), 'info');
  } catch (err) { fail(err); }
  await refresh();
}

async function exportTenant(tenant, button) {
  button.disabled = true;
  button.textContent = t('operator.export.running');
  try {
    const reply = await fetch(`/api/operator/tenants/${encodeURIComponent(tenant.slug)}/export`, { credentials: 'same-origin' });
    if (!reply.ok) {
      let body = null;
      try { body = await reply.json(); } catch (_) { body = null; }
      throw new ApiError(reply.status, body);
    }
    const name = (/filename="([^"]+)"/.exec(reply.headers.get('Content-Disposition') || '') || [])[1] || `tenant-${tenant.slug}.zip`;
    const url = URL.createObjectURL(await reply.blob());
    const link = el('a', { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    toast(t('operator.export.done', { name: tenant.name }), 'info');
  } catch (err) { fail(err); }
  await refresh();
}

async function remove(tenant) {
  if (!await confirmStep(t('operator.delete.confirm', { name: tenant.name }), t('operator.action.delete'), tenant.slug)) return;
  try {
    await api('DELETE', `/api/operator/tenants/${encodeURIComponent(tenant.slug)}`);
    toast(t('operator.delete.done', { name: tenant.name }), 'info');
  } catch (err) { fail(err); }
  await refresh();
}

// ------------------------------------------------------------------ usage

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function usageQuery(format) {
  const params = new URLSearchParams({ from: $('usage-from').value, to: $('usage-to').value });
  if ($('usage-tenant').value) params.set('tenant', $('usage-tenant').value);
  if (format) params.set('format', format);
  return `/api/operator/usage?${params}`;
}

function renderTenantChoice() {
  const select = $('usage-tenant');
  const chosen = select.value;
  select.replaceChildren(el('option', { value: '', text: t('operator.usage.all') }),
    ...state.tenants.map((tenant) => el('option', { value: tenant.slug, text: `${tenant.name} (${tenant.slug})` })));
  select.value = state.tenants.some((tenant) => tenant.slug === chosen) ? chosen : '';
}

async function loadUsage() {
  if (!$('usage-from').value || !$('usage-to').value) return;
  $('usage-csv').href = usageQuery('csv');
  state.usage = await api('GET', usageQuery());
  renderUsage();
}

function renderUsage() {
  const rows = state.usage.filter((row) => row.calls || row.recording_bytes || row.transcription_minutes)
    .sort((a, b) => (a.day === b.day ? a.tenant.localeCompare(b.tenant) : b.day.localeCompare(a.day)))
    .map((row) => el('tr', {},
      el('td', { className: 'mono', text: row.day }),
      el('td', { text: row.tenant }),
      el('td', { className: 'num', text: number(row.calls) }),
      el('td', { className: 'num', text: number(row.calls_refused) }),
      el('td', { className: 'num', text: number(row.inbound_minutes, 1) }),
      el('td', { className: 'num', text: number(row.outbound_minutes, 1) }),
      el('td', { className: 'num', text: number(row.peak_concurrent_calls) }),
      el('td', { className: 'num', text: number(row.recording_bytes / MB, 1) }),
      el('td', { className: 'num', text: number(row.transcription_minutes, 1) })));
  $('usage-rows').replaceChildren(...rows);
  $('usage-empty').hidden = rows.length > 0;
}

async function refresh() {
  try {
    await loadTenants();
    await loadUsage();
  } catch (err) { fail(err); }
}

// ------------------------------------------------------------------ start

function wire() {
  const today = new Date();
  $('usage-to').value = isoDay(today);
  $('usage-from').value = isoDay(new Date(today.getTime() - 13 * 86400000));
  $('btn-new-tenant').addEventListener('click', () => openForm(null));
  $('tenant-form').addEventListener('submit', saveTenant);
  $('tenant-cancel').addEventListener('click', () => $('tenant-dialog').close());
  $('btn-copy-password').addEventListener('click', copyPassword);
  $('created-close').addEventListener('click', closeCreated);
  $('created-dialog').addEventListener('cancel', (event) => { event.preventDefault(); closeCreated(); });
  $('usage-form').addEventListener('submit', (event) => {
    event.preventDefault();
    loadUsage().catch(fail);
  });
  for (const id of ['usage-from', 'usage-to', 'usage-tenant']) {
    $(id).addEventListener('change', () => { $('usage-csv').href = usageQuery('csv'); });
  }
  onLanguageChange(() => {
    renderTenants();
    renderTenantChoice();
    renderUsage();
  });
}

await startPage({
  page: 'operator',
  roles: ['operator'],
  catalogues: ['operator'],
  onReady: async () => {
    if (!$('usage-to').value) wire();
    await refresh();
  },
});
