"""A whole cluster on this machine for tests: a real PostgreSQL and Redis, Kamailio as the SIP
front on 127.0.0.10, and N ``callcenter demo`` node processes on 127.0.0.11, .12, ... (the layout
of ``callcenter/local_cluster.py``, which ``./dev cluster`` shares).

    cluster = Cluster(tmp_path).start()     # module-scoped in the tests: it takes seconds
    cluster.front.address                   # where carriers and phones send ("127.0.0.10:PORT")
    cluster.nodes[0].http                   # a node's API
    cluster.kill(2); cluster.restart(2)     # kill -9 a node, start it again on the same addresses
    cluster.owner()                         # the index of the node hosting the demo tenant's ACD
    cluster.stop()

The demo tenant is created once, by the first node (its passwords are on ``cluster.nodes[0]``);
the others start next, together. ``start_seconds`` is how long :meth:`Cluster.start` took.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis

from callcenter.local_cluster import FRONT_HOST, ClusterKeys, Front, node_arguments, node_environment, node_host
from tests.support.node import NodeProcess, free_port
from tests.support.postgres import PostgresServer, create_database
from tests.support.redis import RedisServer

DEMO_CREATED = "Demo tenant ready"
"""What the first node prints once the database is migrated and the demo tenant created."""


class Cluster:
    def __init__(self, root: Path, nodes: int = 3) -> None:
        self.root = root
        self.postgres = PostgresServer()
        self.redis = RedisServer(FRONT_HOST)
        hosts = [node_host(i) for i in range(nodes)]
        self.nodes = [NodeProcess(root / f"n{i + 1}" / "data", sip_port=free_port(host), http_port=free_port(host),
                                  host=host) for i, host in enumerate(hosts)]
        self.front = Front(FRONT_HOST, free_port(FRONT_HOST), root / "front", [n.sip for n in self.nodes])
        self.keys = ClusterKeys.generate()
        self.start_seconds: float | None = None

    @property
    def admin_password(self) -> str:
        password = self.nodes[0].admin_password
        assert password is not None, "the first node did not print the demo admin password"
        return password

    def start(self) -> Cluster:
        started = time.perf_counter()
        try:
            with ThreadPoolExecutor(3) as pool:
                servers: list[Future[Any]] = [pool.submit(self.postgres.start), pool.submit(self.redis.start),
                                              pool.submit(self.front.start)]
                for future in servers:
                    future.result()
            database_url = create_database(self.postgres.url(), "callcenter")
            for index, node in enumerate(self.nodes):
                node.data_dir.mkdir(parents=True, exist_ok=True)
                node.extra_args = node_arguments(index, redis_url=self.redis.url, database_url=database_url,
                                                 front=self.front.address)
                node.env = node_environment(self.keys, self.root / "recordings")
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                # the first node migrates the database and creates the demo tenant; the others
                # start as soon as it says so (while it loads the rest)
                first = pool.submit(self.nodes[0].start)
                while not first.done() and not any(DEMO_CREATED in line for line in self.nodes[0].output):
                    time.sleep(0.05)
                nodes = [first, *(pool.submit(node.start) for node in self.nodes[1:])]
                for future in nodes:
                    future.result()
            self.front.wait_for(lambda active: active == {n.sip for n in self.nodes})
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - started
        return self

    def kill(self, index: int) -> None:
        """kill -9 node ``index`` (as a power loss would end it)."""
        self.nodes[index].kill()

    def owner(self, tenant_id: int = 1, *, other_than: int | None = None, timeout: float = 15.0) -> int:
        """The index of the node hosting the tenant's ACD (its lease in Redis, ``acd:owner:{tenant}`` =
        ``n{index + 1}:{epoch}``), once there is one other than ``other_than``; RuntimeError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with redis.Redis(host=self.redis.host, port=self.redis.port, decode_responses=True) as client:
            while True:
                value = client.get(f"acd:owner:{tenant_id}")
                if value:
                    index = int(value.split(":")[0].removeprefix("n")) - 1
                    if index != other_than:
                        return index
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no node other than {other_than} owns tenant {tenant_id} after {timeout} s")
                time.sleep(0.02)

    def stop_node(self, index: int) -> None:
        """SIGTERM node ``index`` (it ends its calls and leaves)."""
        self.nodes[index].stop()

    def restart(self, index: int) -> None:
        """Start node ``index`` again (same addresses and ports), and wait until the front sends it calls."""
        node = self.nodes[index]
        node.start()
        self.front.wait_for(lambda active: node.sip in active)

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
        self.front.stop()
        self.redis.stop()
        self.postgres.stop()
