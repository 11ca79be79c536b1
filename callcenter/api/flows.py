"""IVR flows, business calendars and uploaded prompts of the caller's tenant (admin only).

A flow is sent as the request body, JSON or YAML (``Content-Type: application/yaml``
or ``text/yaml``).  An invalid flow is answered 422 ``invalid-flow`` with an
``issues`` list (node, field, reason, line) and nothing is stored, so the version
already published keeps answering calls.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from fastapi import APIRouter, Depends, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter import flows
from callcenter.api.audit import record_audit
from callcenter.api.bounds import Instant, JsonBoundsError, Name, Version, check_json
from callcenter.api.deps import AppContext, get_ctx, get_db, require_roles
from callcenter.api.errors import ApiError, invalid, not_found, validation_details
from callcenter.api.routing import notify_routing_changed
from callcenter.models import BusinessCalendarRow
from callcenter.security import Principal
from ivr.calendar import BusinessCalendar
from ivr.compiler import compile_flow, load_document
from ivr.errors import FlowIssue, FlowValidationError
from ivr.lint import flow_warnings
from ivr.prompts import MAX_TTS_CHARS, PromptError, PromptLibrary, PromptNotFound
from ivr.schema import NAME, NODE_ID, NODE_TYPES, FlowDocument
from ivr.simulator import HttpMock, simulate

router = APIRouter(tags=["ivr"])
admin = require_roles("admin")
MAX_FLOW_BYTES = 1_000_000
NAME_RE = re.compile(NAME)


def _invalid_flow(exc: FlowValidationError) -> ApiError:
    return ApiError(422, "invalid-flow", str(exc), issues=[i.as_dict() for i in exc.issues])


async def _flow_body(request: Request) -> tuple[Any, str]:
    data = await request.body()
    if len(data) > MAX_FLOW_BYTES:
        raise ApiError(413, "flow-too-large", f"a flow document is at most {MAX_FLOW_BYTES} bytes",
                       max_bytes=MAX_FLOW_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid("a flow document is UTF-8 text") from exc
    yaml_type = "yaml" in request.headers.get("content-type", "")
    try:
        document = load_document(text, "flow.yaml" if yaml_type else "flow.json")
        check_json(document)
    except FlowValidationError as exc:
        raise _invalid_flow(exc) from exc
    except JsonBoundsError as exc:
        field = ".".join(map(str, exc.loc))
        raise _invalid_flow(FlowValidationError([FlowIssue(None, field, exc.message)])) from exc
    except RecursionError as exc:  # the JSON or YAML parser's own recursion, deeper than check_json allows anyway
        raise _invalid_flow(FlowValidationError([FlowIssue(None, "", "nested too deeply")])) from exc
    return document, text


def _prompts(ctx: AppContext) -> PromptLibrary:
    return flows.prompt_library(ctx.settings.data_dir)


# -- flows ---------------------------------------------------------------------------------
@router.get("/api/flows")
def list_flows(principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    return flows.list_flows(db, principal.tenant_id)


@router.post("/api/flows/validate")
async def validate_flow(request: Request, principal: Principal = Depends(admin), db: Session = Depends(get_db),
                        ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Check a flow against the schema and the tenant without storing it."""
    raw, text = await _flow_body(request)
    try:
        flow = flows.validate(db, principal.tenant_id, raw, frozenset(_prompts(ctx).list(principal.tenant_id)), text)
    except FlowValidationError as exc:
        raise _invalid_flow(exc) from exc
    return {"valid": True, "name": flow.name, "nodes": len(flow.nodes), "warnings": flow_warnings(flow)}


@router.post("/api/flows", status_code=201)
async def import_flow(request: Request, number: str | None = Query(default=None, pattern=r"^[0-9]{3,32}$"),
                      principal: Principal = Depends(admin), db: Session = Depends(get_db),
                      ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Store a new version of the flow named in the document; ``?number=`` publishes it there."""
    raw, text = await _flow_body(request)
    try:
        result = flows.import_flow(db, principal.tenant_id, raw, frozenset(_prompts(ctx).list(principal.tenant_id)),
                                   source_text=text, number=number, user_id=principal.user_id)
    except FlowValidationError as exc:
        raise _invalid_flow(exc) from exc
    except flows.FlowStoreError as exc:
        raise invalid(str(exc)) from exc
    record_audit(db, principal, "flow.import", f"flow:{result.flow}",
                 {"version": result.version, "published_on": result.published_on})
    db.commit()
    if number is not None:
        notify_routing_changed(ctx)
    return {"flow": result.flow, "version": result.version, "published_on": result.published_on}


@router.get("/api/flows/{name}")
def export_flow(name: Name, version: Version | None = None, format: Literal["json", "yaml"] = "json",
                principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> Any:
    """A stored version's document (the newest unless ``?version=``); ``?format=yaml`` downloads it as YAML."""
    try:
        row = flows.find_version(db, principal.tenant_id, name, version)
    except flows.FlowStoreError as exc:
        raise not_found("flow") from exc
    if format == "json":
        return row.document
    return Response(yaml.safe_dump(row.document, allow_unicode=True, sort_keys=False), media_type="application/yaml",
                    headers={"Content-Disposition": f'attachment; filename="{name}-v{row.version}.yaml"'})


class PublishBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Version
    number: str = Field(pattern=r"^[0-9]{3,32}$")


@router.post("/api/flows/{name}/publish")
def publish_flow(name: Name, body: PublishBody, principal: Principal = Depends(admin), db: Session = Depends(get_db),
                 ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Put a stored version live on a number (new calls only; calls in progress keep theirs)."""
    try:
        flows.publish(db, principal.tenant_id, name, body.version, body.number)
    except flows.FlowStoreError as exc:
        raise invalid(str(exc)) from exc
    record_audit(db, principal, "flow.publish", f"flow:{name}", body.model_dump())
    db.commit()
    notify_routing_changed(ctx)
    return {"flow": name, "version": body.version, "published_on": body.number}


@router.get("/api/flows/{name}/versions")
def flow_versions(name: Name, principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> dict[str, Any]:
    """Versions (when, by whom, live on which numbers) and the tenant's numbers with what is live on each."""
    try:
        return flows.flow_versions(db, principal.tenant_id, name)
    except flows.FlowStoreError as exc:
        raise not_found("flow") from exc


@router.get("/api/flow-schema")
def flow_schema(principal: Principal = Depends(admin)) -> dict[str, Any]:
    """The JSON schema of a flow document (what the console's node forms are made from)."""
    return {"schema": FlowDocument.model_json_schema(), "node_types": list(NODE_TYPES), "node_ref": NODE_ID}


DtmfKeys = Annotated[str, Field(pattern=r"^[0-9*#]{0,64}$")]
SpokenText = Annotated[str, Field(max_length=200)]
NodeKey = Annotated[str, Field(pattern=NODE_ID)]


class HttpMockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: int = Field(default=200, ge=100, le=599)
    body: Any = None


class SimulateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: dict[str, Any]
    keys: list[DtmfKeys] = Field(default_factory=list, max_length=100,
                                 description="one entry per prompt: digits (the rest typed ahead); '' is silence")
    speech: list[SpokenText] = Field(default_factory=list, max_length=100,
                                     description="what the caller says, once the keys are used up")
    at: Instant | None = Field(default=None, description="the time of the call; without an offset, in the zone "
                                                          "of the flow's first calendar (else the tenant's); none: now")
    http: dict[NodeKey, HttpMockIn] = Field(default_factory=dict, max_length=100,
                                            description="http node id -> its mocked answer")


@router.post("/api/flows/simulate")
async def simulate_flow(body: SimulateIn, principal: Principal = Depends(admin), db: Session = Depends(get_db),
                        ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Run a flow document (a draft, stored or not) through the engine with a simulated call: the path,
    what the caller heard and typed per node, the branch taken, the result or the error that stopped it."""
    try:
        flow = compile_flow(body.document)
    except FlowValidationError as exc:
        raise _invalid_flow(exc) from exc
    sim = flows.simulation_context(db, principal.tenant_id, frozenset(_prompts(ctx).list(principal.tenant_id)))
    at = body.at or datetime.now(timezone.utc)
    if at.tzinfo is None:
        first = next((c for n in flow.nodes.values() if n.type == "business_hours"
                      and (c := sim.calendars.get(n.spec.calendar)) is not None), None)
        at = at.replace(tzinfo=ZoneInfo(first.timezone if first is not None else sim.timezone))
    return await simulate(flow, keys=body.keys, speech=body.speech, at=at, calendars=sim.calendars,
                          prompts=sim.prompts, queues=sim.queues, may_dial=sim.facts.may_dial,
                          http={k: HttpMock(v.status, v.body) for k, v in body.http.items()},
                          tenant_id=principal.tenant_id)


# -- business calendars --------------------------------------------------------------------
@router.get("/api/calendars")
def list_calendars(principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> dict[str, Any]:
    rows = db.scalars(select(BusinessCalendarRow).where(BusinessCalendarRow.tenant_id == principal.tenant_id))
    return {row.name: row.definition for row in rows}


@router.put("/api/calendars/{name}")
def put_calendar(name: Name, body: dict[str, Any], principal: Principal = Depends(admin),
                 db: Session = Depends(get_db)) -> dict[str, Any]:
    """Create or replace a calendar (time zone, weekly hours, holidays); flows read it live."""
    if not NAME_RE.fullmatch(name):
        raise invalid("calendar names are lower-case letters, digits, '-' and '_'")
    try:
        definition = BusinessCalendar.model_validate(body).model_dump(mode="json")
    except ValidationError as exc:
        message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ApiError(422, "invalid-request", message, details=validation_details(exc.errors(), ["body"])) from exc
    row = db.scalar(select(BusinessCalendarRow).where(BusinessCalendarRow.tenant_id == principal.tenant_id,
                                                      BusinessCalendarRow.name == name))
    if row is None:
        db.add(BusinessCalendarRow(tenant_id=principal.tenant_id, name=name, definition=definition))
    else:
        row.definition = definition
    record_audit(db, principal, "calendar.put", f"calendar:{name}", {})
    db.commit()
    return definition


@router.delete("/api/calendars/{name}", status_code=204)
def delete_calendar(name: Name, principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> Response:
    row = db.scalar(select(BusinessCalendarRow).where(BusinessCalendarRow.tenant_id == principal.tenant_id,
                                                      BusinessCalendarRow.name == name))
    if row is None:
        raise not_found("calendar")
    db.delete(row)
    record_audit(db, principal, "calendar.delete", f"calendar:{name}", {})
    db.commit()
    return Response(status_code=204)


# -- prompts -----------------------------------------------------------------------------
@router.get("/api/prompts")
def list_prompts(principal: Principal = Depends(admin), ctx: AppContext = Depends(get_ctx)) -> list[str]:
    return _prompts(ctx).list(principal.tenant_id)


@router.put("/api/prompts/{name}")
async def upload_prompt(name: Name, file: UploadFile, principal: Principal = Depends(admin),
                        db: Session = Depends(get_db), ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Upload a WAV or MP3 prompt; it is converted once to 8 kHz for the phone network."""
    data = await file.read()
    try:
        await _prompts(ctx).import_upload(principal.tenant_id, name, data, file.filename or "")
    except PromptError as exc:
        raise invalid(str(exc)) from exc
    record_audit(db, principal, "prompt.upload", f"prompt:{name}", {"bytes": len(data)})
    db.commit()
    return {"name": name}


@router.get("/api/prompts/{name}/audio")
def prompt_audio(name: Name, principal: Principal = Depends(admin), ctx: AppContext = Depends(get_ctx)) -> FileResponse:
    """The prompt as the phone network plays it (8 kHz WAV), for listening in the console."""
    try:
        path = _prompts(ctx).recorded(principal.tenant_id, name)
    except PromptNotFound as exc:
        raise not_found("prompt") from exc
    except PromptError as exc:
        raise invalid(str(exc)) from exc
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "no-store"})


class TtsPreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_TTS_CHARS)
    voice: str = Field(pattern=r"^[a-z]{2}$", description="an IVR voice: en, zh or ko")


@router.post("/api/prompts/tts-preview")
async def tts_preview(body: TtsPreviewIn, principal: Principal = Depends(admin),
                      ctx: AppContext = Depends(get_ctx)) -> FileResponse:
    """Text spoken as a flow's ``tts`` prompt would be (same cache), to hear before publishing."""
    try:
        path = await _prompts(ctx).tts(body.text, body.voice)
    except PromptError as exc:
        raise invalid(str(exc)) from exc
    except RuntimeError as exc:  # espeak-ng or sox missing or hanging: the node's fault, not the request's
        raise ApiError(503, "tts-unavailable", str(exc)) from exc
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "no-store"})


@router.delete("/api/prompts/{name}", status_code=204)
def delete_prompt(name: Name, principal: Principal = Depends(admin), db: Session = Depends(get_db),
                  ctx: AppContext = Depends(get_ctx)) -> Response:
    try:
        _prompts(ctx).delete(principal.tenant_id, name)
    except PromptNotFound as exc:
        raise not_found("prompt") from exc
    except PromptError as exc:
        raise invalid(str(exc)) from exc
    record_audit(db, principal, "prompt.delete", f"prompt:{name}", {})
    db.commit()
    return Response(status_code=204)
