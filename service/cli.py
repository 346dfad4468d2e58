"""`licence-ledger`: the command line for people.

Results go to stdout in forms other tools read (signed notes, C2SP tlog-proofs, JSON
lines); progress and diagnostics go to stderr. Exit codes: 0 success, 1 something
failed verification (audit, proof, `verify`), 2 the request itself was wrong, 3 storage
or keys could not be used (for `verify`: the report is INDETERMINATE).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, TimeRemainingColumn

from ledger import Ledger, ProofBundle, audit_storage
from ledger.errors import InvalidRequestError, LedgerError, StorageError, VerificationError
from ledger.note import Ed25519NoteVerifier
from service.config import ConfigError
from service.datadir import DEFAULT_REGION, DataDir, default_origin
from service.demo import run_demo
from signer.keystore import KeyStoreError
from signer.pki import PkiError

_err = Console(stderr=True)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _cmd_init(args: argparse.Namespace) -> int:
    data = DataDir(args.data)
    if data.exists():
        raise InvalidRequestError(f"a ledger already exists in {data.root}")
    ledger = data.create(args.origin or default_origin(args.region))
    ledger.close()
    print(f"ledger created in {data.ledger_path}")
    print(f"origin: {ledger.origin}")
    print(f"checkpoint verifier key: {data.vkey_path}")
    return 0


def _entries_from(files: Sequence[str]) -> Iterable[bytes]:
    if not files or files == ["-"]:
        for line in sys.stdin.buffer:
            line = line.rstrip(b"\r\n")
            if line:
                yield line
        return
    for name in files:
        yield Path(name).read_bytes()


async def _append_all(ledger: Ledger, entries: Iterable[bytes]) -> list[int]:
    try:
        # All at once: the ledger groups them into as few synced commits as it can.
        return list(await asyncio.gather(*(ledger.append(e) for e in entries)))
    finally:
        await ledger.aclose()


def _cmd_append(args: argparse.Namespace) -> int:
    entries = list(_entries_from(args.files))
    if not entries:
        raise InvalidRequestError("nothing to append")
    ledger = DataDir(args.data).open()
    try:
        for entry in entries:
            ledger.check_entry(entry)  # reject the whole request before anything is written
    except BaseException:
        ledger.close()
        raise
    indexes = asyncio.run(_append_all(ledger, entries))
    for index, entry in zip(indexes, entries, strict=True):
        print(json.dumps({"index": index, "bytes": len(entry)}))
    print(ledger.checkpoint.to_bytes().decode(), end="", file=sys.stderr)
    return 0


def _cmd_checkpoint(args: argparse.Namespace) -> int:
    data = DataDir(args.data)
    reader = data.open_reader()
    try:
        if args.vkey:
            print(reader.verifier.vkey())
        else:
            print(reader.checkpoint.to_bytes().decode(), end="")
    finally:
        reader.close()
    return 0


def _cmd_entries(args: argparse.Namespace) -> int:
    reader = DataDir(args.data).open_reader()
    try:
        end = min(args.start + args.count, reader.size)
        for leaf in reader.leaves(args.start, end):
            print(
                json.dumps(
                    {
                        "index": leaf.index,
                        "leaf_hash": _b64(leaf.hash),
                        "prev_hash": _b64(leaf.prev_hash),
                        "entry": _b64(leaf.entry),
                    }
                )
            )
    finally:
        reader.close()
    return 0


def _cmd_proof(args: argparse.Namespace) -> int:
    reader = DataDir(args.data).open_reader()
    try:
        if args.consistency is not None:
            proof = reader.consistency_proof(args.consistency, args.size)
            print(
                json.dumps(
                    {
                        "old_size": proof.old_size,
                        "new_size": proof.new_size,
                        "old_root": _b64(reader.root_at(proof.old_size)),
                        "new_root": _b64(reader.root_at(proof.new_size)),
                        "path": [_b64(h) for h in proof.path],
                    },
                    indent=2,
                )
            )
            return 0
        index = args.index
        if args.leaf_hash is not None:
            index = reader.find_leaf(_decode_hash(args.leaf_hash))
        if index is None:
            raise InvalidRequestError("give --index, --leaf-hash or --consistency")
        if args.size is None:
            print(reader.proof_bundle(index).to_text(), end="")
            return 0
        inclusion = reader.inclusion_proof(index, args.size)
        print(
            json.dumps(
                {
                    "leaf_index": inclusion.leaf_index,
                    "tree_size": inclusion.tree_size,
                    "leaf_hash": _b64(reader.leaf(index).hash),
                    "root": _b64(reader.root_at(inclusion.tree_size)),
                    "path": [_b64(h) for h in inclusion.path],
                },
                indent=2,
            )
        )
    finally:
        reader.close()
    return 0


def _decode_hash(text: str) -> bytes:
    try:
        return bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise InvalidRequestError(f"{text!r} is neither hex nor base64") from exc


def _cmd_verify_proof(args: argparse.Namespace) -> int:
    verifier = Ed25519NoteVerifier.from_vkey(Path(args.vkey).read_text().strip())
    bundle = ProofBundle.from_text(Path(args.proof).read_text(), verifier)
    bundle.verify(Path(args.entry).read_bytes())
    cp = bundle.checkpoint.checkpoint
    print(f"OK: entry is leaf {bundle.proof.leaf_index} of {cp.origin} at size {cp.size}")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    data = DataDir(args.data)
    if not data.exists():
        raise StorageError(f"no ledger in {data.root}")
    columns = (*Progress.get_default_columns()[:-1], MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_err, transient=True, disable=args.quiet) as bar:
        task = bar.add_task("auditing", total=None)
        report = audit_storage(
            data.ledger_path, lambda done, total: bar.update(task, completed=done, total=total)
        )
    if report.ok:
        print(
            f"audit passed: {report.size} entries, every link and hash re-derived, "
            f"checkpoint signature and root verified"
        )
        return 0
    where = "" if report.first_bad_index is None else f" first bad index: {report.first_bad_index};"
    print(f"audit FAILED:{where} {report.problem}")
    return 1


def _cmd_reindex(args: argparse.Namespace) -> int:
    from service.region.index import reindex

    data = DataDir(args.data)
    if not data.exists():
        raise StorageError(f"no ledger in {data.root}")
    columns = (*Progress.get_default_columns()[:-1], MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_err, transient=True, disable=args.quiet) as bar:
        task = bar.add_task("replaying the ledger", total=None)
        report = reindex(
            data.ledger_path,
            check_only=args.check,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    state = "matches" if report.differences == 0 else f"differed in {report.differences} keys"
    action = "; rewritten from the ledger" if report.rewritten else ""
    print(f"index of {report.entries} entries ({report.keys} keys) {state}{action}")
    return 1 if args.check and report.differences else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(DataDir(args.data), Console(highlight=False))


def _cmd_seal_image(args: argparse.Namespace) -> int:
    from signer import sealimage

    try:
        png = sealimage.make_dev_seal_png(args.name)
    except (ValueError, sealimage.SealImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.output.write_bytes(png)
    print(f"{args.output}: {len(png)} bytes, sha256 {hashlib.sha256(png).hexdigest()}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from service.config import load_settings
    from service.server import serve

    settings = load_settings(
        args.config,
        {
            "data_dir": args.data,
            "host": args.host,
            "port": args.port,
            "mtls_port": args.mtls_port,
            "region": args.region,
            "region_name": args.region_name,
            "max_message_bytes": args.max_message_bytes,
            "log_level": args.log_level,
            "pdf_workers": args.pdf_workers,
            "signing_worker": args.signing_worker,
            "front_processes": args.front_processes,
            "timestamp_url": args.timestamp_url,
            "timestamp_roots": args.timestamp_roots,
            "revocation_data": args.revocation_data,
        },
    )
    from service.front.supervisor import ListenError

    try:
        return serve(settings)
    except ListenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3


def _cmd_verify(args: argparse.Namespace) -> int:
    if "grpc" not in sys.modules:
        # gRPC core would also log a failed connection or TLS handshake on stderr, in
        # its own format; the error message says it once, for people. Read at import.
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    # Imported here: grpc and the generated stubs would slow every other command.
    from service import verify_cli

    options = verify_cli.VerifyOptions(
        file=args.file,
        server=args.server or verify_cli.DEFAULT_SERVER,
        ca=args.ca,
        data_dir=args.data or verify_cli.VerifyOptions.data_dir,
        holder=args.holder,
        at=args.at,
        language=args.lang,
        as_json=args.json,
        timeout=args.timeout,
    )
    return verify_cli.verify(options)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="licence-ledger", description=__doc__)
    top = parser.add_subparsers(dest="command", required=True)

    p = top.add_parser(
        "serve",
        help="run the gRPC server (first run bootstraps a development region)",
        description="Run the region's gRPC server. With no options it uses ./data and "
        "ports 50051 (TLS) and 50052 (mutual TLS); flags override a --config TOML file, "
        "which overrides the defaults.",
    )
    p.add_argument("--config", type=Path, help="TOML file with a [server] table of settings")
    p.add_argument("--data", type=Path, help="data directory (default ./data)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="public TLS port: reads and verification (50051)")
    p.add_argument("--mtls-port", type=int, help="mutual-TLS port: departments, admins (50052)")
    p.add_argument("--region", help="GB/T 2260 region code bootstrapped on first run (310000)")
    p.add_argument("--region-name", help="region name for the bootstrapped root CA")
    p.add_argument("--max-message-bytes", type=int, help="largest request/response (64 MiB)")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (INFO)")
    p.add_argument(
        "--pdf-workers", type=int, help="processes rendering and sealing PDFs (one per core)"
    )
    p.add_argument(
        "--front-processes",
        type=int,
        help="processes serving gRPC in front of the ledger's process; 0: in it (1)",
    )
    p.add_argument(
        "--signing-worker",
        action=argparse.BooleanOptionalAction,
        help="sign issued licences in a process beside the event loop (default: on)",
    )
    p.add_argument("--timestamp-url", help="RFC 3161 timestamp authority: seals become PAdES B-T")
    p.add_argument(
        "--timestamp-roots",
        help="PEM roots of the timestamp authority's chain: seals become PAdES B-LT",
    )
    p.add_argument(
        "--revocation-data",
        help="directory of CRLs (*.crl) and OCSP responses (*.ocsp) for the TSA's chain",
    )
    p.set_defaults(run=_cmd_serve)

    p = top.add_parser(
        "verify",
        help="verify a licence credential, QR payload or sealed PDF and print the report",
        description="Send a file to the region's server for verification and print the "
        "report. The file is a licence or sealed PDF, a QR payload (LL1:…), a DSSE "
        "envelope or a licence credential JSON, told apart by its content. Exit code 0 "
        "TOTAL_PASSED, 1 TOTAL_FAILED, 3 INDETERMINATE, 2 unusable file or failed call.",
    )
    p.add_argument("file", help="the file to verify; '-' reads stdin")
    p.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="HOST:PORT of the server's public TLS port (localhost:50051)",
    )
    p.add_argument(
        "--ca",
        type=Path,
        metavar="PEM",
        help="PEM root certificate to trust (DATA/pki/region-ca.pem)",
    )
    p.add_argument(
        "--data",
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="data directory whose region CA to trust (./data)",
    )
    p.add_argument(
        "--holder", default="", metavar="ID", help="the holder id number the licence must name"
    )
    p.add_argument(
        "--at",
        metavar="ISO8601",
        help="verify as of this ISO 8601 time (UTC if no zone; default now)",
    )
    p.add_argument(
        "--lang", choices=("zh", "en", "both"), default="both", help="report language (both)"
    )
    p.add_argument("--json", action="store_true", help="print the report as protobuf JSON")
    p.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="seconds to wait for the server"
    )
    p.set_defaults(run=_cmd_verify)

    p = top.add_parser(
        "seal-image",
        help="draw a development seal image (red round seal, name around a star)",
        description="Write a PNG seal image for development regions: the name around the "
        "top of a red ring with a star in the middle. Real seals use the registered image "
        "of the physical seal.",
    )
    p.add_argument("name", help="the seal's name as carved, e.g. 上海市市场监督管理局")
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    p.set_defaults(run=_cmd_seal_image)
    ledger = top.add_parser("ledger", help="work with a ledger in a data directory")
    sub = ledger.add_subparsers(dest="action", required=True)

    def data_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("data", type=Path, help="the data directory (holds ledger/ and keys/)")

    p = sub.add_parser("init", help="create an empty ledger and its checkpoint key")
    data_dir(p)
    p.add_argument("--region", default=DEFAULT_REGION, help="region code for the default origin")
    p.add_argument("--origin", help="the log origin (default licence-ledger.localhost/REGION)")
    p.set_defaults(run=_cmd_init)

    p = sub.add_parser("append", help="append files, or stdin lines, as entries")
    data_dir(p)
    p.add_argument("files", nargs="*", help="files to append whole; none or '-' reads stdin lines")
    p.set_defaults(run=_cmd_append)

    p = sub.add_parser("checkpoint", help="print the latest signed checkpoint")
    data_dir(p)
    p.add_argument("--vkey", action="store_true", help="print the checkpoint verifier key")
    p.set_defaults(run=_cmd_checkpoint)

    p = sub.add_parser("entries", help="print entries as JSON lines (base64)")
    data_dir(p)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--count", type=int, default=100)
    p.set_defaults(run=_cmd_entries)

    p = sub.add_parser("proof", help="print an inclusion proof bundle or a consistency proof")
    data_dir(p)
    p.add_argument("--index", type=int, help="leaf index: prints a C2SP tlog-proof")
    p.add_argument("--leaf-hash", help="find the leaf by its hash (hex or base64)")
    p.add_argument("--size", type=int, help="tree size for a raw proof (JSON) instead")
    p.add_argument(
        "--consistency",
        type=int,
        metavar="OLD_SIZE",
        help="consistency proof from OLD_SIZE to --size (default: latest)",
    )
    p.set_defaults(run=_cmd_proof)

    p = sub.add_parser("verify-proof", help="verify a tlog-proof for an entry, offline")
    p.add_argument("proof", help="the .tlog-proof file")
    p.add_argument("--entry", required=True, help="file holding the entry bytes")
    p.add_argument("--vkey", required=True, help="file holding the ledger's verifier key")
    p.set_defaults(run=_cmd_verify_proof)

    p = sub.add_parser("audit", help="re-derive and check every link, hash and the checkpoint")
    data_dir(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_audit)

    p = sub.add_parser(
        "reindex",
        help="rebuild the indexes (licences, holders, requests) from the ledger alone; "
        "the server must be stopped",
    )
    data_dir(p)
    p.add_argument(
        "--check", action="store_true", help="only compare; exit 1 if the stored index differs"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_reindex)

    p = sub.add_parser("demo", help="create (once) a demo ledger, append, prove and audit")
    data_dir(p)
    p.set_defaults(run=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except VerificationError as exc:
        print(f"verification failed: {exc}", file=sys.stderr)
        return 1
    except (InvalidRequestError, FileNotFoundError, IsADirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (LedgerError, KeyStoreError, ConfigError, PkiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return code


if __name__ == "__main__":
    sys.exit(main())
