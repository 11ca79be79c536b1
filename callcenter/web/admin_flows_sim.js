// The simulator panel: typed keys, typed speech, a date and time, mocked answers of the http
// nodes; runs POST /api/flows/simulate on the draft and lists the steps (what the caller heard,
// typed or said, the branch taken), then hands the path to the graph to highlight.

import { api, showError } from '/static/shell.js';
import { h, t, button, allNodes, branchLabel, retranslate } from '/static/admin_flows_util.js';

/** The panel; ctx: {doc(), select(id), showPath(path)}. Returns {element, render(), reset()}. */
export function simulatorPanel(ctx) {
  const keys = h('input', { type: 'text', id: 'sim-keys', autocomplete: 'off', placeholder: '1, 2' });
  const speech = h('textarea', { id: 'sim-speech', rows: 2 });
  const when = h('input', { type: 'datetime-local', id: 'sim-at', step: 60 });
  const mocks = h('div', { className: 'sim-mocks' });
  const output = h('div', { id: 'sim-output', 'aria-live': 'polite' });
  const mockValues = {};  // http node id -> {status, body}
  let last = null;

  function label(key, control, hintKey) {
    return h('label', { className: 'field' }, h('span', { className: 'field-label', 'data-t': key, text: t(key) }), control,
      hintKey ? h('span', { className: 'muted sim-hint', 'data-t': hintKey, text: t(hintKey) }) : null);
  }

  function renderMocks() {
    const http = allNodes(ctx.doc()).filter(({ node }) => node.type === 'http').map(({ node }) => node.id);
    mocks.replaceChildren(...http.map((id) => {
      const value = mockValues[id] || (mockValues[id] = { status: 200, body: '{}' });
      return h('fieldset', { className: 'sim-mock' }, h('legend', { text: t('flows.sim.mock', { node: id }) }),
        label('flows.sim.status', h('input', { type: 'number', min: 100, max: 599, value: value.status, 'data-mock-status': id,
          on: { input: (e) => { value.status = Number(e.target.value); } } })),
        label('flows.sim.body', h('textarea', { rows: 2, value: value.body, 'data-mock-body': id,
          on: { input: (e) => { value.body = e.target.value; } } })));
    }));
  }

  async function run() {
    const body = {
      document: ctx.doc(),
      keys: keys.value.trim() === '' ? [] : keys.value.split(',').map((s) => s.trim()),
      speech: speech.value.split('\n').map((s) => s.trim()).filter(Boolean),
      http: {},
    };
    if (when.value) body.at = when.value.length === 16 ? `${when.value}:00` : when.value;
    for (const { node } of allNodes(body.document).filter(({ node: n }) => n.type === 'http')) {
      const mock = mockValues[node.id];
      if (!mock) continue;
      try {
        body.http[node.id] = { status: mock.status || 200, body: mock.body.trim() ? JSON.parse(mock.body) : null };
      } catch (_) {
        showError(t('flows.sim.bad_json', { node: node.id }));
        return;
      }
    }
    try {
      last = await api('POST', '/api/flows/simulate', body);
    } catch (err) {
      last = null;
      showError(err);
      ctx.showPath([]);
      return;
    }
    render();
    ctx.showPath(last.path);
  }

  function heard(item) {
    if (item.tts) return `“${item.tts}”`;
    if (item.file) return t('flows.sim.heard_file', { name: item.file });
    return t('flows.sim.heard_tone');
  }

  function said(input) {
    if (input.key !== undefined) return t('flows.sim.typed_key', { key: input.key });
    if (input.digits !== undefined) return t('flows.sim.typed_digits', { digits: input.digits });
    return t('flows.sim.said', { text: input.speech, phrase: input.phrase || '—' });
  }

  function resultText(result) {
    if (!result) return '';
    if (result.kind === 'queue') {
      return t(result.configured ? 'flows.sim.result_queue' : 'flows.sim.result_queue_unknown', {
        queue: result.queue, priority: result.priority, skill: result.skill, level: result.min_proficiency,
        strategy: result.strategy ? t(`flows.strategy.${result.strategy}`) : '' });
    }
    const key = `flows.sim.result_${result.kind.replace(/\W/g, '_')}`;
    const text = t(key, { number: result.number || '', reason: result.reason || '' });
    return text === key ? result.text : text;
  }

  function render() {
    if (!last) { output.replaceChildren(); return; }
    const steps = last.steps.map((step, i) => h('li', { className: 'sim-step', 'data-step': step.node },
      h('div', { className: 'sim-step-head' },
        button(step.node, () => ctx.select(step.node), 'link-button mono', { 'aria-label': t('flows.sim.goto', { node: step.node }) }),
        h('span', { className: 'muted', text: ` ${t(`flows.type.${step.type}`)}` }),
        step.exit && i < last.steps.length - 1
          ? h('span', { className: 'sim-branch', text: ` → ${step.branch ? branchLabel(step.branch) + ': ' : ''}${step.exit}` }) : null),
      step.heard.length ? h('div', { className: 'sim-heard', text: `${t('flows.sim.heard')}: ${step.heard.map(heard).join(' · ')}` }) : null,
      step.inputs.length ? h('div', { className: 'sim-input', text: step.inputs.map(said).join(' · ') }) : null));
    const unused = [...last.unused.keys.map((k) => t('flows.sim.typed_key', { key: k })), ...last.unused.speech];
    output.replaceChildren(...[
      h('h4', { text: t('flows.sim.path') }),
      h('ol', { className: 'sim-steps' }, steps),
      last.result ? h('p', { id: 'sim-result', className: 'sim-result', text: resultText(last.result) }) : null,
      last.error ? h('p', { id: 'sim-error', className: 'sim-error', role: 'alert',
        text: t(`flows.sim.error_${last.error.code.replace(/-/g, '_')}`, { node: last.error.node || '' }) }) : null,
      unused.length ? h('p', { className: 'muted', text: t('flows.sim.unused', { inputs: unused.join(', ') }) }) : null,
    ].filter(Boolean));
  }

  const element = h('section', { className: 'flows-card sim-panel', 'aria-labelledby': 'sim-title' },
    h('h3', { id: 'sim-title', 'data-t': 'flows.sim.title', text: t('flows.sim.title') }),
    h('div', { className: 'sim-inputs' },
      label('flows.sim.keys', keys, 'flows.sim.keys_hint'),
      label('flows.sim.speech', speech, 'flows.sim.speech_hint'),
      label('flows.sim.at', when, 'flows.sim.at_hint')),
    mocks,
    button(t('flows.sim.run'), run, 'btn btn-primary', { id: 'sim-run', 'data-t': 'flows.sim.run' }),
    output);

  return {
    element,
    render() {
      retranslate(element);
      renderMocks();
      render();
    },
    docChanged: renderMocks,
    reset() { last = null; render(); ctx.showPath([]); },
  };
}
