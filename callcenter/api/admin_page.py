"""The tenant admin console page (``/admin``) and the outbound campaigns page (``/campaigns``); their
scripts, stylesheets and message catalogues are shared static files (``/static/admin*.js``,
``/static/campaigns*.js``, ``/static/*.css``, ``/static/i18n/...``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from callcenter.api.deps import public

router = APIRouter(tags=["pages"])

WEB = Path(__file__).resolve().parent.parent / "web"


@router.get("/admin", dependencies=[Depends(public)], include_in_schema=False)
def admin_page() -> FileResponse:
    """The console; it signs in through the page shell (the page itself holds no data)."""
    return FileResponse(WEB / "admin.html", headers={"Cache-Control": "no-cache"})


@router.get("/campaigns", dependencies=[Depends(public)], include_in_schema=False)
def campaigns_page() -> FileResponse:
    """Outbound campaigns (admin, supervisor); it signs in through the page shell."""
    return FileResponse(WEB / "campaigns.html", headers={"Cache-Control": "no-cache"})
