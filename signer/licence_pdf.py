"""The printable licence: one A4 page drawn with reportlab, with room left for the seal.

`render_licence_pdf` lays out what a person checks on a paper licence: the type name as
title, the licence number and GB/T 36904 identifier, the holder, the type's face fields in
their signed order, validity, version, the issuing department and date, and the signed QR
payload as a QR code. It signs nothing: the department's seal is applied afterwards as a
PAdES signature whose visible appearance is the seal image, drawn in `SEAL_BOX` over the
issuer's name and the date as a stamp would be.

Text uses reportlab's built-in STSong-Light CID font, so no font file is embedded and
viewers substitute an installed CJK font. That font cannot show characters outside the
BMP (rare extension-B characters in names); those would need an embedded TrueType font.

The layout is fixed, with the QR code and the seal at the foot of the page, so that
`SEAL_BOX` can be a constant. The body shrinks its type size to fit, and content that does
not fit even at the smallest size is refused rather than cut off.

Rendering runs for every issuance, so it avoids reportlab's pure-Python hot spots: the
page stream is left uncompressed (compressing means ASCII85-encoding it in Python, which
costs more than the whole layout), and the QR code is a hex-encoded inline image rather
than thousands of formatted vector operators.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import zxingcpp
from google.protobuf.timestamp_pb2 import Timestamp
from PIL import Image
from reportlab.lib.colors import HexColor
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.registry.v1 import registry_pb2

_FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(_FONT))


@dataclass(frozen=True)
class SealBox:
    """A rectangle on a page, in PDF points from the page's lower-left corner."""

    page: int  # 1-based
    x: float
    y: float
    width: float
    height: float


_PAGE_W, _PAGE_H = A4
_MARGIN = 22 * mm  # the text column's edges; the frame lies outside them
_COLUMN = _PAGE_W - 2 * _MARGIN
# Including the 4-module quiet zone, so a version-25 code still has 0.36 mm modules:
# readable by phone cameras off a 300 dpi print.
_QR_SIZE = 46 * mm
_QR_X, _QR_Y = _MARGIN, _MARGIN + 24  # room below for the caption
_BODY_BOTTOM = _QR_Y + _QR_SIZE + 14
_ISSUER_W = 250  # the issuer block, centred under the seal
_ISSUER_CX = _PAGE_W - _MARGIN - _ISSUER_W / 2
_SEAL = 42 * mm

# Where the issuer's seal goes: a 42 mm square over the issuer's name and the issue
# date, level with the QR code and clear of it.
SEAL_BOX = SealBox(
    page=1,
    x=_ISSUER_CX - _SEAL / 2,
    y=_QR_Y + (_QR_SIZE - _SEAL) / 2,
    width=_SEAL,
    height=_SEAL,
)

_BODY_SIZES = (12.0, 11.0, 10.0, 9.0, 8.0, 7.0)
_LEADING = 1.4  # times the type size
_ROW_GAP = 0.45  # extra space between rows, times the type size
_INK = HexColor("#1a1a1a")
_FRAME = HexColor("#8b5a2b")
_CST = timezone(timedelta(hours=8))
# The Chinese line-breaking rule (禁则): these never begin a line.
_NO_LINE_START = frozenset("，。、；：？！）》」』】〕〉”’,.;:?!)]}%")
_HOLDER_LABELS = {
    lpb.HOLDER_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE: ("名称", "统一社会信用代码"),
    lpb.HOLDER_ID_TYPE_RESIDENT_IDENTITY_NUMBER: ("姓名", "公民身份号码"),
}


@functools.lru_cache(maxsize=8192)
def _char_width(char: str) -> float:
    """Advance width of one character at 1 pt; CID fonts have no kerning, so widths add."""
    return pdfmetrics.stringWidth(char, _FONT, 1)


def _width(text: str, size: float) -> float:
    return sum(map(_char_width, text)) * size


def _wrap(text: str, size: float, width: float) -> list[str]:
    """Break text into lines no wider than `width`, between any two characters.

    Chinese has no spaces to break at, so lines are filled by measured width; closing
    punctuation is carried over with the character before it rather than open a line.
    """
    lines: list[str] = []
    for para in text.split("\n"):
        if _width(para, size) <= width:
            lines.append(para)
            continue
        start, used = 0, 0.0
        for i, char in enumerate(para):
            advance = _char_width(char) * size
            if used + advance > width and i > start:
                cut = i
                while cut - 1 > start and para[cut] in _NO_LINE_START:
                    cut -= 1
                lines.append(para[start:cut])
                start, used = cut, _width(para[cut:i], size)
            used += advance
        lines.append(para[start:])
    return lines


def _date(ts: Timestamp, *, exclusive_end: bool = False) -> str:
    seconds = ts.seconds
    if exclusive_end and ts.nanos == 0:
        seconds -= 1  # valid until midnight means valid through the day before
    day = datetime.fromtimestamp(seconds, _CST)
    return f"{day.year:04d}年{day.month:02d}月{day.day:02d}日"


def _rows(
    licence: lpb.Licence, licence_type: registry_pb2.LicenceType | None
) -> Iterator[tuple[str, str]]:
    """The body's (label, value) rows, in printing order."""
    holder = licence.holder
    name_label, id_label = _HOLDER_LABELS.get(holder.id_type, ("持证人", "证件号码"))
    if holder.id_type == lpb.HOLDER_ID_TYPE_OTHER and holder.other_id_type:
        id_label = holder.other_id_type
    yield name_label, holder.name
    yield id_label, holder.id_number
    labels = {spec.name: spec.label_zh for spec in licence_type.face_fields} if licence_type else {}
    for field in licence.face_fields:
        yield labels.get(field.name) or field.name, field.value
    if licence.HasField("valid_until"):
        until = _date(licence.valid_until, exclusive_end=True)
    else:
        until = "长期"
    yield "有效期", f"{_date(licence.valid_from)} 至 {until}"
    if licence.version:
        yield "证照版本", f"第 {licence.version} 版"
    if licence.version > 1 and licence.predecessor_licence_id:
        yield "前序证照", licence.predecessor_licence_id


def _layout_body(
    rows: list[tuple[str, str]], height: float
) -> tuple[float, float, list[tuple[list[str], list[str]]]]:
    """The largest type size at which all rows fit: (size, label width, wrapped rows)."""
    for size in _BODY_SIZES:
        label_w = min(max(_width(label + "：", size) for label, _ in rows), _COLUMN * 0.35)
        value_w = _COLUMN - label_w - size / 2
        wrapped = [
            (_wrap(label + "：", size, label_w), _wrap(value, size, value_w))
            for label, value in rows
        ]
        lines = sum(max(len(label), len(value)) for label, value in wrapped)
        if (lines * _LEADING + len(rows) * _ROW_GAP) * size <= height:
            return size, label_w, wrapped
    raise ValueError("the licence content does not fit on one page")


def _draw_centred(c: canvas.Canvas, text: str, size: float, y: float) -> float:
    """Draw text centred on the page from baseline y, wrapped; returns the next baseline."""
    c.setFont(_FONT, size)
    for line in _wrap(text, size, _COLUMN):
        c.drawCentredString(_PAGE_W / 2, y, line)
        y -= size * 1.35
    return y


def _draw_qr(c: canvas.Canvas, payload: str) -> None:
    barcode = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    # One image pixel per module, 1 bit deep (white is 1 in PIL's mode "1" and in
    # DeviceGray alike), drawn without interpolation: crisp at any zoom and in print.
    matrix = Image.fromarray(barcode.to_image(scale=1, add_quiet_zones=True))
    cols, rows = matrix.size
    bits = matrix.convert("1", dither=Image.Dither.NONE).tobytes()
    c.addLiteral(
        f"q {_QR_SIZE:.3f} 0 0 {_QR_SIZE:.3f} {_QR_X:.3f} {_QR_Y:.3f} cm\n"
        f"BI /W {cols} /H {rows} /BPC 1 /CS /G /I false /F /AHx ID\n{bits.hex()}>\nEI Q"
    )


def render_licence_pdf(
    licence: lpb.Licence,
    qr_payload: str,
    *,
    licence_type: registry_pb2.LicenceType | None = None,
    region_name: str = "",
) -> bytes:
    """The licence as a one-page A4 PDF, with `SEAL_BOX` left free for the issuer's seal.

    Face-field labels come from `licence_type` when given; otherwise the field names
    show. Raises ValueError if the content cannot fit on the page.
    """
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=True, pageCompression=0)
    issuer = licence.issuer
    c.setTitle(f"{licence.licence_type_name} {licence.licence_number}")
    c.setSubject(f"证照标识 {licence.licence_id}")
    c.setAuthor(issuer.department_name)
    c.setCreator("licence-ledger")

    c.setStrokeColor(_FRAME)
    c.setLineWidth(2.4)
    c.rect(10 * mm, 10 * mm, _PAGE_W - 20 * mm, _PAGE_H - 20 * mm)
    c.setLineWidth(0.6)
    c.rect(12 * mm, 12 * mm, _PAGE_W - 24 * mm, _PAGE_H - 24 * mm)

    c.setFillColor(_INK)
    y = _PAGE_H - _MARGIN - 10
    y = _draw_centred(c, region_name, 12, y) - 14 if region_name else y - 16
    title = licence.licence_type_name
    title_size = min(32.0, 0.92 * _COLUMN / max(_width(title, 1), 1))
    c.setFont(_FONT, title_size)
    c.drawCentredString(_PAGE_W / 2, y - title_size, title)
    y -= title_size * 1.55
    if licence_type and licence_type.name_en:
        y = _draw_centred(c, licence_type.name_en, 11, y)
    y = _draw_centred(c, f"证照编号：{licence.licence_number}", 11, y - 8)
    y = _draw_centred(c, f"证照标识：{licence.licence_id}", 8.5, y)
    c.line(_MARGIN, y + 1, _PAGE_W - _MARGIN, y + 1)

    top = y - 14
    size, label_w, wrapped = _layout_body(list(_rows(licence, licence_type)), top - _BODY_BOTTOM)
    # One text object for the body: each column of a row is positioned once and its lines
    # follow by the leading, as reportlab's per-string overhead adds up over the rows.
    body = c.beginText()
    body.setFont(_FONT, size, size * _LEADING)
    y = top - size
    for label_lines, value_lines in wrapped:
        body.setTextOrigin(_MARGIN, y)
        body.textLines(label_lines)
        body.setTextOrigin(_MARGIN + label_w + size / 2, y)
        body.textLines(value_lines)
        y -= (max(len(label_lines), len(value_lines)) * _LEADING + _ROW_GAP) * size
    c.drawText(body)

    _draw_qr(c, qr_payload)
    c.setFont(_FONT, 9)
    c.drawCentredString(_QR_X + _QR_SIZE / 2, _QR_Y - 12, "扫码核验  Scan to verify")

    # Centred under the seal, as a stamp is pressed over the department's name and the
    # date; a long name wraps rather than pushes the block out from under it.
    lines = [
        *_wrap(f"发证机关：{issuer.department_name}", 12, _ISSUER_W),
        f"发证日期：{_date(licence.issued_at)}",
    ]
    y = _QR_Y + _QR_SIZE / 2 + (len(lines) - 1) * 10 - 4
    c.setFont(_FONT, 12)
    for line in lines:
        c.drawCentredString(_ISSUER_CX, y, line)
        y -= 20

    c.showPage()
    c.save()
    return buf.getvalue()
