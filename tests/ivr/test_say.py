"""ivr.say: values worded for TTS in Mandarin and English."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from ivr.say import SAY_CURRENCIES, SAY_KINDS, SAY_LANGS, SayValue, say_text


def test_exports() -> None:
    assert SAY_KINDS == ("digits", "number", "amount", "date", "time", "datetime")
    assert SAY_LANGS == ("zh", "en")
    assert SAY_CURRENCIES == ("CNY", "USD")


# --- number --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        (0, "零", "zero"),
        (1, "一", "one"),
        (7, "七", "seven"),
        (10, "十", "ten"),
        (11, "十一", "eleven"),
        (15, "十五", "fifteen"),
        (19, "十九", "nineteen"),
        (20, "二十", "twenty"),
        (21, "二十一", "twenty-one"),
        (99, "九十九", "ninety-nine"),
        (100, "一百", "one hundred"),
        (101, "一百零一", "one hundred one"),
        (110, "一百一十", "one hundred ten"),
        (115, "一百一十五", "one hundred fifteen"),
        (123, "一百二十三", "one hundred twenty-three"),
        (999, "九百九十九", "nine hundred ninety-nine"),
        (1000, "一千", "one thousand"),
        (1001, "一千零一", "one thousand one"),
        (1010, "一千零一十", "one thousand ten"),
        (1100, "一千一百", "one thousand one hundred"),
        (1234, "一千二百三十四", "one thousand two hundred thirty-four"),
        (2005, "二千零五", "two thousand five"),
        (10000, "一万", "ten thousand"),
        (10001, "一万零一", "ten thousand one"),
        (10010, "一万零一十", "ten thousand ten"),
        (10100, "一万零一百", "ten thousand one hundred"),
        (11000, "一万一千", "eleven thousand"),
        (12345, "一万二千三百四十五", "twelve thousand three hundred forty-five"),
        (100000, "十万", "one hundred thousand"),
        (100100, "十万零一百", "one hundred thousand one hundred"),
        (110000, "十一万", "one hundred ten thousand"),
        (150000, "十五万", "one hundred fifty thousand"),
        (1000000, "一百万", "one million"),
        (1010000, "一百零一万", "one million ten thousand"),
        (10000000, "一千万", "ten million"),
        (20000001, "二千万零一", "twenty million one"),
        (100000000, "一亿", "one hundred million"),
        (100000001, "一亿零一", "one hundred million one"),
        (100010000, "一亿零一万", "one hundred million ten thousand"),
        (110000000, "一亿一千万", "one hundred ten million"),
        (123456789, "一亿二千三百四十五万六千七百八十九",
         "one hundred twenty-three million four hundred fifty-six thousand seven hundred eighty-nine"),
        (1000000000, "十亿", "one billion"),
        (1000000000000, "一万亿", "one trillion"),
        (1000001000000, "一万亿零一百万", "one trillion one million"),
        (9999999999999999, "九千九百九十九万九千九百九十九亿" "九千九百九十九万九千九百九十九",
         "nine quadrillion nine hundred ninety-nine trillion nine hundred ninety-nine billion "
         "nine hundred ninety-nine million nine hundred ninety-nine thousand nine hundred ninety-nine"),
    ],
)
def test_integers(value: int, zh: str, en: str) -> None:
    assert say_text("number", value, "zh") == zh
    assert say_text("number", value, "en") == en


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        (-1, "负一", "minus one"),
        (-10, "负十", "minus ten"),
        (-12345, "负一万二千三百四十五", "minus twelve thousand three hundred forty-five"),
        (3.14, "三点一四", "three point one four"),
        (0.5, "零点五", "zero point five"),
        (-0.5, "负零点五", "minus zero point five"),
        (10.05, "十点零五", "ten point zero five"),
        (Decimal("1.50"), "一点五", "one point five"),  # trailing zeros are not said
        (Decimal("2.000"), "二", "two"),
        (Decimal("-0.00"), "零", "zero"),  # never "minus zero"
        (0.1, "零点一", "zero point one"),  # the float's shortest repr, not 0.1000000000000000055...
        (1e-7, "零点零零零零零零一", "zero point zero zero zero zero zero zero one"),
        (1e15, "一千万亿", "one quadrillion"),
        ("42", "四十二", "forty-two"),
        (" -3.5 ", "负三点五", "minus three point five"),
        ("1e3", "一千", "one thousand"),
        (100.0, "一百", "one hundred"),
    ],
)
def test_negatives_and_decimals(value: SayValue, zh: str, en: str) -> None:
    assert say_text("number", value, "zh") == zh
    assert say_text("number", value, "en") == en


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "cannot say 'abc' as number: not a number"),
        ("", "cannot say '' as number: not a number"),
        ("NaN", "cannot say 'NaN' as number: not a finite number"),
        (float("inf"), "cannot say inf as number: not a finite number"),
        (10**16, "cannot say 10000000000000000 as number: too large (say it as digits)"),
        (True, "cannot say a bool as number"),
        (None, "cannot say a NoneType as number"),
        ([1], "cannot say a list as number"),
        (date(2026, 1, 1), "cannot say a date as number"),
    ],
)
def test_bad_numbers(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        say_text("number", value, "en")  # type: ignore[arg-type]
    assert str(info.value) == message


# --- digits --------------------------------------------------------------------------------


def test_digits() -> None:
    assert say_text("digits", "0123456789", "zh") == "零一二三四五六七八九"
    assert say_text("digits", "0123456789", "en") == "zero one two three four five six seven eight nine"
    assert say_text("digits", 4001, "en") == "four zero zero one"
    assert say_text("digits", 0, "zh") == "零"


def test_digits_of_a_phone_number() -> None:
    number = "+86 (138) 0013-8000"
    assert say_text("digits", number, "zh") == "加八六一三八零零一三八零零零"
    assert say_text("digits", number, "zh", phone_style=True) == "加八六幺三八零零幺三八零零零"
    assert say_text("digits", number, "en") == "plus eight six one three eight zero zero one three eight zero zero zero"
    assert say_text("digits", "1", "en", phone_style=True) == "one"  # 幺 is Mandarin only


def test_digits_with_dtmf_keys() -> None:
    assert say_text("digits", "12*#", "zh") == "一二星号井号"
    assert say_text("digits", "12*#", "en") == "one two star pound"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12a", "cannot say '12a' as digits: unexpected character 'a'"),
        ("", "cannot say '' as digits: there are no digits"),
        (" - ", "cannot say ' - ' as digits: there are no digits"),
        (-5, "cannot say -5 as digits: give a string or a non-negative integer"),
        (1.5, "cannot say 1.5 as digits: give a string or a non-negative integer"),
        (True, "cannot say True as digits: give a string or a non-negative integer"),
        ("١٢", "cannot say '١٢' as digits: unexpected character '١'"),
    ],
)
def test_bad_digits(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        say_text("digits", value, "zh")  # type: ignore[arg-type]
    assert str(info.value) == message


# --- amount ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "zh"),
    [
        (Decimal("123.45"), "一百二十三元四角五分"),
        (123, "一百二十三元整"),
        ("123.00", "一百二十三元整"),
        (123.4, "一百二十三元四角"),
        (Decimal("123.05"), "一百二十三元零五分"),
        (1.01, "一元零一分"),
        (0.45, "四角五分"),
        (0.05, "五分"),
        (0.5, "五角"),
        (0, "零元"),
        (10, "十元整"),
        (10010.1, "一万零一十元一角"),
        (100000000, "一亿元整"),
        (-12.3, "负十二元三角"),
        ("0.455", "四角六分"),  # rounded half up to the cent
        ("0.004", "零元"),
        ("-0.004", "零元"),  # rounds to zero: no minus
    ],
)
def test_amount_zh_cny(value: SayValue, zh: str) -> None:
    assert say_text("amount", value, "zh") == zh
    assert say_text("amount", value, "zh", currency="CNY") == zh


@pytest.mark.parametrize(
    ("value", "en"),
    [
        (Decimal("123.45"), "one hundred twenty-three dollars and forty-five cents"),
        (123, "one hundred twenty-three dollars"),
        (1, "one dollar"),
        (1.01, "one dollar and one cent"),
        (0.45, "forty-five cents"),
        (0.01, "one cent"),
        (0, "zero dollars"),
        (1000000, "one million dollars"),
        (-2.5, "minus two dollars and fifty cents"),
        ("19.999", "twenty dollars"),
    ],
)
def test_amount_en_usd(value: SayValue, en: str) -> None:
    assert say_text("amount", value, "en") == en
    assert say_text("amount", value, "en", currency="USD") == en


def test_amount_other_currency_in_each_language() -> None:
    assert say_text("amount", "123.45", "zh", currency="USD") == "一百二十三美元四十五美分"
    assert say_text("amount", "5", "zh", currency="USD") == "五美元整"
    assert say_text("amount", "0.3", "zh", currency="USD") == "三十美分"
    assert say_text("amount", "123.45", "en", currency="CNY") == "one hundred twenty-three yuan and forty-five fen"
    assert say_text("amount", "1", "en", currency="CNY") == "one yuan"


def test_unknown_currency() -> None:
    with pytest.raises(ValueError, match=r"^unknown currency 'EUR' \(expected one of: CNY, USD\)$"):
        say_text("amount", 1, "en", currency="EUR")


# --- date, time, datetime ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        (date(2026, 11, 23), "二零二六年十一月二十三日", "November twenty-third, twenty twenty-six"),
        ("2026-11-23", "二零二六年十一月二十三日", "November twenty-third, twenty twenty-six"),
        (datetime(2026, 1, 1, 23, 59), "二零二六年一月一日", "January first, twenty twenty-six"),
        ("2026-11-23T10:00+08:00", "二零二六年十一月二十三日", "November twenty-third, twenty twenty-six"),
        (date(2000, 2, 2), "二零零零年二月二日", "February second, two thousand"),
        (date(2005, 3, 10), "二零零五年三月十日", "March tenth, two thousand five"),
        (date(2010, 4, 11), "二零一零年四月十一日", "April eleventh, twenty ten"),
        (date(1999, 5, 12), "一九九九年五月十二日", "May twelfth, nineteen ninety-nine"),
        (date(1905, 6, 20), "一九零五年六月二十日", "June twentieth, nineteen oh five"),
        (date(1900, 7, 21), "一九零零年七月二十一日", "July twenty-first, nineteen hundred"),
        (date(2100, 8, 22), "二一零零年八月二十二日", "August twenty-second, twenty-one hundred"),
        (date(2026, 9, 30), "二零二六年九月三十日", "September thirtieth, twenty twenty-six"),
        (date(2026, 12, 31), "二零二六年十二月三十一日", "December thirty-first, twenty twenty-six"),
        (date(2026, 10, 13), "二零二六年十月十三日", "October thirteenth, twenty twenty-six"),
    ],
)
def test_dates(value: SayValue, zh: str, en: str) -> None:
    assert say_text("date", value, "zh") == zh
    assert say_text("date", value, "en") == en


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        (time(15, 15), "下午三点十五分", "three fifteen PM"),
        ("15:15", "下午三点十五分", "three fifteen PM"),
        ("15:15:59", "下午三点十五分", "three fifteen PM"),  # seconds are not said
        (time(15, 0), "下午三点", "three o'clock PM"),
        (time(0, 0), "凌晨零点", "twelve o'clock AM"),
        (time(0, 30), "凌晨零点三十分", "twelve thirty AM"),
        (time(2, 5), "凌晨两点零五分", "two oh five AM"),
        (time(6, 0), "上午六点", "six o'clock AM"),
        (time(9, 30), "上午九点三十分", "nine thirty AM"),
        (time(11, 59), "上午十一点五十九分", "eleven fifty-nine AM"),
        (time(12, 0), "中午十二点", "twelve o'clock PM"),
        (time(12, 10), "中午十二点十分", "twelve ten PM"),
        (time(13, 1), "下午一点零一分", "one oh one PM"),
        (time(14, 20), "下午两点二十分", "two twenty PM"),
        (time(17, 45), "下午五点四十五分", "five forty-five PM"),
        (time(18, 0), "晚上六点", "six o'clock PM"),
        (time(23, 59), "晚上十一点五十九分", "eleven fifty-nine PM"),
        (datetime(2026, 11, 23, 8, 5), "上午八点零五分", "eight oh five AM"),
        ("2026-11-23T20:40", "晚上八点四十分", "eight forty PM"),
    ],
)
def test_times(value: SayValue, zh: str, en: str) -> None:
    assert say_text("time", value, "zh") == zh
    assert say_text("time", value, "en") == en


def test_datetime() -> None:
    moment = datetime(2026, 11, 23, 15, 15, tzinfo=timezone(timedelta(hours=8)))
    assert say_text("datetime", moment, "zh") == "二零二六年十一月二十三日下午三点十五分"
    assert say_text("datetime", moment, "en") == "November twenty-third, twenty twenty-six, at three fifteen PM"
    assert say_text("datetime", "2026-11-23T15:15+08:00", "zh") == "二零二六年十一月二十三日下午三点十五分"
    nine = "November twenty-third, twenty twenty-six, at nine o'clock AM"
    assert say_text("datetime", "2026-11-23 09:00", "en") == nine


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("date", "23/11/2026", "cannot say '23/11/2026': not an ISO 8601 date or time"),
        ("date", "2026-02-30", "cannot say '2026-02-30': not an ISO 8601 date or time"),
        ("time", "3pm", "cannot say '3pm': not an ISO 8601 date or time"),
        ("time", "25:00", "cannot say '25:00': not an ISO 8601 date or time"),
        ("datetime", "tomorrow", "cannot say 'tomorrow': not an ISO 8601 date or time"),
        ("date", 20261123, "cannot say a int as a date"),
        ("time", None, "cannot say a NoneType as a time"),
        ("datetime", date(2026, 11, 23), "cannot say a date as a datetime"),
    ],
)
def test_bad_dates_and_times(kind: str, value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        say_text(kind, value, "en")  # type: ignore[arg-type]
    assert str(info.value) == message


# --- kind and language ---------------------------------------------------------------------------


def test_unknown_kind() -> None:
    with pytest.raises(ValueError) as info:
        say_text("money", 1, "en")
    assert str(info.value) == "unknown say kind 'money' (expected one of: digits, number, amount, date, time, datetime)"


@pytest.mark.parametrize("lang", ["fr", "ZH", "zh-CN", ""])
def test_unknown_language(lang: str) -> None:
    with pytest.raises(ValueError) as info:
        say_text("number", 1, lang)
    assert str(info.value) == f"unknown say language {lang!r} (expected one of: zh, en)"


@pytest.mark.parametrize("kind", SAY_KINDS)
@pytest.mark.parametrize("lang", SAY_LANGS)
def test_every_kind_in_every_language_gives_text(kind: str, lang: str) -> None:
    value = "2026-11-23T15:15" if kind in ("date", "time", "datetime") else "1234"
    text = say_text(kind, value, lang)
    assert text and text == text.strip()
    assert not any(ch.isdigit() for ch in text)  # everything is in words
