// Satisfaction after calls: the flow a caller goes on to when the agent hangs up (a survey, with a
// `survey` node that stores the rating), or none. PATCH /api/tenant {survey_flow}; the tenant's
// flows from GET /api/flows (the newest version of the one picked runs).

import { api, t } from '/static/shell.js';
import { h, field, select, header, onSubmit } from '/static/admin_ui.js';

export function create(root) {
  let tenant = null;
  let flows = [];
  const form = h('form', { id: 'survey-form', className: 'card', novalidate: true });
  root.replaceChildren(header('admin.survey.title', 'admin.survey.intro'), form);

  function render() {
    if (!tenant) return;
    const items = [{ value: '', label: t('admin.survey.none') }, ...flows.map((f) => ({ value: f.name, label: f.name }))];
    form.replaceChildren(
      h('div', { className: 'form-grid' },
        field('admin.survey.flow', select('survey_flow', items, tenant.survey_flow || '', { id: 'survey-flow' }),
          'admin.survey.flow_hint')),
      h('p', { className: 'muted', i18n: 'admin.survey.variables' }),
      h('div', { className: 'form-actions' },
        h('button', { type: 'submit', className: 'btn btn-primary', id: 'survey-save', i18n: 'admin.common.save' })));
  }

  onSubmit(form, async (data) => {
    tenant = await api('PATCH', '/api/tenant', { survey_flow: data.get('survey_flow') || null });
    render();
  }, 'admin.common.saved');

  async function load() {
    [tenant, flows] = await Promise.all([api('GET', '/api/tenant'), api('GET', '/api/flows')]);
    render();
  }

  return { load, render };
}
