"""Attachments are judged by their bytes; widget origins as browsers send them."""

from __future__ import annotations

import pytest

from chat.attachments import AttachmentError, check_attachment, sniff
from chat.widget_origin import OriginError, frame_ancestors, normalise_origin, origin_allowed

PNG = b"\x89PNG\r\n\x1a\n" + bytes(20)
PDF = b"%PDF-1.7\n..."


def test_images_and_pdf_are_known_by_their_bytes_whatever_their_name() -> None:
    assert sniff(PNG) == ("image/png", ".png")
    assert sniff(b"RIFF\0\0\0\0WEBPVP8 ") == ("image/webp", ".webp")
    checked = check_attachment(PDF, "../../etc/发票.exe")
    assert checked.content_type == "application/pdf"
    assert checked.filename == "发票.exe.pdf"  # no path, and the real type's extension
    assert check_attachment(b"\xff\xd8\xff\xe0", "photo.JPEG").filename == "photo.JPEG"


@pytest.mark.parametrize(("data", "error_id", "status"), [
    (b"", "attachment-empty", 422),
    (b"MZ\x90\x00 a windows program", "attachment-type", 415),
    (b"<svg onload=alert(1)>", "attachment-type", 415),
    (PNG + bytes(100), "attachment-too-large", 413),
])
def test_other_files_are_refused_with_a_reason(data: bytes, error_id: str, status: int) -> None:
    with pytest.raises(AttachmentError) as caught:
        check_attachment(data, "x.png", max_bytes=64)
    assert (caught.value.error_id, caught.value.status) == (error_id, status)


def test_origins_are_normalised_like_a_browsers_origin_header() -> None:
    assert normalise_origin("HTTPS://Shop.Example.com:443/path?q") == "https://shop.example.com"
    assert normalise_origin("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    for bad in ("ftp://x", "https://", "javascript:alert(1)", "https://a b", "https://*.example.com",
                "https://u:p@x.com"):
        with pytest.raises(OriginError):
            normalise_origin(bad)
    allowed = ["https://shop.example.com"]
    assert origin_allowed("https://shop.example.com", allowed)
    assert not origin_allowed("https://evil.example.com", allowed)
    assert not origin_allowed(None, allowed)
    assert frame_ancestors(allowed) == "frame-ancestors 'self' https://shop.example.com"
