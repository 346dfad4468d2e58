"""A real `licence-ledger serve` process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc

from service.bootstrap import RegionFiles
from service.datadir import DataDir


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Distinct free ports: every socket stays bound until all are picked, so the OS
    cannot hand one port out twice (gRPC's SO_REUSEPORT would then listen twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Server:
    data: DataDir
    port: int
    mtls_port: int
    process: subprocess.Popen[str] | None = None
    extra_args: tuple[str, ...] = ()

    def start(self) -> list[str]:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service.cli",
                "serve",
                "--data",
                str(self.data.root),
                "--port",
                str(self.port),
                "--mtls-port",
                str(self.mtls_port),
                *self.extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )
        assert self.process.stdout is not None
        lines = []
        for line in self.process.stdout:
            lines.append(line.rstrip())
            if "licence-ledger serving" in line:
                return lines
        raise AssertionError("server exited before serving:\n" + "\n".join(lines))

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def channel(self, identity: tuple[bytes, bytes] | None = None) -> grpc.aio.Channel:
        ca = RegionFiles(self.data).ca_cert.read_bytes()
        if identity is None:
            creds = grpc.ssl_channel_credentials(ca)
            return grpc.aio.secure_channel(f"localhost:{self.port}", creds)
        creds = grpc.ssl_channel_credentials(ca, identity[0], identity[1])
        return grpc.aio.secure_channel(f"localhost:{self.mtls_port}", creds)
