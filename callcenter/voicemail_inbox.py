"""The tenant's voicemails for the agent desk: who left one, when, how long, whether the tenant
has called them back since, and the WAV to play.

Plain functions on a SQLAlchemy session, like ``desk.py``; the HTTP API (``api/agent_desk.py``)
scopes them to the caller's tenant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from callcenter.models import CallRecord, Direction, Voicemail

DEFAULT_INBOX = 20
MAX_INBOX = 100


def tenant_voicemails(db: Session, tenant_id: int, limit: int = DEFAULT_INBOX) -> list[dict[str, Any]]:
    """The tenant's latest voicemails, newest first: ``{id, call_id, caller, received_at, seconds,
    called_back}``; ``called_back`` once the tenant placed an outbound call to the caller's number
    after the message was left."""
    callback = aliased(CallRecord)
    called_back = exists().where(callback.tenant_id == tenant_id, callback.direction == Direction.OUTBOUND.value,
                                 callback.dialed == CallRecord.caller, callback.received_at > Voicemail.created_at)
    rows = db.execute(
        select(Voicemail, CallRecord.caller, called_back.label("called_back"))
        .join(CallRecord, CallRecord.id == Voicemail.call_id)
        .where(Voicemail.tenant_id == tenant_id)
        .order_by(Voicemail.created_at.desc(), Voicemail.id.desc())
        .limit(max(1, min(limit, MAX_INBOX)))
    )
    return [
        {
            "id": vm.id,
            "call_id": vm.call_id,
            "caller": caller,
            "received_at": vm.created_at.isoformat(),
            "seconds": vm.seconds,
            "called_back": bool(done),
        }
        for vm, caller, done in rows
    ]


def voicemail_folder(data_dir: Path, tenant_id: int) -> Path:
    """Where the IVR's ``voicemail`` node writes a tenant's messages (``ivr/nodes/route.py``)."""
    return data_dir / "voicemail" / f"tenant-{tenant_id}"


def voicemail_file(voicemail: Voicemail, data_dir: Path) -> Path | None:
    """The voicemail's WAV if it is a file inside its tenant's voicemail folder, else None: the
    stored path is never served as it is (a row pointing elsewhere, through ``..`` or a symbolic
    link, is refused). Relative paths are the node's, resolved from its working directory."""
    if voicemail.tenant_id is None:
        return None
    try:
        folder = voicemail_folder(data_dir, voicemail.tenant_id).resolve()
        path = Path(voicemail.path).resolve()
        return path if path.is_relative_to(folder) and path.is_file() else None
    except (OSError, ValueError):  # a path the system refuses (NUL byte, too long, a link loop)
        return None
