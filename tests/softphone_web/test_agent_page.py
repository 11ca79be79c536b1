"""The agent page in real headless Chromium, with sipp as the caller (or, for a call the agent
places, the customer on a trunk), on a demo node.

Each page's microphone is Chromium's fake device playing a tone of its own; the caller
(sipp) plays a 1 kHz tone. What the page hears is checked with an analyser on its remote
audio; what the caller hears is captured off the loopback interface at sipp's media port.

Set ``CALLCENTER_SCREENSHOTS=<dir>`` to keep the README's screenshots.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from sip_bridge.tones import detect_tone, sine
from tests.support.agent_page import (SippCaller, answer, caller_hears, eventually, open_softphone, page_hears,
                                      screenshot_path)
from tests.support.browser import chromium, hears_tone, tone_wav
from tests.support.node import NodeProcess, admin_client, free_port
from tests.support.pcap import write_rtp_pcap
from tests.support.sniff import RtpSniffer

pytestmark = pytest.mark.interop

DEMO = "4001234567"
CALLER = "13800138000"
CALLER_TONE, AGENT1_TONE, AGENT2_TONE = 1000.0, 1400.0, 700.0


@pytest.fixture(scope="module")
def node(module_node: NodeProcess) -> NodeProcess:
    return module_node


@pytest.fixture(scope="module")
def api(node: NodeProcess) -> Iterator[httpx.Client]:
    with admin_client(node) as client:
        for queue in client.get("/api/queues").json():  # no announcements over the caller's audio
            client.patch(f"/api/queues/{queue['id']}", json={"wrapup": 60, "announce_every": None})
        yield client


@pytest.fixture(scope="module")
def tone_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The caller talking: 90 s of 1 kHz."""
    return write_rtp_pcap(tmp_path_factory.mktemp("pcap") / "tone.pcap", sine(CALLER_TONE, 90.0, amplitude=0.3))


@pytest.fixture
async def browsers(tmp_path: Path) -> AsyncIterator[tuple[Browser, Browser]]:
    async with chromium(tone_wav(tmp_path / "agent1.wav", AGENT1_TONE)) as one, \
            chromium(tone_wav(tmp_path / "agent2.wav", AGENT2_TONE)) as two:
        yield one, two


async def test_answer_hold_transfer_hang_up_and_wrap_up(node: NodeProcess, api: httpx.Client, tone_pcap: Path,
                                                        browsers: tuple[Browser, Browser], tmp_path: Path) -> None:
    agent1 = await open_softphone(browsers[0], node, "agent1")
    agent2 = await open_softphone(browsers[1], node, "agent2")
    await agent1.screenshot(path=screenshot_path("agent-idle", tmp_path), animations="disabled")
    caller = SippCaller(node, tmp_path / "caller", "1", tone_pcap)  # 1: sales, which only agent1 has

    await expect(agent1.locator("#offer-card")).to_be_visible(timeout=30_000)
    await expect(agent1.locator("#offer-caller")).to_contain_text(CALLER)
    await expect(agent1.locator("#offer-queue")).to_contain_text("sales")
    await expect(agent1.locator("#offer-ivr")).to_contain_text("pressed 1")  # the screen pop shows the IVR input
    await agent1.screenshot(path=screenshot_path("agent-ringing", tmp_path), animations="disabled")
    await answer(agent1)
    call_id = await agent1.evaluate("window.softphone.call.call_id")

    await page_hears(agent1, CALLER_TONE)  # the caller's voice reaches the page
    await caller_hears(caller, AGENT1_TONE)  # the page's microphone reaches the caller
    await agent1.screenshot(path=screenshot_path("agent-in-call", tmp_path), animations="disabled")

    await agent1.click("#btn-hold")
    await expect(agent1.locator("#btn-hold")).to_have_text("Resume")
    await asyncio.sleep(1.0)
    assert not caller.hears(AGENT1_TONE), "the caller still hears the agent while on hold"
    assert not await hears_tone(agent1, CALLER_TONE, 600), "the agent still hears the caller while on hold"
    await agent1.click("#btn-hold")
    await expect(agent1.locator("#btn-hold")).to_have_text("Hold")
    await caller_hears(caller, AGENT1_TONE)

    await agent1.click("#btn-transfer")
    await agent1.select_option("#transfer-kind", "agent")
    await agent1.select_option("#transfer-value", "agent2")
    await agent1.select_option("#transfer-mode", "blind")
    await agent1.click("#transfer-go")
    await expect(agent1.locator("#wrapup-panel")).to_be_visible()
    await expect(agent2.locator("#offer-caller")).to_contain_text(CALLER, timeout=30_000)
    await answer(agent2)
    await page_hears(agent2, CALLER_TONE)
    await caller_hears(caller, AGENT2_TONE)

    await agent1.select_option("#wrapup-disposition", "escalated")
    await agent1.fill("#wrapup-notes", "wants a refund; sent to agent2")
    await agent1.click("#wrapup-save")
    await expect(agent1.locator("#wrapup-panel")).to_be_hidden()
    await expect(agent1.locator(f'#history tr[data-call-id="{call_id}"]')).to_contain_text("Escalated")

    await agent2.click("#btn-hangup")
    result = caller.finish()
    assert result.successful == 1, result  # the caller got the node's BYE
    await expect(agent2.locator("#wrapup-panel")).to_be_visible()
    await agent2.select_option("#wrapup-disposition", "resolved")
    await agent2.fill("#wrapup-notes", "refund approved")
    await agent2.screenshot(path=screenshot_path("agent-wrap-up", tmp_path), animations="disabled")
    await agent2.click("#wrapup-save")
    await expect(agent2.locator("#wrapup-panel")).to_be_hidden()

    for _ in range(50):  # the page hides the panel once the wrap-up is sent; the node stores it a moment later
        record = api.get(f"/api/calls/{call_id}").json()
        if record["disposition"] == "resolved":
            break
        await asyncio.sleep(0.1)
    assert record["agent"]["username"] == "agent2" and record["disposition"] == "resolved"
    events = [(e["kind"], (e.get("agent") or {}).get("username")) for e in record["events"]]
    for expected in [("answered", "agent1"), ("hold", "agent1"), ("unhold", "agent1"), ("transfer", "agent1"),
                     ("answered", "agent2"), ("wrapup", "agent1"), ("wrapup", "agent2")]:
        assert expected in events, (expected, events)
    assert record["ended_at"] is not None and record["hangup_side"] is not None


async def test_a_reload_during_a_call_brings_the_audio_back(node: NodeProcess, api: httpx.Client, tone_pcap: Path,
                                                             browsers: tuple[Browser, Browser],
                                                             tmp_path: Path) -> None:
    agent1 = await open_softphone(browsers[0], node, "agent1")
    caller = SippCaller(node, tmp_path / "caller", "1", tone_pcap)
    await answer(agent1)
    await caller_hears(caller, AGENT1_TONE)

    await agent1.reload()
    await expect(agent1.locator("#call-panel")).to_be_visible(timeout=20_000)  # logged in by the cookie
    await page_hears(agent1, CALLER_TONE)
    caller.heard.payloads.clear()
    await caller_hears(caller, AGENT1_TONE)

    await agent1.click("#btn-hangup")
    assert caller.finish().successful == 1


async def test_a_declined_call_rings_the_other_agent(node: NodeProcess, api: httpx.Client, tone_pcap: Path,
                                                     browsers: tuple[Browser, Browser], tmp_path: Path) -> None:
    pages = [await open_softphone(browsers[0], node, "agent1"), await open_softphone(browsers[1], node, "agent2")]
    caller = SippCaller(node, tmp_path / "caller", "2", tone_pcap)  # 2: support, which both agents have
    rang = [asyncio.ensure_future(expect(p.locator("#offer-card")).to_be_visible(timeout=30_000)) for p in pages]
    done, pending = await asyncio.wait(rang, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    first = rang.index(next(iter(done)))
    declining, other = pages[first], pages[1 - first]
    await declining.click("#btn-decline")
    await expect(declining.locator("#state-label")).to_contain_text("Break")  # the ACD's "missed" break
    await answer(other)
    await caller_hears(caller, (AGENT1_TONE, AGENT2_TONE)[1 - first])
    await other.click("#btn-hangup")
    assert caller.finish().successful == 1


# -- calls out (issue 15, item 1) ---------------------------------------------------------------
# The customer is sipp on a trunk of the demo tenant: it rings, answers, talks (a 1 kHz tone) and
# hears what the page's fake microphone says (captured off the loopback interface at its media
# port). A number the tenant's dialing rules do not allow is refused in the page's words. The
# rules themselves are tests/callcenter/test_outbound.py.

CUSTOMER = "13900139000"
NOT_ALLOWED = "0044 20 7946 0000"
CUSTOMER_TONE, RINGBACK_TONE = 1000.0, 450.0

CALLEE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="customer">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:customer@[local_ip]:[local_port]>
Content-Length: 0
]]></send>
  <pause milliseconds="1500"/>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:customer@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=customer 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
]]></send>
  <recv request="ACK"/>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
</scenario>
"""


@pytest.fixture
async def one_browser(tmp_path: Path) -> AsyncIterator[Browser]:
    async with chromium(tone_wav(tmp_path / "agent1.wav", AGENT1_TONE)) as one:
        yield one


async def test_an_agent_calls_a_customer_from_the_page(node: NodeProcess, api: httpx.Client, one_browser: Browser,
                                                       tmp_path: Path) -> None:
    sip_port, media_port = free_port(), free_port()
    pcap = write_rtp_pcap(tmp_path / "customer.pcap", sine(CUSTOMER_TONE, 30.0, amplitude=0.3))
    (tmp_path / "customer.xml").write_text(CALLEE.replace("{pcap}", str(pcap)))
    customer = subprocess.Popen(["sipp", "-sf", str(tmp_path / "customer.xml"), "-aa", "-i", "127.0.0.1",
                                 "-p", str(sip_port), "-mp", str(media_port), "-nostdin", "-trace_msg",
                                 "-message_file", "customer.log"],
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    heard = RtpSniffer(media_port)
    trunk = api.post("/api/trunks", json={"name": "outbound-carrier", "outbound_host": "127.0.0.1",
                                          "outbound_port": sip_port, "priority": 1})
    assert trunk.status_code == 201, trunk.text
    prefixes = api.get("/api/tenant").json()["outbound_prefixes"]
    # (the node reloads its routing while the page signs in)
    assert api.patch("/api/tenant", json={"outbound_prefixes": ["139"]}).status_code == 200
    try:
        agent1 = await open_softphone(one_browser, node, "agent1")
        await expect(agent1.locator("#dial-caller-id")).to_have_value("4001234567")  # the tenant's first number

        # the tenant's dialing rules (toll-fraud guard) refuse a number outside its prefixes
        await agent1.fill("#dial-number", NOT_ALLOWED)
        await agent1.press("#dial-number", "Enter")
        await expect(agent1.locator("#dial-error")).to_have_text(
            "Your company's dialing rules do not allow 00442079460000.")
        await expect(agent1.locator("#call-panel")).to_be_hidden()

        # the customer: typed on the pad's field, called with the Call button
        await agent1.fill("#dial-number", "139 0013 9000")
        await agent1.click("#btn-dial")
        await expect(agent1.locator("#call-panel")).to_be_visible()
        await expect(agent1.locator("#call-caller")).to_have_text(CUSTOMER)
        await expect(agent1.locator("#call-status-text")).to_have_text("Calling…")
        assert await hears_tone(agent1, RINGBACK_TONE, 400), "no ringback while it rings"
        await expect(agent1.locator("#call-status-text")).to_have_text("Outbound call", timeout=10_000)
        call_id = await agent1.evaluate("window.softphone.call.call_id")
        live = next(a for a in api.get("/api/agents").json() if a["username"] == "agent1")["live"]
        assert live["state"] == "on_call"  # the ACD offers agent1 nothing meanwhile

        await page_hears(agent1, CUSTOMER_TONE)  # the customer's voice reaches the page

        async def customer_hears_agent() -> bool:
            return detect_tone(heard.pcm(0.5), AGENT1_TONE, threshold=0.5)
        await eventually(customer_hears_agent)  # the page's microphone reaches the customer

        await agent1.click("#btn-hangup")
        await expect(agent1.locator("#wrapup-panel")).to_be_visible()  # wrap-up, as after an inbound call
        async def customer_got_bye() -> bool:  # (-aa answers our OPTIONS keepalives as calls: no -m 1)
            return "BYE sip:customer@" in (tmp_path / "customer.log").read_text(errors="replace")
        await eventually(customer_got_bye)
        await expect(agent1.locator(f'#history tr[data-call-id="{call_id}"] .btn-call-back')) \
            .to_have_attribute("data-dial", CUSTOMER)  # one click calls them back

        record = api.get(f"/api/calls/{call_id}").json()
        assert (record["direction"], record["dialed"], record["caller"]) == ("outbound", CUSTOMER, "4001234567")
        assert record["agent"]["username"] == "agent1" and record["answered_at"] is not None
        events = [(e["kind"], (e.get("agent") or {}).get("username")) for e in record["events"]]
        assert ("dialed", "agent1") in events, events
    finally:
        api.patch("/api/tenant", json={"outbound_prefixes": prefixes})
        heard.stop()
        if customer.poll() is None:
            customer.terminate()
            customer.wait(10)
        api.delete(f"/api/trunks/{trunk.json()['id']}")
