"""Full-text search over transcripts: SQLite FTS5 by default, PostgreSQL's full text in production.

The SQLite index is a separate FTS5 table kept in step by :func:`index_transcript` and
:func:`unindex_transcript`; PostgreSQL indexes ``transcripts.text`` itself (an expression GIN
index), so there is nothing to keep in step. Every query term matches as a word prefix, so
"환불" finds "환불을" (Korean attaches particles to words).
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.orm import Session

from .models import Transcript

_TERM = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 8


def _sqlite(db: Session) -> bool:
    return db.get_bind().dialect.name == "sqlite"


def index_transcript(db: Session, transcript: Transcript) -> None:
    """(Re)index a transcript's text; the caller commits."""
    if _sqlite(db):
        unindex_transcript(db, transcript)
        db.execute(text("INSERT INTO transcript_fts (text, recording_id, tenant_id) VALUES (:t, :r, :n)"),
                   {"t": transcript.text, "r": transcript.recording_id, "n": transcript.tenant_id})


def unindex_transcript(db: Session, transcript: Transcript) -> None:
    if _sqlite(db):
        db.execute(text("DELETE FROM transcript_fts WHERE recording_id = :r"), {"r": transcript.recording_id})


def unindex_tenant(db: Session, tenant_id: int) -> None:
    """Drop every transcript of a tenant from the index (the tenant is being deleted)."""
    if _sqlite(db):
        db.execute(text("DELETE FROM transcript_fts WHERE tenant_id = :n"), {"n": tenant_id})


def search_call_ids(db: Session, tenant_id: int, query: str, limit: int = 1000) -> list[str]:
    """Calls of the tenant whose transcript has every word of ``query`` (as word prefixes)."""
    terms = _TERM.findall(query)[:MAX_TERMS]
    if not terms:
        return []
    if _sqlite(db):
        match = " ".join(f'"{term}"*' for term in terms)
        rows = db.execute(text(
            "SELECT t.call_id FROM transcript_fts f JOIN transcripts t ON t.recording_id = f.recording_id "
            "WHERE transcript_fts MATCH :m AND f.tenant_id = :n AND t.tenant_id = :n LIMIT :l"),
            {"m": match, "n": tenant_id, "l": limit})
    else:
        tsquery = " & ".join(f"{term}:*" for term in terms)
        rows = db.execute(text(
            "SELECT call_id FROM transcripts WHERE tenant_id = :n "
            "AND to_tsvector('simple', text) @@ to_tsquery('simple', :q) LIMIT :l"),
            {"q": tsquery, "n": tenant_id, "l": limit})
    return list(dict.fromkeys(row[0] for row in rows))
