"""What issuance reads of the registry on every call, kept parsed between calls.

Every licence a department issues reads its department (to check the licence type
is authorised and choose the issuing key) and the licence type (to check the face
fields). Both change rarely, but parsing them and walking their protobuf messages
cost more than the checks themselves. `ParsedCache` still reads the stored bytes on
every call, so a rotated key or a changed type is seen by the very next issuance.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from licenceledger.registry.v1 import registry_pb2
from licenceledger.type.v1 import crypto_pb2
from service.errors import ServiceError
from service.region import index
from service.region.common import department_key_name
from signer.catalogue import FaceFieldSchema


@dataclass(frozen=True, slots=True)
class _IssuingKey:
    active: bool
    not_before: int  # seconds since the epoch
    not_after: int
    algorithm: int
    name: str  # in the key store


@dataclass(frozen=True, slots=True)
class Issuer:
    """A registered department as issuance needs it (the message is shared: read only)."""

    department: registry_pb2.Department
    authorized_types: frozenset[str]
    keys: tuple[_IssuingKey, ...]  # in registration order, so the newest is last

    @classmethod
    def parse(cls, data: bytes) -> Issuer:
        department = registry_pb2.Department.FromString(data)
        keys = tuple(
            _IssuingKey(
                key.status == registry_pb2.KEY_STATUS_ACTIVE,
                key.certificate.not_before.seconds,
                key.certificate.not_after.seconds,
                key.certificate.algorithm,
                department_key_name(department.department_code, key.certificate.key_id),
            )
            for key in department.keys
        )
        return cls(department, frozenset(department.authorized_licence_type_codes), keys)

    def signing_key(self, algorithm: int, now: float) -> str:
        """The key store name of the newest key usable at `now` (of `algorithm`, if set)."""
        for key in reversed(self.keys):
            if (
                key.active
                and key.not_before <= now < key.not_after
                and (not algorithm or key.algorithm == algorithm)
            ):
                return key.name
        raise ServiceError(
            f"department {self.department.department_code} has no active"
            f"{' ' + crypto_pb2.SignatureAlgorithm.Name(algorithm) if algorithm else ''}"  # type: ignore[arg-type]
            " issuing key",
            "DEPARTMENT_KEY_NOT_ACTIVE",
            grpc.StatusCode.FAILED_PRECONDITION,
        )


@dataclass(frozen=True, slots=True)
class CataloguedType:
    """A registered licence type with its face-field schema (shared: read only)."""

    licence_type: registry_pb2.LicenceType
    schema: FaceFieldSchema

    @classmethod
    def parse(cls, data: bytes) -> CataloguedType:
        licence_type = registry_pb2.LicenceType.FromString(data)
        return cls(licence_type, FaceFieldSchema(licence_type))


def issuers() -> index.ParsedCache[Issuer]:
    return index.ParsedCache(index.department_key, Issuer.parse)


def catalogued_types() -> index.ParsedCache[CataloguedType]:
    return index.ParsedCache(index.licence_type_key, CataloguedType.parse)
