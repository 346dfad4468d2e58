"""Who may call what: one rule per RPC, in one table, denied unless listed.

Callers are identified by the TLS layer: no client certificate means the public (the
public port never asks for one); a client certificate, verified by the mutual-TLS
handshake against the region root and checked again here, names an admin or a
department. Rules that depend on the request — a department changes only its own
licences and seals — are the servicers' to enforce, using `current_caller`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import grpc
from cryptography import x509

from service.errors import permission_denied, unauthenticated
from service.guard import current_caller
from signer import pki


class Role(StrEnum):
    PUBLIC = "public"
    DEPARTMENT = "department"
    ADMIN = "admin"


@dataclass(frozen=True)
class Caller:
    role: Role
    subject_id: str  # department code, admin name, or "" for the public


PUBLIC_CALLER = Caller(Role.PUBLIC, "")
_MAX_KNOWN_CLIENTS = 4096

OPEN = frozenset(Role)
ADMIN = frozenset({Role.ADMIN})
DEPARTMENT = frozenset({Role.DEPARTMENT})
DEPARTMENT_OR_ADMIN = frozenset({Role.DEPARTMENT, Role.ADMIN})


def _rules(service: str, **methods: frozenset[Role]) -> dict[str, frozenset[Role]]:
    return {f"/{service}/{name}": roles for name, roles in methods.items()}


RULES: Mapping[str, frozenset[Role]] = {
    # Ledger reads and verification are open: anyone may check what the region did.
    **_rules(
        "licenceledger.ledger.v1.LedgerService",
        GetCheckpoint=OPEN,
        ListEntries=OPEN,
        GetInclusionProof=OPEN,
        GetConsistencyProof=OPEN,
        WatchEntries=OPEN,
    ),
    **_rules(
        "licenceledger.verification.v1.VerificationService",
        VerifyCredential=OPEN,
        VerifyQrCode=OPEN,
        VerifyPdf=OPEN,
    ),
    # The registry is public to read (who may issue what); only admins change it.
    **_rules(
        "licenceledger.registry.v1.RegistryService",
        RegisterDepartment=ADMIN,
        GetDepartment=OPEN,
        ListDepartments=OPEN,
        RotateDepartmentKey=ADMIN,
        RevokeDepartmentKey=ADMIN,
        RegisterLicenceType=ADMIN,
        GetLicenceType=OPEN,
        ListLicenceTypes=OPEN,
    ),
    # Licences carry personal data: the public verifies them, it does not browse them.
    **_rules(
        "licenceledger.licence.v1.LicenceService",
        IssueLicence=DEPARTMENT,
        AmendLicence=DEPARTMENT,
        RenewLicence=DEPARTMENT,
        ChangeLicenceStatus=DEPARTMENT,
        GetLicence=DEPARTMENT_OR_ADMIN,
        ListLicences=DEPARTMENT_OR_ADMIN,
    ),
    # Seals are registered by admins, used by their departments, looked up by anyone.
    **_rules(
        "licenceledger.seal.v1.SealService",
        RegisterSeal=ADMIN,
        SuspendSeal=ADMIN,
        ReinstateSeal=ADMIN,
        RevokeSeal=ADMIN,
        GetSeal=OPEN,
        ListSeals=OPEN,
        SealDocument=DEPARTMENT,
    ),
    **_rules(
        "licenceledger.federation.v1.FederationService",
        GetTrustList=OPEN,
        PublishTrustList=ADMIN,
        GetLicenceStatus=OPEN,
        SubmitCheckpoint=ADMIN,
        GetPeerCheckpoint=OPEN,
        ListSplitViewEvidence=OPEN,
    ),
    # Generic clients discover and probe the server without credentials.
    **_rules("grpc.health.v1.Health", Check=OPEN, Watch=OPEN),
    **_rules("grpc.reflection.v1alpha.ServerReflection", ServerReflectionInfo=OPEN),
    **_rules("grpc.reflection.v1.ServerReflection", ServerReflectionInfo=OPEN),
}


class RegionAuthorizer:
    """Maps a call's TLS peer to a `Caller` and applies `RULES`."""

    def __init__(self, ca_certificate: x509.Certificate) -> None:
        self._ca = ca_certificate
        # Certificate PEM -> (caller, valid from, valid until). Checking a certificate costs
        # an ECDSA verification (~0.3 ms), paid once per client rather than once per call;
        # the validity window is still checked on every call.
        self._known: dict[bytes, tuple[Caller, datetime, datetime]] = {}

    def identify(self, peer_certificate_pem: bytes | None) -> Caller:
        if peer_certificate_pem is None:
            return PUBLIC_CALLER
        now = datetime.now(UTC)
        known = self._known.get(peer_certificate_pem)
        if known is not None and known[1] <= now <= known[2]:
            return known[0]
        try:
            identity = pki.identify_client(peer_certificate_pem, self._ca, now=now)
        except pki.PkiError as exc:
            self._known.pop(peer_certificate_pem, None)
            raise unauthenticated(
                f"client certificate refused: {exc}", "BAD_CLIENT_CERTIFICATE"
            ) from exc
        caller = Caller(Role(identity.role.value), identity.subject_id)
        if len(self._known) >= _MAX_KNOWN_CLIENTS:
            self._known.clear()
        cert = pki.load_certificate(peer_certificate_pem)
        self._known[peer_certificate_pem] = (
            caller,
            cert.not_valid_before_utc,
            cert.not_valid_after_utc,
        )
        return caller

    def authorize(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> Caller:
        certificates = list(context.auth_context().get("x509_pem_cert", ()))
        caller = self.identify(certificates[0] if certificates else None)
        check(method, caller)
        return caller


def check(method: str, caller: Caller) -> None:
    """Raise unless `caller` may call `method`."""
    allowed = RULES.get(method)
    if allowed is None:
        raise permission_denied(f"{method} has no authorization rule", "NO_RULE")
    if caller.role in allowed:
        return
    if caller.role is Role.PUBLIC:
        raise unauthenticated(
            f"{method} needs a client certificate on the mutual-TLS port",
            "CLIENT_CERTIFICATE_REQUIRED",
        )
    raise permission_denied(f"{caller.role} callers may not call {method}", "ROLE_NOT_ALLOWED")


def request_caller() -> Caller:
    """The caller of the RPC being served, as the guard identified it."""
    caller = current_caller.get()
    if not isinstance(caller, Caller):  # the guard only ever sets authz.Caller
        raise TypeError(f"unexpected caller {caller!r}")
    return caller
