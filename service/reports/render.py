"""The report written out: Markdown, Word (python-docx) or PDF (reportlab, the Chinese font
embedded). Each walks the same outline (``layout.outline``); only the markup differs."""
from __future__ import annotations

import io
from functools import lru_cache
from xml.sax.saxutils import escape

from service.reports import charts
from service.reports.content import Report
from service.reports.layout import outline
from service.spreadsheet import xml_text

FORMATS = {"md": "text/markdown; charset=utf-8", "docx": "application/vnd.openxmlformats-officedocument"
           ".wordprocessingml.document", "pdf": "application/pdf"}


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report) -> bytes:
    """The report as Markdown (UTF-8), tables as pipe tables; no charts."""
    lines = []
    for b in outline(report, with_charts=False):
        if b.kind == "heading":
            lines += ["#" * (b.level + 1) + " " + b.text, ""]
        elif b.kind == "paragraph":
            lines += [b.text, ""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            lines.append("")
    return "\n".join(lines).encode("utf-8")


def to_docx(report: Report, font: str) -> bytes:
    """The report as a Word document (opens in Word and WPS), charts as pictures."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt

    pictures = charts.all_charts(report, font)
    doc = Document()
    for name, face in (("Normal", "宋体"), ("Title", "黑体"), ("Heading 1", "黑体"), ("Caption", "宋体")):
        style = doc.styles[name]
        style.font.name = face
        style.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), face)
    doc.styles["Normal"].font.size = Pt(11)
    doc.core_properties.title = report.title
    for b in outline(report, with_charts=True):
        if b.kind == "heading":
            doc.add_heading(xml_text(b.text), level=b.level)
        elif b.kind == "paragraph":
            doc.add_paragraph(xml_text(b.text))
        elif b.kind == "table":
            table = doc.add_table(rows=1, cols=len(b.header))
            table.style = "Table Grid"
            for cell, text in zip(table.rows[0].cells, b.header):
                cell.text = xml_text(text)
                cell.paragraphs[0].runs[0].bold = True
            for row in b.rows:
                for cell, text in zip(table.add_row().cells, row):
                    cell.text = xml_text(text)
        elif b.kind == "chart":
            caption, png = pictures[b.chart]
            doc.add_picture(io.BytesIO(png), width=Cm(16))
            doc.add_paragraph(caption, style="Caption").alignment = WD_ALIGN_PARAGRAPH.CENTER
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


@lru_cache(maxsize=4)
def _pdf_font(path: str) -> str:
    """Register the TrueType font at ``path`` with reportlab once; its name."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    name = f"hcp-cjk-{len(pdfmetrics.getRegisteredFontNames())}"
    pdfmetrics.registerFont(TTFont(name, charts.font_path(path), subfontIndex=0))
    return name


def _pdf_text(text: str) -> str:
    """Plain text as a reportlab paragraph's markup."""
    return escape(xml_text(text))


def to_pdf(report: Report, font: str) -> bytes:
    """The report as an A4 PDF with the Chinese font embedded (subset) and the charts."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import cm
    from reportlab.lib.utils import ImageReader
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    face = _pdf_font(font)
    pictures = charts.all_charts(report, font)
    body = ParagraphStyle("body", fontName=face, bulletFontName=face, fontSize=10.5, leading=16, wordWrap="CJK",
                          spaceAfter=4)
    cell = ParagraphStyle("cell", parent=body, fontSize=8.5, leading=11, spaceAfter=0)
    caption = ParagraphStyle("caption", parent=body, fontSize=9, alignment=1)
    headings = {0: ParagraphStyle("title", parent=body, fontSize=17, leading=24, alignment=1, spaceAfter=10),
                1: ParagraphStyle("h1", parent=body, fontSize=13, leading=20, spaceBefore=8)}
    width = A4[0] - 4 * cm
    story = []
    for b in outline(report, with_charts=True):
        if b.kind == "heading":
            story.append(Paragraph(_pdf_text(b.text), headings[min(b.level, 1)]))
        elif b.kind == "paragraph":
            story.append(Paragraph(_pdf_text(b.text), body))
        elif b.kind == "table":
            data = [[Paragraph(_pdf_text(t), cell) for t in row] for row in [b.header] + b.rows]
            first = width * (0.22 if len(b.header) > 6 else 0.3)
            rest = (width - first) / (len(b.header) - 1)
            table = Table(data, colWidths=[first] + [rest] * (len(b.header) - 1), repeatRows=1)
            table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), face),
                                       ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                                       ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")),
                                       ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
            story += [table, Spacer(1, 6)]
        elif b.kind == "chart":
            text, png = pictures[b.chart]
            w, h = ImageReader(io.BytesIO(png)).getSize()
            story += [Image(io.BytesIO(png), width=width, height=width * h / w), Paragraph(_pdf_text(text), caption)]
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, title=report.title, author="hcp", leftMargin=2 * cm, rightMargin=2 * cm,
                      topMargin=2 * cm, bottomMargin=2 * cm,
                      initialFontName=face).build(story)  # no unembedded Helvetica left in the file
    return out.getvalue()


def write(report: Report, fmt: str, font: str) -> bytes:
    """The report in ``fmt`` (md | docx | pdf)."""
    if fmt == "md":
        return to_markdown(report)
    if fmt == "docx":
        return to_docx(report, font)
    return to_pdf(report, font)
