"""Settings priority: CLI flag > environment > config file > default."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from callcenter.settings import ConfigFileError, Settings, load_settings


def _toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "cc.toml"
    path.write_text(body)
    return path


def test_defaults() -> None:
    s = load_settings({}, None)
    assert s.sip_port == 5060 and s.http_port == 8000 and s.data_dir == Path("data")
    assert s.effective_database_url == "sqlite:///data/callcenter.db"
    assert s.rate_limit_per_ip == 500.0 and s.rate_limit_burst == 1000 and s.max_calls == 2000


def test_file_overrides_default(tmp_path: Path) -> None:
    s = load_settings({}, _toml(tmp_path, "sip_port = 5080\nlog_level = 'debug'\n"))
    assert s.sip_port == 5080 and s.log_level == "DEBUG" and s.http_port == 8000


def test_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_SIP_PORT", "5090")
    s = load_settings({}, _toml(tmp_path, "sip_port = 5080\nhttp_port = 8080\n"))
    assert s.sip_port == 5090 and s.http_port == 8080


def test_flag_overrides_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_SIP_PORT", "5090")
    s = load_settings({"sip_port": 5100, "http_port": None}, _toml(tmp_path, "sip_port = 5080\n"))
    assert s.sip_port == 5100
    assert s.http_port == 8000  # None means "flag not given"


def test_config_path_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cc.yaml"
    path.write_text("advertised_ip: 192.0.2.10\nmax_calls: 10\n")
    monkeypatch.setenv("CALLCENTER_CONFIG", str(path))
    s = load_settings({}, None)
    assert s.advertised_ip == "192.0.2.10" and s.max_calls == 10


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        load_settings({}, _toml(tmp_path, "sip_prot = 5080\n"))


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError):
        load_settings({}, tmp_path / "absent.toml")


def test_rtp_range_must_be_ordered() -> None:
    with pytest.raises(ValidationError):
        load_settings({"rtp_port_min": 30000, "rtp_port_max": 20000}, None)


def test_database_url_explicit_wins(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://u@h/db")
    assert s.effective_database_url == "postgresql+psycopg://u@h/db"
    assert Settings(data_dir=tmp_path).effective_database_url == f"sqlite:///{tmp_path}/callcenter.db"


def test_secret_key_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path / "d").effective_secret_key
    second = Settings(data_dir=tmp_path / "d").effective_secret_key
    assert first == second and len(first) >= 32
    assert (tmp_path / "d" / "secret.key").stat().st_mode & 0o077 == 0
    assert Settings(data_dir=tmp_path / "d", secret_key="given").effective_secret_key == "given"
