"""What the web pages share: ``/static/base.css`` (palette, base elements, buttons, fields, the
login view and the app bar), linked by the agent softphone (``/agent``), the QA page (``/qa``)
and the wallboard (``/supervisor``) before their own stylesheets; ``/static/webrtc.js``, the
WebRTC helpers of the softphone and the wallboard."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from callcenter.api.deps import public
from callcenter.api.errors import not_found

router = APIRouter(tags=["pages"])

WEB = Path(__file__).resolve().parent.parent / "web"
ASSETS = frozenset({"base.css", "webrtc.js"})


@router.get("/static/{name}", dependencies=[Depends(public)], include_in_schema=False)
def shared_asset(name: str) -> FileResponse:
    if name not in ASSETS or not (WEB / name).is_file():
        raise not_found("file")
    return FileResponse(WEB / name, headers={"Cache-Control": "no-cache"})
