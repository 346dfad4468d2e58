#!/usr/bin/env bash
# Generates the Python gRPC/protobuf package licenceledger/ from proto/.
#
#   scripts/gen_proto.sh            regenerate licenceledger/ in the repository (make proto)
#   scripts/gen_proto.sh --check    generate into a temporary directory and fail if the
#                                   committed licenceledger/ differs (make proto-check)
#
# Uses grpcio-tools' bundled protoc (with its well-known .proto files) and the
# mypy-protobuf plugins, all from the project's virtualenv (PROTO_PYTHON, default
# .venv/bin/python), so the output depends only on the versions pinned in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTO_PYTHON=${PROTO_PYTHON:-.venv/bin/python}
if [ ! -x "$PROTO_PYTHON" ]; then
    echo "gen_proto: $PROTO_PYTHON not found; run \`make setup\` first" >&2
    exit 1
fi
# Absolute, without resolving the interpreter's symlink (it must run as the venv's).
BIN=$(cd "$(dirname "$PROTO_PYTHON")" && pwd)
PYTHON=$BIN/$(basename "$PROTO_PYTHON")
PACKAGE=licenceledger

generate() {
    local out=$1
    local -a protos
    mapfile -t protos < <(cd proto && find "$PACKAGE" -name '*.proto' | LC_ALL=C sort)
    if [ "${#protos[@]}" -eq 0 ]; then
        echo "gen_proto: no .proto files under proto/$PACKAGE" >&2
        exit 1
    fi
    rm -rf "${out:?}/$PACKAGE"
    mkdir -p "$out"
    (
        cd proto
        "$PYTHON" -m grpc_tools.protoc \
            -I . \
            --plugin=protoc-gen-mypy="$BIN/protoc-gen-mypy" \
            --plugin=protoc-gen-mypy_grpc="$BIN/protoc-gen-mypy_grpc" \
            --python_out="$out" \
            --grpc_python_out="$out" \
            --mypy_out=quiet:"$out" \
            --mypy_grpc_out=quiet:"$out" \
            "${protos[@]}"
    )
    # The gRPC plugins write a *_pb2_grpc module for every file; drop those of files that
    # define no service (they would hold nothing but a version check).
    local grpc_module
    while IFS= read -r grpc_module; do
        if ! grep -q '^class ' "$grpc_module"; then
            rm -f "$grpc_module" "${grpc_module}i"
        fi
    done < <(find "$out/$PACKAGE" -name '*_pb2_grpc.py')
    # Every directory of the generated tree is a regular package; py.typed marks the
    # .pyi stubs as the package's types (PEP 561).
    find "$out/$PACKAGE" -type d -exec touch {}/__init__.py \;
    touch "$out/$PACKAGE/py.typed"
}

case "${1:-}" in
    "")
        generate "$PWD"
        echo "gen_proto: generated $PACKAGE/ from proto/"
        ;;
    --check)
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        generate "$tmp"
        if ! diff -r -x __pycache__ "$PACKAGE" "$tmp/$PACKAGE" >"$tmp/diff" 2>&1; then
            head -n 40 "$tmp/diff" >&2
            echo >&2
            echo "gen_proto: $PACKAGE/ is stale: it does not match proto/. Run \`make proto\` and commit the result." >&2
            exit 1
        fi
        echo "gen_proto: $PACKAGE/ is up to date with proto/"
        ;;
    *)
        echo "usage: $0 [--check]" >&2
        exit 2
        ;;
esac
