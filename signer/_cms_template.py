"""PAdES CMS signatures refilled from a template that pyHanko made.

For a B-B seal the CMS SignedData differs from one document to the next in two
places only: the message-digest attribute and the signature over the signed
attributes. Everything else (certificates, signer identifier, algorithms, the
content-type and signing-certificate-v2 attributes) depends on the seal alone. pyHanko
rebuilds all of it through asn1crypto for every signature, which costs about
7 ms of a seal's 11; a template costs a few microseconds and one raw signature.

A template is captured from a container pyHanko built itself and is refused
(`capture` returns None) unless its signed attributes are exactly those three, so
anything that would make the container depend on more than the digest (a
signing-time attribute, a timestamp token, unsigned attributes) keeps pyHanko's path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import cms, parser

# The attributes a PAdES B-B container carries (ETSI EN 319 122-1 §5.2): the digest
# is the only one that depends on the document.
_DOCUMENT_ONLY_BY_DIGEST = frozenset({"content_type", "message_digest", "signing_certificate_v2"})
_SEQUENCE, _SET, _OCTET_STRING, _EXPLICIT_0 = 0x30, 0x31, 0x04, 0xA0


def _tlv(tag: int, body: bytes) -> bytes:
    """One DER element: definite length, short or long form."""
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + body


def _elements(der: bytes) -> list[bytes]:
    """The encoded elements of a DER constructed value's contents, in order."""
    found, offset = [], 0
    while offset < len(der):
        _, _, _, header, contents, trailer = parser.parse(der[offset:], strict=False)
        element = header + contents + trailer
        found.append(element)
        offset += len(element)
    return found


def _contents(element: bytes) -> bytes:
    contents: bytes = parser.parse(element)[4]
    return contents


@dataclass(frozen=True)
class CmsTemplate:
    """A ContentInfo(SignedData) with one signer, split where a document's values go."""

    digest_algorithm: str
    digest_size: int
    signature_algorithm: str  # asn1crypto's name, e.g. "sha256_ecdsa", "ed25519"
    content_type: bytes  # the ContentInfo's OID element
    signed_data_head: bytes  # SignedData's elements before signerInfos
    signer_info_head: bytes  # version, sid, digestAlgorithm
    attributes_before: bytes  # the [0] signedAttrs element up to the digest's bytes
    attributes_after: bytes  # and after them
    signature_algorithm_element: bytes

    @classmethod
    def capture(cls, content_info: bytes, message_digest: bytes) -> CmsTemplate | None:
        """The template of `content_info`, which signs `message_digest`; None if the
        container depends on more than the digest."""
        loaded = cms.ContentInfo.load(content_info)
        if loaded["content_type"].native != "signed_data":
            return None
        signed_data = loaded["content"]
        if len(signed_data["signer_infos"]) != 1:
            return None
        signer = signed_data["signer_infos"][0]
        attributes = signer["signed_attrs"]
        types = [a["type"].native for a in attributes]
        if sorted(types) != sorted(_DOCUMENT_ONLY_BY_DIGEST) or signer["unsigned_attrs"]:
            return None
        digests = [
            a["values"][0].native for a in attributes if a["type"].native == "message_digest"
        ]
        if digests != [message_digest]:
            return None

        outer = _elements(_contents(content_info))  # contentType, [0] content
        if len(outer) != 2:
            return None
        data_elements = _elements(_contents(_contents(outer[1])))
        signer_infos = _elements(_contents(data_elements[-1]))
        if len(signer_infos) != 1:
            return None
        signer_elements = _elements(_contents(signer_infos[0]))
        # version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature
        if len(signer_elements) != 6 or signer_elements[3][0] != _EXPLICIT_0:
            return None
        encoded_attributes = signer_elements[3]
        if encoded_attributes.count(message_digest) != 1:
            return None
        before, after = encoded_attributes.split(message_digest)
        template = cls(
            digest_algorithm=signer["digest_algorithm"]["algorithm"].native,
            digest_size=len(message_digest),
            signature_algorithm=signer["signature_algorithm"]["algorithm"].native,
            content_type=outer[0],
            signed_data_head=b"".join(data_elements[:-1]),
            signer_info_head=b"".join(signer_elements[:3]),
            attributes_before=before,
            attributes_after=after,
            signature_algorithm_element=signer_elements[4],
        )
        # Refilled with its own digest and signature, the template must give back the
        # container byte for byte; anything it would not reproduce is not a template.
        signature = signer["signature"].native
        if template.fill(message_digest, lambda _: signature) != content_info:
            return None
        return template

    def fill(self, message_digest: bytes, sign: Callable[[bytes], bytes]) -> bytes:
        """The DER ContentInfo for a document with `message_digest`; `sign` makes the
        raw signature (in this template's signature algorithm) of the bytes it is given."""
        if len(message_digest) != self.digest_size:
            raise ValueError(f"a {self.digest_algorithm} digest has {self.digest_size} bytes")
        attributes = self.attributes_before + message_digest + self.attributes_after
        # Signed attributes are signed as a SET OF (RFC 5652 §5.4), stored as [0].
        signature = sign(bytes((_SET,)) + attributes[1:])
        signer_info = _tlv(
            _SEQUENCE,
            self.signer_info_head
            + attributes
            + self.signature_algorithm_element
            + _tlv(_OCTET_STRING, signature),
        )
        signed_data = _tlv(_SEQUENCE, self.signed_data_head + _tlv(_SET, signer_info))
        return _tlv(_SEQUENCE, self.content_type + _tlv(_EXPLICIT_0, signed_data))
