// Numbers: the tenant's dialed numbers, each with its description and the IVR flow live on it.
// A flow is put on a number by publishing one of its stored versions there (POST
// /api/flows/{name}/publish); a number without a flow answers as a line test.

import { api, t, showError, toast } from '/static/shell.js';
import { h, field, input, select, setOptions, header, table, onSubmit, deleteButton } from '/static/admin_ui.js';

const NO_FLOW = '';

/** "name@version" for each flow's newest version, plus the version a number runs when older. */
function flowChoices(flows, running) {
  const items = flows.filter((f) => f.latest_version !== null)
    .map((f) => ({ value: `${f.name}@${f.latest_version}`, label: t('admin.numbers.flow_version', { name: f.name, version: f.latest_version }) }));
  if (running && !items.some((item) => item.value === running)) {
    const [name, version] = running.split('@');
    items.push({ value: running, label: t('admin.numbers.flow_version', { name, version }) });
  }
  return items;
}

export function create(root) {
  let numbers = [];
  let flows = [];
  const listBox = h('div', { id: 'numbers-list' });
  const addFlow = select('flow', [], NO_FLOW, { id: 'number-add-flow' });
  const form = h('form', { id: 'number-add', className: 'card form-grid', novalidate: true },
    h('h3', { i18n: 'admin.numbers.add' }),
    field('admin.numbers.number', input('number', { id: 'number-add-number', inputmode: 'numeric', required: true })),
    field('admin.numbers.description', input('description', { id: 'number-add-description' })),
    field('admin.numbers.flow', addFlow),
    h('div', { className: 'form-actions' }, h('button', { type: 'submit', className: 'btn btn-primary', i18n: 'admin.numbers.add_submit' })));
  root.replaceChildren(header('admin.numbers.title', 'admin.numbers.intro'), listBox, form);

  onSubmit(form, async (data) => {
    const created = await api('POST', '/api/numbers', { number: data.get('number').trim(), description: data.get('description').trim() });
    if (data.get('flow')) await publish(data.get('flow'), created.number);
    form.reset();
    await load();
  }, 'admin.numbers.added');

  async function publish(choice, number) {
    const [name, version] = choice.split('@');
    await api('POST', `/api/flows/${encodeURIComponent(name)}/publish`, { version: Number(version), number });
  }

  /** The "name@version" a number runs, from the flows' published lists. */
  function runningOn(number) {
    for (const f of flows) {
      const hit = f.published.find((p) => p.number === number.number);
      if (hit) return `${f.name}@${hit.version}`;
    }
    return NO_FLOW;
  }

  function row(number) {
    const running = runningOn(number);
    const none = running ? [] : [{ value: NO_FLOW, label: t('admin.numbers.no_flow') }];
    const flowSelect = select('flow', [...none, ...flowChoices(flows, running)], running,
      { 'aria-label': t('admin.numbers.flow_of', { number: number.number }) });
    flowSelect.addEventListener('change', async () => {
      try {
        await publish(flowSelect.value, number.number);
        toast(t('admin.numbers.published', { number: number.number }), 'info', 3000);
        await load();
      } catch (err) { showError(err); flowSelect.value = running; }
    });
    const description = input('description', { value: number.description, 'aria-label': t('admin.numbers.description_of', { number: number.number }) });
    description.addEventListener('change', async () => {
      try {
        await api('PATCH', `/api/numbers/${number.id}`, { description: description.value.trim() });
        toast(t('admin.common.saved'), 'info', 2000);
      } catch (err) { showError(err); }
    });
    const flowLink = running ? h('a', { href: `#flows/${encodeURIComponent(running.split('@')[0])}`, i18n: 'admin.numbers.open_flow' }) : null;
    const cells = [h('span', { className: 'mono', text: number.number }), description, h('div', { className: 'inline' }, flowSelect, flowLink),
      deleteButton(number.number, async () => { await api('DELETE', `/api/numbers/${number.id}`); await load(); })];
    cells.key = number.number;
    return cells;
  }

  function render() {
    listBox.replaceChildren(table(['admin.numbers.number', 'admin.numbers.description', 'admin.numbers.flow', ''],
      numbers.map(row), 'admin.numbers.empty', { id: 'numbers-table' }));
    setOptions(addFlow, [{ value: NO_FLOW, label: t('admin.numbers.no_flow') }, ...flowChoices(flows, null)]);
  }

  async function load() {
    [numbers, flows] = await Promise.all([api('GET', '/api/numbers'), api('GET', '/api/flows')]);
    render();
  }

  return { load, render };
}
