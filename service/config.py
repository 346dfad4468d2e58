"""Server settings: defaults that run a development region, a TOML file, then flags.

Every setting has a default so `licence-ledger serve` works with no configuration.
A TOML file (``--config``) holds the same names in a ``[server]`` table; flags given
on the command line win over the file. Unknown names are an error, not ignored, so a
typo cannot silently leave a production setting at its default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.datadir import DEFAULT_REGION


class ConfigError(ValueError):
    """A setting is unknown or has a value of the wrong kind."""


@dataclass(frozen=True)
class ServerSettings:
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 50051
    mtls_port: int = 50052
    region: str = DEFAULT_REGION
    region_name: str = "Development Region"
    max_message_bytes: int = 64 << 20
    shutdown_grace_seconds: float = 10.0
    log_level: str = "INFO"
    # Processes that render and seal PDFs; 0 means one per core.
    pdf_workers: int = 0
    # A process beside the event loop that signs issued licences (envelope, QR code).
    signing_worker: bool = True
    # Processes that serve gRPC (TLS, HTTP/2) and forward calls to the region process,
    # whose event loop then runs only the calls themselves; 0: it serves gRPC itself.
    front_processes: int = 1 if os.name == "posix" else 0
    # RFC 3161 timestamp authority for PAdES B-T seals; empty: B-B, no timestamp.
    timestamp_url: str = ""
    # PEM file of the roots the timestamp authority's certificates chain to: seals
    # become PAdES B-LT, carrying the region's CRL and the TSA chain's revocation data.
    timestamp_roots: str = ""
    # Directory of the TSA chain's revocation data: *.crl (DER or PEM), *.ocsp (DER).
    revocation_data: str = ""

    def __post_init__(self) -> None:
        if not (len(self.region) == 6 and self.region.isdigit()):
            raise ConfigError(f"region must be a 6-digit GB/T 2260 code, not {self.region!r}")
        for port in (self.port, self.mtls_port):
            if not 0 <= port <= 65535:
                raise ConfigError(f"port {port} is out of range")
        if self.max_message_bytes < 1 << 20:
            raise ConfigError("max_message_bytes must be at least 1 MiB")
        if self.shutdown_grace_seconds < 0:
            raise ConfigError("shutdown_grace_seconds must not be negative")
        if not 0 <= self.pdf_workers <= 64:
            raise ConfigError("pdf_workers must be 0 (one per core) to 64")
        if not 0 <= self.front_processes <= 64:
            raise ConfigError("front_processes must be 0 (gRPC in the region process) to 64")
        if self.front_processes and os.name != "posix":
            raise ConfigError("front_processes needs a POSIX system; set it to 0")
        if self.timestamp_url and not self.timestamp_url.startswith(("http://", "https://")):
            raise ConfigError("timestamp_url must be an http:// or https:// URL")
        if self.timestamp_roots and not self.timestamp_url:
            raise ConfigError("timestamp_roots (PAdES B-LT) needs a timestamp_url")
        if self.revocation_data and not self.timestamp_roots:
            raise ConfigError("revocation_data is for PAdES B-LT: it needs timestamp_roots")

    @property
    def address(self) -> str:
        return f"{self._host}:{self.port}"

    @property
    def mtls_address(self) -> str:
        return f"{self._host}:{self.mtls_port}"

    @property
    def _host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


def _coerce(name: str, kind: Any, value: Any) -> Any:
    if kind in ("Path", Path):
        if not isinstance(value, str | Path):
            raise ConfigError(f"{name} must be a path")
        return Path(value)
    if str(kind) == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, not {type(value).__name__}")
        return value
    kinds: dict[str, type | tuple[type, ...]] = {"str": str, "int": int, "float": (int, float)}
    expected = kinds[str(kind)]
    if isinstance(value, bool) or not isinstance(value, expected):
        raise ConfigError(f"{name} must be of type {kind}, not {type(value).__name__}")
    checked: Any = value
    return float(checked) if str(kind) == "float" else checked


def load_settings(config_file: Path | None, overrides: Mapping[str, Any]) -> ServerSettings:
    """Defaults, then the file's [server] table, then `overrides` (None values skipped)."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            document = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {config_file}: {exc}") from exc
        table = document.get("server", {})
        if set(document) - {"server"} or not isinstance(table, dict):
            raise ConfigError(f"{config_file} must hold one [server] table")
        values.update(table)
    values.update({k: v for k, v in overrides.items() if v is not None})
    fields = {f.name: f.type for f in dataclasses.fields(ServerSettings)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return ServerSettings(**{k: _coerce(k, fields[k], v) for k, v in values.items()})
