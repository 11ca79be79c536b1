"""The front door and what the web pages share: ``/`` (the sign-in page, which sends a signed-in
user on to their role's page) and ``/static/<path>``, the files under ``callcenter/web/``: the
page shell (``shell.js``, ``base.css``), the message catalogues (``i18n/<lang>/<namespace>.json``),
the WebRTC helpers, the console's and the operator's modules and vendored libraries."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from callcenter.api.deps import public
from callcenter.api.errors import not_found

router = APIRouter(tags=["pages"])

WEB = Path(__file__).resolve().parent.parent / "web"
#: What /static/ may serve: a file name, or one under i18n/<lang>/ or vendor/ (never "..", never a
#: hidden file, nothing but these suffixes); anything else is "not found" without touching the disk.
ASSET = re.compile(r"(?:i18n/(?:en|zh-CN)/|vendor/)?[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*\.(?:js|css|json|svg|txt)"
                   r"|vendor/[A-Za-z0-9][A-Za-z0-9_.-]*LICENSE[A-Za-z0-9_.-]*")


@router.get("/", dependencies=[Depends(public)], include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(WEB / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/static/{path:path}", dependencies=[Depends(public)], include_in_schema=False)
def shared_asset(path: str) -> FileResponse:
    if not ASSET.fullmatch(path) or ".." in path:
        raise not_found("file")
    file = WEB / path
    if not file.is_file() or not file.resolve().is_relative_to(WEB):
        raise not_found("file")
    return FileResponse(file, headers={"Cache-Control": "no-cache"})
