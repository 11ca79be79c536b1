// Today's customer satisfaction on the wallboard (/supervisor): the average rating and how many
// ratings since local midnight, overall (by channel beside it) and on each queue's tile, from
// GET /api/supervisor/csat (ratings are in the database, not in the ACD's snapshots), asked
// every 30 s while the page is visible.

import { api, t } from '/static/shell.js';

const REFRESH_MS = 30000;

const $ = (id) => document.getElementById(id);

function figure(f) {
  return f && f.CSAT_RESPONSES ? t('supervisor.csat.value', { average: f.CSAT_AVERAGE.toFixed(2), responses: f.CSAT_RESPONSES })
    : t('supervisor.csat.none');
}

/** Start asking; returns {paint(): draw the last answer again (new tiles, language), stop()}. */
export function startCsat(showError) {
  let today = null;
  let timer = null;
  let failed = false;

  function paint() {
    if (!today) return;
    $('csat-average').textContent = today.CSAT_RESPONSES ? today.CSAT_AVERAGE.toFixed(2) : '–';
    const channels = today.channels || {};
    $('csat-detail').textContent = today.CSAT_RESPONSES ? t('supervisor.csat.detail', {
      responses: today.CSAT_RESPONSES, voice: figure(channels.voice), chat: figure(channels.chat) }) : t('supervisor.csat.empty');
    const byQueue = new Map(today.queues.map((q) => [q.queue, q]));
    for (const cell of document.querySelectorAll('.tile[data-queue] [data-csat]')) {
      cell.textContent = figure(byQueue.get(cell.closest('.tile').dataset.queue));
    }
  }

  async function load() {
    clearTimeout(timer);
    if (document.visibilityState === 'visible') {
      try {
        today = await api('GET', '/api/supervisor/csat');
        failed = false;
        paint();
      } catch (err) {
        if (!failed) showError(err);  // once, not every 30 s
        failed = true;
      }
    }
    timer = setTimeout(load, REFRESH_MS);
  }

  const onVisible = () => { if (document.visibilityState === 'visible') load(); };
  document.addEventListener('visibilitychange', onVisible);
  load();
  return {
    paint,
    stop() { clearTimeout(timer); document.removeEventListener('visibilitychange', onVisible); },
  };
}
