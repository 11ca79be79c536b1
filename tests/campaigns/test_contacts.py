"""campaigns.contacts: a contact list from the CSV files people export from Excel and WPS."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.contacts import (
    ContactRow,
    ContactsError,
    ImportResult,
    Limits,
    PhoneError,
    RowProblem,
    decode_csv,
    normalise_phone,
    parse_contacts,
)


@pytest.mark.parametrize(("raw", "dialed"), [
    ("13800138000", "13800138000"),
    ("138 0013 8000", "13800138000"),
    ("138-0013-8000", "13800138000"),
    ("+86 138-0013-8000", "13800138000"),
    ("0086 13800138000", "13800138000"),
    ("8613800138000", "13800138000"),
    ("86 138 0013 8000", "13800138000"),
    ("１３８００１３８０００", "13800138000"),  # full-width digits, as Chinese input methods type them
    ("\t 19912345678 ", "19912345678"),
    ("010-1234 5678", "01012345678"),
    ("(021) 12345678", "02112345678"),
    ("0755-1234567", "07551234567"),
    ("0755 12345678", "075512345678"),
    ("+86 21 1234 5678", "02112345678"),  # the trunk 0 comes back after +86
    ("+86 (0)21 1234 5678", "02112345678"),
    ("+86 411 1234567", "04111234567"),
    ("400-123-4567", "4001234567"),
    ("+86 400 123 4567", "4001234567"),
    ("+1 415 555 0100", "+14155550100"),
    ("001 415 555 0100", "+14155550100"),
    ("+44 20 7946 0958", "+442079460958"),
    ("+852 2123 4567", "+85221234567"),
])
def test_numbers_are_normalised_as_carriers_in_china_dial_them(raw: str, dialed: str) -> None:
    assert normalise_phone(raw) == dialed
    assert normalise_phone(dialed) == dialed


@pytest.mark.parametrize(("raw", "error_id"), [
    ("", "phone-missing"),
    ("   ", "phone-missing"),
    ("-", "phone-missing"),
    ("abc", "phone-invalid"),
    ("138 0013 8000 (home)", "phone-invalid"),
    ("13800138000/13900139000", "phone-invalid"),
    ("138*0013#8000", "phone-invalid"),
    ("138+0013", "phone-invalid"),
    ("1.38001E+10", "phone-invalid"),  # Excel's scientific notation: the digits are gone
    ("12012345678", "phone-invalid"),  # 12x is no mobile prefix
    ("4155550100", "phone-invalid"),  # a number abroad without its +
    ("+0123456789", "phone-invalid"),
    ("1380013800", "phone-too-short"),
    ("+86 1380013800", "phone-too-short"),
    ("87654321", "phone-too-short"),  # a local landline without its area code
    ("0101234567", "phone-too-short"),
    ("+123456", "phone-too-short"),
    ("138001380001", "phone-too-long"),
    ("0755123456789", "phone-too-long"),
    ("+1234567890123456", "phone-too-long"),
])
def test_what_is_not_a_dialable_number_says_why(raw: str, error_id: str) -> None:
    with pytest.raises(PhoneError) as caught:
        normalise_phone(raw)
    assert caught.value.error_id == error_id
    assert caught.value.message == str(caught.value)


def test_scientific_notation_is_explained() -> None:
    with pytest.raises(PhoneError, match="scientific notation"):
        normalise_phone("1.38001E+10")


CSV = "姓名,手机号,城市\n张三,13800138000,北京\n"


@pytest.mark.parametrize("data", [
    CSV.encode("utf-8"),
    codecs.BOM_UTF8 + CSV.encode("utf-8"),  # Excel's "CSV UTF-8"
    CSV.encode("gb18030"),  # Excel's plain "CSV" in China
    codecs.BOM_UTF16_LE + CSV.encode("utf-16-le"),  # Excel's "Unicode text"
])
def test_files_decode_from_the_encodings_excel_saves(data: bytes) -> None:
    assert decode_csv(data) == CSV


@pytest.mark.parametrize(("data", "error_id"), [
    (b"PK\x03\x04\x14\x00\x06\x00" + bytes(100), "csv-workbook"),  # .xlsx
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "csv-workbook"),  # .xls
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "csv-not-text"),
    (b"phone\n\xff\xfe\xfd\x80\x81", "csv-not-text"),
    (b"phone\n138\x00\x00", "csv-not-text"),
])
def test_binary_files_are_refused(data: bytes, error_id: str) -> None:
    with pytest.raises(ContactsError) as caught:
        decode_csv(data)
    assert caught.value.error_id == error_id


def test_rows_are_numbered_as_the_spreadsheet_shows_them() -> None:
    text = ('\r\n'  # row 1 blank: the header is row 2
            '姓名 , 手机 ,城市,,时区\r\n'
            '张三,138 0013 8000,北京,x,Asia/Shanghai\r\n'
            '\r\n'
            '"李\n四",13900139000,"上海, 浦东"\r\n'  # a line break inside quotes stays in row 5
            ',,,\r\n'
            '王五,abc,广州\r\n')
    result = parse_contacts(text)
    assert result == ImportResult(
        contacts=[ContactRow(3, "13800138000", "张三", "Asia/Shanghai", {"城市": "北京", "column 4": "x"}),
                  ContactRow(5, "13900139000", "李\n四", None, {"城市": "上海, 浦东", "column 4": ""})],
        duplicates=[],
        invalid=[RowProblem(7, "abc", "phone-invalid", "row 7: 'abc' is not a phone number (digits, a leading '+', "
                                                       "spaces, '-', '.' and brackets)")],
        total_rows=3)


@pytest.mark.parametrize("header", ["phone", " Phone ", "NUMBER", "mobile", "电话", "手机", "手机号", "号码", "电话号码"])
def test_the_phone_column_goes_by_its_usual_names(header: str) -> None:
    [contact] = parse_contacts(f"备注,{header}\n老客户,13800138000\n").contacts
    assert (contact.phone, contact.attributes) == ("13800138000", {"备注": "老客户"})


@pytest.mark.parametrize(("name", "zone"), [("name", "timezone"), ("姓名", "时区"), ("客户", "time_zone"),
                                            ("客户姓名", "TimeZone")])
def test_name_and_time_zone_columns(name: str, zone: str) -> None:
    [contact] = parse_contacts(f"{zone},{name},phone\nAmerica/New_York,Ann,+1 415 555 0100\n").contacts
    assert (contact.name, contact.timezone, contact.attributes) == ("Ann", "America/New_York", {})


def test_a_file_without_a_phone_column_is_refused() -> None:
    with pytest.raises(ContactsError) as caught:
        parse_contacts("13800138000,张三\n13900139000,李四\n")
    assert caught.value.error_id == "no-phone-column"
    assert "13800138000" in caught.value.message  # it says what it found instead


@pytest.mark.parametrize("text", ["", "\n\n", " , \n"])
def test_an_empty_file_is_refused(text: str) -> None:
    with pytest.raises(ContactsError) as caught:
        parse_contacts(text)
    assert caught.value.error_id == "csv-empty"


def test_duplicates_name_the_first_row_or_the_campaign() -> None:
    text = "phone\n13800138000\n+86 138 0013 8000\n13900139000\n02112345678\n8613800138000\n"
    result = parse_contacts(text, existing={"02112345678"})
    assert [c.phone for c in result.contacts] == ["13800138000", "13900139000"]
    assert result.duplicates == [
        RowProblem(3, "+86 138 0013 8000", "duplicate", "row 3: 13800138000 is already in row 2"),
        RowProblem(5, "02112345678", "duplicate", "row 5: 02112345678 is already in this campaign"),
        RowProblem(6, "8613800138000", "duplicate", "row 6: 13800138000 is already in row 2"),
    ]


def test_an_invalid_row_is_not_the_first_occurrence_of_its_number() -> None:
    result = parse_contacts("phone,timezone\n13800138000,Mars/Olympus\n13800138000,Asia/Shanghai\n")
    assert [(p.row, p.value, p.error_id) for p in result.invalid] == [(2, "Mars/Olympus", "timezone-invalid")]
    assert [c.row for c in result.contacts] == [3]


@pytest.mark.parametrize("zone", ["asia/shanghai", "Asia", "../etc/passwd", "localtime", "CST", "+08:00"])
def test_time_zones_must_be_iana_names(zone: str) -> None:
    [problem] = parse_contacts(f"phone,时区\n13800138000,{zone}\n").invalid
    assert (problem.row, problem.value, problem.error_id) == (2, zone, "timezone-invalid")


def test_limits() -> None:
    limits = Limits(rows=3, columns=4, cell_chars=11)
    result = parse_contacts("phone,note\n13800138000,012345678901\n13900139000,01234567890\n13700137000,a,b,c,d\n",
                            limits=limits)
    assert [(p.row, p.value, p.error_id) for p in result.invalid] == [(2, "012345678901", "cell-too-long"),
                                                                      (4, "13700137000", "too-many-columns")]
    assert parse_contacts("phone\n1\n\n2\n3\n", limits=limits).total_rows == 3  # blank lines do not count
    with pytest.raises(ContactsError) as rows:
        parse_contacts("phone\n1\n2\n3\n4\n", limits=limits)
    with pytest.raises(ContactsError) as columns:
        parse_contacts("phone,a,b,c,d\n", limits=limits)
    assert (rows.value.error_id, columns.value.error_id) == ("too-many-rows", "too-many-columns")


def test_a_long_cell_is_shown_shortened() -> None:
    [problem] = parse_contacts("phone,note\n13800138000," + "长" * 501 + "\n").invalid
    assert problem.error_id == "cell-too-long"
    assert problem.value == "长" * 60 + "…"
    assert "note" in problem.message


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_the_one_the_header_uses(delimiter: str) -> None:
    text = delimiter.join(["phone", "name", "金额"]) + "\n" + delimiter.join(["13800138000", "Ann", "1,5"]) + "\n"
    if delimiter == ",":
        text = text.replace("1,5", '"1,5"')
    [contact] = parse_contacts(text).contacts
    assert (contact.name, contact.attributes) == ("Ann", {"金额": "1,5"})


def test_empty_and_repeated_headers_become_column_n() -> None:
    [contact] = parse_contacts("phone,备注,,备注\n13800138000,a,b,c\n").contacts
    assert contact.attributes == {"备注": "a", "column 3": "b", "column 4": "c"}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["13800138000", "+1 415 555 0100", "phone", "手机", "", " ", "abc", '"',
                                          "Asia/Shanghai", "时区", "\n", "x" * 600]), max_size=6), max_size=8),
       st.sampled_from([",", ";", "\t"]))
def test_any_text_imports_or_raises_a_contacts_error(rows: list[list[str]], delimiter: str) -> None:
    text = "\n".join(delimiter.join(cells) for cells in rows)
    try:
        result = parse_contacts(text)
    except ContactsError as error:
        assert error.error_id in {"csv-empty", "csv-malformed", "no-phone-column"}
        return
    assert len(result.contacts) + len(result.duplicates) + len(result.invalid) == result.total_rows
    assert len({c.phone for c in result.contacts}) == len(result.contacts)
    assert all(len(p.value) <= 61 for p in result.duplicates + result.invalid)
