// Business-hours calendars: weekly hours per day, a time zone, holidays (closed all day) and
// special days (their own hours). A calendar is edited as a whole and saved with one PUT, which
// the server checks (ivr/calendar.py); its complaints come back next to the day or date.

import { api, t } from '/static/shell.js';
import { h, field, input, select, header, table, onSubmit, button, deleteButton, nameOf, FieldProblem } from '/static/admin_ui.js';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const WORKDAY = ['09:00-18:00'];
/** The shape of a range; the server checks the rest (25:00, equal ends) and says so next to the field. */
const RANGE = /^\d{2}:\d{2}-\d{2}:\d{2}$/;

/** The IANA zones the browser knows, the usual one for our tenants first. */
function zones(current) {
  const all = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return [...new Set([current, 'Asia/Shanghai', ...all, 'UTC'])].filter(Boolean);
}

/** "09:00-12:00, 13:00-18:00" <-> ["09:00-12:00", "13:00-18:00"] (an empty text is closed). */
const rangesText = (ranges) => (ranges || []).join(', ');
const rangesOf = (text) => text.split(/[,，\s]+/).map((s) => s.trim()).filter(Boolean);

export function create(root, { me }) {
  let calendars = {};
  let editing = null;  // {name, isNew, draftName, definition}: kept across re-renders of the form
  const listBox = h('div', { id: 'calendars-list' });
  const editor = h('div', { id: 'calendar-editor' });
  const newButton = button('admin.calendars.new', () => edit(null), 'btn btn-primary', { id: 'calendar-new' });
  root.replaceChildren(header('admin.calendars.title', 'admin.calendars.intro', newButton), listBox, editor);

  function edit(name) {
    const tz = (me.tenant && me.tenant.timezone) || 'Asia/Shanghai';
    const definition = name ? structuredClone(calendars[name])
      : { timezone: tz, weekly: Object.fromEntries(DAYS.slice(0, 5).map((d) => [d, WORKDAY])), holidays: [], special: {} };
    editing = { name, isNew: !name, draftName: '', definition };
    renderEditor();
    editor.querySelector('input, select').focus();
  }

  function dateList() {
    const d = editing.definition;
    const holidays = [...d.holidays].sort().map((date) => {
      const cells = [h('span', { className: 'mono', text: date }), button('admin.common.remove', () => {
        d.holidays = d.holidays.filter((x) => x !== date);
        renderEditor();
      }, 'btn btn-secondary btn-sm', { 'aria-label': t('admin.calendars.remove_date', { date }) })];
      cells.key = date;
      return cells;
    });
    const special = Object.keys(d.special).sort().map((date) => {
      const hours = input(`special.${date}`, { value: rangesText(d.special[date]), placeholder: t('admin.calendars.closed'),
        'aria-label': t('admin.calendars.hours_on', { date }) });
      hours.addEventListener('input', () => { d.special[date] = rangesOf(hours.value); });
      const cells = [h('span', { className: 'mono', text: date }), h('div', {}, hours, h('span', { className: 'field-error', hidden: true })),
        button('admin.common.remove', () => { delete d.special[date]; renderEditor(); }, 'btn btn-secondary btn-sm',
          { 'aria-label': t('admin.calendars.remove_date', { date }) })];
      cells.key = date;
      return cells;
    });
    return { holidays, special };
  }

  function renderEditor() {
    if (!editing) { editor.replaceChildren(); return; }
    const d = editing.definition;
    const weekly = DAYS.map((day) => {
      const hours = input(`weekly.${day}`, { value: rangesText(d.weekly[day]), placeholder: t('admin.calendars.closed'),
        'aria-label': t('admin.calendars.hours_on', { date: t(`admin.calendars.day.${day}`) }) });
      hours.addEventListener('input', () => { d.weekly[day] = rangesOf(hours.value); });
      return [h('span', { i18n: `admin.calendars.day.${day}` }), h('div', {}, hours, h('span', { className: 'field-error', hidden: true }))];
    });
    const { holidays, special } = dateList();
    const holidayDate = h('input', { type: 'date', id: 'holiday-date', name: 'holiday' });
    const specialDate = h('input', { type: 'date', id: 'special-date', name: 'special_date' });
    const specialHours = input('special_hours', { id: 'special-hours', placeholder: t('admin.calendars.closed') });
    const form = h('form', { id: 'calendar-form', className: 'card', novalidate: true },
      h('h3', { text: editing.isNew ? t('admin.calendars.new') : t('admin.calendars.editing', { name: editing.name }) }),
      h('div', { className: 'form-grid' },
        editing.isNew ? field('admin.calendars.name', input('name', { id: 'calendar-name', required: true,
          value: editing.draftName, on: { input: (e) => { editing.draftName = e.target.value; } } }), 'admin.common.name_hint') : null,
        field('admin.calendars.timezone', select('timezone', zones(d.timezone).map((z) => ({ value: z, label: z })), d.timezone,
          { id: 'calendar-timezone', on: { change: (e) => { d.timezone = e.target.value; } } }))),
      h('h4', { i18n: 'admin.calendars.weekly' }),
      h('p', { className: 'muted', i18n: 'admin.calendars.weekly_hint' }),
      table(['admin.calendars.day', 'admin.calendars.hours'], weekly, 'admin.common.empty', { className: 'data-table compact', id: 'calendar-weekly' }),
      h('h4', { i18n: 'admin.calendars.holidays' }),
      table(['admin.calendars.date', ''], holidays, 'admin.calendars.no_holidays', { className: 'data-table compact', id: 'calendar-holidays' }),
      h('div', { className: 'inline' }, field('admin.calendars.holiday_date', holidayDate),
        button('admin.calendars.add_holiday', () => {
          if (!holidayDate.value) return;
          if (!d.holidays.includes(holidayDate.value)) d.holidays.push(holidayDate.value);
          renderEditor();
          document.getElementById('holiday-date').focus();
        }, 'btn btn-secondary', { id: 'holiday-add' })),
      h('h4', { i18n: 'admin.calendars.special' }),
      h('p', { className: 'muted', i18n: 'admin.calendars.special_hint' }),
      table(['admin.calendars.date', 'admin.calendars.hours', ''], special, 'admin.calendars.no_special', { className: 'data-table compact', id: 'calendar-special' }),
      h('div', { className: 'inline' }, field('admin.calendars.special_date', specialDate), field('admin.calendars.hours', specialHours),
        button('admin.calendars.add_special', () => {
          if (!specialDate.value) return;
          d.special[specialDate.value] = rangesOf(specialHours.value);
          renderEditor();
          document.getElementById('special-date').focus();
        }, 'btn btn-secondary', { id: 'special-add' })),
      h('div', { className: 'form-actions' },
        button('admin.common.cancel', () => { editing = null; renderEditor(); }),
        h('button', { type: 'submit', className: 'btn btn-primary', id: 'calendar-save', i18n: 'admin.common.save' })));
    onSubmit(form, async (data) => {
      const name = editing.isNew ? nameOf(form) : editing.name;
      for (const control of form.querySelectorAll('[name^="weekly."], [name^="special."]')) {
        if (!rangesOf(control.value).every((r) => RANGE.test(r))) throw new FieldProblem(control, t('admin.calendars.bad_range'));
      }
      const body = { ...d, timezone: data.get('timezone'),
        weekly: Object.fromEntries(Object.entries(d.weekly).filter(([, ranges]) => ranges.length)) };
      await api('PUT', `/api/calendars/${encodeURIComponent(name)}`, body);
      editing = null;
      await load();
    }, 'admin.common.saved');
    editor.replaceChildren(form);
  }

  function render() {
    const rows = Object.entries(calendars).sort(([a], [b]) => a.localeCompare(b)).map(([name, c]) => {
      const open = DAYS.filter((day) => (c.weekly[day] || []).length).map((day) => t(`admin.calendars.day.${day}`)).join(' ');
      const cells = [h('span', { className: 'mono', text: name }), c.timezone, open || t('admin.calendars.closed'),
        t('admin.calendars.count_dates', { holidays: c.holidays.length, special: Object.keys(c.special).length }),
        h('div', { className: 'inline' }, button('admin.common.edit', () => edit(name), 'btn btn-secondary btn-sm',
          { 'aria-label': t('admin.common.edit_named', { name }) }),
        deleteButton(name, async () => {
          await api('DELETE', `/api/calendars/${encodeURIComponent(name)}`);
          if (editing && editing.name === name) editing = null;
          await load();
        }))];
      cells.key = name;
      return cells;
    });
    listBox.replaceChildren(table(['admin.calendars.name', 'admin.calendars.timezone', 'admin.calendars.open_days',
      'admin.calendars.dates', ''], rows, 'admin.calendars.empty', { id: 'calendars-table' }));
    renderEditor();
  }

  async function load() {
    calendars = await api('GET', '/api/calendars');
    render();
  }

  return { load, render };
}
