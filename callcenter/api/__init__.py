"""HTTP API of the node: ``create_app(ctx)`` builds the FastAPI application."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from callcenter.api import (acd, agent_desk, audit, auth, calls, flows, numbers, pages, qa, recordings, security,
                            softphone, supervisor, tenants, trunks, users)
from callcenter.api import reports  # listed before calls: /api/calls/search is not a call id
from callcenter.api import admin_page, campaigns, chat, flow_test_calls, operator, supervisor_actions
from callcenter.api import contacts
from callcenter.api import chat_transcripts, faq
from callcenter.api import chat_pages
from callcenter.api.bounds import InputBounds
from callcenter.api.browser_security import SecurityHeaders
from callcenter.api.deps import AppContext, get_ctx, public
from callcenter.api.errors import install_error_handlers
from callcenter.metrics import REGISTRY

__all__ = ["AppContext", "create_app"]


def create_app(ctx: AppContext) -> FastAPI:
    """The API application for ``ctx``; every route checks a role or is marked public."""
    # No /docs or /redoc: FastAPI builds them from a CDN with inline script, which the pages'
    # Content-Security-Policy (and the no-CDN rule) forbids; /openapi.json is the API's description.
    app = FastAPI(title="callcenter", version="0.1.0", docs_url=None, redoc_url=None)
    app.state.ctx = ctx
    app.add_middleware(SecurityHeaders)
    install_error_handlers(app)
    app.add_middleware(InputBounds)

    @app.get("/healthz", dependencies=[Depends(public)], tags=["ops"])
    def healthz(ctx: AppContext = Depends(get_ctx)) -> JSONResponse:
        """Liveness plus a database round trip; 503 when the database does not answer."""
        try:
            with ctx.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return JSONResponse(
                {"status": "error", "db": "error", "error_id": "database-unavailable", "message": "database unavailable"},
                status_code=503,
            )
        return JSONResponse({"status": "ok", "db": "ok"})

    @app.get("/metrics", dependencies=[Depends(public)], tags=["ops"])
    def metrics() -> Response:
        """Prometheus exposition of ``callcenter.metrics.REGISTRY``."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    for module in (reports, auth, tenants, trunks, numbers, users, calls, audit, flows, acd, pages, softphone,
                   agent_desk, recordings, qa, supervisor, security):
        app.include_router(module.router)
    app.include_router(supervisor_actions.router)
    app.include_router(flow_test_calls.router)
    app.include_router(admin_page.router)
    app.include_router(operator.router)
    app.include_router(operator.page_router)
    app.include_router(campaigns.router)
    app.include_router(campaigns.dnc_router)
    app.include_router(chat.router)
    app.include_router(chat_pages.router)
    app.include_router(contacts.router)
    app.include_router(faq.router)
    app.include_router(faq.canned_router)
    app.include_router(chat_transcripts.router)
    return app
