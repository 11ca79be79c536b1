// The page shell every page shares (issue 18, /work contract "Page shell"): sign-in, the header
// with the role's pages, the language (catalogues, translate(), formatTime) and the API client
// with its error banner and toasts. A page only calls startPage() and builds its own content.

const LANGS = ['en', 'zh-CN'];
const LANG_KEY = 'cc.lang';
const LAST_LOGIN_KEY = 'cc.lastLogin';
const DEFAULT_TZ = 'Asia/Shanghai';

/** Where each role lands, and the pages its header offers (in this order). */
export const LANDING = { operator: '/operator', admin: '/admin', supervisor: '/supervisor', qa: '/qa', agent: '/agent' };
const NAV = {
  operator: ['operator'],
  admin: ['admin', 'supervisor', 'campaigns', 'qa'],
  supervisor: ['supervisor', 'campaigns', 'qa'],
  qa: ['qa'],
  agent: ['agent'],
};

const S = {
  options: null,
  lang: 'en',
  messages: {},
  namespaces: ['shell'],
  me: null,
  listeners: [],
  toastTimer: null,
  loginError: null,  // [key, params] of the message under the sign-in form, re-translated on a change
};

const $ = (id) => document.getElementById(id);

const PROPERTIES = new Set(['value', 'checked', 'disabled', 'selected']);

/**
 * An element, for every page: props `className`, `text`, `i18n` (a catalogue key: the text, and
 * data-i18n for translate()), `dataset` ({name: value}), `on` ({event: fn}) or `onclick`-style
 * functions, `value`/`checked`/`disabled`/`selected` set as properties, anything else as an
 * attribute (true: present; false, null, undefined: left out). Children: nodes, strings, arrays of
 * them; null, undefined and false are skipped.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'className') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'i18n') { node.dataset.i18n = value; node.textContent = t(value); }
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'on') for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (PROPERTIES.has(key)) node[key] = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  node.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function readStore(key) {
  try { return localStorage.getItem(key); } catch (_) { return null; }
}

function writeStore(key, value) {
  try { localStorage.setItem(key, value); } catch (_) { /* private mode */ }
}

// ----------------------------------------------------------------- language

/** 'zh-CN' or 'en'; anything Chinese counts as Simplified Chinese, anything else as English. */
function normalise(value) {
  const tag = String(value || '').toLowerCase();
  if (tag.startsWith('zh')) return 'zh-CN';
  return tag.startsWith('en') ? 'en' : null;
}

function browserLang() {
  const stored = normalise(readStore(LANG_KEY));
  if (stored) return stored;
  for (const tag of navigator.languages || [navigator.language]) {
    if (String(tag).toLowerCase().startsWith('zh')) return 'zh-CN';
  }
  return 'en';
}

export function lang() {
  return S.lang;
}

async function loadCatalogues(language) {
  const parts = await Promise.all(S.namespaces.map(async (ns) => {
    const reply = await fetch(`/static/i18n/${language}/${ns}.json`, { credentials: 'same-origin' });
    if (!reply.ok) throw new Error(`catalogue ${language}/${ns}: HTTP ${reply.status}`);
    return reply.json();
  }));
  S.messages = Object.assign({}, ...parts);
  S.lang = language;
  document.documentElement.lang = language;
}

/** The message `key` with its `{name}` placeholders filled from `params`; the key itself when missing. */
export function t(key, params = {}) {
  const message = S.messages[key];
  if (message === undefined) {
    console.warn(`i18n: missing message ${key}`);
    return key;
  }
  return message.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** Whether the loaded catalogues have `key` (for words chosen by an id the server sent). */
export function hasMessage(key) {
  return key in S.messages;
}

const ATTRIBUTES = [['i18nPlaceholder', 'placeholder'], ['i18nTitle', 'title'], ['i18nAriaLabel', 'aria-label']];

/** Fill the elements under `root` that name their text by data-i18n / -placeholder / -title / -aria-label. */
export function translate(root = document) {
  const selector = '[data-i18n], [data-i18n-placeholder], [data-i18n-title], [data-i18n-aria-label]';
  const nodes = [...root.querySelectorAll(selector)];
  if (root instanceof Element && root.matches(selector)) nodes.push(root);
  for (const node of nodes) {
    if (node.dataset.i18n) node.textContent = t(node.dataset.i18n);
    for (const [data, attribute] of ATTRIBUTES) {
      if (node.dataset[data]) node.setAttribute(attribute, t(node.dataset[data]));
    }
  }
}

/** Call `fn(lang)` after every language change, once the new catalogues are in and translate() ran. */
export function onLanguageChange(fn) {
  S.listeners.push(fn);
}

async function setLanguage(language, { store = true } = {}) {
  if (!LANGS.includes(language)) return;
  if (store) {
    writeStore(LANG_KEY, language);
    // Remembered per user: the next sign-in anywhere opens in it.
    if (S.me) api('PATCH', '/api/me', { locale: language }).catch((err) => console.warn('locale not stored', err));
  }
  if (language === S.lang && Object.keys(S.messages).length) return;
  await loadCatalogues(language);
  translate();
  renderChrome();
  for (const fn of S.listeners) {
    try { fn(language); } catch (err) { console.error(err); }
  }
}

/** Local time of an ISO string or Date in the tenant's time zone, in the page's language. */
export function formatTime(value, { date = false } = {}) {
  if (value === null || value === undefined || value === '') return '';
  const when = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(when.getTime())) return String(value);
  const options = { timeZone: timeZone(), hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (date) Object.assign(options, { year: 'numeric', month: '2-digit', day: '2-digit' });
  try {
    return new Intl.DateTimeFormat(S.lang, options).format(when);
  } catch (_) {  // an unknown zone name from the server: fall back to the default one
    return new Intl.DateTimeFormat(S.lang, { ...options, timeZone: DEFAULT_TZ }).format(when);
  }
}

function timeZone() {
  return (S.me && S.me.tenant && S.me.tenant.timezone) || DEFAULT_TZ;
}

/** The tenant's time zone (IANA name) that formatTime() shows times in: for pages that ask the
 * server for "today" or label hours themselves (the wallboard's day charts). */
export function tenantZone() {
  const zone = timeZone();
  try { new Intl.DateTimeFormat('en', { timeZone: zone }); return zone; } catch (_) { return DEFAULT_TZ; }
}

// ----------------------------------------------------------------- API

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.errorId = (body && body.error_id) || null;
    this.detail = body || null;
  }
}

/** JSON in and out of the API; null for 204. On 401 the session is over: back to the sign-in form. */
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const reply = await fetch(path, init);
  let data = null;
  if (reply.status !== 204) {
    try { data = await reply.json(); } catch (_) { data = null; }
  }
  if (!reply.ok) {
    const err = new ApiError(reply.status, data);
    err.retryAfter = Number(reply.headers.get('Retry-After')) || (data && data.retry_after) || null;
    if (reply.status === 401 && path !== '/api/login' && S.me) showSignIn('shell.login.session_ended');
    throw err;
  }
  return data;
}

/** The plain values of an object (an error body, a validation ctx) as t() parameters. */
function paramsOf(source) {
  const params = {};
  for (const [name, value] of Object.entries(source || {})) {
    if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) params[name] = value ?? '';
  }
  return params;
}

/**
 * One validation problem (a 422 detail {type, loc, msg, ctx}) in the page's language: the catalogue's
 * words for its type (`shell.validation.string_too_long`, our validators' own codes such as
 * `shell.validation.dial_prefix`) with the ctx values, else the server's English after a lead.
 */
export function validationText(detail) {
  const params = paramsOf(detail && detail.ctx);
  if (typeof params.expected === 'string') params.expected = params.expected.replace(/ or /g, ', ');
  const message = String((detail && detail.msg) || '').replace(/^Value error, /, '');
  const key = `shell.validation.${detail && detail.type}`;
  if (detail && detail.type && key in S.messages) return t(key, { ...params, message });
  return t('shell.validation.server', { message });
}

/** A socket's refusal {error_id, params, message} in the page's language: `<ns>.error.<error_id>`, else the server's words after a lead. */
export function socketErrorText(ns, message) {
  const key = `${ns}.error.${message && message.error_id}`;
  if (message && message.error_id && key in S.messages) return t(key, { ...paramsOf(message.params), message: message.message || '' });
  return t('shell.error.server_said', { message: (message && message.message) || '' });
}

/** What an error says to a person: the catalogue's words for its error_id, else the server's. */
export function errorText(err) {
  if (err instanceof ApiError) {
    const details = err.detail && Array.isArray(err.detail.details) ? err.detail.details : [];
    if (details.length) {
      return details.map((d) => {
        const where = (d.loc || []).slice(['body', 'query', 'path'].includes((d.loc || [])[0]) ? 1 : 0).join('.');
        return where ? `${where}: ${validationText(d)}` : validationText(d);
      }).join('\n');
    }
    const key = `shell.error.${err.errorId}`;
    if (err.errorId && key in S.messages) {
      return t(key, { ...paramsOf(err.detail), seconds: err.retryAfter ?? '', message: err.message });
    }
    return t('shell.error.server_said', { message: err.message });
  }
  if (err instanceof TypeError) return t('shell.error.network');
  return String(err && err.message ? err.message : err);
}

/** The error banner (#shell-error) with the error's words; it stays until dismissed or replaced. */
export function showError(err) {
  const banner = $('shell-error');
  if (!banner) return;
  banner.replaceChildren(
    el('span', { className: 'shell-error-text', text: typeof err === 'string' ? err : errorText(err) }),
    el('button', { type: 'button', className: 'shell-error-close', 'data-i18n': 'shell.dismiss', text: t('shell.dismiss') }),
  );
  banner.lastChild.addEventListener('click', () => { banner.hidden = true; });
  banner.hidden = false;
}

/** A short message at the bottom (kind 'error', 'info' or 'success'); ms 0 keeps it until dismissed. */
export function toast(message, kind = 'error', ms = 8000) {
  let box = $('toast');
  if (!box) {
    box = el('div', { id: 'toast', className: 'toast', role: 'alert', 'aria-live': 'assertive', hidden: '' },
      el('span', { id: 'toast-text', className: 'toast-text' }),
      el('button', { id: 'toast-close', type: 'button', className: 'toast-close', 'data-i18n': 'shell.dismiss',
        text: t('shell.dismiss') }));
    document.body.append(box);
  }
  if (!box.dataset.wired) {
    box.dataset.wired = 'true';
    $('toast-close').addEventListener('click', hideToast);
  }
  $('toast-text').textContent = message;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(S.toastTimer);
  if (ms) S.toastTimer = setTimeout(hideToast, ms);
}

export function hideToast() {
  clearTimeout(S.toastTimer);
  if ($('toast')) $('toast').hidden = true;
}

// ----------------------------------------------------------------- views

function setView(view) {
  document.body.dataset.view = view;
  $('loading-view').hidden = view !== 'loading';
  $('login-view').hidden = view !== 'login' && view !== 'forbidden';
  $('app-view').hidden = view !== 'app';
}

function brand() {
  return el('span', { className: 'brand-mark', 'aria-hidden': 'true' }, svgMark());
}

function svgMark() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 32 32');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M8 22h4v-8H8zm6 0h4V9h-4zm6 0h4v-5h-4z');
  path.setAttribute('fill', 'white');
  svg.append(path);
  return svg;
}

function langSelect(id) {
  const select = el('select', { id, className: 'lang-select', 'data-i18n-aria-label': 'shell.lang.label' },
    el('option', { value: 'en', lang: 'en', text: 'English' }),
    el('option', { value: 'zh-CN', lang: 'zh-CN', text: '中文' }));
  select.value = S.lang;
  select.addEventListener('change', () => {
    setLanguage(select.value).catch((err) => showError(err));
  });
  return select;
}

function field(labelKey, input) {
  return el('label', { className: 'field' }, el('span', { className: 'field-label', 'data-i18n': labelKey }), input);
}

/** The sign-in form, built once into #login-view. */
function buildSignIn() {
  const view = $('login-view');
  view.classList.add('login-view');
  const form = el('form', { id: 'login-form', className: 'login-card', novalidate: '', autocomplete: 'on' },
    el('div', { className: 'login-brand' }, brand(), el('span', { className: 'brand-name', 'data-i18n': 'shell.brand' }),
      langSelect('login-lang')),
    el('h1', { 'data-i18n': 'shell.login.title' }),
    el('p', { className: 'login-sub', 'data-i18n': 'shell.login.subtitle' }),
    field('shell.login.tenant', el('input', { id: 'login-tenant', name: 'tenant', type: 'text', autocomplete: 'organization',
      autocapitalize: 'off', spellcheck: 'false', required: '', 'data-i18n-placeholder': 'shell.login.tenant_placeholder' })),
    field('shell.login.username', el('input', { id: 'login-username', name: 'username', type: 'text', autocomplete: 'username',
      autocapitalize: 'off', spellcheck: 'false', required: '' })),
    field('shell.login.password', el('input', { id: 'login-password', name: 'password', type: 'password',
      autocomplete: 'current-password', required: '' })),
    el('p', { id: 'login-error', className: 'form-error', role: 'alert', hidden: '' }),
    el('button', { id: 'login-submit', type: 'submit', className: 'btn btn-primary btn-lg btn-block', 'data-i18n': 'shell.login.submit' }));
  const forbidden = el('div', { id: 'login-forbidden', className: 'login-card', hidden: '' },
    el('div', { className: 'login-brand' }, brand(), el('span', { className: 'brand-name', 'data-i18n': 'shell.brand' })),
    el('h1', { 'data-i18n': 'shell.forbidden.title' }),
    el('p', { id: 'forbidden-text', className: 'login-sub' }),
    el('div', { className: 'forbidden-actions' },
      el('a', { id: 'forbidden-landing', className: 'btn btn-primary', href: '/', 'data-i18n': 'shell.forbidden.go' }),
      el('button', { id: 'forbidden-logout', type: 'button', className: 'btn btn-secondary', 'data-i18n': 'shell.logout' })));
  view.replaceChildren(form, forbidden);
  form.addEventListener('submit', signIn);
  $('forbidden-logout').addEventListener('click', signOut);
}

function setLoginError(key, params) {
  S.loginError = key ? [key, params || {}] : null;
  const box = $('login-error');
  box.textContent = key ? t(key, params) : '';
  box.hidden = !key;
}

/** Back to the sign-in form (signed out, or the session ended: `messageKey` says why). */
export function showSignIn(messageKey) {
  const wasIn = Boolean(S.me);
  S.me = null;
  if (wasIn && S.options.onSignedOut) {
    try { S.options.onSignedOut(); } catch (err) { console.error(err); }
  }
  $('login-form').hidden = false;
  $('login-forbidden').hidden = true;
  setView('login');
  let last = null;
  try { last = JSON.parse(readStore(LAST_LOGIN_KEY) || 'null'); } catch (_) { last = null; }
  if (last) {
    if (!$('login-tenant').value) $('login-tenant').value = last.tenant || '';
    if (!$('login-username').value) $('login-username').value = last.username || '';
  }
  setLoginError(messageKey || null);
  const first = ['login-tenant', 'login-username', 'login-password'].map($).find((input) => !input.value) || $('login-password');
  try { first.focus(); } catch (_) { /* not focusable yet */ }
}

async function signIn(event) {
  event.preventDefault();
  const tenant = $('login-tenant').value.trim();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  if (!tenant || !username || !password) { setLoginError('shell.login.missing'); return; }
  setLoginError(null);
  const submit = $('login-submit');
  submit.disabled = true;
  submit.textContent = t('shell.login.submitting');
  try {
    await api('POST', '/api/login', { tenant, username, password });
    writeStore(LAST_LOGIN_KEY, JSON.stringify({ tenant, username }));
    $('login-password').value = '';
    if (S.options.onSignIn) S.options.onSignIn();
    setView('loading');
    await enter();
  } catch (err) {
    if (!(err instanceof ApiError)) setLoginError('shell.error.network');
    else if (err.status === 401) setLoginError('shell.login.wrong');
    else if (err.status === 429) setLoginError('shell.error.too-many-attempts', { seconds: err.retryAfter ?? '' });
    else if (err.errorId === 'tenant-suspended') setLoginError('shell.error.tenant-suspended');
    else setLoginError('shell.login.failed', { status: err.status });
    $('login-password').select();
  } finally {
    submit.disabled = false;
    submit.textContent = t('shell.login.submit');
  }
}

async function signOut() {
  try { await api('POST', '/api/logout'); } catch (_) { /* the session is gone either way */ }
  showSignIn(null);
}

// ----------------------------------------------------------------- header

/** Fill #shell-header: brand, the role's pages, whatever the page put in it, tenant, user, language, log out. */
function buildHeader() {
  const header = $('shell-header');
  if (!header) return;
  header.classList.add('appbar', 'shell-header');
  let extra = header.querySelector(':scope > .shell-extra');
  if (!extra) {
    // What the page itself put in the header (connection state, tabs) keeps its place in the bar.
    extra = el('div', { className: 'shell-extra' }, ...header.childNodes);
  }
  const role = S.me.role;
  const nav = el('nav', { className: 'shell-nav', 'data-i18n-aria-label': 'shell.nav.label' },
    ...(NAV[role] || []).map((page) => el('a', {
      href: LANDING[page] || `/${page}`, className: 'shell-nav-link', 'data-nav': page, 'data-i18n': `shell.nav.${page}`,
      'aria-current': page === S.options.page ? 'page' : null,
    })));
  const user = S.me.user || {};
  header.replaceChildren(
    el('div', { className: 'appbar-brand' }, brand(), el('span', { className: 'brand-name', 'data-i18n': 'shell.brand' }),
      el('span', { id: 'tenant-name', className: 'tenant-name', text: (S.me.tenant && S.me.tenant.name) || '' })),
    nav,
    extra,
    el('div', { className: 'appbar-right' },
      el('div', { className: 'user-chip', id: 'user-chip' },
        el('span', { className: 'avatar', id: 'user-avatar', 'aria-hidden': 'true', text: (user.username || '?').slice(0, 1).toUpperCase() }),
        el('span', { id: 'user-name', text: user.username || '' })),
      langSelect('lang-select'),
      el('button', { id: 'btn-logout', type: 'button', className: 'btn btn-appbar', 'data-i18n': 'shell.logout' })),
  );
  $('btn-logout').addEventListener('click', () => {
    if (S.options.confirmSignOut && !S.options.confirmSignOut()) return;
    signOut();
  });
  translate(header);
}

/** What depends on the language but is not a data-i18n element: selects, the sign-in error, the title. */
function renderChrome() {
  for (const id of ['lang-select', 'login-lang']) if ($(id)) $(id).value = S.lang;
  if (S.loginError) setLoginError(...S.loginError);
  if (S.me && $('forbidden-text')) renderForbidden();
}

function renderForbidden() {
  $('forbidden-text').textContent = t('shell.forbidden.text', { role: t(`shell.role.${S.me.role}`) });
  $('forbidden-landing').href = LANDING[S.me.role] || '/';
}

// ----------------------------------------------------------------- start

/** Signed in (the session cookie works): the user's language, then the page or "not for your role". */
async function enter() {
  let me;
  try {
    me = await api('GET', '/api/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) { showSignIn(null); return; }
    if (err instanceof ApiError && err.errorId === 'tenant-suspended') { showSignIn('shell.error.tenant-suspended'); return; }
    setView('login');
    setLoginError(err instanceof ApiError ? 'shell.login.failed' : 'shell.error.network', { status: err.status });
    return;
  }
  S.me = me;
  const stored = normalise(me.user && me.user.locale);
  if (stored && stored !== S.lang) await setLanguage(stored, { store: false });
  else if (!stored && readStore(LANG_KEY)) {
    // Chosen before this user had a stored language (on the sign-in form): keep it for them.
    api('PATCH', '/api/me', { locale: S.lang }).catch(() => { /* an older node: local only */ });
  }
  if (!S.options.roles.includes(me.role)) {
    $('login-form').hidden = true;
    $('login-forbidden').hidden = false;
    renderForbidden();
    translate($('login-view'));
    setView('forbidden');
    return;
  }
  buildHeader();
  setView('app');
  await S.options.onReady(me);
}

/**
 * Start a page nobody signs in to (the visitors' chat panel): catalogues `['shell', ...catalogues]`
 * in `language` (any zh* is Chinese; none given: the browser's), then translate(). Resolves to the language.
 */
export async function startPublicPage({ language = null, catalogues = [] } = {}) {
  S.namespaces = ['shell', ...catalogues.filter((ns) => ns !== 'shell')];
  await loadCatalogues(normalise(language) || browserLang());
  translate();
  return S.lang;
}

/**
 * Start the page: catalogues `['shell', ...catalogues]` in the chosen language, then either the
 * sign-in form or, signed in with one of `roles`, the page (`onReady(me)`).
 * Options: page (the current nav entry), roles, catalogues, onReady, onSignedOut, and two the
 * softphone uses: onSignIn (runs within the click that signs in, e.g. to ask for notifications)
 * and confirmSignOut (false keeps the user signed in, e.g. during a call).
 */
export async function startPage(options) {
  S.options = { catalogues: [], ...options };
  S.namespaces = ['shell', ...S.options.catalogues.filter((ns) => ns !== 'shell')];
  await loadCatalogues(browserLang());
  buildSignIn();
  translate();
  renderChrome();
  await enter();
}
