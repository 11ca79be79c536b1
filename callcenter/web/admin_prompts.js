// Prompts: the tenant's uploaded recordings (WAV or MP3, converted by the node to 8 kHz), played
// in the page as callers hear them; a text-to-speech preview of what a flow's `tts` prompt says;
// and where each upload is used, found in the newest version of each flow.

import { api, t } from '/static/shell.js';
import { h, field, input, select, header, table, onSubmit, deleteButton, request, nameOf } from '/static/admin_ui.js';

const VOICES = ['zh', 'en', 'ko'];

/** Names of uploaded prompts a flow document plays ({"file": name} anywhere in it). */
function filesIn(node, found = new Set()) {
  if (Array.isArray(node)) node.forEach((x) => filesIn(x, found));
  else if (node && typeof node === 'object') {
    if (typeof node.file === 'string') found.add(node.file);
    Object.values(node).forEach((x) => filesIn(x, found));
  }
  return found;
}

export function create(root) {
  let prompts = [];
  let usedBy = new Map();  // prompt name -> [flow names]
  let previewUrl = null;
  const listBox = h('div', { id: 'prompts-list' });

  const upload = h('form', { id: 'prompt-upload', className: 'card form-grid', novalidate: true },
    h('h3', { i18n: 'admin.prompts.upload' }),
    field('admin.prompts.name', input('name', { id: 'prompt-name', required: true }), 'admin.common.name_hint'),
    field('admin.prompts.file', h('input', { type: 'file', name: 'file', id: 'prompt-file', accept: '.wav,.mp3,audio/wav,audio/mpeg', required: true })),
    h('div', { className: 'form-actions' }, h('button', { type: 'submit', className: 'btn btn-primary', i18n: 'admin.prompts.upload_submit' })));
  onSubmit(upload, async (data) => {
    const name = nameOf(upload);
    const body = new FormData();
    body.append('file', data.get('file'));
    await request('PUT', `/api/prompts/${encodeURIComponent(name)}`, body);
    upload.reset();
    await load();
  }, 'admin.prompts.uploaded');

  const player = h('audio', { id: 'tts-audio', controls: true, hidden: true });
  const tts = h('form', { id: 'tts-preview', className: 'card form-grid', novalidate: true },
    h('h3', { i18n: 'admin.prompts.tts' }),
    h('p', { className: 'muted', i18n: 'admin.prompts.tts_hint' }),
    field('admin.prompts.text', h('textarea', { name: 'text', id: 'tts-text', rows: '3', maxlength: '2000', required: true })),
    field('admin.prompts.voice', select('voice', [], 'zh', { id: 'tts-voice' })),
    h('div', { className: 'form-actions' }, h('button', { type: 'submit', className: 'btn btn-secondary', i18n: 'admin.prompts.tts_submit' })),
    player);
  onSubmit(tts, async (data) => {
    const reply = await request('POST', '/api/prompts/tts-preview', JSON.stringify({ text: data.get('text'), voice: data.get('voice') }),
      { 'Content-Type': 'application/json' });
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(await reply.blob());
    player.src = previewUrl;
    player.hidden = false;
    await player.play().catch(() => { /* autoplay refused: the controls are there */ });
  });

  root.replaceChildren(header('admin.prompts.title', 'admin.prompts.intro'), listBox, upload, tts);

  function render() {
    const voice = tts.elements.voice;
    const chosen = voice.value || 'zh';
    voice.replaceChildren(...VOICES.map((v) => h('option', { value: v, text: t(`admin.prompts.voice.${v}`) })));
    voice.value = chosen;
    listBox.replaceChildren(table(['admin.prompts.name', 'admin.prompts.listen', 'admin.prompts.used_in', ''], prompts.map((name) => {
      const flows = usedBy.get(name) || [];
      const cells = [h('span', { className: 'mono', text: name }),
        // preload none: the audio is fetched (with the session cookie) only when played
        h('audio', { controls: true, preload: 'none', src: `/api/prompts/${encodeURIComponent(name)}/audio`,
          'aria-label': t('admin.prompts.listen_to', { name }) }),
        flows.length ? h('span', {}, flows.map((f, i) => [i ? ', ' : '', h('a', { href: `#flows/${encodeURIComponent(f)}`, text: f })]))
          : h('span', { className: 'muted', i18n: 'admin.prompts.unused' }),
        deleteButton(name, async () => { await api('DELETE', `/api/prompts/${encodeURIComponent(name)}`); await load(); })];
      cells.key = name;
      return cells;
    }), 'admin.prompts.empty', { id: 'prompts-table' }));
  }

  async function load() {
    const [names, flows] = await Promise.all([api('GET', '/api/prompts'), api('GET', '/api/flows')]);
    const documents = await Promise.all(flows.filter((f) => f.latest_version !== null)
      .map(async (f) => [f.name, await api('GET', `/api/flows/${encodeURIComponent(f.name)}`)]));
    usedBy = new Map();
    for (const [flow, doc] of documents) {
      for (const name of filesIn(doc)) usedBy.set(name, [...(usedBy.get(name) || []), flow]);
    }
    prompts = names;
    render();
  }

  return { load, render };
}
