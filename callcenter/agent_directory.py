"""Who the agents on this node are: their identities and SIP phone logins, by SIP user and by agent.

The directory is built before anything else because two sides need it and must not need each
other for it: the SIP registrar checks a phone's login here (:meth:`AgentDirectory.credentials`,
the registrar's ``AgentDirectory`` protocol) before the endpoint or the ACD exist, and the ACD,
call control and the softphones look agents up here. It is a cache of the database, filled by
the ACD from each load of its configuration (one read gives a tenant's queues, agents and
saved state together, see ``AcdService.reload``); lookups never block the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from sip_bridge.registrar import AgentCredentials


@dataclass
class AgentIdentity:
    tenant_id: int
    agent_id: str
    username: str
    sip_user: str
    ha1: str | None
    #: The agent's phone must use TLS / be offered SRTP only (see ``AgentCredentials``).
    require_tls: bool = False
    require_srtp: bool = False


class AgentDirectory:
    """The active agents of every tenant, as last loaded."""

    def __init__(self) -> None:
        self._by_sip_user: dict[str, AgentIdentity] = {}
        self._by_agent: dict[tuple[int, str], AgentIdentity] = {}

    def replace_tenant(self, tenant_id: int, identities: list[AgentIdentity]) -> list[str]:
        """The tenant's agents are now ``identities``; returns the ids of the agents it no longer has."""
        old = {agent_id: identity for (tid, agent_id), identity in self._by_agent.items() if tid == tenant_id}
        for identity in old.values():
            del self._by_agent[(tenant_id, identity.agent_id)]
            if self._by_sip_user.get(identity.sip_user) is identity:
                del self._by_sip_user[identity.sip_user]
        for identity in identities:
            self._by_sip_user[identity.sip_user] = identity
            self._by_agent[(tenant_id, identity.agent_id)] = identity
        return [agent_id for agent_id in old if (tenant_id, agent_id) not in self._by_agent]

    def credentials(self, sip_user: str) -> AgentCredentials | None:
        """The registrar's AgentDirectory: the phone login of an active agent."""
        identity = self._by_sip_user.get(sip_user)
        if identity is None or identity.ha1 is None:
            return None
        return AgentCredentials(sip_user, identity.ha1, identity.tenant_id, identity.agent_id,
                                require_tls=identity.require_tls, require_srtp=identity.require_srtp)

    def by_sip_user(self, sip_user: str) -> AgentIdentity | None:
        return self._by_sip_user.get(sip_user)

    def agent(self, tenant_id: int, agent_id: str) -> AgentIdentity | None:
        return self._by_agent.get((tenant_id, agent_id))

    def agent_id_of(self, tenant_id: int, username: str) -> str | None:
        return next((identity.agent_id for identity in self.of_tenant(tenant_id) if identity.username == username),
                    None)

    def of_tenant(self, tenant_id: int) -> list[AgentIdentity]:
        return [identity for (tid, _), identity in self._by_agent.items() if tid == tenant_id]

    def __len__(self) -> int:
        return len(self._by_agent)
