"""One node: the SIP bridge, the HTTP API and the call records in one uvloop event loop."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ivr.engine import FlowEngine
from ivr.prompts import PromptLibrary
from ivr.services import IvrServices
from recordings.storage import LocalStorage
from acd import Action
from sip_bridge.call import Call, CallError
from sip_bridge.media import RtpStream
from sip_bridge.endpoint import EndpointConfig, Handover, SipEndpoint
from sip_bridge.registrar import Registrar
from sip_bridge.tls import client_context, server_context
from sip_bridge.trunks import TrunkMonitor

from cluster.log import RedisLog
from cluster.redis_link import RedisLink
from cluster.registry import live_nodes
from sip_bridge.ratelimit import SharedRateLimiter

from . import metrics, models
from .acd_cluster import AcdCluster, TenantLogs
from .acd_service import AcdService, queue_voicemail
from .agent_directory import AgentDirectory
from .bans import BanService
from .bus import EventBus
from .api import AppContext, create_app
from .call_control import CallControl
from .call_notes import CallNotes
from .campaign_service import CampaignService
from .chat_service import ChatService
from .config_sync import ConfigSync
from .cdr import CallRecordStore
from .db import make_engine, migrate
from .db_health import DatabaseHealth, watch_redis
from .entry import EntryPoints
from .flows import prompt_library
from .ivr_backend import DbBackend, HoldQueue, make_hold_music
from .surveys import survey_version
from .speech import SpeechEngines, tenant_models
from .logs import setup_logging
from .metrics import NodeStats, register_node
from .routing import load_routing
from .settings import Settings
from .recording_service import RecordingService, TenantKeys
from .monitoring import MonitorService
from .softphone import SoftphoneService
from .flow_test_calls import TestCallService
from .handover import ClusterHandovers, HandoverClient
from .node_reaper import NodeReaper
from .tenant_owners import TenantOwners, node_info
from .shared_rate_limit import RateLimitSync
from .shared_registrations import SharedRegistrations
from .tenant_calls import TenantCalls
from .node_tenants import TenantPolicyWatch
from .transcription import TranscriptionService, worker_name
from .wallboard import import_threshold_file

logger = logging.getLogger(__name__)

#: Where a running node writes its process id (``callcenter drain`` reads it).
PIDFILE = "node.pid"
#: Seconds between the drain's "N calls still in progress" lines.
DRAIN_REPORT = 5.0


class RecordObserver:
    """Feeds the SIP bridge's call lifecycle into the call records (and ends their recordings),
    and counts each tenant's calls."""

    def __init__(self, store: CallRecordStore, recordings: RecordingService | None = None,
                 tenant_calls: TenantCalls | None = None) -> None:
        self.store = store
        self.recordings = recordings
        self.tenant_calls = tenant_calls

    async def call_started(self, call: Call) -> None:
        if call.internal:  # a leg between two nodes: part of the caller's record, not a call of its own
            return
        if self.tenant_calls is not None:
            self.tenant_calls.started(call)
        await self.store.call_started(record_id=call.id, sip_call_id=call.sip_call_id, tenant_id=call.tenant_id,
                                      trunk_id=call.trunk_id, direction=call.direction, caller=call.caller,
                                      dialed=call.dialed, received_at=call.received_at)

    async def call_answered(self, call: Call) -> None:
        if call.internal:
            return
        assert call.answered_at is not None
        await self.store.call_answered(call.id, answered_at=call.answered_at, codec=call.codec)

    async def call_ended(self, call: Call) -> None:
        if self.recordings is not None:  # a handed-over caller is recorded where its agent is: here
            self.recordings.call_ended(call)
        if call.internal:
            return
        assert call.ended_at is not None
        if self.tenant_calls is not None:
            self.tenant_calls.ended(call)
        await self.store.call_ended(call.id, ended_at=call.ended_at, end_cause=call.end_cause or "unknown",
                                    hangup_side=call.hangup_side, sip_status=call.sip_status)


def published_versions(engine: Engine) -> list[int]:
    """The flow versions callers may meet: those live on numbers, and the tenants' survey flows."""
    with Session(engine) as db:
        live = set(db.scalars(select(models.Number.flow_version_id).where(models.Number.flow_version_id.is_not(None))))
        surveys = {survey_version(db, tenant_id) for tenant_id in
                   db.scalars(select(models.Tenant.id).where(models.Tenant.survey_flow.is_not(None)))}
        return sorted(v for v in live | surveys if v is not None)


class HttpServer(uvicorn.Server):
    """uvicorn for the API, without its own signal handling: the node decides what SIGTERM means
    (a drain keeps serving the pages of agents still on a call) and stops uvicorn itself."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Node:
    """Builds the node from settings; :meth:`run` serves until stopped."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.effective_database_url)
        #: Logs and counts database outages (the node rides them out: see callcenter/cdr.py).
        self.db_health = DatabaseHealth(self.engine)
        #: Cluster mode: the node's one connection to Redis, shared by its cluster services; None on a single node.
        self.redis = RedisLink(settings.redis_url) if settings.redis_url is not None else None
        self.store = CallRecordStore(self.engine, backlog=settings.call_record_backlog, node_id=settings.node_id)
        self.endpoint: SipEndpoint | None = None
        self.monitor: TrunkMonitor | None = None
        self.speech = SpeechEngines(settings.asr_model, settings.asr_workers, settings.asr_timeout)
        self._prompt_warmup: asyncio.Task[None] | None = None
        self.acd: AcdService | None = None
        self.entries: EntryPoints | None = None
        self.softphones: SoftphoneService | None = None
        self.test_calls: TestCallService | None = None
        self.campaigns: CampaignService | None = None
        self.chats: ChatService | None = None
        self.monitors: MonitorService | None = None
        storage = LocalStorage(settings.effective_recordings_dir, settings.node_id)
        keys = TenantKeys(self.engine, settings.effective_master_key)
        self.transcription = TranscriptionService(self.engine, storage, keys, self._speech_model,
                                                  settings.transcription_workers,
                                                  worker=worker_name("node", settings.node_id))
        self.recordings = RecordingService(self.engine, storage, keys, on_stored=self.transcription.submit,
                                           notes=CallNotes(self.store))
        #: Each tenant's calls in progress, here and (cluster mode) on every node.
        self.tenant_calls = TenantCalls(settings.node_id, self.redis)
        #: A survivor's cleanup after a dead node (cluster mode): records closed, recordings finished.
        self.reaper = NodeReaper(self.store, self.recordings,
                                 live_nodes=partial(live_nodes, self.redis) if self.redis is not None else None)
        self.ivr_backend: DbBackend | None = None
        #: The ACD's typed events per tenant, for the supervisor view and reports.
        self.bus = EventBus()
        #: Failed authentications (SIP digest, HTTP sign-in) and the bans they lead to.
        self.bans = BanService(self.engine, settings)
        #: Which node hosts each tenant's ACD (every tenant here on a single node), node heartbeats.
        self.owners = TenantOwners(settings.node_id, self.redis,
                                   node_info(settings.node_id, settings.advertised_ip, settings.sip_port,
                                             settings.http_url) if settings.node_id is not None else None)
        self.owners.add_listener(self.reaper)
        #: The ACD's cluster side (taking tenants over, other nodes' inputs, handed-over callers).
        self.acd_cluster: AcdCluster | None = None
        self._stopping = asyncio.Event()
        #: SIGTERM on a cluster node: refuse new calls, hand the tenants over, leave after the last call
        self._draining = asyncio.Event()

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

    async def _prompts(self) -> tuple[PromptLibrary, Path, Path]:
        """The prompt library, the hold music (made once) and the fallback queue's announcement."""
        prompts = prompt_library(self.settings.data_dir)
        music = self.settings.data_dir / "prompts" / "hold-music.wav"
        if not music.exists():
            await asyncio.get_running_loop().run_in_executor(None, make_hold_music, music)
        announcement = await prompts.tts("All our agents are busy. Please hold, your call is important to us.", "en")
        return prompts, music, announcement

    async def _flow_engine(self, prompts: PromptLibrary, acd: AcdService, backend: DbBackend) -> FlowEngine:
        """The IVR with its services (``backend``'s), handing callers to ``acd``; TTS prompts of
        published flows are rendered in the background, so the first callers do not wait for espeak-ng."""
        s = self.settings
        await backend.warm()  # calls find flows, calendars and CRM hosts even if the database goes away
        services = IvrServices(prompts=prompts, speech=self.speech.for_tenant, directory=backend,
                               queue=acd, traces=backend, voicemail=backend, ratings=backend,
                               voicemail_dir=s.data_dir / "voicemail")
        self._prompt_warmup = asyncio.get_running_loop().create_task(self._render_prompts(backend, prompts))
        return FlowEngine(services, backend)

    async def _handover(self, leg: Call, handover: Handover) -> None:
        """Callers other nodes hand over (cluster): to the ACD's cluster side, built after the
        endpoint like the entry points (see ``_incoming``)."""
        assert self.acd_cluster is not None
        await self.acd_cluster.handover(leg, handover)

    async def _hold(self, call: Call) -> None:
        """Hold music for a caller whose tenant's queues cannot be reached yet (a takeover)."""
        assert self.acd is not None
        with suppress(CallError):
            while not call.ended:
                await call.play(self.acd.hold_music, interruptible=False)

    async def _incoming(self, call: Call) -> None:
        """The SIP endpoint's incoming calls go to the entry points. The endpoint is built before
        them (the ACD behind the IVR rings agents and dials callbacks through it) and starts, so
        that calls come in, only once they exist."""
        assert self.entries is not None
        await self.entries.handle(call)

    async def _drain(self) -> None:
        """Leave the cluster without dropping a call: new calls refused (the front takes this node
        out), the tenants' latest state saved and their leases given back (others take them over,
        waiting callers follow them), then wait for the calls still here to end (SIGINT: stop now)."""
        assert self.endpoint is not None and self.acd is not None
        logger.info("draining: new calls refused, tenants handed over, leaving after the last call")
        self.endpoint.set_draining(True)
        await self.acd.save(everything=True)
        await self.owners.drain()
        last = 0.0
        while self.endpoint.active_calls and not self._stopping.is_set():
            if time.monotonic() - last >= DRAIN_REPORT:
                last = time.monotonic()
                logger.info("draining: %d call(s) still in progress", self.endpoint.active_calls)
            await asyncio.sleep(0.2)
        logger.info("drained: no call left")

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
        await loop.run_in_executor(None, import_threshold_file, self.engine, s.data_dir)
        await self.store.start()
        await self.speech.start(await loop.run_in_executor(None, tenant_models, self.engine))
        prompts, music, announcement = await self._prompts()
        # media binds where SIP does: a node on one address of a multi-address host sends its RTP
        # from that address, which peers check (symmetric RTP) against the one in its SDP
        config = EndpointConfig(bind_host=s.sip_host, advertised_ip=s.advertised_ip, sip_port=s.sip_port,
                                rtp_bind_host=s.sip_host,
                                rtp_port_min=s.rtp_port_min, rtp_port_max=s.rtp_port_max, max_calls=s.max_calls,
                                rate_limit=s.rate_limit_per_ip, rate_burst=s.rate_limit_burst,
                                rtp_timeout=s.rtp_timeout, secret=s.effective_secret_key.encode(),
                                tls_port=s.sip_tls_port,
                                tls_server=server_context(s.sip_tls_cert, s.sip_tls_key)
                                if s.sip_tls_cert is not None and s.sip_tls_key is not None else None,
                                tls_client=client_context(s.sip_tls_ca_file, s.sip_tls_cert, s.sip_tls_key),
                                outbound_proxy=s.sip_outbound_proxy_address, fronts=frozenset(s.sip_front_ips))
        routing = await loop.run_in_executor(None, load_routing, self.engine)
        self.bans.trust(net for trunk in routing.trunks for net in trunk.inbound_networks)
        await self.bans.start()
        # Each part is built once with what it needs, in this order: the agents' directory (the
        # registrar checks phone logins in it, the ACD fills it), the registrar, the SIP endpoint,
        # call control, the ACD (hands answered calls to call control), the IVR and entry points
        # (hand callers to the ACD); once the endpoint runs, the softphones and monitoring.
        directory = AgentDirectory()
        registrar = Registrar(directory, guard=self.bans.sip)
        # cluster mode: every node holds every agent's phone bindings (any node rings any phone)
        shared_registrations = SharedRegistrations(self.redis, registrar, s.node_id or "", loop.time) \
            if self.redis is not None else None
        limiter, rate_sync = None, None
        if self.redis is not None:  # new SIP requests per source counted across the cluster
            limiter = SharedRateLimiter(s.rate_limit_per_ip, s.rate_limit_burst)
            rate_sync = RateLimitSync(self.redis, limiter)
        # cluster mode: callers handed between nodes (handover.py), checked against the live nodes
        handovers = ClusterHandovers(s.node_id, s.effective_secret_key.encode(), self.owners.live_addresses) \
            if s.cluster and s.node_id is not None else None
        records = RecordObserver(self.store, self.recordings, self.tenant_calls)
        self.endpoint = SipEndpoint(config, routing, records,
                                    self._incoming, registrar=registrar, guard=self.bans.sip, security=self.bans,
                                    limiter=limiter, peers=handovers,
                                    on_handover=self._handover if handovers is not None else None,
                                    calls_elsewhere=self.tenant_calls.elsewhere)
        notes = CallNotes(self.store)
        # the IVR's database side: also where call control finds a tenant's survey after the agent
        backend = self.ivr_backend = DbBackend(self.engine, self.store, allow_private_http=s.ivr_http_allow_private)
        calls = CallControl(self.endpoint, music, notes, self.store, self.recordings, surveys=backend)
        logs = TenantLogs(RedisLog(self.redis)) if self.redis is not None else None
        client = HandoverClient(self.endpoint, self.owners, handovers, self._hold, queue_voicemail) \
            if handovers is not None else None
        if client is not None:
            self.owners.add_listener(client)
        chat_actions: asyncio.Queue[tuple[int, Action]] = asyncio.Queue()  # the ACD's decisions about chats
        acd = self.acd = AcdService(
            self.engine, directory, registrar, self.endpoint, calls, notes, prompts, music,
            HoldQueue(music, announcement), publish=self.bus.publish, owners=self.owners,
            forward=logs.forward if logs is not None else None, handovers=client, log_positions=logs,
            node_id=s.node_id, node_run=self.owners.me.started_at if self.owners.me is not None else None,
            chat_actions=chat_actions)
        self.chats = ChatService(s, self.engine, acd, directory, chat_actions)
        self.owners.add_listener(self.chats)
        if logs is not None and s.node_id is not None and self.owners.me is not None:
            self.acd_cluster = AcdCluster(acd, logs, self.owners.alive_nodes, s.node_id, self.owners.me.started_at)
            self.owners.add_listener(self.acd_cluster)
        flows = await self._flow_engine(prompts, acd, backend)
        self.entries = EntryPoints(s.data_dir, flows, backend, recordings=self.recordings)
        await self.entries.prepare()
        await self.endpoint.start()
        if shared_registrations is not None:
            await shared_registrations.start()
        assert self.endpoint.clock is not None
        self.campaigns = CampaignService(self.engine, acd, self.endpoint, flows, notes)
        self.softphones = SoftphoneService(s, self.engine, acd, calls, directory, notes, self.endpoint,
                                           self.endpoint.clock, self.campaigns, self.chats, grace=s.softphone_grace)
        self.test_calls = TestCallService(s, self.engine, flows, records, notes, self.endpoint.clock,
                                          self.endpoint)
        self.monitors = MonitorService(calls, self.endpoint.clock)
        await acd.start()
        await self.chats.start()
        await self.campaigns.start()
        await self.recordings.start()
        await self.transcription.start()
        self.monitor = TrunkMonitor(self.endpoint)
        self.monitor.update(routing.trunks)
        register_node(self.stats)
        metrics.tenant_calls(self.tenant_calls.by_tenant)
        metrics.phone_bindings(lambda: sum(len(registrar.bindings(user)) for user in registrar.registered_users()))
        await self.tenant_calls.start()
        # suspensions and call quotas changed by the CLI (the API reloads at once)
        endpoint = self.endpoint
        tenant_watch = TenantPolicyWatch(self.engine, lambda: endpoint.routing, self.reload_routing)
        tenant_watch.start()
        if self.redis is not None:
            assert rate_sync is not None
            watch_redis(self.redis)
            await rate_sync.start()
        # cluster mode: the heartbeat, the watch over the other nodes, and the tenants' leases
        await self.owners.start(acd.tenant_ids())

        async def reload_acd() -> None:
            await acd.reload()
            self.owners.want(acd.tenant_ids())  # a tenant created since: competed for like the others

        # cluster mode: changes made through this node's API reach the other nodes
        config_sync = ConfigSync(self.redis, {"routing": self.reload_routing, "acd": reload_acd}) \
            if self.redis is not None else None
        if config_sync is not None:
            await config_sync.start()

        def changed(what: str, reload: Callable[[], Coroutine[Any, Any, None]]) -> None:
            loop.create_task(reload())
            if config_sync is not None:
                config_sync.changed(what)

        def routing_changed() -> None:  # called from API worker threads
            loop.call_soon_threadsafe(changed, "routing", self.reload_routing)

        def acd_changed() -> None:  # called from API worker threads
            loop.call_soon_threadsafe(changed, "acd", reload_acd)

        app = create_app(AppContext(settings=s, engine=self.engine, node_status=self.node_status,
                                    on_routing_changed=routing_changed, acd=self.acd, on_acd_changed=acd_changed,
                                    softphones=self.softphones, test_calls=self.test_calls,
                                    campaigns=self.campaigns, chats=self.chats,
                                    recordings=self.recordings,
                                    bus=self.bus, monitors=self.monitors, bans=self.bans,
                                    tenant_calls=self.tenant_calls, owners=self.owners))
        # X-Forwarded-* only from the configured proxies: anyone else could pick the address
        # that sign-in bans count (uvicorn trusts 127.0.0.1 by default).
        server = HttpServer(uvicorn.Config(
            app, host=s.http_host, port=s.http_port, log_config=None, access_log=False, lifespan="off",
            ssl_certfile=s.tls_cert, ssl_keyfile=s.tls_key, proxy_headers=bool(s.forwarded_allow_ips),
            forwarded_allow_ips=s.forwarded_allow_ips or None,
            # chat and softphone messages are small: compression would cost ~40 KB per socket for little
            ws_per_message_deflate=False))
        # The node handles SIGINT and SIGTERM itself (HttpServer leaves them alone), then stops the
        # SIP side and the API together. A cluster node drains on SIGTERM (no call dropped: the
        # pages' sockets stay up meanwhile); SIGINT stops it at once.
        loop.add_signal_handler(signal.SIGINT, self._stopping.set)
        loop.add_signal_handler(signal.SIGTERM, self._draining.set if s.cluster else self._stopping.set)
        pidfile = s.data_dir / PIDFILE
        pidfile.write_text(f"{os.getpid()}\n")
        http = loop.create_task(server.serve())
        while not server.started and not http.done():  # "ready" means the API answers too
            await asyncio.sleep(0.01)
        # what start-up made lives as long as the node: out of the collector's full passes, which
        # otherwise stall the loop for 0.3-0.9 s with thousands of chats held (./dev bench chat)
        gc.freeze()
        logger.info("node ready: SIP %s:%d, HTTP %s, data %s", s.sip_host, self.endpoint.config.sip_port,
                    s.http_url, s.data_dir)
        tls = f", tls {s.sip_host}:{config.tls_port}" if config.tls_server is not None else ""
        print(f"callcenter node ready: SIP udp/tcp {s.sip_host}:{self.endpoint.config.sip_port}{tls}, "
              f"HTTP {s.http_url}", flush=True)
        stop = loop.create_task(self._stopping.wait())
        drain = loop.create_task(self._draining.wait())
        await asyncio.wait({http, stop, drain}, return_when=asyncio.FIRST_COMPLETED)
        if drain.done() and not stop.done():
            await self._drain()
        drain.cancel()
        pidfile.unlink(missing_ok=True)
        logger.info("stopping")
        self.monitor.stop()
        await self.campaigns.stop()
        await self.softphones.stop()
        await self.chats.stop()
        await self.test_calls.stop()
        calls.stop()
        await acd.stop()
        if self._prompt_warmup is not None:
            self._prompt_warmup.cancel()
        await self.endpoint.stop()
        await self.recordings.stop()
        await self.transcription.stop()
        await self.bans.stop()
        server.should_exit = True
        await http
        await self.store.close()
        await self.reaper.stop()
        await self.tenant_calls.stop()
        await tenant_watch.stop()
        if self.acd_cluster is not None:
            await self.acd_cluster.stop()
        for service in (shared_registrations, rate_sync, config_sync):
            if service is not None:
                await service.stop()
        # last: while the heartbeat beats, no survivor reaps this node's calls still ending
        await self.owners.stop()
        self.speech.close()
        self.engine.dispose()


def run(settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM (the ``serve`` and ``demo`` commands)."""
    setup_logging(settings.log_level)
    uvloop.run(Node(settings).run())
    return 0
