// Versions of a flow and where they are live: the draft's differences from the published version,
// publish on a number, roll back (publish an older version), open a version as the draft, export
// (JSON or YAML download) and import (upload -> validated -> a new version).

import { api, ApiError, showError, toast, formatTime } from '/static/shell.js';
import { h, t, button } from '/static/admin_flows_util.js';

/** Node ids added, removed and changed between two documents (properties left at their schema
 *  default count as absent, as the server stores them), and which flow settings changed. */
export function diffDocs(draft, base, defaults) {
  const index = (doc) => {
    const out = new Map();
    const put = (node, section) => out.set(node.id, { ...withoutDefaults(node, defaults[node.type] || {}), section });
    for (const node of doc.nodes || []) put(node, '');
    for (const [name, sub] of Object.entries(doc.subflows || {})) for (const node of sub.nodes || []) put(node, name);
    return out;
  };
  const a = index(draft);
  const b = index(base);
  const same = (x, y) => canonical(x) === canonical(y);
  const flowDefaults = { voice: 'en', description: '' };
  return {
    added: [...a.keys()].filter((id) => !b.has(id)),
    removed: [...b.keys()].filter((id) => !a.has(id)),
    changed: [...a.keys()].filter((id) => b.has(id) && !same(a.get(id), b.get(id))),
    settings: ['start', 'voice', 'description'].filter((k) => (draft[k] ?? flowDefaults[k]) !== (base[k] ?? flowDefaults[k])),
  };
}

function withoutDefaults(node, defaults) {
  return Object.fromEntries(Object.entries(node).filter(([k, v]) => !(k in defaults) || canonical(v) !== canonical(defaults[k])));
}

function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).filter((k) => value[k] !== undefined && value[k] !== null).sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(typeof value[k] === 'string' && k === 'prompt' ? { tts: value[k] } : value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The published version to compare the draft with: the newest version live on a number. */
export function publishedVersion(info) {
  const live = (info?.versions || []).filter((v) => v.published_on.length);
  return live.length ? live[live.length - 1].version : null;
}

/** The panel; ctx: {name(), doc(), defaults: {node type: {property: default}}, saved(): the version the
 *  draft was saved as or null, hasErrors(), saveDraft(): version, open(version), published()}. */
export function versionsPanel(ctx) {
  const element = h('section', { className: 'flows-card versions-panel', 'aria-labelledby': 'versions-title' });
  let info = null;
  let published = null;  // {version, doc}

  async function load() {
    info = await api('GET', `/api/flows/${encodeURIComponent(ctx.name())}/versions`).catch(async (err) => {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
      const numbers = await api('GET', '/api/numbers');  // a new flow: nothing stored yet
      return { versions: [], numbers: numbers.map((n) => ({ number: n.number, description: n.description, flow: null, version: null })) };
    });
    const version = publishedVersion(info);
    published = version ? { version, doc: await api('GET', `/api/flows/${encodeURIComponent(ctx.name())}?version=${version}`) } : null;
    render();
  }

  async function publish(version, number) {
    try {
      await api('POST', `/api/flows/${encodeURIComponent(ctx.name())}/publish`, { version, number });
      toast(t('flows.published', { version, number }), 'success', 4000);
      await Promise.all([load(), ctx.published()]);
    } catch (err) { showError(err); }
  }

  async function publishDraft(number) {
    if (ctx.hasErrors()) { showError(t('flows.publish_blocked')); return; }
    const version = ctx.saved() ?? await ctx.saveDraft();
    if (version) await publish(version, number);
  }

  function numberSelect(id) {
    const numbers = info?.numbers || [];
    return h('select', { id, 'aria-label': t('flows.number') }, numbers.map((n) => h('option', { value: n.number,
      text: `${n.number}${n.description ? ` (${n.description})` : ''}${n.flow ? ` · ${n.flow} v${n.version}` : ''}` })));
  }

  function diffView() {
    if (!published) return h('p', { className: 'muted', id: 'flows-diff', text: t('flows.diff.unpublished') });
    const d = diffDocs(ctx.doc(), published.doc, ctx.defaults);
    const rows = [['added', d.added], ['removed', d.removed], ['changed', d.changed], ['settings', d.settings]]
      .filter(([, ids]) => ids.length)
      .map(([kind, ids]) => h('li', { className: `diff-${kind}` }, h('strong', { text: `${t(`flows.diff.${kind}`)}: ` }),
        h('span', { className: 'mono', text: ids.join(', ') })));
    return h('div', { id: 'flows-diff' }, h('h4', { text: t('flows.diff.title', { version: published.version }) }),
      rows.length ? h('ul', { className: 'diff-list' }, rows) : h('p', { className: 'muted', text: t('flows.diff.none') }));
  }

  function render() {
    const blocked = ctx.hasErrors();
    const target = numberSelect('flows-publish-number');
    const live = new Map((info?.numbers || []).filter((n) => n.flow === ctx.name()).map((n) => [n.number, n.version]));
    const actions = [];  // [button, version]: "roll back" when older than what is live on the chosen number
    const relabel = () => {
      for (const [act, version] of actions) act.textContent = t((live.get(target.value) ?? 0) > version ? 'flows.rollback' : 'flows.publish_version');
    };
    target.addEventListener('change', relabel);
    const versions = (info?.versions || []).slice().reverse().map((v) => {
      const act = button('', () => publish(v.version, target.value), 'btn btn-secondary btn-small', { 'data-publish-version': v.version });
      actions.push([act, v.version]);
      return h('tr', { 'data-version': v.version },
        h('td', { className: 'mono', text: `v${v.version}` }),
        h('td', { text: `${formatTime(v.created_at, { date: true })}${v.created_by ? ` · ${v.created_by}` : ''}` }),
        h('td', { text: v.published_on.join(', ') || '—' }),
        h('td', { className: 'versions-actions' }, button(t('flows.open_version'), () => ctx.open(v.version), 'btn btn-secondary btn-small'),
          ['json', 'yaml'].map((format) => h('a', { className: 'btn btn-secondary btn-small', text: format.toUpperCase(),
            download: `${ctx.name()}-v${v.version}.${format}`, 'aria-label': t('flows.download', { version: v.version, format: format.toUpperCase() }),
            href: `/api/flows/${encodeURIComponent(ctx.name())}?version=${v.version}&format=${format}` })),
          info.numbers.length ? act : null));
    });
    relabel();
    element.replaceChildren(...[
      h('h3', { id: 'versions-title', text: t('flows.versions') }),
      diffView(),
      h('div', { className: 'flows-publish' },
        (info?.numbers || []).length ? [h('label', { className: 'field' }, h('span', { className: 'field-label', text: t('flows.publish_on') }), target),
          button(t('flows.publish'), () => publishDraft(target.value), 'btn btn-primary', { id: 'flows-publish', disabled: blocked })]
          : h('p', { className: 'muted', text: t('flows.no_numbers') }),
        blocked ? h('p', { className: 'flows-blocked', role: 'status', text: t('flows.publish_blocked') }) : null),
      versions.length ? h('table', { className: 'flow-table versions-table' },
        h('thead', {}, h('tr', {}, ['version', 'saved', 'live_on', 'actions'].map((k) => h('th', { text: t(`flows.col.${k}`) })))),
        h('tbody', {}, versions)) : h('p', { className: 'muted', text: t('flows.no_versions') }),
    ].filter(Boolean));
  }

  return { element, load, render, info: () => info };
}

/** Read a JSON or YAML file and store it as a new version (the server validates it). */
export async function importFile(file) {
  const text = await file.text();
  const yaml = /\.ya?ml$/i.test(file.name);
  const reply = await fetch('/api/flows', { method: 'POST', credentials: 'same-origin', body: text,
    headers: { 'Content-Type': yaml ? 'application/yaml' : 'application/json', Accept: 'application/json' } });
  const data = await reply.json().catch(() => null);
  if (!reply.ok) throw new ApiError(reply.status, data);
  return data;
}

/** Download the draft as it is now (JSON). */
export function exportDraft(doc) {
  const blob = new Blob([JSON.stringify(doc, null, 2)], { type: 'application/json' });
  const link = h('a', { href: URL.createObjectURL(blob), download: `${doc.name || 'flow'}-draft.json` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}
