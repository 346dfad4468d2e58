"""LedgerService: the ledger's reads over gRPC (translation only; `ledger` does the work)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from ledger import Ledger
from ledger.errors import InvalidRequestError
from ledger.hashing import HASH_SIZE, Leaf
from licenceledger.ledger.v1 import ledger_service_pb2 as pb
from licenceledger.ledger.v1 import ledger_service_pb2_grpc as pb_grpc
from service.errors import FieldViolation, ServiceError, invalid_argument, not_found
from verifier.ledger_checks import checkpoint_message

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_PAGE = 100
WATCH_CHUNK = 256


def entry_message(leaf: Leaf) -> pb.Entry:
    return pb.Entry(
        index=leaf.index, prev_leaf_hash=leaf.prev_hash, entry=leaf.entry, leaf_hash=leaf.hash
    )


def _beyond(field: str, value: int, size: int) -> ServiceError:
    return invalid_argument(
        f"{field} {value} is beyond the ledger's size {size}",
        FieldViolation(field, f"must be at most {size}"),
        reason="BEYOND_TREE_SIZE",
    )


class LedgerServicer(pb_grpc.LedgerServiceServicer):
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def GetCheckpoint(
        self, request: pb.GetCheckpointRequest, context: Context
    ) -> pb.GetCheckpointResponse:
        return pb.GetCheckpointResponse(
            checkpoint=checkpoint_message(self._ledger.checkpoint),
            verifier_key=self._ledger.verifier.vkey(),
        )

    async def ListEntries(
        self, request: pb.ListEntriesRequest, context: Context
    ) -> pb.ListEntriesResponse:
        size, limit = self._ledger.size, self._ledger.max_read_range
        count = request.count or DEFAULT_PAGE
        if count > limit:
            raise invalid_argument(
                f"count {count} exceeds {limit}", FieldViolation("count", f"at most {limit}")
            )
        if request.start > size:
            raise _beyond("start", request.start, size)
        end = min(request.start + count, size)
        leaves = self._ledger.leaves(request.start, end) if end > request.start else []
        return pb.ListEntriesResponse(
            entries=[entry_message(leaf) for leaf in leaves], tree_size=size
        )

    async def GetInclusionProof(
        self, request: pb.GetInclusionProofRequest, context: Context
    ) -> pb.GetInclusionProofResponse:
        signed = self._ledger.checkpoint  # one snapshot for the whole answer
        size = signed.checkpoint.size
        tree_size = request.tree_size or size
        if tree_size > size:
            raise _beyond("tree_size", tree_size, size)
        which = request.WhichOneof("leaf")
        if which is None:
            raise invalid_argument(
                "name the leaf by index or by hash",
                FieldViolation("leaf", "set leaf_index or leaf_hash"),
            )
        if which == "leaf_hash":
            if len(request.leaf_hash) != HASH_SIZE:
                raise invalid_argument(
                    "leaf_hash is not a SHA-256 hash",
                    FieldViolation("leaf_hash", f"must be {HASH_SIZE} bytes"),
                )
            try:
                index = self._ledger.find_leaf(request.leaf_hash)
            except InvalidRequestError:
                index = tree_size
            if index >= tree_size:
                raise not_found("no leaf with this hash in the tree", "LEAF_NOT_FOUND")
        else:
            index = request.leaf_index
            if index >= tree_size:
                raise invalid_argument(
                    f"leaf_index {index} is not below tree size {tree_size}",
                    FieldViolation("leaf_index", f"must be below {tree_size}"),
                    reason="BEYOND_TREE_SIZE",
                )
        proof = self._ledger.inclusion_proof(index, tree_size)
        response = pb.GetInclusionProofResponse(
            leaf_index=index,
            tree_size=tree_size,
            path=list(proof.path),
            leaf_hash=self._ledger.leaf(index).hash,
        )
        if tree_size == size:
            response.checkpoint.CopyFrom(checkpoint_message(signed))
            response.tlog_proof = self._ledger.proof_bundle(index).to_text()
        return response

    async def GetConsistencyProof(
        self, request: pb.GetConsistencyProofRequest, context: Context
    ) -> pb.GetConsistencyProofResponse:
        signed = self._ledger.checkpoint
        size = signed.checkpoint.size
        new_size = request.new_size or size
        if new_size > size:
            raise _beyond("new_size", new_size, size)
        if not 1 <= request.old_size <= new_size:
            raise invalid_argument(
                f"old_size {request.old_size} must be between 1 and {new_size}",
                FieldViolation("old_size", f"must be between 1 and {new_size}"),
            )
        proof = self._ledger.consistency_proof(request.old_size, new_size)
        response = pb.GetConsistencyProofResponse(
            old_size=request.old_size, new_size=new_size, path=list(proof.path)
        )
        if new_size == size:
            response.checkpoint.CopyFrom(checkpoint_message(signed))
        return response

    async def WatchEntries(
        self, request: pb.WatchEntriesRequest, context: Context
    ) -> AsyncIterator[pb.WatchEntriesResponse]:
        ledger = self._ledger
        if request.start_index > ledger.size:
            raise _beyond("start_index", request.start_index, ledger.size)
        position = request.start_index
        while not ledger.closed:
            signed = ledger.checkpoint
            size = signed.checkpoint.size
            while position < size:
                end = min(position + WATCH_CHUNK, size)
                if not request.checkpoints_only:
                    leaves = ledger.leaves(position, end)
                    yield pb.WatchEntriesResponse(entries=[entry_message(x) for x in leaves])
                position = end
            # Caught up: the checkpoint lets the follower verify what it received.
            yield pb.WatchEntriesResponse(checkpoint=checkpoint_message(signed))
            await ledger.wait_for_growth(size)
