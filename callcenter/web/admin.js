// The tenant admin console (/admin): a left nav of sections, the URL hash (#queues, #flows/<name>)
// selects one. Each section is its own module (admin_<name>.js), imported the first time it is
// shown, exporting create(root, ctx) -> {load, render}: load() fetches and renders (run on every
// visit, so a section never shows stale data after another one changed it), render() redraws from
// what was fetched (run on a language change). The flow editor (admin_flows.js) is another
// worker's module with its own entry point, mountFlows(root, {me}), mounted once.

import { startPage, onLanguageChange, showError, hideToast } from '/static/shell.js';

const SECTIONS = ['checklist', 'numbers', 'calendars', 'prompts', 'queues', 'agents', 'users', 'flows',
  'dispositions', 'chat', 'faq', 'canned', 'survey', 'recording', 'trunks', 'audit'];
const DEFAULT = 'checklist';

// section name -> promise of {load, render} (flows: of null, it renders itself); a promise, so that
// a second visit while the first is still importing does not mount the section twice
const mounted = new Map();
let me = null;
let showing = null;

function sectionOf(hash) {
  const name = decodeURIComponent(hash.replace(/^#/, '')).split('/')[0];
  return SECTIONS.includes(name) ? name : DEFAULT;
}

async function mount(name, root) {
  if (name === 'flows') {
    const flows = await import('/static/admin_flows.js');
    await flows.mountFlows(root, { me });
    return null;
  }
  const module = await import(`/static/admin_${name}.js`);
  return module.create(root, { me });
}

async function show(name) {
  showing = name;
  for (const link of document.querySelectorAll('.console-nav [data-section]')) {
    if (link.dataset.section === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const root = document.getElementById(`section-${name}`);
  root.setAttribute('aria-busy', 'true');  // until its data is in (tests wait for it too)
  for (const section of SECTIONS) document.getElementById(`section-${section}`).hidden = section !== name;
  try {
    if (!mounted.has(name)) mounted.set(name, mount(name, root));
    const section = await mounted.get(name);
    if (section && showing === name) await section.load();
  } catch (err) {
    // a failed import is tried again on the next visit (a failed load() just shows its error)
    mounted.get(name)?.catch(() => mounted.delete(name));
    showError(err);
  } finally {
    root.removeAttribute('aria-busy');
  }
}

async function onReady(user) {
  me = user;
  await show(sectionOf(location.hash));
}

/** Signed out: the next admin (maybe of another tenant) starts from empty sections. */
function onSignedOut() {
  me = null;
  mounted.clear();
  for (const section of SECTIONS) document.getElementById(`section-${section}`).replaceChildren();
}

window.addEventListener('hashchange', () => { if (me) show(sectionOf(location.hash)); });
// A click on the link of the section shown changes no hash (no hashchange): it reloads the section,
// as a person expects after something changed elsewhere (a test call, another admin's edit).
document.querySelector('.console-nav').addEventListener('click', (event) => {
  const link = event.target.closest('[data-section]');
  if (me && link && location.hash === link.getAttribute('href')) show(link.dataset.section);
});
onLanguageChange(() => {
  hideToast();  // a passing "Saved." in the old language
  for (const pending of mounted.values()) pending.then((section) => section && section.render(), () => {});
});
startPage({ page: 'admin', roles: ['admin'], catalogues: ['admin'], onReady, onSignedOut });
