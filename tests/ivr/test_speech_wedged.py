"""The speech recognizer pool wedged: the demo menu falls back to keys, the caller is served.

A demo node with one recognizer thread and ``asr_timeout`` 0.5 s; the test freezes that thread
for real (ptrace, tests/support/freeze.py) while sipp callers go through the demo flow and press
1 during the menu prompt. The key is taken (``queue: sales``), the trace notes that speech was
unavailable, each call logs one line with its call_id, the node says once that the pool is
wedged, and once that it answers again after the thread is let go; later calls listen again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.freeze import frozen_threads
from tests.support.node import NodeProcess

from .test_ivr_calls import DEMO, call, events

pytestmark = pytest.mark.interop

UNAVAILABLE = ("speech recognition unavailable (the recognizer pool does not answer): this call's menus take "
               "keys only")
KEY_DURING_THE_MENU = [("pause", 4500), ("pcap", "pcap/dtmf_2833_1.pcap"), ("pause", 1000)]
"""After the greeting (about 2 s), during the menu prompt: well after asr_timeout has run out."""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    data = tmp_path / "data"
    data.mkdir()
    n = NodeProcess(data, env={"CALLCENTER_ASR_WORKERS": "1", "CALLCENTER_ASR_TIMEOUT": "0.5"}).start()
    yield n
    n.stop()


def _lines(node: NodeProcess, text: str) -> list[dict[str, Any]]:
    return [line for line in node.logs() if str(line.get("msg", "")).startswith(text)]


def test_a_wedged_recognizer_pool_leaves_menus_to_keys(node: NodeProcess, tmp_path: Path) -> None:
    assert node.proc is not None
    with frozen_threads(node.proc.pid, "asr"):
        noticed = call(node, tmp_path / "first", DEMO, KEY_DURING_THE_MENU)  # its menu finds out
        known = call(node, tmp_path / "second", DEMO, KEY_DURING_THE_MENU)  # the pool is known to be wedged
        for record in (noticed, known):
            assert record["ivr_result"] == "queue: sales"  # the key was taken
            menu = [e["event"] for e in events(record, "menu")]
            assert "speech_unavailable" in menu and menu[-1] == "dtmf" and "recognition" not in menu, menu
            assert [line["call_id"] for line in _lines(node, UNAVAILABLE) if line["call_id"] == record["id"]] \
                == [record["id"]]  # one line per call
        assert len(_lines(node, "speech recognition wedged")) == 1
    after = call(node, tmp_path / "after", DEMO, KEY_DURING_THE_MENU)
    assert after["ivr_result"] == "queue: sales"
    assert "speech_unavailable" not in [e["event"] for e in events(after, "menu")]
    assert len(_lines(node, "speech recognition answers again")) == 1
    assert len(_lines(node, UNAVAILABLE)) == 2
