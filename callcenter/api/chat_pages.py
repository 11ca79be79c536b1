"""The web chat's pages for visitors (issue 16): ``/widget.js``, the loader a tenant puts on its own
site; ``/chat``, the chat panel the loader shows in an iframe (its modules are ``/static/chat*.js``);
and ``/demo-site``, a made-up shop page of the demo tenant that carries the widget. The chat's API and
the visitor's socket are in ``api/chat.py``.

The panel is the only page of the node another site may frame: its Content-Security-Policy names
the tenant's ``allowed_origins`` in ``frame-ancestors`` (any other site gets a refusal from the
browser itself), and it carries no ``X-Frame-Options`` (the browser-security middleware leaves the
header out of a page that brings its own policy).
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.api.browser_security import CONTENT_SECURITY_POLICY
from callcenter.api.deps import get_db, public
from callcenter.api.errors import not_found
from callcenter.chat_settings import chat_settings, tenant_by_widget_key
from callcenter.models import Tenant
from chat.widget_origin import frame_ancestors

router = APIRouter(tags=["pages"])

WEB = Path(__file__).resolve().parent.parent / "web"
#: The loader's URL never changes (it is in tenants' pages): an hour in caches, then revalidated by ETag.
LOADER_CACHE = "public, max-age=3600"


def chat_page_policy(origins: list[str]) -> str:
    """The node's page policy with the panel's framers: the node itself and ``origins``."""
    return CONTENT_SECURITY_POLICY.replace("frame-ancestors 'none'", frame_ancestors(origins))


@router.get("/widget.js", dependencies=[Depends(public)], include_in_schema=False)
def widget_loader() -> FileResponse:
    """The loader for tenants' sites; it may be loaded by any page (the key in its tag decides the rest)."""
    return FileResponse(WEB / "widget.js", media_type="text/javascript", headers={
        "Cache-Control": LOADER_CACHE,
        "Cross-Origin-Resource-Policy": "cross-origin",  # host pages that isolate themselves (COEP) may load it
    })


@router.get("/chat", dependencies=[Depends(public)], include_in_schema=False)
def chat_page(key: str = Query("", max_length=100), db: Session = Depends(get_db)) -> FileResponse:
    """The chat panel of the tenant whose widget key is ``key``, frameable by its allowed origins only.
    An unknown key still gets the page (it says chat is not available), framed by nobody else."""
    found = tenant_by_widget_key(db, key)
    origins = found[1].allowed_origins if found else []
    return FileResponse(WEB / "chat.html", headers={
        "Cache-Control": "no-cache",
        "Content-Security-Policy": chat_page_policy(origins),
    })


@router.get("/demo-site", dependencies=[Depends(public)], include_in_schema=False)
def demo_site(db: Session = Depends(get_db)) -> HTMLResponse:
    """A shop's page with the demo tenant's widget, to try the chat as a visitor would."""
    # (imported here: the demo module builds tenants with the API's helpers)
    from callcenter.demo import DEMO_SLUG

    tenant = db.scalar(select(Tenant).where(Tenant.slug == DEMO_SLUG))
    key = chat_settings(tenant).widget_key if tenant is not None else ""
    if not key:
        raise not_found("file")
    page = (WEB / "demo_site.html").read_text(encoding="utf-8")
    return HTMLResponse(page.replace("{{widget_key}}", html.escape(key, quote=True)),
                        headers={"Cache-Control": "no-cache"})
