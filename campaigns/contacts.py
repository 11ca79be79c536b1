"""A campaign's contact list from a CSV file (pure: bytes or text in, contacts and problems out).

The file is what people export from Excel or WPS: UTF-8 (with or without the BOM Excel writes
for "CSV UTF-8"), else GB18030, the code page Excel in China saves plain "CSV" in (GBK and
GB2312 are subsets of it). A first row names the columns; one of them holds the phone numbers.

Phone numbers are normalised the way carriers in China dial them: a Chinese mobile is its 11
digits (``+86 138-0013-8000``, ``0086 13800138000``, ``8613800138000`` → ``13800138000``), a
landline keeps its trunk ``0`` and area code (``(021) 1234 5678`` → ``02112345678``, also from
``+86 21 1234 5678``), a number abroad is ``+`` and its E.164 digits (``+1 415 555 0100``,
``001 415 555 0100`` → ``+14155550100``). A number without ``+`` or ``00`` is taken as Chinese.
The separators allowed are the dial-string ones the softphone and the trunks accept
(``sip_bridge.routing.DIAL_STRING_CHARS``); full-width digits and signs, which Chinese input
methods type, are read as their ASCII forms.

Every problem carries a stable ``error_id`` (the page words it in zh-CN or en) and an English
message. Problems of the whole file raise :class:`ContactsError`; problems of one row are
reported with the row's number as the spreadsheet shows it (the header is row 1) and the other
rows are imported.

File errors: ``csv-workbook`` (an .xlsx/.xls workbook, not its CSV export), ``csv-not-text``,
``csv-empty``, ``csv-malformed``, ``no-phone-column``, ``too-many-columns``, ``too-many-rows``.
Row errors: ``phone-missing``, ``phone-invalid``, ``phone-too-short``, ``phone-too-long``,
``timezone-invalid``, ``cell-too-long``, ``too-many-columns``, ``duplicate``.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from campaigns.rules import check_time_zone
from sip_bridge.routing import DIAL_STRING_CHARS, normalise_number

__all__ = [
    "MAX_CELL_CHARS",
    "MAX_COLUMNS",
    "MAX_ROWS",
    "NAME_HEADERS",
    "PHONE_HEADERS",
    "TIMEZONE_HEADERS",
    "ContactRow",
    "ContactsError",
    "ImportResult",
    "Limits",
    "PhoneError",
    "RowProblem",
    "decode_csv",
    "normalise_phone",
    "parse_contacts",
]

MAX_ROWS = 100_000
"""Data rows in one file (blank lines not counted)."""
MAX_COLUMNS = 64
"""Columns in one row."""
MAX_CELL_CHARS = 500
"""Characters in one cell."""

PHONE_HEADERS = frozenset({"phone", "number", "mobile", "电话", "手机", "手机号", "号码", "电话号码", "手机号码",
                           "联系电话"})
NAME_HEADERS = frozenset({"name", "姓名", "客户", "客户姓名"})
TIMEZONE_HEADERS = frozenset({"timezone", "time_zone", "时区"})

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
# Beijing (010) and the 02x cities have 8-digit subscriber numbers; other area codes are 4 digits
# with 7- or 8-digit subscribers.
_LANDLINE = re.compile(r"0(?:10|2[0-9])[0-9]{8}|0[3-9][0-9]{2}[0-9]{7,8}")
_SERVICE = re.compile(r"[48]00[0-9]{7}")  # 400 / 800 numbers
_SCIENTIFIC = re.compile(r"[0-9]+(?:\.[0-9]+)?[eE]\+[0-9]+")  # 1.38001E+10
_E164_DIGITS = (7, 15)  # country code included (ITU-T E.164 allows at most 15)
# Zip (.xlsx, .et) and OLE2 (.xls) signatures: a workbook uploaded instead of its CSV export.
_WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")


class ContactsError(ValueError):
    """A file that cannot be imported at all; ``error_id`` is stable, the message is English."""

    def __init__(self, error_id: str, message: str, *, value: str | None = None) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.message = message
        self.value = value


class PhoneError(ContactsError):
    """A value that is not a phone number that can be dialed."""


@dataclass(frozen=True)
class Limits:
    """The file's size limits (the defaults are the module's constants)."""

    rows: int = MAX_ROWS
    columns: int = MAX_COLUMNS
    cell_chars: int = MAX_CELL_CHARS


@dataclass(frozen=True)
class ContactRow:
    """One contact to call: its row in the file, normalised phone, name, IANA zone (None: the
    campaign's) and every other column as ``header -> value``."""

    row: int
    phone: str
    name: str
    timezone: str | None
    attributes: dict[str, str]


@dataclass(frozen=True)
class RowProblem:
    """A row that was not imported: ``value`` is the cell at fault as the file has it."""

    row: int
    value: str
    error_id: str
    message: str


@dataclass(frozen=True)
class ImportResult:
    """``total_rows`` (non-blank data rows) = contacts + duplicates + invalid."""

    contacts: list[ContactRow]
    duplicates: list[RowProblem]
    invalid: list[RowProblem]
    total_rows: int


def decode_csv(data: bytes) -> str:
    """The file's text: UTF-8 (BOM or not), UTF-16 with a BOM (Excel's "Unicode text"), else GB18030."""
    if data.startswith(_WORKBOOK_MAGIC):
        raise ContactsError("csv-workbook", "this is a spreadsheet workbook, not CSV: save it as CSV and upload that")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if any(unicodedata.category(ch) == "Cc" and ch not in "\t\r\n" for ch in text):
            break
        return text
    raise ContactsError("csv-not-text", "the file is not text in UTF-8 or GB18030: upload a CSV file")


def normalise_phone(raw: str) -> str:
    """The number as carriers in China dial it (see the module docstring); raises :class:`PhoneError`."""
    text = unicodedata.normalize("NFKC", raw).strip()
    digits = normalise_number(text)
    shown = _short(raw.strip(), 40)
    if not digits and not text.strip("-.() "):
        raise PhoneError("phone-missing", "no phone number")
    if _SCIENTIFIC.fullmatch(text):
        raise PhoneError("phone-invalid", f"{shown!r} is a number Excel showed in scientific notation, its digits are "
                                          "lost: format the column as text and type the numbers again")
    if not DIAL_STRING_CHARS.issuperset(text) or "*" in text or "#" in text or "+" in text[1:]:
        raise PhoneError("phone-invalid", f"{shown!r} is not a phone number (digits, a leading '+', spaces, "
                                          "'-', '.' and brackets)")
    if text.startswith("+"):
        return _international(digits, shown)
    if digits.startswith("00"):
        return _international(digits[2:], shown)
    if len(digits) == 13 and digits.startswith("86") and _MOBILE.fullmatch(digits[2:]):
        return digits[2:]
    return _domestic(digits, shown)


def _international(digits: str, shown: str) -> str:
    if digits.startswith("86"):
        national = digits[2:]
        # After +86 a landline drops its trunk 0 (+86 21 ...), though some people write it anyway.
        if not (national.startswith("0") or _MOBILE.fullmatch(national) or _SERVICE.fullmatch(national)
                or (national.startswith("1") and not national.startswith("10"))):
            national = "0" + national
        return _domestic(national, shown)
    shortest, longest = _E164_DIGITS
    if digits.startswith("0") or not digits:
        raise PhoneError("phone-invalid", f"{shown!r}: a country code does not start with 0")
    if len(digits) < shortest:
        raise PhoneError("phone-too-short", f"{shown!r} is too short for an international number")
    if len(digits) > longest:
        raise PhoneError("phone-too-long", f"{shown!r} is too long: international numbers have at most 15 digits")
    return "+" + digits


def _domestic(digits: str, shown: str) -> str:
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits) or _SERVICE.fullmatch(digits):
        return digits
    if digits.startswith("1"):
        shortest, longest, rule = 11, 11, "a mobile number has 11 digits and starts with 13 to 19"
    elif digits.startswith("0"):
        shortest, longest, rule = 11, 12, "a landline has 11 or 12 digits: 0, the area code and the number"
    else:
        # Too long is more likely a number abroad without its + than a local one.
        shortest, longest, rule = 9, len(digits), "add the area code (010-12345678), only 400/800 numbers have none"
    if len(digits) < shortest:
        raise PhoneError("phone-too-short", f"{shown!r} is too short: {rule}")
    if len(digits) > longest:
        raise PhoneError("phone-too-long", f"{shown!r} is too long: {rule}")
    raise PhoneError("phone-invalid", f"{shown!r} is not a number in China: {rule}; write numbers abroad with + and "
                                      "the country code")


def parse_contacts(text: str, *, existing: Collection[str] = (), limits: Limits = Limits()) -> ImportResult:
    """The contacts of a decoded CSV file; ``existing`` are numbers already imported (normalised).

    Rows whose number appeared earlier in the file or is in ``existing`` are ``duplicates``;
    rows that cannot be called (bad number, unknown time zone, a cell too long) are ``invalid``.
    """
    records = _records(text)
    header_row, header = next(((n, cells) for n, cells in records if _has_text(cells)), (0, []))
    if not header_row:
        raise ContactsError("csv-empty", "the file is empty")
    while header and not header[-1].strip():
        header.pop()  # Excel exports trailing empty columns of its used range
    if len(header) > limits.columns:
        raise ContactsError("too-many-columns", f"the file has {len(header)} columns; at most {limits.columns}")
    columns = _column_names(header)
    keys = [name.casefold() for name in columns]
    phone_at = next((i for i, key in enumerate(keys) if key in PHONE_HEADERS), None)
    if phone_at is None:
        raise ContactsError("no-phone-column", "the first row must name the columns, one of them the phone number "
                                               f"(phone, 手机, 电话...); found: {', '.join(columns)[:200]}")
    name_at = next((i for i, key in enumerate(keys) if key in NAME_HEADERS), None)
    zone_at = next((i for i, key in enumerate(keys) if key in TIMEZONE_HEADERS), None)

    known = frozenset(existing)
    first_seen: dict[str, int] = {}
    contacts: list[ContactRow] = []
    duplicates: list[RowProblem] = []
    invalid: list[RowProblem] = []
    total = 0
    for row, cells in records:
        if not _has_text(cells):
            continue
        total += 1
        if total > limits.rows:
            raise ContactsError("too-many-rows", f"the file has more than {limits.rows} rows of contacts: split it")
        raw_phone = _short(_cell(cells, phone_at))
        try:
            contact = _contact(row, cells, columns, phone_at, name_at, zone_at, limits)
        except ContactsError as problem:
            value = raw_phone if problem.value is None else _short(problem.value)
            invalid.append(RowProblem(row, value, problem.error_id, f"row {row}: {problem.message}"))
            continue
        if contact.phone in known:
            duplicates.append(RowProblem(row, raw_phone, "duplicate",
                                         f"row {row}: {contact.phone} is already in this campaign"))
        elif contact.phone in first_seen:
            duplicates.append(RowProblem(row, raw_phone, "duplicate", f"row {row}: {contact.phone} is already in "
                                                                      f"row {first_seen[contact.phone]}"))
        else:
            first_seen[contact.phone] = row
            contacts.append(contact)
    return ImportResult(contacts, duplicates, invalid, total)


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """The file's records numbered as a spreadsheet shows them (a quoted line break stays in its row)."""
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = max(",\t;", key=first_line.count)  # Excel writes ';' where ',' is the decimal mark
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ContactsError("csv-malformed", f"row {row + 1}: {exc}") from None
        row += 1
        yield row, cells


def _has_text(cells: Sequence[str]) -> bool:
    return any(cell.strip() for cell in cells)


def _column_names(header: Sequence[str]) -> list[str]:
    """Trimmed header names; an empty or repeated one is ``column N`` (its spreadsheet position)."""
    names: list[str] = []
    for i, cell in enumerate(header):
        name = unicodedata.normalize("NFKC", cell).strip()
        names.append(name if name and name.casefold() not in (n.casefold() for n in names) else f"column {i + 1}")
    return names


def _cell(cells: Sequence[str], at: int | None) -> str:
    return cells[at].strip() if at is not None and at < len(cells) else ""


def _contact(row: int, cells: list[str], columns: list[str], phone_at: int, name_at: int | None,
             zone_at: int | None, limits: Limits) -> ContactRow:
    while len(cells) > len(columns) and not cells[-1].strip():
        cells.pop()
    if len(cells) > limits.columns:
        raise ContactsError("too-many-columns", f"{len(cells)} cells; at most {limits.columns}")
    for i, cell in enumerate(cells):
        if len(cell) > limits.cell_chars:
            raise ContactsError("cell-too-long", f"{_name(columns, i)} has {len(cell)} characters; at most "
                                                 f"{limits.cell_chars}", value=cell)
    phone = normalise_phone(_cell(cells, phone_at))
    zone = _cell(cells, zone_at) or None
    if zone is not None:
        try:
            check_time_zone(zone)
        except ValueError:
            raise ContactsError("timezone-invalid", f"{zone!r} is not a time zone (use an IANA name such as "
                                                    "Asia/Shanghai)", value=zone) from None
    attributes = {_name(columns, i): cell.strip() for i, cell in enumerate(cells)
                  if i not in (phone_at, name_at, zone_at)}
    for i in range(len(cells), len(columns)):
        if i not in (phone_at, name_at, zone_at):
            attributes[columns[i]] = ""
    return ContactRow(row, phone, _cell(cells, name_at), zone, attributes)


def _name(columns: Sequence[str], i: int) -> str:
    return columns[i] if i < len(columns) else f"column {i + 1}"


def _short(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[:limit] + "…"
