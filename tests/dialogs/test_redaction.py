"""Redaction: card numbers (digits, grouped, spoken), ID numbers and one-time codes are masked; order and phone
numbers are kept; the Luhn check agrees with known card vectors; and redaction is stable under repetition.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dialogs.redaction import CARD_MASK, CODE_MASK, ID_MASK, luhn_valid, redact

SPOKEN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def spoken(digits: str) -> str:
    """Digits as a recogniser writes them when a caller reads them out: "four one one one ..."."""
    return " ".join(SPOKEN[int(d)] for d in digits)


def luhn_check_digit(payload: str) -> str:
    """The check digit that makes `payload` + digit Luhn-valid (independent of dialogs.redaction)."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


# --- luhn_valid ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),  # Visa test card
        ("4111111111111112", False),
        ("5555555555554444", True),  # Mastercard test card
        ("378282246310005", True),  # Amex test card, 15 digits
        ("6011111111111117", True),  # Discover test card
        ("79927398713", True),  # the classic worked example
        ("79927398710", False),
        ("1234567812345678", False),
    ],
)
def test_luhn_valid_agrees_with_known_vectors(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@given(st.text(alphabet="0123456789", min_size=12, max_size=18))
def test_luhn_valid_accepts_exactly_one_check_digit_per_payload(payload: str) -> None:
    valid = [d for d in "0123456789" if luhn_valid(payload + d)]
    assert valid == [luhn_check_digit(payload)]


# --- what is masked ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card is 4111111111111111", f"my card is {CARD_MASK}"),
        ("my card is 4111 1111 1111 1111 thanks", f"my card is {CARD_MASK} thanks"),
        ("card 4111-1111-1111-1111.", f"card {CARD_MASK}."),
        ("amex 3782 822463 10005 please", f"amex {CARD_MASK} please"),  # 15 digits, 4-6-5 grouping
        ("it is 4222222222222", f"it is {CARD_MASK}"),  # 13 digits
        ("it is 4111111111111111110", f"it is {CARD_MASK}"),  # 19 digits, Luhn-valid
        (f"the card is {spoken('4111111111111111')} okay", f"the card is {CARD_MASK} okay"),
        (f"number {spoken('5555555555554444')}", f"number {CARD_MASK}"),
        ("my social is 123-45-6789", f"my social is {ID_MASK}"),
        ("it's 123-45-6789 I think", f"it's {ID_MASK} I think"),  # SSN shape alone is enough
        ("my social security number is 123456789", f"my social security number is {ID_MASK}"),
        ("passport 987654321", f"passport {ID_MASK}"),
        ("my code is 123456", f"my code is {CODE_MASK}"),
        ("the passcode 4821 did not work", f"the passcode {CODE_MASK} did not work"),
        ("my PIN is 4321", f"my PIN is {CODE_MASK}"),
        ("the verification code is 58 21 93", f"the verification code is {CODE_MASK}"),
        ("the code they texted was 90210417", f"the code they texted was {CODE_MASK}"),
        ("my pin is four three two one", f"my pin is {CODE_MASK}"),
    ],
)
def test_redact_masks_cards_ids_and_codes(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "my order number is 481523",
        "order 481523 has not arrived",
        "the order number is 4 8 1 5 2 3",
        "order 4111111111111112 was charged twice",  # 16 digits, not Luhn-valid: an order number
        "reference 1234567812345678",
        "call me back at 415 555 0123",
        "my number is +1 415-555-0123",
        "it's 555-123-4567",
        "call +44 20 7946 0958 instead",
        "I have one question about two items",
        "Where is my order? It was due on the 12th.",
        "the code did not work",  # context without digits
    ],
)
def test_redact_keeps_order_and_phone_numbers(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", ["I was hoping my order 481523 had shipped", "the shipping order is 481523"])
def test_redact_keeps_order_number_after_words_that_merely_contain_pin(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1111 12 27",
        f"card {spoken('4111111111111111')} one two two seven",
    ],
)
def test_redact_masks_a_card_number_read_together_with_its_expiry(text: str) -> None:
    out = redact(text)
    assert "4111 1111 1111 1111" not in out
    assert spoken("4111111111111111") not in out
    assert CARD_MASK in out


def test_redact_leaves_text_without_digits_unchanged() -> None:
    text = "Hi, I'd like to talk to a real person about my bill, please."
    assert redact(text) == text


# --- properties ----------------------------------------------------------------------------------------------

# Words that carry no digits, including the context words redaction looks for.
PLAIN_WORDS = (
    "my", "card", "number", "is", "please", "charge", "it", "to", "the", "code", "pin", "order",
    "social", "security", "thanks", "and", "visa", "expires", "passport", "call", "me", "at",
)  # fmt: skip

luhn_cards = st.text(alphabet="0123456789", min_size=15, max_size=15).map(lambda p: p + luhn_check_digit(p))
card_layouts = st.sampled_from(["plain", "spaces", "dashes", "spoken"])


def lay_out(card: str, layout: str) -> str:
    groups = [card[i : i + 4] for i in range(0, 16, 4)]
    return {
        "plain": card,
        "spaces": " ".join(groups),
        "dashes": "-".join(groups),
        "spoken": spoken(card),
    }[layout]


@given(
    card=luhn_cards,
    layout=card_layouts,
    before=st.lists(st.sampled_from(PLAIN_WORDS), max_size=8),
    after=st.lists(st.sampled_from(PLAIN_WORDS), max_size=8),
)
def test_a_luhn_valid_16_digit_card_in_a_sentence_never_survives_redact(
    card: str, layout: str, before: list[str], after: list[str]
) -> None:
    sentence = " ".join([*before, lay_out(card, layout), *after])
    out = redact(sentence)
    assert CARD_MASK in out
    assert not re.search(r"\d", out)
    assert not re.search(rf"\b({'|'.join(SPOKEN)})\b", out)


tokens = st.one_of(
    st.sampled_from(PLAIN_WORDS),
    st.from_regex(r"\d{1,6}", fullmatch=True),
    st.from_regex(r"\d{3}-\d{2}-\d{4}", fullmatch=True),
    luhn_cards,
)


@example(words=["123-45-6789", "and", "123456"])
@example(words=["code", "0000", "000-01-0000", "000-00-0000"])
@example(words=["pin", "1-2-3-4-5-6-7-8", "and", "so", "then", "1234"])
@given(words=st.lists(tokens, max_size=14))
def test_redact_is_idempotent(words: list[str]) -> None:
    once = redact(" ".join(words))
    assert redact(once) == once


PII_FORMS = [  # (what the caller said, what must not survive)
    ("my card is 4111 1111 1111 1111", "4111 1111"),
    ("it's 4111-1111-1111-1111", "4111-1111"),
    ("the card number is 4111.1111.1111.1111", "4111.1111"),
    ("four one one one one one one one one one one one one one one one", "one one one one one one"),
    ("forty one, eleven, eleven, eleven, eleven, eleven, eleven, eleven", "eleven, eleven"),
    ("four one double one one one one one one one one one one one one one", "double one"),
    ("my social is 123-45-6789", "123-45-6789"),
    ("my social security number is one two three four five six seven eight nine", "seven eight nine"),
    ("the code is 482911", "482911"),
    ("the code they texted me a few minutes ago on my phone is 482911", "482911"),
    ("verification code forty eight twenty nine eleven", "twenty nine"),
    ("my pin is 4 4 2 1", "4 4 2 1"),
    ("email me at jane.doe@example.com", "jane.doe@example.com"),
    ("it's jane dot doe at gmail dot com", "jane dot doe"),
]


@pytest.mark.parametrize(("said", "secret"), PII_FORMS, ids=[f"form{i}" for i in range(len(PII_FORMS))])
def test_every_spoken_and_written_form_of_a_secret_is_masked(said: str, secret: str) -> None:
    assert secret not in redact(said)
    assert redact(redact(said)) == redact(said)


@pytest.mark.parametrize(
    "text",
    [
        "I got the code but my order number is 481523",
        "the code is fine but my phone number is 555 123 4567",
        "the total was 12.50 dollars",
        "my order number is four eight one five two three",
    ],
)
def test_numbers_agents_need_survive_beside_the_new_forms(text: str) -> None:
    assert redact(text) == text
