"""A preview campaign on the agent page, in real headless Chromium: the agent asks for the next
contact, sees who it is (name, number, the CSV's other columns), skips one, calls the next; the
customer (sipp behind a carrier trunk) answers and the call goes on as one from the dial pad.
And the voicemail inbox: a message a caller left, played and called back in one click.

(To be appended to test_agent_page.py once the server side is settled: it uses that module's
node, API client, browser and customer scenario.)
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from callcenter.models import CallRecord, Tenant, Voicemail
from sip_bridge.tones import sine
from tests.softphone_web.test_agent_page import (  # noqa: F401  (its fixtures)
    CALLEE,
    CUSTOMER_TONE,
    DEMO,
    api,
    node,
    one_browser,
)
from tests.support.agent_page import (
    eventually,
    open_softphone,
    page_hears,
    screenshot_path,
)
from tests.support.browser import tone_wav
from tests.support.node import NodeProcess, add_tenant, free_port
from tests.support.pcap import write_rtp_pcap

pytestmark = pytest.mark.interop

CONTACTS = "电话,姓名,订单号\n13900139001,张三,A-1001\n13900139002,李四,A-1002\n"


def _customer(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """sipp answering as the customer (the inline CALLEE scenario, talking a tone); and its SIP port."""
    sip_port, media_port = free_port(), free_port()
    pcap = write_rtp_pcap(workdir / "customer.pcap", sine(CUSTOMER_TONE, 30.0, amplitude=0.3))
    (workdir / "customer.xml").write_text(CALLEE.replace("{pcap}", str(pcap)))
    return subprocess.Popen(["sipp", "-sf", str(workdir / "customer.xml"), "-aa", "-i", "127.0.0.1",
                             "-p", str(sip_port), "-mp", str(media_port), "-nostdin", "-trace_msg",
                             "-message_file", "customer.log"],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), sip_port


def _window_open_now(zone: str) -> dict[str, object]:
    """A calling window open now in ``zone``, whatever the time of day the test runs."""
    now = datetime.now(ZoneInfo(zone))
    return {"start": (now - timedelta(hours=1)).strftime("%H:00"), "end": (now + timedelta(hours=2)).strftime("%H:00"),
            "days": [1, 2, 3, 4, 5, 6, 7]}


async def test_an_agent_previews_skips_and_calls_campaign_contacts(node: NodeProcess, api: httpx.Client,  # noqa: F811
                                                                   one_browser: Browser,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    customer, sip_port = _customer(tmp_path)
    trunk = api.post("/api/trunks", json={"name": "preview-carrier", "outbound_host": "127.0.0.1",
                                          "outbound_port": sip_port, "priority": 1})
    assert trunk.status_code == 201, trunk.text
    prefixes = api.get("/api/tenant").json()["outbound_prefixes"]
    assert api.patch("/api/tenant", json={"outbound_prefixes": ["139"]}).status_code == 200  # the contacts' numbers
    created = api.post("/api/campaigns", json={"name": "预览", "mode": "preview", "queue": "sales", "caller_id": DEMO,
                                               "window": _window_open_now("Asia/Shanghai"),
                                               "timezone": "Asia/Shanghai"})
    assert created.status_code == 201, created.text
    campaign = created.json()["id"]
    try:
        imported = api.post(f"/api/campaigns/{campaign}/contacts", content=CONTACTS.encode(),
                            headers={"Content-Type": "text/csv"}).json()
        assert imported["imported"] == 2, imported
        assert api.post(f"/api/campaigns/{campaign}/start").status_code == 200

        agent1 = await open_softphone(one_browser, node, "agent1")  # agent1 serves sales: works the campaign
        problems: list[str] = []
        agent1.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        agent1.on("pageerror", lambda e: problems.append(str(e)))
        await expect(agent1.locator("#preview-card")).to_be_visible()
        await expect(agent1.locator("#preview-campaigns")).to_have_text("预览")

        # the first contact: who it is before calling, the CSV's other columns as details
        await agent1.click("#btn-preview-next")
        await expect(agent1.locator("#preview-name")).to_have_text("张三")
        await expect(agent1.locator("#preview-phone")).to_have_text("13900139001")
        await expect(agent1.locator("#preview-caller-id")).to_have_text(DEMO)
        await expect(agent1.locator("#preview-attributes th")).to_have_text(["订单号"])
        await expect(agent1.locator("#preview-attributes td")).to_have_text(["A-1001"])
        await agent1.screenshot(path=screenshot_path("agent-preview", tmp_path), animations="disabled")

        # skipped: back to "Next contact", which gives the second one
        await agent1.click("#btn-preview-skip")
        await expect(agent1.locator("#preview-note")).to_have_text("Skipped 张三.")
        await agent1.click("#btn-preview-next")
        await expect(agent1.locator("#preview-name")).to_have_text("李四")
        await expect(agent1.locator("#preview-attributes td")).to_have_text(["A-1002"])

        # called: from here on a call like one from the dial pad
        await agent1.click("#btn-preview-call")
        await expect(agent1.locator("#call-panel")).to_be_visible()
        await expect(agent1.locator("#call-caller")).to_have_text("13900139002")
        await expect(agent1.locator("#preview-card")).to_be_hidden()
        await expect(agent1.locator("#call-status-text")).to_have_text("Outbound call", timeout=10_000)
        call_id = await agent1.evaluate("window.softphone.call.call_id")
        await page_hears(agent1, CUSTOMER_TONE)  # the customer's voice reaches the page
        await agent1.click("#btn-hangup")
        await expect(agent1.locator("#wrapup-panel")).to_be_visible()
        await expect(agent1.locator("#btn-preview-next")).to_be_visible()  # the card is free for the next one

        def called() -> dict[str, object]:
            contacts = api.get(f"/api/campaigns/{campaign}/contacts").json()["contacts"]
            return next(c for c in contacts if c["phone"] == "13900139002")

        async def done() -> bool:
            return called()["status"] == "done"
        await eventually(done, timeout=5)
        assert (called()["attempts"], called()["last_outcome"]) == (1, "person")
        record = api.get(f"/api/calls/{call_id}").json()
        assert record["agent"]["username"] == "agent1" and record["dialed"] == "13900139002"
        assert "campaign" in [e["kind"] for e in record["events"]], record["events"]
        assert not problems, problems
    finally:
        api.post(f"/api/campaigns/{campaign}/stop")
        api.patch("/api/tenant", json={"outbound_prefixes": prefixes})
        if customer.poll() is None:
            customer.terminate()
            customer.wait(10)
        api.delete(f"/api/trunks/{trunk.json()['id']}")


def _leave_voicemail(demo: NodeProcess, caller: str) -> int:
    """What the IVR's voicemail node leaves, written straight into the node's database: an ended
    inbound call from ``caller`` a minute ago and its 1 s message (a WAV in the tenant's folder)."""
    engine = create_engine(f"sqlite:///{demo.data_dir}/callcenter.db")
    try:
        with Session(engine) as db, db.begin():
            tenant_id = db.scalar(select(Tenant.id).where(Tenant.slug == "demo"))
            folder = demo.data_dir / "voicemail" / f"tenant-{tenant_id}"
            folder.mkdir(parents=True, exist_ok=True)
            wav = tone_wav(folder / "test.wav", 440.0, seconds=1.0)
            left = datetime.now(UTC) - timedelta(minutes=1)
            record = CallRecord(sip_call_id="voicemail-test", tenant_id=tenant_id, direction="inbound", caller=caller,
                                dialed=DEMO, received_at=left, answered_at=left, ended_at=left + timedelta(seconds=12))
            db.add(record)
            db.flush()
            voicemail = Voicemail(tenant_id=tenant_id, call_id=record.id, path=str(wav), seconds=1.0,
                                  created_at=left + timedelta(seconds=11))
            db.add(voicemail)
            db.flush()
            return voicemail.id
    finally:
        engine.dispose()


async def test_an_agent_plays_a_voicemail_and_calls_the_caller_back(node: NodeProcess, api: httpx.Client,  # noqa: F811
                                                                    one_browser: Browser,  # noqa: F811
                                                                    tmp_path: Path) -> None:
    caller = "13900139001"
    voicemail = _leave_voicemail(node, caller)
    customer, sip_port = _customer(tmp_path)
    trunk = api.post("/api/trunks", json={"name": "voicemail-carrier", "outbound_host": "127.0.0.1",
                                          "outbound_port": sip_port, "priority": 1})
    assert trunk.status_code == 201, trunk.text
    prefixes = api.get("/api/tenant").json()["outbound_prefixes"]
    assert api.patch("/api/tenant", json={"outbound_prefixes": ["139"]}).status_code == 200
    try:
        agent1 = await open_softphone(one_browser, node, "agent1")
        problems: list[str] = []
        agent1.on("pageerror", lambda e: problems.append(str(e)))
        item = agent1.locator(f'#voicemails li[data-voicemail-id="{voicemail}"]')
        await expect(item.locator(".voicemail-caller")).to_have_text(caller)
        await expect(item.locator(".voicemail-when")).to_contain_text("00:01")
        await expect(item.locator(".voicemail-called-back")).to_have_count(0)
        await expect(item.locator("audio")).to_have_attribute("src", f"/api/voicemails/{voicemail}/audio")

        # the player's request: the agent's session cookie is enough; an unknown id is a 404
        audio = await agent1.request.get(f"{node.http}/api/voicemails/{voicemail}/audio")
        assert (audio.status, audio.headers["content-type"]) == (200, "audio/wav")
        assert (await audio.body())[:4] == b"RIFF"
        unknown = await agent1.request.get(f"{node.http}/api/voicemails/2147483647/audio")
        assert (unknown.status, (await unknown.json())["error_id"]) == (404, "voicemail-not-found")
        # another tenant's user sees neither the message nor its audio
        add_tenant(node, "vmother", {"vmboss": "admin"})
        with httpx.Client(base_url=node.http) as other:
            login = other.post("/api/login", json={"tenant": "vmother", "username": "vmboss",
                                                   "password": "vmboss-secret-1"})
            other.headers["Authorization"] = f"Bearer {login.json()['token']}"
            assert other.get("/api/voicemails").json() == []
            foreign = other.get(f"/api/voicemails/{voicemail}/audio")
            assert (foreign.status_code, foreign.json()["error_id"]) == (404, "voicemail-not-found")

        # one click calls the caller back, as from Recent calls; then the message says so
        await item.locator(".btn-voicemail-call").click()
        await expect(agent1.locator("#call-panel")).to_be_visible()
        await expect(agent1.locator("#call-caller")).to_have_text(caller)
        await expect(agent1.locator("#call-status-text")).to_have_text("Outbound call", timeout=10_000)
        await agent1.click("#btn-hangup")
        await expect(agent1.locator("#wrapup-panel")).to_be_visible()
        await expect(item.locator(".voicemail-called-back")).to_have_text("Called back")
        assert not problems, problems
    finally:
        api.patch("/api/tenant", json={"outbound_prefixes": prefixes})
        if customer.poll() is None:
            customer.terminate()
            customer.wait(10)
        api.delete(f"/api/trunks/{trunk.json()['id']}")
