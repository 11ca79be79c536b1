"""Words for the IVR ``say`` node, in Mandarin ("zh") and English ("en").

:func:`say_text` turns a value into the text a TTS engine reads aloud:
numbers are written out in words (TTS engines guess badly at "2026" or
"10010": a year, an amount, a phone number?), so the flow decides how a value
is spoken, not the synthesizer.

Kinds (:data:`SAY_KINDS`):

* ``digits``: each digit on its own (phone numbers, account numbers, codes);
  ``*``, ``#`` and ``+`` are spoken too, spaces, dashes, dots and brackets are
  skipped. In Mandarin ``phone_style=True`` says 1 as 幺, as when reading a
  phone number out.
* ``number``: an integer or decimal number; the fraction is read digit by
  digit after "point"/点, trailing zeros dropped (``1.50`` is "one point five").
* ``amount``: money rounded to cents (half up); ``currency`` is ``"CNY"``
  (default for zh) or ``"USD"`` (default for en).
* ``date``: zh 二零二六年十一月二十三日; en "November twenty-third, twenty twenty-six".
* ``time``: zh 下午三点十五分; en "three fifteen PM". Seconds are not spoken.
* ``datetime``: date then time, in the value's own wall-clock time (convert it
  to the caller's time zone first).

Dates and times may be given as ISO 8601 strings. Any problem with the kind,
the language or the value raises :class:`ValueError` with a message saying
which.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["SAY_CURRENCIES", "SAY_KINDS", "SAY_LANGS", "SayValue", "say_text"]

SAY_KINDS = ("digits", "number", "amount", "date", "time", "datetime")
SAY_LANGS = ("zh", "en")
SAY_CURRENCIES = ("CNY", "USD")

SayValue = str | int | float | Decimal | date | time | datetime

#: Numbers from this size on are refused: read them with ``digits`` instead.
NUMBER_LIMIT = 10**16

_ZH_DIGITS = "零一二三四五六七八九"
_EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_EN_SCALES = (
    (10**15, "quadrillion"), (10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand")
)
_EN_MONTHS = (
    "January February March April May June July August September October November December"
).split()
#: Ordinals that are not simply the cardinal + "th".
_EN_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}

#: Spoken symbols of ``digits`` (DTMF keys and the international prefix).
_SYMBOLS = {"zh": {"*": "星号", "#": "井号", "+": "加"}, "en": {"*": "star", "#": "pound", "+": "plus"}}
_DIGIT_SEPARATORS = frozenset(" -.()")

#: (main unit, fraction unit) per currency and language; English ones are (singular, plural).
_ZH_CURRENCY = {"CNY": ("元", None), "USD": ("美元", "美分")}
_EN_CURRENCY = {"CNY": (("yuan", "yuan"), ("fen", "fen")), "USD": (("dollar", "dollars"), ("cent", "cents"))}


def say_text(
    kind: str,
    value: SayValue,
    lang: str,
    *,
    currency: str | None = None,
    phone_style: bool = False,
) -> str:
    """The words for ``value`` said as ``kind`` in ``lang``; ValueError when it cannot be said."""
    if kind not in SAY_KINDS:
        raise ValueError(f"unknown say kind {kind!r} (expected one of: {', '.join(SAY_KINDS)})")
    if lang not in SAY_LANGS:
        raise ValueError(f"unknown say language {lang!r} (expected one of: {', '.join(SAY_LANGS)})")
    if currency is not None and currency not in SAY_CURRENCIES:
        raise ValueError(f"unknown currency {currency!r} (expected one of: {', '.join(SAY_CURRENCIES)})")
    zh = lang == "zh"
    if kind == "digits":
        return _say_digits(value, zh, phone_style)
    if kind == "number":
        return _say_number(_to_decimal(value, kind), zh)
    if kind == "amount":
        return _say_amount(_to_decimal(value, kind), zh, currency or ("CNY" if zh else "USD"))
    if kind == "date":
        return _say_date(_to_date(value), zh)
    if kind == "time":
        return _say_time(_to_time(value), zh)
    moment = _to_datetime(value)
    if zh:
        return _say_date(moment.date(), zh) + _say_time(moment.time(), zh)
    return f"{_say_date(moment.date(), zh)}, at {_say_time(moment.time(), zh)}"


# --- value conversion --------------------------------------------------------------


def _to_decimal(value: SayValue, kind: str) -> Decimal:
    """Any number (or numeric string) as an exact Decimal; floats via their shortest repr."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise ValueError(f"cannot say a {type(value).__name__} as {kind}")
    try:
        number = Decimal(str(value).strip()) if isinstance(value, (float, str)) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"cannot say {value!r} as {kind}: not a number") from None
    if not number.is_finite():
        raise ValueError(f"cannot say {value!r} as {kind}: not a finite number")
    if abs(number) >= NUMBER_LIMIT:
        raise ValueError(f"cannot say {value!r} as {kind}: too large (say it as digits)")
    return number


def _to_date(value: SayValue) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
        return _to_datetime(value).date()
    raise ValueError(f"cannot say a {type(value).__name__} as a date")


def _to_time(value: SayValue) -> time:
    if isinstance(value, datetime):
        return value.time()
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            pass
        return _to_datetime(value).time()
    raise ValueError(f"cannot say a {type(value).__name__} as a time")


def _to_datetime(value: SayValue) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"cannot say {value!r}: not an ISO 8601 date or time") from None
    raise ValueError(f"cannot say a {type(value).__name__} as a datetime")


# --- digits ------------------------------------------------------------------------------


def _say_digits(value: SayValue, zh: bool, phone_style: bool) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError(f"cannot say {value!r} as digits: give a string or a non-negative integer")
    words: list[str] = []
    for char in text:
        if "0" <= char <= "9":
            if zh:
                words.append("幺" if phone_style and char == "1" else _ZH_DIGITS[int(char)])
            else:
                words.append(_EN_ONES[int(char)])
        elif char in _SYMBOLS["en"]:
            words.append(_SYMBOLS["zh" if zh else "en"][char])
        elif char not in _DIGIT_SEPARATORS:
            raise ValueError(f"cannot say {value!r} as digits: unexpected character {char!r}")
    if not words:
        raise ValueError(f"cannot say {value!r} as digits: there are no digits")
    return ("" if zh else " ").join(words)


# --- numbers -----------------------------------------------------------------------------


def _split(number: Decimal) -> tuple[bool, int, str]:
    """(negative, integer part, fraction digits without trailing zeros)."""
    text = format(abs(number), "f")
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    negative = number < 0 and (int(whole) > 0 or bool(fraction))  # no "minus zero"
    return negative, int(whole), fraction


def _say_number(number: Decimal, zh: bool) -> str:
    negative, whole, fraction = _split(number)
    if zh:
        text = _zh_integer(whole)
        if fraction:
            text += "点" + "".join(_ZH_DIGITS[int(d)] for d in fraction)
        return "负" + text if negative else text
    text = _en_integer(whole)
    if fraction:
        text += " point " + " ".join(_EN_ONES[int(d)] for d in fraction)
    return "minus " + text if negative else text


def _zh_integer(n: int) -> str:
    """Chinese numerals with 万/亿 grouping: 10010 -> 一万零一十, 100000 -> 十万."""
    if n == 0:
        return "零"
    text = _zh_positive(n)
    # A leading 一十 is said 十 (十五, 十万), but only at the very start: 一百一十.
    return text[1:] if text.startswith("一十") else text


def _zh_positive(n: int) -> str:
    for unit_value, unit in ((10**8, "亿"), (10**4, "万")):
        if n >= unit_value:
            high, low = divmod(n, unit_value)
            text = _zh_positive(high) + unit
            if low:
                # A gap in the next group is read 零: 一万零五十, 一亿零一万.
                if low < unit_value // 10:
                    text += "零"
                text += _zh_positive(low)
            return text
    return _zh_below_10000(n)


def _zh_below_10000(n: int) -> str:
    """1..9999, with one 零 for each run of inner zeros: 1001 -> 一千零一."""
    text = ""
    pending_zero = False
    for digit, unit in zip(f"{n:04d}", ("千", "百", "十", "")):
        if digit == "0":
            pending_zero = bool(text)
        else:
            if pending_zero:
                text += "零"
                pending_zero = False
            text += _ZH_DIGITS[int(digit)] + unit
    return text


def _en_integer(n: int) -> str:
    """English words without "and": 123 -> one hundred twenty-three."""
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_EN_ONES[hundreds]} hundred" + (f" {_en_integer(rest)}" if rest else "")
    for scale, name in _EN_SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return f"{_en_integer(high)} {name}" + (f" {_en_integer(rest)}" if rest else "")
    raise AssertionError("unreachable")  # pragma: no cover


def _en_ordinal(n: int) -> str:
    words = _en_integer(n)
    head, sep, last = words.rpartition("-") if "-" in words else ("", "", words)
    if last in _EN_ORDINAL_WORDS:
        last = _EN_ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


# --- amounts ------------------------------------------------------------------------------


def _say_amount(number: Decimal, zh: bool, currency: str) -> str:
    cents_total = int(abs(number).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)
    whole, cents = divmod(cents_total, 100)
    negative = number < 0 and cents_total > 0
    text = _zh_amount(whole, cents, currency) if zh else _en_amount(whole, cents, currency)
    if negative:
        return ("负" if zh else "minus ") + text
    return text


def _zh_amount(whole: int, cents: int, currency: str) -> str:
    """一百二十三元四角五分 / 一百二十三元整 / 零元; dollars: 五美元二十美分."""
    unit, fraction_unit = _ZH_CURRENCY[currency]
    if not cents:
        return _zh_integer(whole) + unit + ("整" if whole else "")
    text = _zh_integer(whole) + unit if whole else ""
    if fraction_unit is not None:
        return text + _zh_integer(cents) + fraction_unit
    jiao, fen = divmod(cents, 10)
    if jiao:
        text += _ZH_DIGITS[jiao] + "角"
    elif whole:
        text += "零"  # 一元零五分
    if fen:
        text += _ZH_DIGITS[fen] + "分"
    return text


def _en_amount(whole: int, cents: int, currency: str) -> str:
    """one hundred twenty-three dollars and forty-five cents / zero dollars."""
    (unit, units), (cent, cents_word) = _EN_CURRENCY[currency]
    main = f"{_en_integer(whole)} {unit if whole == 1 else units}"
    fraction = f"{_en_integer(cents)} {cent if cents == 1 else cents_word}"
    if not cents:
        return main
    if not whole:
        return fraction
    return f"{main} and {fraction}"


# --- dates and times -------------------------------------------------------------------------


def _say_date(day: date, zh: bool) -> str:
    if zh:
        year = "".join(_ZH_DIGITS[int(d)] for d in str(day.year))
        return f"{year}年{_zh_integer(day.month)}月{_zh_integer(day.day)}日"
    return f"{_EN_MONTHS[day.month - 1]} {_en_ordinal(day.day)}, {_en_year(day.year)}"


def _en_year(year: int) -> str:
    """As years are said: twenty twenty-six, two thousand five, nineteen oh five."""
    if year < 1000 or year % 1000 == 0 or 2000 <= year < 2010:
        return _en_integer(year)
    high, low = divmod(year, 100)
    if low == 0:
        return f"{_en_integer(high)} hundred"
    if low < 10:
        return f"{_en_integer(high)} oh {_EN_ONES[low]}"
    return f"{_en_integer(high)} {_en_integer(low)}"


def _say_time(moment: time, zh: bool) -> str:
    hour, minute = moment.hour, moment.minute
    if zh:
        return _zh_time(hour, minute)
    suffix = "AM" if hour < 12 else "PM"
    spoken_hour = _en_integer(hour % 12 or 12)
    if minute == 0:
        return f"{spoken_hour} o'clock {suffix}"
    if minute < 10:
        return f"{spoken_hour} oh {_EN_ONES[minute]} {suffix}"
    return f"{spoken_hour} {_en_integer(minute)} {suffix}"


def _zh_time(hour: int, minute: int) -> str:
    """凌晨 0-5, 上午 6-11, 中午 12, 下午 13-17, 晚上 18-23, on a 12-hour clock (零点 at midnight)."""
    if hour < 6:
        period = "凌晨"
    elif hour < 12:
        period = "上午"
    elif hour < 13:
        period = "中午"
    elif hour < 18:
        period = "下午"
    else:
        period = "晚上"
    clock_hour = hour if hour <= 12 else hour - 12
    # The hour is counted with 两, never 二: 两点, 十二点.
    spoken_hour = "两" if clock_hour == 2 else _zh_integer(clock_hour)
    text = f"{period}{spoken_hour}点"
    if minute:
        text += ("零" if minute < 10 else "") + _zh_integer(minute) + "分"
    return text
