"""Licences: issue, amend, renew, change status, look up — each change one ledger record.

The department's content is serialized once and signed as exact bytes (a DSSE
envelope), with a separately signed compact QR form bound to it by digest. A status
change is a signed statement of its own. Reads rebuild a licence from the ledger
entries its index state points at, so what a caller sees is what was signed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from licenceledger.index.v1 import index_pb2
from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.licence.v1 import licence_service_pb2 as pb
from licenceledger.record.v1 import record_pb2
from licenceledger.seal.v1 import seal_pb2
from licenceledger.type.v1 import crypto_pb2
from service.authz import Caller, Role
from service.errors import FieldViolation, ServiceError, invalid_argument, unimplemented
from service.region import index, issuing, paging
from service.region.common import (
    MAX_TEXT,
    RegionContext,
    actor,
    check_request_id,
    department_not_found,
    department_or_error,
    new_record,
    prior_request,
    request_digest,
    require,
    text_problem,
)
from service.region.in_flight import InFlight
from service.region.issuing import CataloguedType, Issuer
from service.region.sealed_documents import Sealing
from service.region.seals import Seals
from service.region.signing_worker import SigningUnavailable
from signer import catalogue, credentials, dsse, identifiers
from signer.identifiers import LicenceId

_SERVICE = "/licenceledger.licence.v1.LicenceService/"
MAX_NUMBER = 64
MAX_HOLDER_NAME = 128
MAX_OTHER_ID = 64

VALID, SUSPENDED, EXPIRED = (
    lpb.LICENCE_STATUS_VALID,
    lpb.LICENCE_STATUS_SUSPENDED,
    lpb.LICENCE_STATUS_EXPIRED,
)
# Which status may follow which. Withdrawn, cancelled, revoked and transferred out are
# final; a suspension can be lifted; an expired licence can be cancelled (or renewed).
TRANSITIONS: dict[int, frozenset[int]] = {
    VALID: frozenset(
        {
            SUSPENDED,
            lpb.LICENCE_STATUS_WITHDRAWN,
            lpb.LICENCE_STATUS_CANCELLED,
            EXPIRED,
            lpb.LICENCE_STATUS_TRANSFERRED_OUT,
            lpb.LICENCE_STATUS_REVOKED,
        }
    ),
    SUSPENDED: frozenset(
        {
            VALID,
            lpb.LICENCE_STATUS_WITHDRAWN,
            lpb.LICENCE_STATUS_CANCELLED,
            EXPIRED,
            lpb.LICENCE_STATUS_REVOKED,
        }
    ),
    EXPIRED: frozenset({lpb.LICENCE_STATUS_CANCELLED}),
}
AMENDABLE = frozenset({VALID, SUSPENDED})
RENEWABLE = frozenset({VALID, EXPIRED})
_AMEND_PATHS = frozenset({"holder", "face_fields", "licence_number"})


def _status_name(status: int) -> str:
    return lpb.LicenceStatus.Name(status)  # type: ignore[arg-type]


# -- request checks (no state) ---------------------------------------------------------


def check_holder(holder: lpb.Holder, field: str = "holder") -> None:
    problems: list[FieldViolation] = []
    if problem := text_problem(holder.name, MAX_HOLDER_NAME):
        problems.append(FieldViolation(f"{field}.name", problem))
    id_type = holder.id_type
    try:
        if id_type == lpb.HOLDER_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE:
            identifiers.validate_uscc(holder.id_number)
        elif id_type == lpb.HOLDER_ID_TYPE_RESIDENT_IDENTITY_NUMBER:
            identifiers.validate_resident_id(holder.id_number)
        elif id_type == lpb.HOLDER_ID_TYPE_OTHER:
            if problem := text_problem(holder.other_id_type, MAX_OTHER_ID):
                problems.append(FieldViolation(f"{field}.other_id_type", problem))
            if problem := text_problem(holder.id_number, MAX_OTHER_ID):
                problems.append(FieldViolation(f"{field}.id_number", problem))
            elif "/" in holder.id_number:
                problems.append(FieldViolation(f"{field}.id_number", "must not contain '/'"))
        else:
            problems.append(FieldViolation(f"{field}.id_type", "required"))
    except identifiers.IdentifierError as exc:
        raise invalid_argument(
            f"{field}.id_number: {exc}",
            *problems,
            FieldViolation(f"{field}.id_number", str(exc)),
            reason=f"{exc.kind}_INVALID",
        ) from exc
    if id_type != lpb.HOLDER_ID_TYPE_OTHER and holder.other_id_type:
        problems.append(FieldViolation(f"{field}.other_id_type", "only for HOLDER_ID_TYPE_OTHER"))
    require(problems, "the holder is invalid")


def check_number(number: str, field: str = "licence_number") -> None:
    if problem := text_problem(number, MAX_NUMBER):
        raise invalid_argument(f"{field} {problem}", FieldViolation(field, problem))


def check_face_fields(
    schema: catalogue.FaceFieldSchema, fields: Sequence[lpb.FaceField], field: str
) -> None:
    problems = schema.problems(fields, field)
    if problems:
        raise invalid_argument(
            "face fields do not match the licence type's schema",
            *(FieldViolation(p.field, p.description) for p in problems),
            reason="FACE_FIELDS_INVALID",
        )


def check_validity(valid_from: Timestamp, valid_until: Timestamp | None) -> None:
    if valid_until is not None and valid_until.ToNanoseconds() <= valid_from.ToNanoseconds():
        raise invalid_argument(
            "the validity period is empty or reversed",
            FieldViolation("valid_until", "must be after valid_from"),
            reason="VALIDITY_INVALID",
        )


def parse_licence_id(text: str, field: str = "licence_id") -> LicenceId:
    try:
        return LicenceId.parse(text)
    except identifiers.IdentifierError as exc:
        raise invalid_argument(
            str(exc), FieldViolation(field, str(exc)), reason="LICENCE_ID_INVALID"
        ) from exc


def _not_found(licence_id: str) -> ServiceError:
    return ServiceError(f"no licence {licence_id}", "LICENCE_NOT_FOUND", grpc.StatusCode.NOT_FOUND)


class Licences:
    def __init__(self, ctx: RegionContext) -> None:
        self._ctx = ctx
        self._seals = Seals(ctx)
        self._sealing = Sealing(ctx)
        self._worker = ctx.signing_worker
        self._in_flight = InFlight()
        self._issuers = issuing.issuers()
        self._types = issuing.catalogued_types()

    # -- helpers ----------------------------------------------------------------------

    def _issuer(self, caller: Caller, code: str = "") -> Issuer:
        """The calling department (which `code`, when given, must name)."""
        if code and code != caller.subject_id:
            raise ServiceError(
                f"department {caller.subject_id} cannot act for {code}",
                "NOT_OWNER",
                grpc.StatusCode.PERMISSION_DENIED,
            )
        issuer = self._issuers.get(self._ctx.ledger, caller.subject_id)
        if issuer is None:
            raise department_not_found(caller.subject_id)
        return issuer

    def _catalogued(self, type_code: str) -> CataloguedType:
        catalogued = self._types.get(self._ctx.ledger, type_code)
        if catalogued is None:
            raise ServiceError(
                f"no licence type {type_code!r}",
                "LICENCE_TYPE_NOT_FOUND",
                grpc.StatusCode.NOT_FOUND,
            )
        return catalogued

    def _signer(self, issuer: Issuer, algorithm: int) -> dsse.Signer:
        return self._ctx.signer(self._signing_key(issuer, algorithm))

    def _signing_key(self, issuer: Issuer, algorithm: int) -> str:
        """The key store name of the department's newest usable issuing key."""
        return issuer.signing_key(algorithm, self._ctx.clock().timestamp())

    def _state(self, lid: LicenceId) -> index_pb2.LicenceState:
        state = index.read_licence_state(self._ctx.ledger, lid.lineage)
        if state is None or all(v.licence_id != lid.text for v in state.versions):
            raise _not_found(lid.text)
        return state

    def _owned(self, caller: Caller, state: index_pb2.LicenceState, licence_id: str) -> None:
        if caller.role is Role.DEPARTMENT and state.department_code != caller.subject_id:
            raise ServiceError(
                f"licence {licence_id} belongs to department {state.department_code}",
                "NOT_OWNER",
                grpc.StatusCode.PERMISSION_DENIED,
            )

    def _current(self, state: index_pb2.LicenceState, licence_id: str) -> None:
        if state.current_licence_id != licence_id:
            raise ServiceError(
                f"licence {licence_id} was superseded by {state.current_licence_id}",
                "LICENCE_SUPERSEDED",
                grpc.StatusCode.FAILED_PRECONDITION,
                metadata={"current_licence_id": state.current_licence_id},
            )

    async def _settled(self, state: index_pb2.LicenceState) -> bool:
        """Wait if the licence's latest entry is still being written; True if it was."""
        last = max(
            [v.ledger_index for v in state.versions]
            + [c.ledger_index for c in state.status_history]
        )
        if last < self._ctx.ledger.size:
            return False
        await self._ctx.durable(last)
        return True

    def _content(
        self, state: index_pb2.LicenceState, licence_id: str
    ) -> tuple[lpb.Licence, record_pb2.LedgerRecord]:
        version = next(v for v in state.versions if v.licence_id == licence_id)
        record = self._ctx.entry_record(version.ledger_index)
        return index.licence_of(record.licence_version_issued.envelope), record

    def _credential(
        self,
        licence: lpb.Licence,
        record: record_pb2.LedgerRecord,
        ledger_index: int,
        algorithm: crypto_pb2.SignatureAlgorithm.ValueType,
        entry: bytes | None = None,
        *,
        into: lpb.LicenceCredential | None = None,
    ) -> lpb.LicenceCredential:
        """The credential (filled into `into`, an empty one inside a response, if given)."""
        change = record.licence_version_issued
        credential = lpb.LicenceCredential() if into is None else into
        credential.licence.CopyFrom(licence)
        credential.envelope = change.envelope
        credential.qr_payload = change.qr_payload
        credential.signature_algorithm = algorithm
        self._ctx.proof(ledger_index, record.recorded_at, entry, into=credential.proof)
        return credential

    def _sign_version(
        self,
        signer: dsse.Signer,
        licence: lpb.Licence,
        record: record_pb2.LedgerRecord,
        kind: int,
        reason: str,
    ) -> None:
        """Sign `licence` (and its QR form) into `record` as a LicenceVersionIssued."""
        payload = licence.SerializeToString(deterministic=True)
        signed = credentials.sign_credential(signer, payload, self._ctx.ledger.next_index, licence)
        _fill_version(record, kind, signed, reason, signer.keyid)

    async def _replayed_credential(
        self, caller: Caller, prior: int, want_pdf: bool
    ) -> lpb.LicenceCredential:
        await self._ctx.durable(prior)
        record = self._ctx.entry_record(prior)
        licence = index.licence_of(record.licence_version_issued.envelope)
        algorithm = _algorithm_of_key(self._ctx, record.licence_version_issued.key_id, licence)
        credential = self._credential(licence, record, prior, algorithm)
        if want_pdf:
            # The first attempt's PDF when it was made; otherwise (it failed after the
            # licence was recorded) it is made now.
            seal = self._licence_seal(licence.issuer.department_code, licence.licence_type_code)
            await self._add_pdf(caller, credential, seal)
        return credential

    def _licence_seal(self, department_code: str, type_code: str) -> seal_pb2.Seal:
        self._ctx.pool()  # refuse before recording anything when PDFs cannot be made
        return self._seals.licence_seal(department_code, type_code, self._ctx.now())

    async def _add_pdf(
        self, caller: Caller, credential: lpb.LicenceCredential, seal: seal_pb2.Seal
    ) -> None:
        licence = credential.licence
        licence_type = index.read_licence_type(self._ctx.ledger, licence.licence_type_code)
        assert licence_type is not None  # noqa: S101 — catalogue entries are never removed
        pdf, digest = await self._sealing.licence_pdf(
            caller, licence, licence_type, credential.qr_payload.decode(), seal
        )
        credential.pdf = pdf
        credential.pdf_digest.CopyFrom(digest)

    # -- issue ------------------------------------------------------------------------

    async def issue(
        self, caller: Caller, request: pb.IssueLicenceRequest
    ) -> pb.IssueLicenceResponse:
        check_request_id(request.request_id)
        if request.predecessor_licence_id:
            raise unimplemented("licence transfer between regions (predecessor_licence_id)")
        check_number(request.licence_number)
        check_holder(request.holder)
        digest = request_digest(_SERVICE + "IssueLicence", request)
        who = actor(caller)
        # Signed by the worker, else (or when its prediction fails) in process. With a
        # PDF the PDF workers keep both cores busy, and the event loop is not what
        # limits: signing there saves nothing and takes CPU from them.
        offload = self._worker is not None and self._worker.available and not request.want_pdf
        while True:
            response = await self._issue(caller, request, digest, who, offload=offload)
            if response is not None:
                return response
            offload = False

    async def _issue(
        self,
        caller: Caller,
        request: pb.IssueLicenceRequest,
        digest: bytes,
        who: str,
        *,
        offload: bool,
    ) -> pb.IssueLicenceResponse | None:
        """The issuance, or None when the worker could not sign it as predicted."""
        ctx = self._ctx
        type_code = request.licence_type_code
        held = (("request", who, request.request_id), ("number", type_code, request.licence_number))
        while True:
            await ctx.ledger.wait_for_room()
            busy = self._in_flight.conflict(*held)
            if busy is None:
                break
            await busy
        # Synchronous from here to submit, or to the signing worker (see `in_flight`).
        prior = prior_request(ctx, who, request.request_id, digest)
        if prior is not None:
            return pb.IssueLicenceResponse(
                credential=await self._replayed_credential(caller, prior, request.want_pdf)
            )
        issuer = self._issuer(caller, request.department_code)
        department = issuer.department
        if type_code not in issuer.authorized_types:
            raise ServiceError(
                f"department {department.department_code} is not authorised for licence type "
                f"{type_code!r}",
                "LICENCE_TYPE_NOT_AUTHORISED",
                grpc.StatusCode.PERMISSION_DENIED,
            )
        catalogued = self._catalogued(type_code)
        licence_type = catalogued.licence_type
        check_face_fields(catalogued.schema, request.face_fields, "face_fields")
        seal = (
            self._licence_seal(department.department_code, type_code) if request.want_pdf else None
        )
        record = new_record(ctx, who, request.request_id, digest)
        valid_from = request.valid_from if request.HasField("valid_from") else record.recorded_at
        valid_until = request.valid_until if request.HasField("valid_until") else None
        check_validity(valid_from, valid_until)
        if index.number_taken(ctx.ledger, type_code, request.licence_number):
            raise ServiceError(
                f"licence number {request.licence_number!r} was already issued "
                f"for type {type_code}",
                "LICENCE_NUMBER_ALREADY_ISSUED",
                grpc.StatusCode.ALREADY_EXISTS,
            )
        key_name = self._signing_key(issuer, request.signature_algorithm)
        signer = self._ctx.signer(key_name)
        serial_key = (type_code, department.department_code)
        ticket = self._in_flight.enter(ctx.ledger, held, serial_key) if offload else None
        recorded = False
        try:
            at = ticket.ledger_index if ticket else ctx.ledger.next_index
            serial = index.last_serial(ctx.ledger, *serial_key) + 1
            lid = LicenceId(
                type_code,
                department.department_code,
                serial + (ticket.serials_ahead if ticket else 0),
                1,
            )
            licence = lpb.Licence(
                licence_id=lid.text,
                licence_type_code=type_code,
                licence_type_name=licence_type.name,
                licence_number=request.licence_number,
                holder=request.holder,
                issuer=lpb.Issuer(
                    department_code=department.department_code,
                    department_name=department.name,
                    region_code=department.region_code,
                ),
                issued_at=record.recorded_at,
                valid_from=valid_from,
                face_fields=request.face_fields,
                version=1,
                status=VALID,
            )
            if valid_until is not None:
                licence.valid_until.CopyFrom(valid_until)
            payload = licence.SerializeToString(deterministic=True)
            if ticket is None:
                signed = credentials.sign_credential(signer, payload, at, licence)
            else:
                assert self._worker is not None  # noqa: S101 — offload implies a worker
                try:
                    signed = await self._worker.sign(key_name, payload, at)
                except SigningUnavailable:
                    return None
                if not self._in_flight.holds(ticket, ctx.ledger) or not ctx.ledger.has_room:
                    return None
            _fill_version(record, lpb.LICENCE_VERSION_KIND_ISSUED, signed, "", signer.keyid)
            entry = record.SerializeToString(deterministic=True)
            submission = ctx.ledger.submit(
                [entry], index.derive(record, at, ctx.ledger, licence=licence, licence_id=lid)
            )
            recorded = True
        finally:
            if ticket is not None:
                self._in_flight.leave(ticket, recorded=recorded)
        at = await submission.done
        response = pb.IssueLicenceResponse()
        credential = self._credential(
            licence, record, at, signer.algorithm, entry, into=response.credential
        )
        if seal is not None:
            await self._add_pdf(caller, credential, seal)
        return response

    # -- amend and renew ------------------------------------------------------------------

    async def _new_version(
        self,
        caller: Caller,
        method: str,
        request: pb.AmendLicenceRequest | pb.RenewLicenceRequest,
        allowed: frozenset[int],
        make: NewVersion,
    ) -> lpb.LicenceCredential:
        ctx = self._ctx
        check_request_id(request.request_id)
        if problem := text_problem(request.reason, MAX_TEXT):
            raise invalid_argument(f"reason {problem}", FieldViolation("reason", problem))
        lid = parse_licence_id(request.licence_id)
        digest = request_digest(_SERVICE + method, request)
        who = actor(caller)
        while True:
            await ctx.ledger.wait_for_room()
            prior = prior_request(ctx, who, request.request_id, digest)
            if prior is not None:
                return await self._replayed_credential(caller, prior, request.want_pdf)
            state = self._state(lid)
            self._owned(caller, state, lid.text)
            if not await self._settled(state):
                break
        # Synchronous from here to submit.
        self._current(state, lid.text)
        current = state.versions[-1]
        if request.expected_version and request.expected_version != current.version:
            raise ServiceError(
                f"licence is at version {current.version}, not {request.expected_version}",
                "VERSION_CONFLICT",
                grpc.StatusCode.ABORTED,
                metadata={"current_version": str(current.version)},
            )
        if state.status not in allowed:
            raise ServiceError(
                f"a licence in status {_status_name(state.status)} cannot get a new version "
                f"this way",
                "STATUS_TRANSITION_NOT_ALLOWED",
                grpc.StatusCode.FAILED_PRECONDITION,
            )
        if current.version >= identifiers.MAX_VERSION:
            raise ServiceError(
                "the licence has reached the last version number",
                "VERSION_LIMIT",
                grpc.StatusCode.FAILED_PRECONDITION,
            )
        issuer = self._issuer(caller)
        licence, _ = self._content(state, lid.text)
        record = new_record(ctx, who, request.request_id, digest)
        kind = make(licence, state, record)
        licence.licence_id = lid.with_version(current.version + 1).text
        licence.version = current.version + 1
        licence.predecessor_licence_id = lid.text
        licence.issued_at.CopyFrom(record.recorded_at)
        licence.issuer.department_name = issuer.department.name
        signer = self._signer(issuer, request.signature_algorithm)
        seal = (
            self._licence_seal(issuer.department.department_code, licence.licence_type_code)
            if request.want_pdf
            else None
        )
        self._sign_version(signer, licence, record, kind, request.reason)
        at = await ctx.record(
            record, index.derive(record, ctx.ledger.next_index, ctx.ledger, licence=licence)
        )
        credential = self._credential(licence, record, at, signer.algorithm)
        if seal is not None:
            await self._add_pdf(caller, credential, seal)
        return credential

    async def amend(
        self, caller: Caller, request: pb.AmendLicenceRequest
    ) -> pb.AmendLicenceResponse:
        paths = list(request.update_mask.paths)
        if not paths:
            raise invalid_argument(
                "name the amended fields", FieldViolation("update_mask", "must not be empty")
            )
        unknown = [p for p in paths if p not in _AMEND_PATHS]
        if unknown:
            raise invalid_argument(
                f"cannot amend {', '.join(unknown)}",
                FieldViolation("update_mask", f"paths must be among {sorted(_AMEND_PATHS)}"),
            )
        amendment = request.amendment
        if "holder" in paths:
            check_holder(amendment.holder, "amendment.holder")
        if "licence_number" in paths:
            check_number(amendment.licence_number, "amendment.licence_number")

        def make(
            licence: lpb.Licence, state: index_pb2.LicenceState, record: record_pb2.LedgerRecord
        ) -> int:
            if "holder" in paths:
                licence.holder.CopyFrom(amendment.holder)
            if "face_fields" in paths:
                del licence.face_fields[:]
                licence.face_fields.extend(amendment.face_fields)
                schema = self._catalogued(licence.licence_type_code).schema
                check_face_fields(schema, licence.face_fields, "amendment.face_fields")
            if "licence_number" in paths and amendment.licence_number != licence.licence_number:
                if index.number_taken(
                    self._ctx.ledger, licence.licence_type_code, amendment.licence_number
                ):
                    raise ServiceError(
                        f"licence number {amendment.licence_number!r} is already issued",
                        "LICENCE_NUMBER_ALREADY_ISSUED",
                        grpc.StatusCode.ALREADY_EXISTS,
                    )
                licence.licence_number = amendment.licence_number
            return lpb.LICENCE_VERSION_KIND_AMENDED

        credential = await self._new_version(caller, "AmendLicence", request, AMENDABLE, make)
        return pb.AmendLicenceResponse(credential=credential)

    async def renew(
        self, caller: Caller, request: pb.RenewLicenceRequest
    ) -> pb.RenewLicenceResponse:
        def make(
            licence: lpb.Licence, state: index_pb2.LicenceState, record: record_pb2.LedgerRecord
        ) -> int:
            if request.HasField("valid_from"):
                start = request.valid_from
            elif licence.HasField("valid_until"):
                start = licence.valid_until
            else:
                start = record.recorded_at
            until = request.valid_until if request.HasField("valid_until") else None
            check_validity(start, until)
            licence.valid_from.CopyFrom(start)
            if until is None:
                licence.ClearField("valid_until")
            else:
                licence.valid_until.CopyFrom(until)
            licence.status = VALID
            return lpb.LICENCE_VERSION_KIND_RENEWED

        credential = await self._new_version(caller, "RenewLicence", request, RENEWABLE, make)
        return pb.RenewLicenceResponse(credential=credential)

    # -- status -------------------------------------------------------------------------

    async def change_status(
        self, caller: Caller, request: pb.ChangeLicenceStatusRequest
    ) -> pb.ChangeLicenceStatusResponse:
        ctx = self._ctx
        check_request_id(request.request_id)
        lid = parse_licence_id(request.licence_id)
        target = request.status
        problems: list[FieldViolation] = []
        if target not in lpb.LicenceStatus.values() or target == lpb.LICENCE_STATUS_UNSPECIFIED:
            problems.append(FieldViolation("status", "a LicenceStatus (01 … 07)"))
        if problem := text_problem(request.reason, MAX_TEXT):
            problems.append(FieldViolation("reason", problem))
        if request.HasField("suspended_until") and target != SUSPENDED:
            problems.append(FieldViolation("suspended_until", "only for a suspension"))
        if request.successor_licence_id:
            if target != lpb.LICENCE_STATUS_TRANSFERRED_OUT:
                problems.append(FieldViolation("successor_licence_id", "only for a transfer out"))
            else:
                parse_licence_id(request.successor_licence_id, "successor_licence_id")
        require(problems, "the status change is invalid")
        digest = request_digest(_SERVICE + "ChangeLicenceStatus", request)
        who = actor(caller)
        while True:
            await ctx.ledger.wait_for_room()
            prior = prior_request(ctx, who, request.request_id, digest)
            if prior is not None:
                return await self._replayed_status(prior)
            state = self._state(lid)
            self._owned(caller, state, lid.text)
            if not await self._settled(state):
                break
        # Synchronous from here to submit.
        self._current(state, lid.text)
        if target not in TRANSITIONS.get(state.status, frozenset()):
            raise ServiceError(
                f"status {_status_name(state.status)} cannot change to {_status_name(target)}",
                "STATUS_TRANSITION_NOT_ALLOWED",
                grpc.StatusCode.FAILED_PRECONDITION,
                metadata={"status": _status_name(state.status)},
            )
        record = new_record(ctx, who, request.request_id, digest)
        if request.HasField("suspended_until") and (
            request.suspended_until.ToNanoseconds() <= record.recorded_at.ToNanoseconds()
        ):
            raise invalid_argument(
                "the suspension would already be over",
                FieldViolation("suspended_until", "must be in the future"),
            )
        statement = lpb.StatusStatement(
            licence_id=lid.text,
            previous_status=state.status,
            status=target,
            reason=request.reason,
            changed_at=record.recorded_at,
            successor_licence_id=request.successor_licence_id,
            department_code=state.department_code,
        )
        if request.HasField("suspended_until"):
            statement.suspended_until.CopyFrom(request.suspended_until)
        signer = self._signer(self._issuer(caller), 0)
        change = record.licence_status_changed
        change.envelope = signer.envelope(
            dsse.STATUS_PAYLOAD_TYPE, statement.SerializeToString(deterministic=True)
        )
        change.key_id = signer.keyid
        at = await ctx.record(record, index.derive(record, ctx.ledger.next_index, ctx.ledger))
        return self._status_response(at, record)

    async def _replayed_status(self, prior: int) -> pb.ChangeLicenceStatusResponse:
        await self._ctx.durable(prior)
        return self._status_response(prior, self._ctx.entry_record(prior))

    def _status_response(
        self, at: int, record: record_pb2.LedgerRecord
    ) -> pb.ChangeLicenceStatusResponse:
        statement = index.statement_of(record.licence_status_changed.envelope)
        lid = LicenceId.parse(statement.licence_id)
        state = self._state(lid)
        licence, _ = self._content(state, lid.text)
        licence.status = statement.status
        change = next(c for c in state.status_history if c.ledger_index == at)
        return pb.ChangeLicenceStatusResponse(
            licence=licence, change=change, proof=self._ctx.proof(at, record.recorded_at)
        )

    # -- reading ------------------------------------------------------------------------

    def get(self, caller: Caller, request: pb.GetLicenceRequest) -> pb.GetLicenceResponse:
        lid = parse_licence_id(request.licence_id)
        state = self._state(lid)
        self._owned(caller, state, lid.text)
        version = next(v for v in state.versions if v.licence_id == lid.text)
        if version.ledger_index >= self._ctx.ledger.size:
            raise _not_found(lid.text)  # still being written: not there yet for readers
        licence, record = self._content(state, lid.text)
        licence.status = state.status
        response = pb.GetLicenceResponse(
            licence=licence,
            current_licence_id=state.current_licence_id,
            versions=state.versions,
            status_history=[
                c for c in state.status_history if c.ledger_index < self._ctx.ledger.size
            ],
            successor_licence_id=state.successor_licence_id,
        )
        if request.include_credential:
            signed = index.licence_of(record.licence_version_issued.envelope)
            algorithm = _algorithm_of_key(self._ctx, record.licence_version_issued.key_id, signed)
            response.credential.CopyFrom(
                self._credential(signed, record, version.ledger_index, algorithm)
            )
        return response

    def list(self, caller: Caller, request: pb.ListLicencesRequest) -> pb.ListLicencesResponse:
        department_code = request.department_code
        if caller.role is Role.DEPARTMENT:
            if department_code and department_code != caller.subject_id:
                raise ServiceError(
                    "a department lists only its own licences",
                    "NOT_OWNER",
                    grpc.StatusCode.PERMISSION_DENIED,
                )
            department_code = caller.subject_id
        if request.holder_id_number:
            prefix = index.holder_prefix(request.holder_id_number)
        elif department_code:
            prefix = index.issuer_prefix(department_code)
        else:
            prefix = index.ALL_PREFIX
        size = self._ctx.ledger.size

        def accept(key: bytes, _: bytes) -> lpb.Licence | None:
            lineage = key[len(prefix) + 8 :].decode()
            state = index.read_licence_state(self._ctx.ledger, lineage)
            if state is None or state.versions[0].ledger_index >= size:
                return None
            if (
                (request.holder_id_number and state.holder_id_number != request.holder_id_number)
                or (department_code and state.department_code != department_code)
                or (
                    request.licence_type_code
                    and state.licence_type_code != request.licence_type_code
                )
                or (request.licence_number and state.licence_number != request.licence_number)
                or (request.status and state.status != request.status)
            ):
                return None
            current = next(v for v in reversed(state.versions) if v.ledger_index < size)
            content, _record = self._content(state, current.licence_id)
            content.status = state.status
            return content

        query = "|".join(
            (
                "licences",
                request.holder_id_number,
                department_code,
                request.licence_type_code,
                request.licence_number,
                str(request.status),
            )
        )
        licences, token = paging.page(
            self._ctx.ledger,
            prefix,
            query=query,
            token=request.page_token,
            size=paging.page_size(request.page_size),
            accept=accept,
        )
        return pb.ListLicencesResponse(licences=licences, next_page_token=token)


class NewVersion(Protocol):
    def __call__(
        self, licence: lpb.Licence, state: index_pb2.LicenceState, record: record_pb2.LedgerRecord
    ) -> int: ...


def _algorithm_of_key(
    ctx: RegionContext, key_id: str, licence: lpb.Licence
) -> crypto_pb2.SignatureAlgorithm.ValueType:
    department = department_or_error(ctx, licence.issuer.department_code)
    for key in department.keys:
        if key.certificate.key_id == key_id:
            return key.certificate.algorithm
    return crypto_pb2.SIGNATURE_ALGORITHM_UNSPECIFIED


def _fill_version(
    record: record_pb2.LedgerRecord,
    kind: int,
    signed: credentials.SignedCredential,
    reason: str,
    key_id: str,
) -> None:
    change = record.licence_version_issued
    change.kind = kind  # type: ignore[assignment]
    change.envelope = signed.envelope
    change.qr_payload = signed.qr_payload
    change.reason = reason
    change.key_id = key_id
