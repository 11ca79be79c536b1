"""The agent softphone: its page (``/agent``), its static files and its WebSocket."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Depends, WebSocket
from fastapi.responses import FileResponse

import softphone_web
from callcenter.api.deps import AppContext, public, socket_principal
from callcenter.api.errors import not_found
from callcenter.api.socket_proxy import relayed
from callcenter.models import Role

router = APIRouter(tags=["softphone"])

STATIC = Path(softphone_web.__file__).parent / "static"
ASSET = re.compile(r"^[a-z0-9_-]{1,64}\.(js|css|svg|png|ico)$")


@router.get("/agent", dependencies=[Depends(public)], include_in_schema=False)
def agent_page() -> FileResponse:
    """The softphone page; it logs in through the API (the page itself holds no data)."""
    return FileResponse(STATIC / "agent.html", headers={"Cache-Control": "no-cache"})


@router.get("/agent/static/{name}", dependencies=[Depends(public)], include_in_schema=False)
def agent_asset(name: str) -> FileResponse:
    path = STATIC / name
    if not ASSET.match(name) or not path.is_file():
        raise not_found("file")
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


@router.websocket("/api/agent/ws")
async def agent_socket(ws: WebSocket) -> None:
    """Signalling of one softphone tab (README: "Softphone protocol").

    Authenticated by the session cookie or a bearer token, for users with the agent
    role. A refused socket is accepted and closed at once with code 4401 (not
    authenticated) or 4403 (not an agent), so that the page can tell why; a handshake from
    another site's page (a foreign Origin) is refused with 403.
    """
    ctx: AppContext = ws.app.state.ctx
    principal = await socket_principal(ws)
    if principal is None or await relayed(ws, principal.tenant_id):
        return
    if principal.role != Role.AGENT.value or ctx.softphones is None:
        await ws.accept()
        await ws.close(code=4403, reason="only agents have a softphone")
        return
    await ctx.softphones.serve(ws, principal.user_id)
