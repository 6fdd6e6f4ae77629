"""Widths for the lines table's number columns, measured from the bundled font.

WeasyPrint's automatic table layout shapes the text of every cell once more to find each
column's narrowest and widest width: about a quarter of an invoice page's render time.
The number columns hold short texts, each measured here on one line (as wide as it can
be), so the table can be laid out with `table-layout: fixed` and these widths.

A measure is an upper bound of what the text can take: each character counts at the
widest form the font of its weight can give it (tabular figures, case forms,
alternates), plus slack for kerning and rounding. When a cell holds a character the font
lacks, the numbers leave less than `DESCRIPTION_MIN_PT` for the descriptions, or the
templates folder does not hold the bundled fonts, the table keeps the automatic layout
(returns None). The sizes below are those of invoice.css; tests lay real pages out and
check that every text stays inside its column."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path

REGULAR, SEMIBOLD = "Inter-Regular.otf", "Inter-SemiBold.otf"  # 400; .amount and th 600
TABLE_WIDTH_PT = Fraction(50457, 100)  # A4 less 2 x 16 mm of margin: 178 mm
DESCRIPTION_MIN_PT = Fraction(96)
CELL_PADDING_PT = Fraction(8)  # 4pt each side
BODY_PT = Fraction(19, 2)  # html { font-size: 9.5pt }
UNIT_PT = Fraction(8)  # .unit
HEADER_PT = Fraction(15, 2)  # thead th: 7.5pt, uppercase, letter-spacing 0.05em
HEADER_LETTER_SPACING_EM = Fraction(5, 100)
SLACK = Fraction(101, 100)  # kerning and rounding: 1 % and a point more
SLACK_PT = Fraction(1)
NUMBER_COLUMNS = 5


class FontWidths:
    """The widest advance each character can take in one font, in em."""

    def __init__(self, path: Path) -> None:
        from fontTools.ttLib import TTFont

        font = TTFont(str(path), lazy=True)
        units = font["head"].unitsPerEm
        advances = font["hmtx"].metrics
        widest = {glyph: advance for glyph, (advance, _) in advances.items()}
        for source, target in _single_substitutions(font):
            if target in advances:
                widest[source] = max(widest.get(source, 0), advances[target][0])
        self.em: dict[int, Fraction] = {
            code: Fraction(widest.get(glyph, 0), units)
            for code, glyph in font.getBestCmap().items()}

    def measure(self, text: str) -> Fraction | None:
        """The text's width in em, or None when the font lacks one of its characters."""
        total = Fraction(0)
        for char in text:
            width = self.em.get(ord(char))
            if width is None:
                return None
            total += width
        return total


def _single_substitutions(font: object) -> list[tuple[str, str]]:
    """Every one-for-one glyph substitution in the font's GSUB table, whatever feature
    uses it (tnum, case, calt's targets...)."""
    try:
        gsub = font["GSUB"].table  # type: ignore[index]
    except KeyError:
        return []
    pairs: list[tuple[str, str]] = []
    for lookup in gsub.LookupList.Lookup:
        for table in lookup.SubTable:
            if lookup.LookupType == 7:  # extension: the real subtable inside
                table = table.ExtSubTable
            mapping = getattr(table, "mapping", None)
            if mapping:
                pairs.extend(mapping.items())
            for source, targets in (getattr(table, "alternates", None) or {}).items():
                pairs.extend((source, target) for target in targets)
    return pairs


@lru_cache(maxsize=8)
def font_widths(path: Path) -> FontWidths:
    return FontWidths(path)


class _NumberCells(HTMLParser):
    """The text runs of each row's number cells, with their font size, and whether
    the cell is semibold (.amount), from the lines table's rows (nested tables, such as
    the tier breakdown, skipped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[list[tuple[str, Fraction]], bool]]] = []
        self.depth = 0  # nested tables
        self.cell: list[tuple[str, Fraction]] | None = None
        self.unit_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "table":
            self.depth += 1
        elif self.depth:
            return
        elif tag == "tr":
            self.rows.append([])
        elif tag == "td" and "num" in classes and self.rows:
            self.cell = []
            self.rows[-1].append((self.cell, "amount" in classes))
        elif tag == "td":
            self.cell = None
        elif tag == "span" and self.cell is not None:
            self.unit_depth += 1 if "unit" in classes else 0

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.depth -= 1
        elif self.depth:
            return
        elif tag == "td":
            self.cell = None
            self.unit_depth = 0
        elif tag == "span" and self.unit_depth:
            self.unit_depth -= 1

    def handle_data(self, data: str) -> None:
        if self.cell is not None and not self.depth:
            self.cell.append((data, UNIT_PT if self.unit_depth else BODY_PT))


def _cell_width(widths: FontWidths, runs: list[tuple[str, Fraction]]) -> Fraction | None:
    """One line of the cell's text: runs of whitespace count as one space, as in HTML."""
    total = Fraction(0)
    text = "".join(run for run, _ in runs)
    if not text.strip():
        return total
    collapsed_space = False
    for run, size in runs:
        for char in run:
            if char in " \t\n\r\f":
                if collapsed_space:
                    continue
                collapsed_space, char = True, " "
            else:
                collapsed_space = False
            em = widths.measure(char)
            if em is None:
                return None
            total += em * size
    return total


def _header_width(widths: FontWidths, header: str) -> Fraction | None:
    """The header's widest word (headers of number columns may wrap between words)."""
    widest = Fraction(0)
    for word in header.upper().split():
        em = widths.measure(word)
        if em is None:
            return None
        widest = max(widest, (em + HEADER_LETTER_SPACING_EM * len(word)) * HEADER_PT)
    return widest


def fixed_columns(rows_html: str, headers: Sequence[str], fonts_dir: Path
                  ) -> list[Decimal] | None:
    """Widths in pt (padding included) of the lines table's number columns, or None to
    keep WeasyPrint's automatic layout. `rows_html` is the table body's rows, `headers`
    the number columns' headings."""
    if len(headers) != NUMBER_COLUMNS or not all(
            (fonts_dir / name).is_file() for name in (REGULAR, SEMIBOLD)):
        return None  # templates of another shape, or with other fonts: nothing to measure
    needed = [Fraction(0)] * NUMBER_COLUMNS
    regular = font_widths(fonts_dir / REGULAR)
    semibold = font_widths(fonts_dir / SEMIBOLD)
    for column, header in enumerate(headers):
        width = _header_width(semibold, header)
        if width is None:
            return None
        needed[column] = width
    parser = _NumberCells()
    parser.feed(rows_html)
    parser.close()
    for row in parser.rows:
        if not row:
            continue  # a row without number cells (the tier breakdown's)
        if len(row) != NUMBER_COLUMNS:
            return None
        for column, (runs, bold) in enumerate(row):
            width = _cell_width(semibold if bold else regular, runs)
            if width is None:
                return None
            needed[column] = max(needed[column], width)
    columns = [width * SLACK + SLACK_PT + CELL_PADDING_PT for width in needed]
    if sum(columns) > TABLE_WIDTH_PT - DESCRIPTION_MIN_PT:
        return None
    return [_points(width) for width in columns]


def _points(width: Fraction) -> Decimal:
    """Rounded up to a hundredth of a point."""
    return (Decimal(width.numerator) / Decimal(width.denominator)).quantize(
        Decimal("0.01"), rounding=ROUND_CEILING)
