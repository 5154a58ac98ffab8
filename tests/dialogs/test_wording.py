"""Speech-friendly wording: numbers read one digit at a time, lists joined as people say them, URLs dropped
from anything spoken, and the last digits of a phone number."""

from __future__ import annotations

import pytest

from dialogs.wording import digit_by_digit, last_digits, no_urls, spoken_list


@pytest.mark.parametrize(
    ("value", "spoken"),
    [("481523", "4 8 1 5 2 3"), ("7", "7"), ("007", "0 0 7"), ("A2291", "A2291"), ("12-34", "12-34"), ("", "")],
)
def test_digit_by_digit_spaces_out_only_all_digit_values(value: str, spoken: str) -> None:
    assert digit_by_digit(value) == spoken


@pytest.mark.parametrize(
    ("items", "spoken"),
    [
        ([], ""),
        (["a"], "a"),
        (["a", "b"], "a and b"),
        (["a", "b", "c"], "a, b, and c"),
        (["a", "b", "c", "d"], "a, b, c, and d"),
    ],
)
def test_spoken_list_joins_items_as_people_say_them(items: list[str], spoken: str) -> None:
    assert spoken_list(items) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Reset it at https://larkspur.example/reset today.", "Reset it at today."),
        ("See http://x.example/a?b=c for more", "See for more"),
        ("Visit www.larkspur.example now", "Visit now"),
        ("Go to HTTPS://LOUD.EXAMPLE please", "Go to please"),
        ("No links here.", "No links here."),
        ("  extra   spaces  ", "extra spaces"),
    ],
)
def test_no_urls_drops_links_from_spoken_text(text: str, spoken: str) -> None:
    assert no_urls(text) == spoken


@pytest.mark.parametrize(
    ("phone", "count", "spoken"),
    [
        ("+15551230002", 4, "0 0 0 2"),
        ("+1 (555) 123-0004", 4, "0 0 0 4"),
        ("+15551230002", 2, "0 2"),
        ("12", 4, "1 2"),
        (None, 4, "on file"),
        ("", 4, "on file"),
        ("anonymous", 4, "on file"),
    ],
)
def test_last_digits_reads_the_end_of_a_phone_number(phone: str | None, count: int, spoken: str) -> None:
    assert last_digits(phone, count) == spoken
