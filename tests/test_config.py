"""Server settings: defaults, a TOML [server] table, then flags; mistakes are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError, ServerSettings, load_settings
from service.server import ltv_settings
from signer import pki


def test_defaults_run_a_development_region() -> None:
    settings = load_settings(None, {})
    assert settings == ServerSettings()
    assert (settings.data_dir, settings.port, settings.mtls_port) == (Path("data"), 50051, 50052)
    assert settings.region == "310000"
    assert settings.max_message_bytes == 64 << 20


def test_file_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text('[server]\nport = 6000\ndata_dir = "/srv/ledger"\nregion = "110000"\n')
    settings = load_settings(config, {"port": 7000, "host": None})
    assert settings.port == 7000  # the flag wins
    assert settings.data_dir == Path("/srv/ledger")  # from the file
    assert settings.region == "110000"
    assert settings.host == "127.0.0.1"  # an unset flag leaves the default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 1\n", "unknown setting"),
        ('[server]\nport = "50051"\n', "must be of type"),
        ("[server]\nport = true\n", "must be of type"),
        ('[server]\nsigning_worker = "no"\n', "must be true or false"),
        ("[server]\nsigning_worker = 0\n", "must be true or false"),
        ('[server]\nregion = "31000"\n', "6-digit"),
        ("[server]\nport = 70000\n", "out of range"),
        ("[server]\nmax_message_bytes = 1000\n", "at least 1 MiB"),
        ("[server]\nfront_processes = -1\n", "front_processes must be"),
        ("[server]\nfront_processes = 65\n", "front_processes must be"),
        ('[server]\nfront_processes = "2"\n', "must be of type"),
        ("[other]\nport = 1\n", "one [server] table"),
        ("[server\n", "cannot read"),
        ('[server]\ntimestamp_url = "ftp://tsa"\n', "http:// or https://"),
        ('[server]\ntimestamp_roots = "tsa.pem"\n', "needs a timestamp_url"),
        (
            '[server]\ntimestamp_url = "http://tsa"\nrevocation_data = "crls"\n',
            "needs timestamp_roots",
        ),
    ],
)
def test_mistakes_are_errors(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "server.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_settings(config, {})


def test_the_signing_worker_is_on_unless_turned_off(tmp_path: Path) -> None:
    assert ServerSettings().signing_worker is True
    config = tmp_path / "server.toml"
    config.write_text("[server]\nsigning_worker = false\n")
    assert load_settings(config, {}).signing_worker is False
    assert load_settings(config, {"signing_worker": True}).signing_worker is True  # the flag
    assert load_settings(config, {"signing_worker": None}).signing_worker is False


def test_one_front_end_unless_set(tmp_path: Path) -> None:
    assert ServerSettings().front_processes == 1
    config = tmp_path / "server.toml"
    config.write_text("[server]\nfront_processes = 0\n")
    assert load_settings(config, {}).front_processes == 0
    assert load_settings(config, {"front_processes": 3}).front_processes == 3  # the flag


def test_ipv6_host_is_bracketed() -> None:
    settings = ServerSettings(host="::1", port=1, mtls_port=2)
    assert (settings.address, settings.mtls_address) == ("[::1]:1", "[::1]:2")


def test_unusable_b_lt_files_are_refused_before_serving(tmp_path: Path) -> None:
    def settings(roots: Path, revocation: Path | None = None) -> ServerSettings:
        return ServerSettings(
            timestamp_url="http://tsa",
            timestamp_roots=str(roots),
            revocation_data=str(revocation) if revocation else "",
        )

    with pytest.raises(ConfigError, match="timestamp_roots"):
        ltv_settings(settings(tmp_path / "missing.pem"))
    (tmp_path / "empty.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="timestamp_roots"):
        ltv_settings(settings(tmp_path / "empty.pem"))
    region_root = tmp_path / "root.pem"
    region_root.write_bytes(pki.certificate_pem(pki.create_region_ca("310000", "测试").certificate))
    with pytest.raises(ConfigError, match="not a directory"):
        ltv_settings(settings(region_root, tmp_path / "no-such-dir"))
    loaded = ltv_settings(settings(region_root, tmp_path))
    assert loaded is not None
    assert len(loaded.timestamp_roots) == 1
    assert ltv_settings(ServerSettings()) is None
