"""The printable licence PDF, rendered for real and read back with pdfium and zxing-cpp.

Reading the text back proves the CID font maps to Unicode; reading pixels and the QR code
back proves the page actually draws (the CJK font substitution works) and scans.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pypdfium2
import pytest
import zxingcpp
from google.protobuf.timestamp_pb2 import Timestamp
from PIL import Image

from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.registry.v1 import registry_pb2
from signer.licence_pdf import SEAL_BOX, render_licence_pdf

CST = timezone(timedelta(hours=8))
A4_W, A4_H = 595.2756, 841.8898
SCALE = 2  # render pixels per point
MARGIN = 20 * 72 / 25.4  # text stays inside 20 mm of every edge

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
PAYLOAD = "LL1:" + "".join(random.Random(7).choice(BASE45) for _ in range(1190))

LONG_SCOPE = (
    "食品销售（仅销售预包装食品）；餐饮服务（不产生油烟、异味、废气）；日用百货销售；"
    "化妆品零售；文具用品零售；办公用品销售；家用电器销售；电子产品销售；五金产品零售；"
    "互联网销售（除销售需要许可的商品）；技术服务、技术开发、技术咨询、技术推广。"
)
FIELDS = [
    ("business_scope", "经营范围", LONG_SCOPE),
    ("legal_representative", "法定代表人", "张伟"),
    ("entity_type", "类型", "有限责任公司（自然人投资或控股）"),
    ("registered_capital", "注册资本", "500.00万元"),
    ("established_on", "成立日期", "2019-06-18"),
    ("address", "住所", "上海市浦东新区张江高科技园区碧波路690号3幢201室"),
    ("business_term", "营业期限", "2019-06-18 起"),
    ("branch_count", "分支机构数", "3"),
    ("industry", "行业", "零售业"),
    ("permit_number", "许可证号", "JY13101150012345"),
]
LICENCE_TYPE = registry_pb2.LicenceType(
    licence_type_code="11100000000013127D001",
    name="营业执照",
    name_en="Business Licence",
    face_fields=[registry_pb2.FaceFieldSpec(name=n, label_zh=z) for n, z, _ in FIELDS],
)


def cst(year: int, month: int, day: int) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(datetime(year, month, day, tzinfo=CST))
    return ts


def make_licence(*, valid_until: Timestamp | None = None) -> lpb.Licence:
    licence = lpb.Licence(
        licence_id="1.2.156.3005.2.11100000000013127D001.91310115MA1H7XYZ3K.0000000001.002.U",
        licence_type_code="11100000000013127D001",
        licence_type_name="营业执照",
        licence_number="310115000123456",
        holder=lpb.Holder(
            name="上海晨曦商贸有限公司",
            id_type=lpb.HOLDER_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE,
            id_number="91310115MA1H7XYZ3K",
        ),
        issuer=lpb.Issuer(
            department_code="11310115002402541X",
            department_name="上海市浦东新区市场监督管理局",
            region_code="310115",
        ),
        issued_at=cst(2025, 3, 1),
        valid_from=cst(2025, 3, 1),
        face_fields=[lpb.FaceField(name=n, value=v) for n, _, v in FIELDS],
        version=2,
        predecessor_licence_id="1.2.156.3005.2.11100000000013127D001.91310115MA1H7XYZ3K"
        ".0000000001.001.7",
        status=lpb.LICENCE_STATUS_VALID,
    )
    if valid_until is not None:
        licence.valid_until.CopyFrom(valid_until)
    return licence


@dataclass
class Rendered:
    pdf: bytes
    pages: int
    text: str
    boxes: list[tuple[float, float, float, float]]  # per character of `text`
    image: Image.Image

    def boxes_of(self, needle: str) -> list[tuple[float, float, float, float]]:
        """Char boxes of the first occurrence of needle, found across line breaks."""
        flat = [(i, ch) for i, ch in enumerate(self.text) if ch not in "\r\n"]
        joined = "".join(ch for _, ch in flat)
        start = joined.index(needle)
        return [self.boxes[i] for i, _ in flat[start : start + len(needle)]]


def read(pdf: bytes) -> Rendered:
    doc = pypdfium2.PdfDocument(pdf)
    page = doc[0]
    textpage = page.get_textpage()
    text = textpage.get_text_range()
    boxes = [textpage.get_charbox(i) for i in range(len(text))]
    image = page.render(scale=SCALE).to_pil()
    return Rendered(pdf, len(doc), text, boxes, image)


def text_of(pdf: bytes) -> str:
    return str(pypdfium2.PdfDocument(pdf)[0].get_textpage().get_text_range())


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    pdf = render_licence_pdf(
        make_licence(), PAYLOAD, licence_type=LICENCE_TYPE, region_name="上海市"
    )
    return read(pdf)


def test_one_a4_page(rendered: Rendered) -> None:
    assert rendered.pdf.startswith(b"%PDF-")
    assert rendered.pages == 1
    assert rendered.image.size == (round(A4_W * SCALE), round(A4_H * SCALE))


def test_qr_code_reads_back_as_the_payload(rendered: Rendered) -> None:
    codes = zxingcpp.read_barcodes(rendered.image)
    assert [code.text for code in codes] == [PAYLOAD]
    assert codes[0].format == zxingcpp.BarcodeFormat.QRCode


def test_chinese_text_extracts_as_unicode(rendered: Rendered) -> None:
    text = rendered.text
    for expected in ("营业执照", "上海晨曦商贸有限公司", "310115000123456", "经营范围："):
        assert expected in text
    assert "统一社会信用代码：" in text
    assert "上海市浦东新区市场监督管理局" in text
    assert "第 2 版" in text
    assert "1.2.156.3005.2.11100000000013127D001.91310115MA1H7XYZ3K.0000000001.001.7" in text
    assert "扫码核验" in text
    # The wrapped value reads back whole, in order, once the line breaks are dropped.
    assert LONG_SCOPE in text.replace("\r\n", "")


def test_long_value_wraps_inside_the_margins(rendered: Rendered) -> None:
    scope = rendered.boxes_of(LONG_SCOPE)
    assert len({round(bottom) for _, bottom, _, _ in scope}) >= 3
    assert all(MARGIN <= left < right <= A4_W - MARGIN for left, _, right, _ in scope)
    # Closing punctuation is never left to open a line (the page has some at breaks).
    assert not any(
        line.startswith(tuple("，。、；：）》」")) for line in rendered.text.split("\r\n")
    )
    drawn = [box for box, ch in zip(rendered.boxes, rendered.text, strict=True) if ch.strip()]
    for left, bottom, right, top in drawn:
        assert MARGIN <= left <= right <= A4_W - MARGIN
        assert MARGIN <= bottom <= top <= A4_H - MARGIN


def test_title_is_drawn(rendered: Rendered) -> None:
    boxes = rendered.boxes_of("营业执照")
    left, right = min(b[0] for b in boxes), max(b[2] for b in boxes)
    bottom, top = min(b[1] for b in boxes), max(b[3] for b in boxes)
    assert right - left > 100  # the title is large
    crop = rendered.image.convert("L").crop(
        (
            int(left * SCALE),
            int((A4_H - top) * SCALE),
            int(right * SCALE),
            int((A4_H - bottom) * SCALE),
        )
    )
    dark = sum(crop.histogram()[:128])
    assert dark > 0.1 * crop.width * crop.height


def test_seal_box_is_on_the_page_over_the_issuer_and_clear_of_the_qr_code(
    rendered: Rendered,
) -> None:
    seal = SEAL_BOX
    assert seal.page == 1
    assert seal.width == seal.height == pytest.approx(42 * 72 / 25.4)
    assert MARGIN <= seal.x < seal.x + seal.width <= A4_W - MARGIN
    assert MARGIN <= seal.y < seal.y + seal.height <= A4_H - MARGIN

    (code,) = zxingcpp.read_barcodes(rendered.image)
    corners = [code.position.top_left, code.position.top_right]
    corners += [code.position.bottom_left, code.position.bottom_right]
    qr_left = min(p.x for p in corners) / SCALE
    qr_right = max(p.x for p in corners) / SCALE
    qr_bottom = A4_H - max(p.y for p in corners) / SCALE
    qr_top = A4_H - min(p.y for p in corners) / SCALE
    assert qr_right - qr_left >= 35 * 72 / 25.4  # the symbol alone, without its quiet zone
    overlaps_x = seal.x < qr_right and qr_left < seal.x + seal.width
    overlaps_y = seal.y < qr_top and qr_bottom < seal.y + seal.height
    assert not (overlaps_x and overlaps_y)

    # The stamp goes over the department's name and the issue date.
    for needle in ("发证机关", "发证日期"):
        _, bottom, _, top = rendered.boxes[rendered.text.index(needle)]
        assert seal.y < bottom < top < seal.y + seal.height


def test_rendering_is_deterministic(rendered: Rendered) -> None:
    again = render_licence_pdf(
        make_licence(), PAYLOAD, licence_type=LICENCE_TYPE, region_name="上海市"
    )
    assert again == rendered.pdf


def test_labels_come_from_the_licence_type_or_fall_back_to_field_names() -> None:
    bare = text_of(render_licence_pdf(make_licence(), PAYLOAD))
    assert "business_scope：" in bare
    assert "经营范围" not in bare
    labelled = text_of(render_licence_pdf(make_licence(), PAYLOAD, licence_type=LICENCE_TYPE))
    assert "经营范围：" in labelled
    assert "business_scope" not in labelled


def test_validity_is_long_term_when_unset_and_the_last_day_otherwise(rendered: Rendered) -> None:
    assert "有效期：" in rendered.text
    assert "2025年03月01日 至 长期" in rendered.text
    # valid_until is exclusive: valid through 2030-12-31 Beijing time.
    bounded = text_of(render_licence_pdf(make_licence(valid_until=cst(2031, 1, 1)), PAYLOAD))
    assert "2025年03月01日 至 2030年12月31日" in bounded
    assert "长期" not in bounded


@pytest.mark.parametrize(
    ("id_type", "other", "name_label", "id_label"),
    [
        (lpb.HOLDER_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE, "", "名称：", "统一社会信用代码："),
        (lpb.HOLDER_ID_TYPE_RESIDENT_IDENTITY_NUMBER, "", "姓名：", "公民身份号码："),
        (lpb.HOLDER_ID_TYPE_OTHER, "护照", "持证人：", "护照："),
    ],
)
def test_holder_id_label_follows_the_id_type(
    id_type: lpb.HolderIdType.ValueType, other: str, name_label: str, id_label: str
) -> None:
    licence = make_licence()
    licence.holder.id_type = id_type
    licence.holder.other_id_type = other
    text = text_of(render_licence_pdf(licence, PAYLOAD))
    # pdfium reports the gap between the label and value columns as whitespace.
    assert re.search(rf"{name_label}\s*上海晨曦商贸有限公司", text)
    assert re.search(rf"{id_label}\s*91310115MA1H7XYZ3K", text)


def test_first_version_shows_no_predecessor() -> None:
    licence = make_licence()
    licence.version = 1
    text = text_of(render_licence_pdf(licence, PAYLOAD))
    assert "第 1 版" in text
    assert "前序证照" not in text


def test_content_too_long_for_one_page_is_refused() -> None:
    licence = make_licence()
    licence.face_fields.extend(
        lpb.FaceField(name=f"note_{i}", value="备注" * 300) for i in range(12)
    )
    with pytest.raises(ValueError, match="does not fit"):
        render_licence_pdf(licence, PAYLOAD)
