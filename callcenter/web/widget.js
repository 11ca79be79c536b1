// The web chat's loader (issue 16), for a tenant's own website:
//   <script src="http://NODE/widget.js" data-key="WIDGETKEY" async></script>
// It adds a launcher button and a panel holding an iframe of http://NODE/chat, which is the whole
// chat (its own page, styles, API and socket: the browser keeps it apart from the host page). The
// loader defines no global and adds no stylesheet: its two elements live in a shadow root
// and are styled through the CSSOM, which a host page's Content-Security-Policy allows. The
// launcher shows once the panel says it is ready (its words come from the panel's catalogue), so a
// wrong key, chat turned off or a site the tenant did not allow shows nothing.
//
// Panel <-> loader messages (postMessage, checked by source window and origin both ways):
//   panel -> loader {cc: 'chat', type: 'ready', labels: {open, close, title}}, {type: 'unread', count},
//                   {type: 'close'}, {type: 'unavailable'}
//   loader -> panel {cc: 'chat', type: 'shown'} / {type: 'hidden'}
(() => {
  'use strict';

  const script = document.currentScript;
  const key = script && script.dataset.key;
  if (!key || document.querySelector('[data-cc-chat-widget]')) return;  // no key, or loaded twice

  const NODE = new URL(script.src, location.href).origin;
  const NARROW = window.matchMedia('(max-width: 480px)');  // a phone: the panel takes the screen
  const LAYER = '2147483000';

  /** zh-CN for any Chinese tag, en for anything else. */
  function language() {
    const tag = String(script.dataset.lang || document.documentElement.lang || navigator.language || '').toLowerCase();
    return tag.startsWith('zh') ? 'zh-CN' : 'en';
  }

  function styled(tag, style, attributes = {}) {
    const node = document.createElement(tag);
    Object.assign(node.style, style);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
  }

  function bubbleIcon() {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', '28');
    svg.setAttribute('height', '28');
    svg.setAttribute('aria-hidden', 'true');
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z');
    path.setAttribute('fill', 'currentColor');
    svg.append(path);
    return svg;
  }

  function start() {
    const host = styled('div', { all: 'initial' }, { 'data-cc-chat-widget': '' });
    const root = host.attachShadow({ mode: 'open' });
    const page = `${location.origin}${location.pathname}`;  // the page the visitor is on, without query or fragment
    const src = `${NODE}/chat?key=${encodeURIComponent(key)}&lang=${language()}`
      + `#origin=${encodeURIComponent(location.origin)}&page=${encodeURIComponent(page)}`;

    const panel = styled('div', {
      position: 'fixed', zIndex: LAYER, display: 'none', overflow: 'hidden', background: '#fff',
      boxShadow: '0 12px 32px rgba(16,24,40,.22), 0 2px 6px rgba(16,24,40,.08)',
    }, { id: 'cc-chat-panel' });
    const frame = styled('iframe', { width: '100%', height: '100%', border: '0', display: 'block' }, { src });
    panel.append(frame);

    const launcher = styled('button', {
      position: 'fixed', right: '20px', bottom: '20px', zIndex: LAYER, width: '60px', height: '60px',
      borderRadius: '50%', border: '0', padding: '0', margin: '0', cursor: 'pointer', color: '#fff',
      background: '#1d4ed8', boxShadow: '0 6px 18px rgba(16,24,40,.25)', display: 'none',
      alignItems: 'center', justifyContent: 'center',
    }, { type: 'button', 'aria-expanded': 'false', 'aria-controls': 'cc-chat-panel', 'data-cc-chat-launcher': '' });
    const badge = styled('span', {
      position: 'absolute', top: '-2px', right: '-2px', minWidth: '20px', height: '20px', padding: '0 5px',
      borderRadius: '10px', background: '#dc2626', color: '#fff', font: '600 12px/20px system-ui, sans-serif',
      textAlign: 'center', display: 'none', boxSizing: 'border-box',
    }, { 'aria-hidden': 'true' });
    launcher.append(bubbleIcon(), badge);
    root.append(panel, launcher);

    const state = { open: false, labels: { open: '', close: '' }, unread: 0 };

    function layout() {
      const full = NARROW.matches;
      Object.assign(panel.style, full
        ? { top: '0', left: '0', right: '0', bottom: '0', width: '100%', height: '100%', borderRadius: '0' }
        : { top: 'auto', left: 'auto', right: '20px', bottom: '92px', width: '380px',
          height: 'min(620px, calc(100vh - 112px))', borderRadius: '14px' });
      // On a phone the open panel covers the launcher; its own header has the close button.
      launcher.style.visibility = full && state.open ? 'hidden' : 'visible';
    }

    function tell(type) {
      if (frame.contentWindow) frame.contentWindow.postMessage({ cc: 'chat', type }, NODE);
    }

    function label() {
      const words = state.open ? state.labels.close : state.labels.open;
      launcher.setAttribute('aria-label', state.unread && !state.open ? `${words} (${state.unread})` : words);
      launcher.title = words;
      badge.textContent = String(state.unread);
      badge.style.display = state.unread && !state.open ? 'block' : 'none';
    }

    function setOpen(open, { focus = true } = {}) {
      state.open = open;
      panel.style.display = open ? 'block' : 'none';
      launcher.setAttribute('aria-expanded', String(open));
      layout();
      label();
      tell(open ? 'shown' : 'hidden');
      if (open && focus) frame.focus();
      else if (!open && focus) launcher.focus();
    }

    launcher.addEventListener('click', () => setOpen(!state.open));
    NARROW.addEventListener('change', layout);
    window.addEventListener('message', (event) => {
      if (event.source !== frame.contentWindow || event.origin !== NODE) return;
      const data = event.data || {};
      if (data.cc !== 'chat') return;
      if (data.type === 'ready') {
        const labels = data.labels || {};
        state.labels = { open: String(labels.open || ''), close: String(labels.close || '') };
        frame.title = String(labels.title || '');
        launcher.style.display = 'flex';
        label();
        if (state.open) tell('shown');
      } else if (data.type === 'unread') {
        state.unread = Math.max(0, Number(data.count) || 0);
        label();
      } else if (data.type === 'close') {
        setOpen(false);
      } else if (data.type === 'unavailable') {
        setOpen(false, { focus: false });
        launcher.style.display = 'none';
      }
    });
    layout();
    document.body.append(host);
  }

  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start, { once: true });
})();
