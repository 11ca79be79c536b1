// Supervisor wallboard: today's charts per hour (inline SVG, no library), for all queues or one.
//
// It waits for the wallboard's app view (the page shell signs in and sets body[data-view="app"])
// and the socket's first snapshot in window.wallboard.snap (event "wallboard-snapshot"), then reads
// GET /api/reports/intervals (by=queue, interval=60, today's midnight to tomorrow's in the tenant's
// time zone, the zone every page shows times in; Amazon Connect metric names), with each queue's sl_threshold and wallboard
// thresholds from that snapshot. Refreshes every 60 s and when the tab becomes visible again.
// window.dayCharts = {data, refresh} for tests. Words from the supervisor catalogue (the shell).

import { formatTime, onLanguageChange, t, tenantZone } from '/static/shell.js';

const REFRESH_MS = 60_000;
const SVG_NS = 'http://www.w3.org/2000/svg';
const ALL = '';
const STORE_KEY = 'wallboard.chartsQueue';
const SERIES = [
  { key: 'CONTACTS_QUEUED', id: 'offered' },
  { key: 'CONTACTS_HANDLED', id: 'handled' },
  { key: 'CONTACTS_ABANDONED', id: 'abandoned' },
];

const $ = (id) => document.getElementById(id);
const C = { data: null, timer: null, running: false, gen: 0, inflight: null, selected: localStorage.getItem(STORE_KEY) || ALL };
window.dayCharts = {
  get data() { return C.data; },
  refresh: () => refresh(),
};

// ----------------------------------------------------------------- time helpers

// Days and hours are the tenant's (tenant.timezone from /api/me), not the browser's: a supervisor
// abroad sees the same day and hour labels as the call center's reports.

/** The date ("YYYY-MM-DD") in `tz` of `when`, and of the day `days` later. */
function zoneDate(when, tz, days = 0) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: tz, year: 'numeric', month: '2-digit',
    day: '2-digit' }).formatToParts(when).map((part) => [part.type, part.value]));
  const day = new Date(Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day) + days));
  return day.toISOString().slice(0, 10);
}

/** The hour (0-23) of an ISO time in `tz`. */
function zoneHour(iso, tz) {
  return Number(new Intl.DateTimeFormat('en-US', { timeZone: tz, hour: '2-digit', hourCycle: 'h23' }).format(new Date(iso))) % 24;
}

/** An hour as "HH:MM" in the tenant's zone (the shell's formatTime). */
function hourLabel(iso) {
  return formatTime(iso);
}

function spanLabel(point) { return `${hourLabel(point.interval_start)}–${hourLabel(point.interval_end)}`; }

// ----------------------------------------------------------------- data

async function getJson(url) {
  const reply = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!reply.ok) {
    const error = new Error(`HTTP ${reply.status}`);
    error.status = reply.status;
    throw error;
  }
  return reply.json();
}

async function report(tz, since, until, slThreshold) {
  const params = new URLSearchParams({ by: 'queue', interval: '60', tz, since, until, sl_threshold: String(slThreshold) });
  return getJson(`/api/reports/intervals?${params}`);
}

function slParts(row) {
  // SERVICE_LEVEL = answered within sl_threshold / (CONTACTS_QUEUED - CONTACTS_ABANDONED_SHORT)
  const base = row.CONTACTS_QUEUED - (row.CONTACTS_ABANDONED_SHORT || 0);
  const met = row.SERVICE_LEVEL === null || row.SERVICE_LEVEL === undefined || base <= 0 ? 0 : Math.round(row.SERVICE_LEVEL * base / 100);
  return { met, base: Math.max(0, base) };
}

function point(row) {
  const { met, base } = slParts(row);
  return {
    interval_start: row.interval_start, interval_end: row.interval_end,
    CONTACTS_QUEUED: row.CONTACTS_QUEUED, CONTACTS_HANDLED: row.CONTACTS_HANDLED,
    CONTACTS_ABANDONED: row.CONTACTS_ABANDONED, CONTACTS_ABANDONED_SHORT: row.CONTACTS_ABANDONED_SHORT,
    SERVICE_LEVEL: row.SERVICE_LEVEL, sl_met: met, sl_base: base,
  };
}

function addUp(points) {
  // The total over queues, per hour: counts add up, the service level is recomputed from its parts.
  const first = points[0];
  const sum = (k) => points.reduce((a, p) => a + (p[k] || 0), 0);
  const met = sum('sl_met'), base = sum('sl_base');
  return {
    interval_start: first.interval_start, interval_end: first.interval_end,
    CONTACTS_QUEUED: sum('CONTACTS_QUEUED'), CONTACTS_HANDLED: sum('CONTACTS_HANDLED'),
    CONTACTS_ABANDONED: sum('CONTACTS_ABANDONED'), CONTACTS_ABANDONED_SHORT: sum('CONTACTS_ABANDONED_SHORT'),
    SERVICE_LEVEL: base > 0 ? (100 * met) / base : null, sl_met: met, sl_base: base,
  };
}

async function load() {
  const now = new Date();
  let tz = tenantZone();
  const since = `${zoneDate(now, tz)}T00:00:00`, until = `${zoneDate(now, tz, 1)}T00:00:00`;
  const live = window.wallboard && window.wallboard.snap; // the socket's latest snapshot (shown before the charts)
  const slOf = new Map((live ? live.queues : []).map((q) => [q.queue, q.sl_threshold]));
  const thresholds = new Map((live ? live.queues : []).map((q) => [q.queue, q.thresholds ? q.thresholds.SERVICE_LEVEL : null]));
  const distinct = [...new Set(slOf.values())];
  if (!distinct.length) distinct.push(20);
  let bodies;
  try {
    bodies = await Promise.all(distinct.map((s) => report(tz, since, until, s)));
  } catch (error) {
    if (error.status !== 422 || tz === 'UTC') throw error;
    tz = 'UTC'; // the server does not know the tenant's zone (an older node): at least a consistent one
    bodies = await Promise.all(distinct.map((s) => report(tz, since, until, s)));
  }
  // each queue's rows come from the report made with its own sl_threshold
  const byQueue = {};
  const slUsed = {};
  bodies.forEach((body, i) => {
    for (const row of body.rows) {
      const q = row.queue;
      const wanted = slOf.has(q) ? slOf.get(q) : distinct[0];
      if (wanted !== distinct[i]) continue;
      (byQueue[q] = byQueue[q] || []).push(point(row));
      slUsed[q] = body.sl_threshold;
    }
  });
  const queues = Object.keys(byQueue).sort();
  const starts = [...new Set(bodies[0].rows.map((r) => r.interval_start))];
  const hours = starts.map((s) => bodies[0].rows.find((r) => r.interval_start === s))
    .map((r) => ({ interval_start: r.interval_start, interval_end: r.interval_end }));
  for (const q of queues) { // one point per hour for every queue, in hour order
    const at = new Map(byQueue[q].map((p) => [p.interval_start, p]));
    byQueue[q] = hours.map((h) => at.get(h.interval_start) || addUp([{ ...h }]));
  }
  const total = hours.map((h, j) => addUp(queues.length ? queues.map((q) => byQueue[q][j]) : [{ ...h }]));
  return {
    tz, since: bodies[0].since, until: bodies[0].until, request: { since, until, tz },
    fetched_at: new Date().toISOString(), queues, hours, total, byQueue,
    sl_threshold: slUsed, sl_target: Object.fromEntries(thresholds),
  };
}

async function refresh() {
  if (C.inflight) return C.inflight;
  const gen = C.gen;
  C.inflight = (async () => {
    try {
      const data = await load();
      if (gen !== C.gen) return C.data;
      C.data = data;
      setStatus('supervisor.chart.updated', { time: formatTime(new Date()), tz: data.tz });
      render();
    } catch (error) {
      if (gen === C.gen) setStatus('supervisor.chart.failed', { why: error.message });
    } finally {
      C.inflight = null;
    }
    return C.data;
  })();
  return C.inflight;
}

/** The line under the charts, kept as its key so that a language change rewrites it. */
function setStatus(key, params) {
  C.status = key ? [key, params] : null;
  const node = $('charts-status');
  if (node) node.textContent = key ? t(key, params) : '';
}

// ----------------------------------------------------------------- rendering

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function titled(node, text) { node.append(el('title', {}, text)); return node; }

function niceMax(value) {
  if (value <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
  return 10 * step;
}

function selection() {
  const d = C.data;
  if (!d) return { name: t('supervisor.all_queues'), points: [] };
  if (C.selected !== ALL && d.byQueue[C.selected]) {
    return { name: t('supervisor.chart.queue', { queue: C.selected }), points: d.byQueue[C.selected], queue: C.selected };
  }
  return { name: t('supervisor.all_queues'), points: d.total, queue: null };
}

function renderSelect() {
  const select = $('charts-queue');
  const wanted = [ALL, ...C.data.queues];
  const have = [...select.options].map((o) => o.value);
  if (wanted.join('\n') !== have.join('\n') || select.options[0].text !== t('supervisor.all_queues')) {
    select.replaceChildren(...wanted.map((q) => new Option(q === ALL ? t('supervisor.all_queues') : q, q)));
  }
  if (C.selected !== ALL && !C.data.queues.includes(C.selected)) C.selected = ALL;
  select.value = C.selected;
}

function frame(host, height) {
  const width = Math.max(320, Math.floor(host.clientWidth || 600));
  const m = { top: 12, right: 12, bottom: 26, left: 38 };
  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart-svg' });
  return { svg, width, height, m, plotW: width - m.left - m.right, plotH: height - m.top - m.bottom };
}

function xAxis(f, points, slot) {
  const g = el('g', { class: 'axis axis-x', 'aria-hidden': 'true' });
  const every = slot < 22 ? (slot < 11 ? 4 : 3) : slot < 34 ? 2 : 1;
  points.forEach((p, j) => {
    if (zoneHour(p.interval_start, C.data ? C.data.tz : tenantZone()) % every !== 0) return;
    const x = f.m.left + slot * j;
    g.append(el('line', { x1: x, x2: x, y1: f.m.top + f.plotH, y2: f.m.top + f.plotH + 4 }));
    g.append(el('text', { x, y: f.height - 8, 'text-anchor': 'middle' }, hourLabel(p.interval_start)));
  });
  g.append(el('line', { class: 'baseline', x1: f.m.left, x2: f.m.left + f.plotW, y1: f.m.top + f.plotH, y2: f.m.top + f.plotH }));
  return g;
}

function yAxis(f, max, ticks, fmt) {
  const g = el('g', { class: 'axis axis-y', 'aria-hidden': 'true' });
  for (let i = 0; i <= ticks; i++) {
    const v = (max * i) / ticks, y = f.m.top + f.plotH - (f.plotH * i) / ticks;
    if (i > 0) g.append(el('line', { class: 'grid', x1: f.m.left, x2: f.m.left + f.plotW, y1: y, y2: y }));
    g.append(el('text', { x: f.m.left - 6, y: y + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  return g;
}

function nowMarker(f, points, slot) {
  const now = Date.now();
  const j = points.findIndex((p) => new Date(p.interval_start).getTime() <= now && now < new Date(p.interval_end).getTime());
  if (j < 0) return null;
  return el('rect', { class: 'now', x: f.m.left + slot * j, y: f.m.top, width: slot, height: f.plotH, 'aria-hidden': 'true' });
}

function volumeChart(host, sel) {
  const f = frame(host, 220);
  const pts = sel.points;
  const slot = f.plotW / Math.max(1, pts.length);
  const max = niceMax(Math.max(1, ...pts.map((p) => Math.max(p.CONTACTS_QUEUED, p.CONTACTS_HANDLED, p.CONTACTS_ABANDONED))));
  const ticks = max <= 4 ? max : 4;
  const y = (v) => f.m.top + f.plotH - (f.plotH * v) / max;
  const marker = nowMarker(f, pts, slot);
  if (marker) f.svg.append(marker);
  f.svg.append(yAxis(f, max, ticks, (v) => String(Math.round(v))));
  const inner = Math.max(3, Math.min(14, (slot - 4) / SERIES.length));
  pts.forEach((p, j) => {
    const x0 = f.m.left + slot * j + (slot - inner * SERIES.length) / 2;
    const group = el('g', { class: 'hour', 'data-start': p.interval_start });
    titled(group.appendChild(el('rect', { class: 'hit', x: f.m.left + slot * j, y: f.m.top, width: slot, height: f.plotH })),
      t('supervisor.chart.hour', { span: spanLabel(p), offered: p.CONTACTS_QUEUED, handled: p.CONTACTS_HANDLED,
        abandoned: p.CONTACTS_ABANDONED }));
    SERIES.forEach((s, i) => {
      const v = p[s.key];
      if (!v) return;
      const bar = el('rect', { class: `bar bar-${s.id}`, 'data-series': s.id, 'data-start': p.interval_start, 'data-value': v,
        x: x0 + inner * i, y: y(v), width: Math.max(1, inner - 1), height: f.m.top + f.plotH - y(v), rx: 1.5 });
      group.append(titled(bar, t('supervisor.chart.bar', { series: t(`supervisor.chart.${s.id}`), span: spanLabel(p), value: v })));
    });
    f.svg.append(group);
  });
  f.svg.append(xAxis(f, pts, slot));
  const sum = (k) => pts.reduce((a, p) => a + p[k], 0);
  const busiest = pts.reduce((b, p) => (p.CONTACTS_QUEUED > (b ? b.CONTACTS_QUEUED : 0) ? p : b), null);
  f.svg.setAttribute('aria-label', t('supervisor.chart.volume_label', {
    name: sel.name, offered: sum('CONTACTS_QUEUED'), handled: sum('CONTACTS_HANDLED'), abandoned: sum('CONTACTS_ABANDONED'),
  }) + (busiest ? t('supervisor.chart.busiest', { span: spanLabel(busiest), offered: busiest.CONTACTS_QUEUED }) : '.'));
  host.replaceChildren(f.svg);
}

function slChart(host, sel) {
  const f = frame(host, 220);
  const pts = sel.points;
  const slot = f.plotW / Math.max(1, pts.length);
  const y = (v) => f.m.top + f.plotH - (f.plotH * v) / 100;
  const marker = nowMarker(f, pts, slot);
  if (marker) f.svg.append(marker);
  f.svg.append(yAxis(f, 100, 4, (v) => `${Math.round(v)}%`));
  const target = targetOf(sel);
  if (target !== null) {
    const ty = y(target);
    f.svg.append(titled(el('line', { class: 'target', x1: f.m.left, x2: f.m.left + f.plotW, y1: ty, y2: ty }),
      t('supervisor.chart.threshold_title', { percent: target })));
    f.svg.append(el('text', { class: 'target-label', x: f.m.left + f.plotW - 2, y: ty - 4, 'text-anchor': 'end', 'aria-hidden': 'true' },
      t('supervisor.chart.threshold', { percent: target })));
  }
  const xs = (j) => f.m.left + slot * j + slot / 2;
  // the line joins consecutive hours that have a service level; hours without calls break it
  let d = '', open = false;
  pts.forEach((p, j) => {
    if (p.SERVICE_LEVEL === null || p.SERVICE_LEVEL === undefined) { open = false; return; }
    d += `${open ? 'L' : 'M'}${xs(j).toFixed(1)},${y(p.SERVICE_LEVEL).toFixed(1)}`;
    open = true;
  });
  if (d) f.svg.append(el('path', { class: 'sl-line', d }));
  const sl = slLabel(sel);
  pts.forEach((p, j) => {
    const group = el('g', { class: 'hour', 'data-start': p.interval_start });
    const has = p.SERVICE_LEVEL !== null && p.SERVICE_LEVEL !== undefined;
    const text = has ? t('supervisor.chart.sl_hour', { span: spanLabel(p), percent: Math.round(p.SERVICE_LEVEL), met: p.sl_met,
      base: p.sl_base, within: sl }) : t('supervisor.chart.sl_none_hour', { span: spanLabel(p) });
    titled(group.appendChild(el('rect', { class: 'hit', x: f.m.left + slot * j, y: f.m.top, width: slot, height: f.plotH })), text);
    if (has) {
      const below = target !== null && p.SERVICE_LEVEL < target;
      group.append(titled(el('circle', { class: `dot${below ? ' below' : ''}`, 'data-start': p.interval_start,
        'data-value': Math.round(p.SERVICE_LEVEL * 10) / 10, cx: xs(j), cy: y(p.SERVICE_LEVEL), r: 4 }), text));
    }
    f.svg.append(group);
  });
  f.svg.append(xAxis(f, pts, slot));
  const met = pts.reduce((a, p) => a + p.sl_met, 0), base = pts.reduce((a, p) => a + p.sl_base, 0);
  const withSl = pts.filter((p) => p.SERVICE_LEVEL !== null && p.SERVICE_LEVEL !== undefined);
  const lowest = withSl.reduce((b, p) => (!b || p.SERVICE_LEVEL < b.SERVICE_LEVEL ? p : b), null);
  f.svg.setAttribute('aria-label', t('supervisor.chart.sl_label', { name: sel.name })
    + (base ? t('supervisor.chart.sl_day', { percent: Math.round((100 * met) / base), within: sl }) : t('supervisor.chart.sl_none'))
    + (lowest ? t('supervisor.chart.sl_lowest', { percent: Math.round(lowest.SERVICE_LEVEL), span: spanLabel(lowest) }) : '')
    + (target !== null ? t('supervisor.chart.sl_threshold', { percent: target }) : '.'));
  host.replaceChildren(f.svg);
  const dayEl = $('charts-sl-day');
  if (dayEl) {
    dayEl.textContent = base ? t('supervisor.chart.sl_today', { percent: Math.round((100 * met) / base), within: sl })
      : t('supervisor.chart.within', { within: sl });
  }
}

function targetOf(sel) {
  const targets = C.data.sl_target;
  if (sel.queue) return targets[sel.queue] ?? null;
  const values = [...new Set(C.data.queues.map((q) => targets[q] ?? null))];
  return values.length === 1 ? values[0] : null;
}

function slLabel(sel) {
  const used = C.data.sl_threshold;
  if (sel.queue) return t('supervisor.chart.seconds', { seconds: used[sel.queue] });
  const values = [...new Set(C.data.queues.map((q) => used[q]))];
  return values.length === 1 ? t('supervisor.chart.seconds', { seconds: values[0] }) : t('supervisor.chart.each_queue');
}

function render() {
  if (!C.data) return;
  renderSelect();
  const sel = selection();
  const offered = sel.points.reduce((a, p) => a + p.CONTACTS_QUEUED, 0);
  const section = $('charts-body').closest('section');
  section.dataset.empty = String(offered === 0);
  $('charts-empty').hidden = offered > 0;
  $('charts-body').hidden = offered === 0;
  if (offered === 0) {
    $('chart-volume').replaceChildren();
    $('chart-sl').replaceChildren();
    return;
  }
  volumeChart($('chart-volume'), sel);
  slChart($('chart-sl'), sel);
}

// ----------------------------------------------------------------- lifecycle

function appShown() {
  const app = $('app-view');
  const live = Boolean(window.wallboard && window.wallboard.snap);
  return live && (document.body.dataset.view === 'app' || (app !== null && !app.hidden));
}

function start() {
  if (C.running) return;
  C.running = true;
  refresh();
  C.timer = setInterval(() => { if (document.visibilityState !== 'hidden') refresh(); }, REFRESH_MS);
}

function stop() {
  if (!C.running) return;
  C.running = false;
  C.gen++;
  clearInterval(C.timer);
  C.timer = null;
  C.data = null;
  setStatus(null);
}

function check() { if (appShown()) start(); else if (document.body.dataset.view === 'login') stop(); }

function init() {
  const select = $('charts-queue');
  if (!select) return;
  select.addEventListener('change', () => {
    C.selected = select.value;
    localStorage.setItem(STORE_KEY, C.selected);
    render();
  });
  new MutationObserver(check).observe(document.body, { attributes: true, attributeFilter: ['data-view'] });
  window.addEventListener('wallboard-snapshot', check);
  const app = $('app-view');
  if (app) new MutationObserver(check).observe(app, { attributes: true, attributeFilter: ['hidden'] });
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible' && C.running) refresh(); });
  let width = 0;
  new ResizeObserver(() => {
    const w = $('charts-body').clientWidth;
    if (w && w !== width) { width = w; render(); }
  }).observe($('charts-body'));
  check();
}

init();
onLanguageChange(() => { if (C.status) setStatus(...C.status); render(); });
