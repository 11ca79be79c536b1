"""Agents' phone registrations shared by the nodes of a cluster, through Redis.

Each node keeps its own registrar (``sip_bridge/registrar.py``: synchronous, sans-I/O, digest
auth and bans stay there); this is its Redis edge. A REGISTER may reach any node (the front
dispatches it), a call for the agent may start on any node: every node holds every binding.

Redis:

- ``sip:bindings:{sip_user}``: the agent's bindings, newest first, as a JSON list of
  :func:`~sip_bridge.registrar.binding_record` (times in Unix epoch seconds, so a binding
  expires at the same moment on every node), expiring with the last of them (``PXAT``);
- channel ``sip:bindings``: every change, ``{"node", "sip_user", "bindings"}``, published in the
  same ``MULTI`` as the write, so every node sees the changes in the order Redis made them.

The node that accepts a REGISTER (or finds a phone unreachable) writes the agent's whole list
(latest per agent, in order, retried while Redis is away); the others apply it
(:meth:`Registrar.learn`: the agent becomes reachable or unreachable there too). Expiry is not
shared: every registrar drops a binding itself at its absolute expiry time.

**Subscribing** (at start, and again after Redis went away): subscribe first, then read every
key, so no change falls between the two. After a Redis restart (its ``run_id`` changed) Redis
has lost or rewound the copies, and every node's own copy is complete: each writes back what it
holds. Otherwise the keys are the truth for agents without a write of ours on its way, and an
agent whose key is gone has no binding any more.

Concurrent REGISTERs of one agent's two phones on two nodes would write the list twice, the
later write losing the other phone until its next refresh; the front sends one agent's
REGISTERs to one node (hash of the To URI), so that only happens while a node fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from cluster.redis_link import REDIS_ERRORS, Backoff, RedisLink
from sip_bridge.registrar import Binding, Registrar, binding_from_record, binding_record

logger = logging.getLogger(__name__)

KEY_PREFIX = "sip:bindings:"
CHANNEL = "sip:bindings"
#: Seconds a subscription waits for a message before looking again (it ends only on an error).
POLL = 1.0
#: Seconds :meth:`SharedRegistrations.stop` waits for the last writes.
FLUSH_TIMEOUT = 2.0


class SharedRegistrations:
    """Keeps ``registrar`` and Redis in step (see module). ``clock`` is the registrar's clock
    (the event loop's time: the endpoint passes ``loop.time()`` as ``now``)."""

    def __init__(self, link: RedisLink, registrar: Registrar, node: str, clock: Callable[[], float]) -> None:
        self.link = link
        self.registrar = registrar
        self.node = node
        self._clock = clock
        #: sip_user -> its records to write (the latest change of each agent).
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._wake = asyncio.Event()
        self._run_id: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.ready = asyncio.Event()
        """Set once the first subscription has loaded what Redis holds."""
        registrar.add_bindings_listener(self._changed)

    # -- this node's changes -> Redis ------------------------------------------------------------
    def _changed(self, sip_user: str, bindings: list[Binding], local: bool) -> None:
        if local:
            self._queue(sip_user, bindings)

    def _queue(self, sip_user: str, bindings: list[Binding]) -> None:
        now, wall = self._clock(), time.time()
        self._pending[sip_user] = [binding_record(b, now, wall) for b in bindings]
        self._wake.set()

    async def _write_loop(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        while self._pending:
            sip_user, records = next(iter(self._pending.items()))
            await self.link.retrying("registration write", lambda: self._write(sip_user, records))
            if self._pending.get(sip_user) is records:  # not changed again meanwhile
                del self._pending[sip_user]

    async def _write(self, sip_user: str, records: list[dict[str, Any]]) -> None:
        message = json.dumps({"node": self.node, "sip_user": sip_user, "bindings": records})
        async with self.link.client.pipeline(transaction=True) as pipe:
            if records:
                expires_ms = int(max(r["expires"] for r in records) * 1000) + 1
                pipe.set(KEY_PREFIX + sip_user, json.dumps(records), pxat=expires_ms)
            else:
                pipe.delete(KEY_PREFIX + sip_user)
            pipe.publish(CHANNEL, message)
            await pipe.execute()

    # -- other nodes' changes -> the registrar ---------------------------------------------------
    async def _read_loop(self) -> None:
        backoff = Backoff()
        while not self._stopping:
            pubsub = self.link.client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                await self._resync()
                self.link.succeeded()
                backoff.reset()
                self.ready.set()
                # (redis-py's timed read can swallow a cancellation: the flag ends the loop too)
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL)
                    if message is not None and message["type"] == "message":
                        self._received(message["data"])
            except REDIS_ERRORS as exc:
                self.link.failed(exc, "registrations subscription")
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()
            await asyncio.sleep(backoff.next())

    async def _resync(self) -> None:
        client = self.link.client
        run_id = str((await client.info("server"))["run_id"])
        restarted, self._run_id = self._run_id is not None and run_id != self._run_id, run_id
        if restarted:
            held = self.registrar.registered_users()
            logger.warning("redis restarted: writing back %d agents' phone registrations", len(held))
            for sip_user in held:
                if sip_user not in self._pending:
                    self._queue(sip_user, self.registrar.bindings(sip_user))
            return
        keys = [key async for key in client.scan_iter(match=KEY_PREFIX + "*", count=1000)]
        values = await client.mget(keys) if keys else []
        stored: set[str] = set()
        for key, value in zip(keys, values, strict=True):
            sip_user = key.removeprefix(KEY_PREFIX)
            if value is None or sip_user in self._pending:
                continue  # gone meanwhile, or ours is newer and on its way
            stored.add(sip_user)
            self._learn(sip_user, value)
        for sip_user in self.registrar.registered_users():
            if sip_user not in stored and sip_user not in self._pending:
                self.registrar.learn(sip_user, [], self._clock())  # removed while we were away
        logger.info("phone registrations loaded from redis: %d agents", len(stored))

    def _received(self, data: str | bytes) -> None:
        try:
            message = json.loads(data)
            node, sip_user, records = message["node"], str(message["sip_user"]), message["bindings"]
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("malformed registration message ignored: %s", exc)
            return
        if node != self.node and sip_user not in self._pending:
            self._learn(sip_user, records)

    def _learn(self, sip_user: str, records: str | bytes | list[Any]) -> None:
        now, wall = self._clock(), time.time()
        try:
            if isinstance(records, (str, bytes)):
                records = json.loads(records)
            if not isinstance(records, list):
                raise ValueError("not a list")
            bindings = [binding_from_record(record, now, wall) for record in records]
        except ValueError as exc:
            logger.warning("malformed shared registration ignored: %s", exc, extra={"sip_user": sip_user})
            return
        self.registrar.learn(sip_user, bindings, now)

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._write_loop(), name="registrations-write"),
                       loop.create_task(self._read_loop(), name="registrations-read")]

    async def stop(self) -> None:
        """Write what is left (for a while), then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_TIMEOUT):
                await self._flush()
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=POLL + 1)
        self._tasks = []
