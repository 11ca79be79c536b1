"""JSON log lines carry call_id from the context variable and from ``extra``."""

from __future__ import annotations

import io
import json
import logging

import pytest

from callcenter.logs import JsonFormatter, call_id_var, setup_logging


@pytest.fixture
def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.callcenter.logs")
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, stream


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_call_id_from_contextvar(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    token = call_id_var.set("abc-123")
    try:
        logger.info("ringing %s", "4001234567")
    finally:
        call_id_var.reset(token)
    logger.info("no call")
    first, second = _lines(stream)
    assert first["call_id"] == "abc-123" and first["msg"] == "ringing 4001234567"
    assert {"ts", "level", "logger", "msg"} <= set(first) and first["level"] == "INFO"
    assert "call_id" not in second


def test_call_id_and_fields_from_extra(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    token = call_id_var.set("from-context")
    try:
        logger.warning("bye", extra={"call_id": "from-extra", "sip_status": 200, "peer": ("127.0.0.1", 5060)})
    finally:
        call_id_var.reset(token)
    (line,) = _lines(stream)
    assert line["call_id"] == "from-extra"  # explicit beats ambient
    assert line["sip_status"] == 200 and line["peer"] == ["127.0.0.1", 5060]
    assert line["logger"] == "test.callcenter.logs"


def test_exception_is_one_line(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        raise ValueError("bad datagram")
    except ValueError:
        logger.exception("drop")
    assert len(stream.getvalue().splitlines()) == 1
    assert "bad datagram" in _lines(stream)[0]["exc"]  # type: ignore[operator]


def test_setup_logging_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        setup_logging("debug")
        setup_logging("info")
        ours = [h for h in root.handlers if h not in before]
        assert len(ours) == 1 and root.level == logging.INFO
    finally:
        for h in root.handlers[:]:
            if h not in before:
                root.removeHandler(h)
