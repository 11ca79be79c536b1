"""One node: the SIP bridge, the HTTP API and the call records in one uvloop event loop."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import uvicorn
import uvloop
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ivr.engine import FlowEngine
from ivr.prompts import PromptLibrary
from ivr.services import IvrServices
from recordings.storage import LocalStorage
from sip_bridge.call import Call
from sip_bridge.media import RtpStream
from sip_bridge.endpoint import EndpointConfig, SipEndpoint
from sip_bridge.registrar import Registrar
from sip_bridge.tls import client_context, server_context
from sip_bridge.trunks import TrunkMonitor

from . import models
from .acd_service import AcdService
from .bans import BanService
from .bus import EventBus
from .api import AppContext, create_app
from .cdr import CallRecordStore
from .db import make_engine, migrate
from .db_health import DatabaseHealth
from .entry import EntryPoints
from .flows import prompt_library
from .ivr_backend import DbBackend, HoldQueue, make_hold_music
from .speech import SpeechEngines, tenant_models
from .logs import setup_logging
from .metrics import NodeStats, register_node
from .routing import load_routing
from .settings import Settings
from .recording_service import RecordingService, TenantKeys
from .monitoring import MonitorService
from .softphone import SoftphoneService
from .transcription import TranscriptionService

logger = logging.getLogger(__name__)


class RecordObserver:
    """Feeds the SIP bridge's call lifecycle into the call records (and ends their recordings)."""

    def __init__(self, store: CallRecordStore, recordings: RecordingService | None = None) -> None:
        self.store = store
        self.recordings = recordings

    async def call_started(self, call: Call) -> None:
        await self.store.call_started(record_id=call.id, sip_call_id=call.sip_call_id, tenant_id=call.tenant_id,
                                      trunk_id=call.trunk_id, direction=call.direction, caller=call.caller,
                                      dialed=call.dialed, received_at=call.received_at)

    async def call_answered(self, call: Call) -> None:
        assert call.answered_at is not None
        await self.store.call_answered(call.id, answered_at=call.answered_at, codec=call.codec)

    async def call_ended(self, call: Call) -> None:
        assert call.ended_at is not None
        if self.recordings is not None:
            self.recordings.call_ended(call)
        await self.store.call_ended(call.id, ended_at=call.ended_at, end_cause=call.end_cause or "unknown",
                                    hangup_side=call.hangup_side, sip_status=call.sip_status)


def published_versions(engine: Engine) -> list[int]:
    with Session(engine) as db:
        return sorted(set(db.scalars(select(models.Number.flow_version_id)
                                     .where(models.Number.flow_version_id.is_not(None)))))


class Node:
    """Builds the node from settings; :meth:`run` serves until stopped."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.effective_database_url)
        #: Logs and counts database outages (the node rides them out: see callcenter/cdr.py).
        self.db_health = DatabaseHealth(self.engine)
        self.store = CallRecordStore(self.engine, backlog=settings.call_record_backlog)
        self.endpoint: SipEndpoint | None = None
        self.monitor: TrunkMonitor | None = None
        self.speech = SpeechEngines(settings.asr_model, settings.asr_workers, settings.asr_timeout)
        self._prompt_warmup: asyncio.Task[None] | None = None
        self.acd: AcdService | None = None
        self.softphones: SoftphoneService | None = None
        self.monitors: MonitorService | None = None
        storage = LocalStorage(settings.effective_recordings_dir)
        keys = TenantKeys(self.engine, settings.effective_master_key)
        self.transcription = TranscriptionService(self.engine, storage, keys, self._speech_model,
                                                  settings.transcription_workers)
        self.recordings = RecordingService(self.engine, storage, keys, on_stored=self.transcription.submit)
        self.ivr_backend: DbBackend | None = None
        #: The ACD's typed events per tenant, for the supervisor view and reports.
        self.bus = EventBus()
        #: Failed authentications (SIP digest, HTTP sign-in) and the bans they lead to.
        self.bans = BanService(self.engine, settings)
        self._stopping = asyncio.Event()

    def _speech_model(self, tenant_id: int) -> Any:
        """The vosk model that transcribes the tenant's recordings (its IVR's), None if none."""
        return self.speech.for_tenant(tenant_id).model

    def stats(self) -> NodeStats:
        ep = self.endpoint
        if ep is None:
            return NodeStats(0, {}, {}, 0, 0, 0)
        media = ep.media_stats
        live_lost = sum(c.stream.lost for c in ep.calls.values() if isinstance(c.stream, RtpStream))
        return NodeStats(active_calls=ep.active_calls, calls_by_result=dict(ep.stats.calls_by_result),
                         sip_messages=dict(ep.stats.messages), rtp_in=media.packets_in, rtp_out=media.packets_out,
                         rtp_lost=media.packets_lost + live_lost, srtp_rejected=media.dropped_srtp)

    def node_status(self) -> dict[str, object]:
        ep = self.endpoint
        if ep is None:
            return {}
        return {"active_calls": ep.active_calls, "trunks": dict(ep.trunk_state)}

    async def reload_routing(self) -> None:
        if self.ivr_backend is not None:
            self.ivr_backend.forget_published()
        table = await asyncio.get_running_loop().run_in_executor(None, load_routing, self.engine)
        self.bans.trust(net for trunk in table.trunks for net in trunk.inbound_networks)
        if self.endpoint is not None:
            self.endpoint.routing = table
        if self.monitor is not None:
            self.monitor.update(table.trunks)
        await self.speech.update(await asyncio.get_running_loop().run_in_executor(None, tenant_models, self.engine))
        logger.info("routing loaded: %d trunks, %d numbers", len(table.trunks), len(table.numbers))

    async def _flow_engine(self) -> tuple[FlowEngine, DbBackend]:
        """The IVR with its services; hold music is made once; TTS prompts of published flows are
        rendered in the background, so the first callers do not wait for espeak-ng."""
        s = self.settings
        prompts = prompt_library(s.data_dir)
        music = s.data_dir / "prompts" / "hold-music.wav"
        if not music.exists():
            await asyncio.get_running_loop().run_in_executor(None, make_hold_music, music)
        announcement = await prompts.tts("All our agents are busy. Please hold, your call is important to us.", "en")
        backend = self.ivr_backend = DbBackend(self.engine, self.store, allow_private_http=s.ivr_http_allow_private)
        await backend.warm()  # calls find flows, calendars and CRM hosts even if the database goes away
        self.acd = AcdService(self.engine, prompts, music, HoldQueue(music, announcement), publish=self._publish,
                              records=self.store)
        self.acd.recordings = self.recordings
        services = IvrServices(prompts=prompts, speech=self.speech.for_tenant, directory=backend,
                               queue=self.acd, traces=backend, voicemail=backend,
                               voicemail_dir=s.data_dir / "voicemail")
        self._prompt_warmup = asyncio.get_running_loop().create_task(self._render_prompts(backend, prompts))
        return FlowEngine(services, backend), backend

    def _publish(self, tenant_id: int, event: object) -> None:
        """The ACD's events: to the bus (supervisors, reports) and to the agents' softphones."""
        self.bus.publish(tenant_id, event)
        if self.softphones is not None:
            self.softphones.on_acd_event(tenant_id, event)

    async def _render_prompts(self, backend: DbBackend, prompts: PromptLibrary) -> None:
        try:
            for version_id in await asyncio.get_running_loop().run_in_executor(None, published_versions,
                                                                               self.engine):
                flow, _ = await backend.load(version_id)
                for text, voice in flow.tts_prompts():
                    await prompts.tts(text, voice)
        except Exception:  # a call renders what it needs itself
            logger.exception("rendering the prompts of published flows failed")

    async def run(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, migrate, self.engine)
        closed = await loop.run_in_executor(None, self.store.close_dangling)
        if closed:
            logger.warning("closed %d call records left open by a previous run (cause interrupted)", closed)
        await self.store.start()
        await self.speech.start(await loop.run_in_executor(None, tenant_models, self.engine))
        flows, backend = await self._flow_engine()
        entries = EntryPoints(s.data_dir, flows, backend, recordings=self.recordings)
        await entries.prepare()
        config = EndpointConfig(bind_host=s.sip_host, advertised_ip=s.advertised_ip, sip_port=s.sip_port,
                                rtp_port_min=s.rtp_port_min, rtp_port_max=s.rtp_port_max, max_calls=s.max_calls,
                                rate_limit=s.rate_limit_per_ip, rate_burst=s.rate_limit_burst,
                                rtp_timeout=s.rtp_timeout, secret=s.effective_secret_key.encode(),
                                tls_port=s.sip_tls_port,
                                tls_server=server_context(s.sip_tls_cert, s.sip_tls_key)
                                if s.sip_tls_cert is not None and s.sip_tls_key is not None else None,
                                tls_client=client_context(s.sip_tls_ca_file, s.sip_tls_cert, s.sip_tls_key))
        routing = await loop.run_in_executor(None, load_routing, self.engine)
        self.bans.trust(net for trunk in routing.trunks for net in trunk.inbound_networks)
        await self.bans.start()
        assert self.acd is not None
        registrar = Registrar(self.acd, on_change=self.acd.device_changed, guard=self.bans.sip)
        self.endpoint = SipEndpoint(config, routing, RecordObserver(self.store, self.recordings), entries.handle,
                                    registrar=registrar, guard=self.bans.sip, security=self.bans)
        self.acd.endpoint = self.endpoint
        await self.endpoint.start()
        assert self.endpoint.clock is not None
        self.softphones = SoftphoneService(s, self.engine, self.acd, self.endpoint.clock,
                                           grace=s.softphone_grace)
        self.acd.softphones = self.softphones
        self.monitors = MonitorService(self.acd, self.endpoint.clock)
        await self.acd.start()
        await self.recordings.start()
        await self.transcription.start()
        self.monitor = TrunkMonitor(self.endpoint)
        self.monitor.update(routing.trunks)
        register_node(self.stats)

        def routing_changed() -> None:  # called from API worker threads
            loop.call_soon_threadsafe(lambda: loop.create_task(self.reload_routing()))

        def acd_changed() -> None:  # called from API worker threads
            loop.call_soon_threadsafe(lambda: loop.create_task(self.acd.reload()))  # type: ignore[union-attr]

        app = create_app(AppContext(settings=s, engine=self.engine, node_status=self.node_status,
                                    on_routing_changed=routing_changed, acd=self.acd, on_acd_changed=acd_changed,
                                    softphones=self.softphones, recordings=self.recordings,
                                    bus=self.bus, monitors=self.monitors, bans=self.bans))
        # X-Forwarded-* only from the configured proxies: anyone else could pick the address
        # that sign-in bans count (uvicorn trusts 127.0.0.1 by default).
        server = uvicorn.Server(uvicorn.Config(
            app, host=s.http_host, port=s.http_port, log_config=None, access_log=False, lifespan="off",
            ssl_certfile=s.tls_cert, ssl_keyfile=s.tls_key, proxy_headers=bool(s.forwarded_allow_ips),
            forwarded_allow_ips=s.forwarded_allow_ips or None))
        # uvicorn catches SIGINT/SIGTERM while it serves and re-raises them after its
        # shutdown; either way ends up here and the SIP side stops cleanly too.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        http = loop.create_task(server.serve())
        while not server.started and not http.done():  # "ready" means the API answers too
            await asyncio.sleep(0.01)
        logger.info("node ready: SIP %s:%d, HTTP %s, data %s", s.sip_host, self.endpoint.config.sip_port,
                    s.http_url, s.data_dir)
        tls = f", tls {s.sip_host}:{config.tls_port}" if config.tls_server is not None else ""
        print(f"callcenter node ready: SIP udp/tcp {s.sip_host}:{self.endpoint.config.sip_port}{tls}, "
              f"HTTP {s.http_url}", flush=True)
        stop = loop.create_task(self._stopping.wait())
        await asyncio.wait({http, stop}, return_when=asyncio.FIRST_COMPLETED)
        logger.info("stopping")
        self.monitor.stop()
        await self.softphones.stop()
        await self.acd.stop()
        if self._prompt_warmup is not None:
            self._prompt_warmup.cancel()
        await self.endpoint.stop()
        await self.recordings.stop()
        await self.transcription.stop()
        await self.bans.stop()
        server.should_exit = True
        await http
        await self.store.close()
        self.speech.close()
        self.engine.dispose()


def run(settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM (the ``serve`` and ``demo`` commands)."""
    setup_logging(settings.log_level)
    uvloop.run(Node(settings).run())
    return 0
