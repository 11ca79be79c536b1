// Whom a call or a chat can be handed to: the socket's `targets` ({agents: [{username, state}],
// queues: [name]}) as the options of a transfer dialog. Shared by the call's dialog (agent.js)
// and the chat's (chat_view.js).

const STATE_ORDER = { available: 0, wrap_up: 1, reserved: 1, on_call: 2, break: 3, offline: 4 };

/** The other agents, the available first, then by name. */
export function agentTargets(targets, me) {
  return ((targets && targets.agents) || [])
    .filter((a) => a && a.username && a.username !== me)
    .slice()
    .sort((a, b) => (STATE_ORDER[a.state] ?? 5) - (STATE_ORDER[b.state] ?? 5) || String(a.username).localeCompare(b.username));
}

/** The tenant's queue names, in the socket's order. */
export function queueTargets(targets) {
  return ((targets && targets.queues) || []).map((q) => (typeof q === 'string' ? q : q && q.name)).filter(Boolean);
}
