"""Node settings: CLI flags > environment (``CALLCENTER_*``) > config file > defaults.

The config file is TOML (``.toml``) or YAML (``.yaml``/``.yml``) with the field names as
top-level keys. Its path comes from ``--config`` or ``CALLCENTER_CONFIG``.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
import tomllib
from contextvars import ContextVar
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sip_bridge.tls import TlsConfigError, client_context, server_context

CONFIG_ENV_VAR = "CALLCENTER_CONFIG"
SECRET_KEY_FILE = "secret.key"
MASTER_KEY_FILE = "master.key"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
STUN_SCHEMES = ("stun:", "stuns:")
TURN_SCHEMES = ("turn:", "turns:")

# The file source needs the path chosen by load_settings(); pydantic-settings builds
# sources from the class, so the path is handed over through a context variable.
_config_path: ContextVar[Path | None] = ContextVar("callcenter_config_path", default=None)


class ConfigFileError(ValueError):
    """The config file is missing, unreadable or not a mapping."""


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML or YAML config file into a dict of settings."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"cannot read config file {path}: {exc}") from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigFileError(f"config file {path} must end in .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigFileError(f"invalid config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigFileError(f"config file {path} must contain a mapping at top level")
    return data


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Settings source reading the file selected for the current load_settings() call."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = _config_path.get()
        self._data = read_config_file(path) if path is not None else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """Settings of one node (SIP edge + HTTP API + database)."""

    model_config = SettingsConfigDict(env_prefix="CALLCENTER_", extra="forbid")

    data_dir: Path = Path("data")
    sip_host: str = "0.0.0.0"
    sip_port: int = Field(default=5060, ge=1, le=65535)
    advertised_ip: str = "127.0.0.1"
    """IP address written into Via, Contact and SDP."""
    sip_tls_port: int = Field(default=5061, ge=1, le=65535)
    """Port of the SIP over TLS listener (TLS 1.2 or newer); it listens only when ``sip_tls_cert`` is set."""
    sip_tls_cert: Path | None = None
    """PEM certificate (chain, leaf first) the SIP TLS listener presents, and to trunks that ask
    for a client certificate; with ``sip_tls_key``. None: no SIP TLS listener."""
    sip_tls_key: Path | None = None
    """PEM private key of ``sip_tls_cert``."""
    sip_tls_ca_file: Path | None = None
    """PEM CA bundle that trunks' certificates must chain to on outbound TLS; None: the system's store."""
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    database_url: str | None = None
    call_record_backlog: int = Field(default=100_000, ge=100, le=10_000_000)
    """Call-record operations (starts, answers, ends, events, IVR traces, voicemails) held in
    memory while the database is unavailable, written when it is back; beyond it further ones are
    dropped (one log line, ``callcenter_cdr_dropped_operations_total``). Calls go on either way."""
    rtp_port_min: int = Field(default=20000, ge=1024, le=65535)
    rtp_port_max: int = Field(default=39999, ge=1024, le=65535)
    max_calls: int = Field(default=2000, ge=1)
    rate_limit_per_ip: float = Field(default=500.0, gt=0)
    """SIP requests per second per source IP (token bucket refill rate)."""
    rate_limit_burst: int = Field(default=1000, ge=1)
    rtp_timeout: float = Field(default=30.0, gt=0)
    log_level: str = "INFO"
    asr_model: Path | None = None
    """Directory of the vosk model for speech in IVR menus; None: DTMF only (tenants may set their own)."""
    asr_workers: int | None = Field(default=None, ge=1, le=64)
    """Speech recognition threads; None: one per CPU core."""
    node_id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    """This node's name in a cluster (``n1``): its call records, leases and heartbeat carry it.
    Required with ``redis_url``; None on a single node."""
    redis_url: str | None = None
    """``redis://host:port/db``: cluster mode (leases, heartbeats, shared registrations and
    counters). None: a single node, no Redis."""
    sip_outbound_proxy: str | None = Field(default=None, pattern=r"^(\[[0-9A-Fa-f:.]+\]|[^:\s\[\]]+):\d{1,5}$")
    """``host:port`` (UDP) where out-of-dialog requests to trunks go (INVITE, OPTIONS keepalive,
    REGISTER), their Request-URI still naming the trunk: the cluster's Kamailio. Phones are rung
    along the Path they registered with (through the same Kamailio). None: straight to the trunk."""
    sip_front_ips: list[str] = []
    """Addresses of the cluster's SIP front (Kamailio): a request from one of them counts as sent
    by the address its ``X-Source`` header names (the front writes it), so trunk allow-lists, bans,
    rate limits and TLS policy apply to the real carrier or phone. Empty: none trusted."""
    asr_timeout: float = Field(default=3.0, gt=0, le=60)
    """Seconds a speech-recognition operation may spend in the recognizer pool (waiting for a
    worker, then decoding; normally a few milliseconds). Beyond it the pool counts as wedged: IVR
    menus take keys only (one log line per call) until it answers again."""
    ivr_http_allow_private: bool = False
    """Let IVR http nodes reach loopback and private addresses (tests, closed networks). Off: SSRF guard."""
    chat_opens_per_minute: int = Field(default=20, ge=0, le=100_000)
    """Web chats (and offline messages) one address may start per minute, in bursts of as many; 0:
    no limit. Behind a proxy, set ``forwarded_allow_ips`` so the address is the visitor's."""
    softphone_grace: float = Field(default=10.0, ge=1.0, le=300.0)
    """Seconds an agent's softphone tab may stay away (reload, network drop) before the agent is
    logged off: offline in the ACD, an offer ringing moves on, a call in progress goes back to its queue."""
    stun_urls: list[str] = []
    """STUN servers for the agents' browsers (``stun:host:port``), so agents behind NAT find
    their public address; empty: host candidates only (agents on the node's LAN)."""
    turn_urls: list[str] = []
    """TURN relays (``turn:host:3478?transport=udp``, ``turns:host:5349``) for agents whose
    network blocks direct media. Needs ``turn_secret``: pages get time-limited credentials."""
    turn_secret: str | None = None
    """Shared secret of the TURN server (coturn ``use-auth-secret`` / ``static-auth-secret``);
    only HMACs of it leave the node, never the secret itself."""
    turn_ttl: int = Field(default=3600, ge=60, le=86400)
    """Seconds a TURN credential handed to a page stays valid (a reload fetches a new one)."""
    recording_master_key: str | None = None
    """Base64 of 32 bytes wrapping the tenants' recording keys; None: generated once in
    ``data_dir/master.key``."""
    recordings_dir: Path | None = None
    """Where recordings are stored (a folder per tenant); None: ``data_dir/recordings``. In a
    cluster, a folder every node mounts (each node's journals in their own subfolder)."""
    transcription_workers: int = Field(default=1, ge=1, le=64)
    """Threads transcribing finished recordings (each uses about one core while busy)."""
    secret_key: str | None = None
    """None: generated once and kept in ``data_dir/secret.key`` (see effective_secret_key)."""
    ban_window: float = Field(default=300.0, gt=0, le=86400)
    """Seconds over which failed authentications (SIP digest, HTTP sign-in) are counted."""
    ban_account_failures: int = Field(default=5, ge=1, le=10000)
    """Failures for one account from one source within ``ban_window`` that ban that account from that
    source only (the real user elsewhere is never locked out)."""
    ban_source_failures: int = Field(default=20, ge=1, le=100000)
    """Failures from one source, any accounts, within ``ban_window`` that ban the whole source."""
    ban_period: float = Field(default=900.0, gt=0, le=30 * 86400)
    """Seconds a ban lasts (SIP: requests dropped unanswered; HTTP: 429 with Retry-After)."""
    ban_exempt_networks: list[str] = []
    """Addresses and CIDR blocks never banned (an office's NAT, monitoring); trunks' allowed
    carrier addresses are never banned either."""
    allowed_origins: list[str] = []
    """Origins (``https://crm.example.com``) besides the node's own whose pages may open the
    agent and supervisor WebSockets."""
    tls_cert: Path | None = None
    """PEM certificate (chain) for HTTPS served by the node itself; with ``tls_key``."""
    tls_key: Path | None = None
    """PEM private key for ``tls_cert``."""
    forwarded_allow_ips: list[str] = []
    """Addresses of reverse proxies trusted for ``X-Forwarded-For``/``-Proto`` (the client's address
    then counts for sign-in bans, and ``https`` marks cookies Secure); empty: none."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init kwargs carry the CLI flags: they win over env, env over the file.
        return (init_settings, env_settings, _ConfigFileSource(settings_cls))

    @field_validator("stun_urls", "turn_urls")
    @classmethod
    def _ice_urls(cls, urls: list[str], info: ValidationInfo) -> list[str]:
        schemes = STUN_SCHEMES if info.field_name == "stun_urls" else TURN_SCHEMES
        for url in urls:
            host = url.partition(":")[2]
            if not url.startswith(schemes) or not host or any(c.isspace() for c in url):
                raise ValueError(f"{info.field_name}: {url!r} must start with {' or '.join(schemes)} and name a host")
        return urls

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.rtp_port_min >= self.rtp_port_max:
            raise ValueError("rtp_port_min must be lower than rtp_port_max")
        self.log_level = self.log_level.upper()
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together (HTTPS needs both)")
        for entry in self.ban_exempt_networks:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"ban_exempt_networks: {entry!r} is not an address or CIDR block") from None
        for entry in self.sip_front_ips:
            try:
                ipaddress.ip_address(entry)
            except ValueError:
                raise ValueError(f"sip_front_ips: {entry!r} is not an IP address") from None
        for origin in self.allowed_origins:
            scheme, sep, rest = origin.partition("://")
            if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
                raise ValueError(f"allowed_origins: {origin!r} must look like https://host[:port]")
        if self.turn_urls and not self.turn_secret:
            raise ValueError("turn_urls needs turn_secret (TURN credentials are HMACs of the shared secret)")
        if self.redis_url is not None:
            if self.node_id is None:
                raise ValueError("redis_url (cluster mode) needs node_id: each node of a cluster has its own name")
            if not self.effective_database_url.startswith("postgresql"):
                raise ValueError("redis_url (cluster mode) needs a PostgreSQL database_url shared by the nodes")
            if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError("redis_url must start with redis://, rediss:// or unix://")
            if self.recordings_dir is None:
                raise ValueError("redis_url (cluster mode) needs recordings_dir: a folder every node mounts (a "
                                 "survivor finishes a dead node's recordings from it)")
            if not self.secret_key or not self.recording_master_key:
                raise ValueError("redis_url (cluster mode) needs secret_key and recording_master_key set, the same on "
                                 "every node (digest nonces, node-to-node calls, recordings any node can read)")
        return self

    @property
    def sip_outbound_proxy_address(self) -> tuple[str, int] | None:
        """``sip_outbound_proxy`` as (host, port), IPv6 brackets removed."""
        if self.sip_outbound_proxy is None:
            return None
        host, _, port = self.sip_outbound_proxy.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def cluster(self) -> bool:
        """Whether this node is one of a cluster (``redis_url`` set)."""
        return self.redis_url is not None

    @model_validator(mode="after")
    def _sip_tls(self) -> "Settings":
        """Unreadable or mismatched SIP TLS files stop the node at start with the reason, not at the first call."""
        if (self.sip_tls_cert is None) != (self.sip_tls_key is None):
            raise ValueError("sip_tls_cert and sip_tls_key go together (the SIP TLS listener needs both)")
        try:
            if self.sip_tls_cert is not None and self.sip_tls_key is not None:
                server_context(self.sip_tls_cert, self.sip_tls_key)
            if self.sip_tls_ca_file is not None:
                client_context(self.sip_tls_ca_file)
        except TlsConfigError as exc:
            raise ValueError(f"SIP TLS: {exc}") from None
        return self

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or SQLite in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir}/callcenter.db"

    @property
    def http_url(self) -> str:
        """Where the node's pages are: https when it serves TLS itself."""
        return f"{'https' if self.tls_cert else 'http'}://{self.http_host}:{self.http_port}"

    @property
    def effective_secret_key(self) -> str:
        """The configured secret key, or one generated once and kept in data_dir."""
        if not self.secret_key:
            self.secret_key = self._key_file(SECRET_KEY_FILE, lambda: secrets.token_urlsafe(48))
        return self.secret_key

    @property
    def effective_master_key(self) -> str:
        """The configured recording master key, or one generated once and kept in data_dir.

        It wraps every tenant's recording key: losing it loses the recordings; keep a copy
        (and in production, configure it from a secret store rather than the data folder)."""
        if not self.recording_master_key:
            self.recording_master_key = self._key_file(
                MASTER_KEY_FILE, lambda: base64.b64encode(secrets.token_bytes(32)).decode("ascii"))
        return self.recording_master_key

    @property
    def effective_recordings_dir(self) -> Path:
        return self.recordings_dir if self.recordings_dir is not None else self.data_dir / "recordings"

    def _key_file(self, name: str, make: Callable[[], str]) -> str:
        path = self.data_dir / name
        try:
            existing = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            existing = ""
        if existing:
            return existing
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = make()
        # O_EXCL: if two processes race, the loser reads the winner's key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text(encoding="ascii").strip()
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key + "\n")
        return key


def load_settings(cli_overrides: dict[str, Any], config_file: Path | None) -> Settings:
    """Build settings from CLI overrides (None values ignored), env, config file, defaults.

    ``config_file`` None falls back to ``$CALLCENTER_CONFIG`` when set.
    """
    if config_file is None:
        env_path = os.environ.get(CONFIG_ENV_VAR)
        config_file = Path(env_path) if env_path else None
    overrides = {k: v for k, v in cli_overrides.items() if v is not None}
    token = _config_path.set(config_file)
    try:
        return Settings(**overrides)
    finally:
        _config_path.reset(token)
