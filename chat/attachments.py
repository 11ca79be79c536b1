"""What a chat may carry as a file: images and PDF, recognised by their first bytes (the
name and the browser's declared type are the sender's word, not evidence), under a size cap."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
"""The default cap (a phone photo fits; a tenant's setting may lower it)."""

_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", ".png"),
    (b"\xff\xd8\xff", 0, "image/jpeg", ".jpg"),
    (b"GIF87a", 0, "image/gif", ".gif"),
    (b"GIF89a", 0, "image/gif", ".gif"),
    (b"%PDF-", 0, "application/pdf", ".pdf"),
)
_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+", re.UNICODE)


class AttachmentError(ValueError):
    def __init__(self, message: str, error_id: str, status: int) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.status = status


@dataclass(frozen=True)
class CheckedFile:
    content_type: str
    filename: str


def sniff(data: bytes) -> tuple[str, str] | None:
    """(content type, usual extension) of an image or PDF, from its bytes; None for anything else."""
    for magic, offset, content_type, extension in _SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            return content_type, extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", ".webp"
    return None


def check_attachment(data: bytes, filename: str, max_bytes: int = MAX_ATTACHMENT_BYTES) -> CheckedFile:
    """The file's real type and a safe name; ``AttachmentError`` (413 too large, 415 not an
    image or PDF, 422 empty) otherwise."""
    if not data:
        raise AttachmentError("the file is empty", "attachment-empty", 422)
    if len(data) > max_bytes:
        raise AttachmentError(f"the file is larger than {max_bytes} bytes", "attachment-too-large", 413)
    found = sniff(data)
    if found is None:
        raise AttachmentError("only images (PNG, JPEG, GIF, WebP) and PDF files can be sent", "attachment-type", 415)
    content_type, extension = found
    name = _UNSAFE.sub("_", filename.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")[:150] or "file"
    if not name.lower().endswith(extension) and not (extension == ".jpg" and name.lower().endswith(".jpeg")):
        name += extension
    return CheckedFile(content_type, name)
