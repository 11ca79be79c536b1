// The read-only graph of a flow: nodes and their branches laid out by dagre (vendored,
// /static/vendor/dagre-3.1.4.esm.js), drawn as SVG. Each node is a <g data-node="<id>"> that can be
// clicked or focused and entered (it selects the node in the outline); the simulator's path is
// shown with the class "on-path" on the nodes and edges it took.

import { graphlib, layout } from '/static/vendor/dagre-3.1.4.esm.js';
import { svg, t, allNodes, references, branchLabel } from '/static/admin_flows_util.js';

const CHAR = 7.2;

/** Rough width of a label in pixels: CJK characters count double. */
function textWidth(text, px) {
  return [...text].reduce((sum, c) => sum + (c.charCodeAt(0) > 0x2e80 ? 2 : 1), 0) * px;
}

/**
 * Draw `doc` into the <svg> `root`. opts: {selected, path: [node ids], issues: {id: 'error'|'warning'},
 * onSelect(id)}.
 */
export function drawGraph(root, doc, opts) {
  const g = new graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 44, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const nodes = allNodes(doc);
  const known = new Set(nodes.map(({ node }) => node.id));
  for (const { node } of nodes) {
    if (!node.id) continue;
    const label = t(`flows.type.${node.type}`);
    const width = Math.max(textWidth(node.id, CHAR), textWidth(label, 6)) + 24;
    g.setNode(node.id, { width, height: 42, node, label });
  }
  const starts = [doc.start, ...Object.values(doc.subflows || {}).map((s) => s.start)];
  for (const { node } of nodes) {
    if (!node.id) continue;
    for (const [field, target] of references(node)) {
      const label = branchLabel(field);
      if (known.has(target)) g.setEdge(node.id, target, { label, field, width: textWidth(label, 5.5) + 6, height: 14, labelpos: 'c' }, field);
    }
    const sub = (doc.subflows || {})[node.subflow];
    if (sub && known.has(sub.start)) {
      g.setEdge(node.id, sub.start, { label: node.subflow, field: 'subflow', dashed: true, width: textWidth(node.subflow, 5.5) + 6,
        height: 14, labelpos: 'c' }, 'subflow');
    }
  }
  layout(g);
  const onPath = new Set();
  const path = opts.path || [];
  path.forEach((id, i) => { if (i > 0) onPath.add(`${path[i - 1]}\u0000${id}`); });
  const size = g.graph();
  root.setAttribute('viewBox', `0 0 ${Math.max(size.width || 0, 10)} ${Math.max(size.height || 0, 10)}`);
  root.setAttribute('width', Math.max(size.width || 0, 10));
  root.setAttribute('height', Math.max(size.height || 0, 10));
  const edges = g.edges().map((e) => {
    const edge = g.edge(e);
    const d = edge.points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
    const cls = ['flow-edge', edge.dashed ? 'dashed' : '', onPath.has(`${e.v}\u0000${e.w}`) ? 'on-path' : ''].join(' ').trim();
    return svg('g', { class: cls, 'data-from': e.v, 'data-to': e.w, 'data-field': edge.field },
      svg('path', { d, 'marker-end': 'url(#flow-arrow)' }),
      svg('text', { x: edge.x, y: edge.y + 4, class: 'flow-edge-label', 'text-anchor': 'middle' }, document.createTextNode(edge.label || '')));
  });
  const drawn = g.nodes().map((id) => {
    const n = g.node(id);
    const cls = ['flow-node', `type-${n.node.type}`, id === opts.selected ? 'selected' : '', path.includes(id) ? 'on-path' : '',
      (opts.issues || {})[id] || '', starts.includes(id) ? 'start' : ''].join(' ').replace(/\s+/g, ' ').trim();
    const group = svg('g', { class: cls, 'data-node': id, tabindex: '0', role: 'button', 'aria-label': `${id} (${n.label})`,
      transform: `translate(${(n.x - n.width / 2).toFixed(1)},${(n.y - n.height / 2).toFixed(1)})` },
    svg('rect', { width: n.width, height: n.height, rx: 8 }),
    svg('text', { x: 12, y: 18, class: 'flow-node-id' }, document.createTextNode(id)),
    svg('text', { x: 12, y: 33, class: 'flow-node-type' }, document.createTextNode(n.label)));
    group.addEventListener('click', () => opts.onSelect(id));
    group.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); opts.onSelect(id); }
    });
    return group;
  });
  const defs = svg('defs', {}, svg('marker', { id: 'flow-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 8,
    markerHeight: 8, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' }, svg('path', { d: 'M0,0 L10,5 L0,10 z' })));
  root.replaceChildren(defs, ...edges, ...drawn);
}
