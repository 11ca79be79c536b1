"""The console's test call: ``ws /api/flows/{name}/test-call?version=N`` (README "Test calls")."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from callcenter.api.bounds import Name, Version
from callcenter.api.deps import AppContext, socket_principal
from callcenter.api.socket_proxy import relayed
from callcenter.models import Role

router = APIRouter(tags=["ivr"])


@router.websocket("/api/flows/{name}/test-call")
async def test_call_socket(ws: WebSocket, name: Name, version: Version | None = None) -> None:
    """An admin's browser calls a stored version of one of the tenant's flows (the newest without
    ``version``). Authenticated like the softphone's socket; another role's socket is accepted and
    closed with 4403, a flow or version the tenant does not have with 4404. Served on the node that
    hosts the tenant (its queues are there), relayed there from any other node."""
    ctx: AppContext = ws.app.state.ctx
    principal = await socket_principal(ws)
    if principal is None or await relayed(ws, principal.tenant_id):
        return
    if principal.role != Role.ADMIN.value or ctx.test_calls is None:
        await ws.accept()
        await ws.close(code=4403, reason="test calls are for the tenant's admins")
        return
    await ctx.test_calls.serve(ws, tenant_id=principal.tenant_id, user_id=principal.user_id,
                               username=principal.username, flow=name, version=version)
