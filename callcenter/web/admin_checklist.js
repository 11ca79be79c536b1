// The landing section: Amazon Connect's day-one setup order, each step done or not as the API
// lists say today (nothing is stored about the checklist itself), each linking to its section.

import { api, t } from '/static/shell.js';
import { h, header } from '/static/admin_ui.js';

/** Step id, the section it links to, and whether it is done given the fetched lists. */
const STEPS = [
  ['number', 'numbers', (d) => d.numbers.length > 0],
  ['hours', 'calendars', (d) => Object.keys(d.calendars).length > 0],
  ['prompts', 'prompts', (d) => d.prompts.length > 0],
  ['queues', 'queues', (d) => d.queues.length > 0],
  ['agents', 'agents', (d) => d.agents.length > 0],
  ['flow', 'flows', (d) => d.numbers.some((n) => n.flow_version_id !== null)],
  ['recording', 'recording', (d) => recordsSomething(d.recording.recording_policy)],
  // A test call: a call record on one of the tenant's own numbers (any outcome: it reached us), or
  // a test call from the flow editor (caller "test-call", callcenter/flow_test_calls.py).
  ['test_call', 'flows', (d) => d.calls.some((c) => c.caller === 'test-call'
    || d.numbers.some((n) => n.number === c.dialed))],
];

function recordsSomething(policy) {
  if (!policy) return false;
  return policy.mode !== 'none' || Object.values(policy.queues || {}).some((rule) => rule.mode !== 'none');
}

export function create(root) {
  let data = null;
  const list = h('ol', { className: 'checklist', id: 'checklist' });
  const progress = h('p', { className: 'checklist-progress', id: 'checklist-progress' });
  root.replaceChildren(header('admin.checklist.title', 'admin.checklist.intro'), progress, list);

  function render() {
    if (!data) return;
    const done = STEPS.map(([, , test]) => test(data));
    progress.textContent = t('admin.checklist.progress', { done: done.filter(Boolean).length, total: STEPS.length });
    list.replaceChildren(...STEPS.map(([id, section], i) => h('li', {
      className: done[i] ? 'done' : 'todo', 'data-step': id, 'data-done': String(done[i]),
    },
      h('span', { className: 'check-mark', 'aria-hidden': 'true', text: done[i] ? '✓' : String(i + 1) }),
      h('div', { className: 'check-body' },
        h('a', { href: `#${section}`, text: t(`admin.checklist.${id}`) }),
        h('p', { className: 'muted', text: t(`admin.checklist.${id}_hint`) })),
      h('span', { className: 'chip', text: t(done[i] ? 'admin.checklist.done' : 'admin.checklist.todo') }))));
  }

  async function load() {
    const [numbers, calendars, prompts, queues, agents, recording, calls] = await Promise.all([
      api('GET', '/api/numbers'), api('GET', '/api/calendars'), api('GET', '/api/prompts'),
      api('GET', '/api/queues'), api('GET', '/api/agents'), api('GET', '/api/recording-settings'),
      api('GET', '/api/calls?limit=1000')]);
    data = { numbers, calendars, prompts, queues, agents, recording, calls };
    render();
  }

  return { load, render };
}
