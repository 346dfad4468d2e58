"""The `licence-ledger ledger …` commands, run as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rocksdict import Options, Rdict

CLI = [sys.executable, "-m", "service.cli"]


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        check=False,
    )


def test_init_append_prove_verify_audit(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = run("ledger", "init", str(data), "--origin", "example.gov.cn/ledger")
    assert created.returncode == 0, created.stderr
    assert (data / "checkpoint.vkey").read_text().startswith("example.gov.cn/ledger+")

    appended = run("ledger", "append", str(data), stdin=b"first\nsecond\n\nthird\n")
    assert appended.returncode == 0, appended.stderr
    acks = [json.loads(line) for line in appended.stdout.splitlines()]
    assert [a["index"] for a in acks] == [0, 1, 2]  # blank lines are skipped

    entry_file = tmp_path / "entry.bin"
    entry_file.write_bytes(b"\x00binary\xffentry")
    assert run("ledger", "append", str(data), str(entry_file)).returncode == 0

    checkpoint = run("ledger", "checkpoint", str(data))
    assert checkpoint.stdout.splitlines()[:2] == ["example.gov.cn/ledger", "4"]

    proof = run("ledger", "proof", str(data), "--index", "3")
    assert proof.returncode == 0, proof.stderr
    assert proof.stdout.startswith("c2sp.org/tlog-proof@v1\n")
    proof_file = tmp_path / "entry.tlog-proof"
    proof_file.write_text(proof.stdout)
    vkey = str(data / "checkpoint.vkey")

    verified = run(
        "ledger", "verify-proof", str(proof_file), "--entry", str(entry_file), "--vkey", vkey
    )
    assert verified.returncode == 0, verified.stderr
    assert "leaf 3" in verified.stdout

    other = tmp_path / "other.bin"
    other.write_bytes(b"not the entry")
    refused = run("ledger", "verify-proof", str(proof_file), "--entry", str(other), "--vkey", vkey)
    assert refused.returncode == 1
    assert "verification failed" in refused.stderr

    consistency = json.loads(run("ledger", "proof", str(data), "--consistency", "2").stdout)
    assert (consistency["old_size"], consistency["new_size"]) == (2, 4)

    entries = [json.loads(x) for x in run("ledger", "entries", str(data)).stdout.splitlines()]
    assert len(entries) == 4

    audited = run("ledger", "audit", str(data), "--quiet")
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "audit passed: 4 entries" in audited.stdout


def test_audit_names_the_tampered_index_and_exits_non_zero(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("ledger", "init", str(data)).returncode == 0
    lines = b"".join(b"entry %d\n" % i for i in range(50))
    assert run("ledger", "append", str(data), stdin=lines).returncode == 0

    families = {n: Options(raw_mode=True) for n in ("leaves", "hashes", "leaf_index", "index")}
    db = Rdict(str(data / "ledger"), options=Options(raw_mode=True), column_families=families)
    leaves = db.get_column_family("leaves")
    key = (31).to_bytes(8, "big")
    value = leaves[key]
    assert isinstance(value, bytes)
    leaves[key] = value[:-1] + b"X"
    db.close()

    audited = run("ledger", "audit", str(data), "--quiet")
    assert audited.returncode == 1
    assert "first bad index: 31" in audited.stdout


def test_bad_requests_get_clear_errors_and_change_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("ledger", "append", str(data), stdin=b"x\n").returncode == 3  # no ledger yet
    assert run("ledger", "init", str(data)).returncode == 0
    again = run("ledger", "init", str(data))
    assert again.returncode == 2
    assert "already exists" in again.stderr

    assert run("ledger", "append", str(data), stdin=b"").returncode == 2
    huge = tmp_path / "huge.bin"
    huge.write_bytes(b"x" * (2 << 20))
    small = tmp_path / "small.bin"
    small.write_bytes(b"fine")
    too_big = run("ledger", "append", str(data), str(small), str(huge))
    assert too_big.returncode == 2
    assert "exceeds" in too_big.stderr

    for args in (
        ["--index", "0"],
        ["--index", "-1"],
        ["--consistency", "0"],
        ["--leaf-hash", "zz"],
    ):
        result = run("ledger", "proof", str(data), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error:")
    # Nothing was written by any of the refused requests, not even the small file.
    assert run("ledger", "checkpoint", str(data)).stdout.splitlines()[1] == "0"


def test_second_writer_is_refused_while_reads_still_work(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("ledger", "init", str(data)).returncode == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from service.datadir import DataDir; "
            "l = DataDir(Path(sys.argv[1])).open(); print('open', flush=True); time.sleep(60)",
            str(data),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        second = run("ledger", "append", str(data), stdin=b"x\n")
        assert second.returncode == 3
        assert "already open by another writer" in second.stderr
        assert run("ledger", "audit", str(data), "--quiet").returncode == 0
    finally:
        holder.kill()
        holder.wait()
