"""Resident ID numbers (GB 11643) and unified social credit codes (GB 32100)
against published examples, valid and invalid."""

import pytest

from apps.accounts.errors import AccountsError
from apps.accounts.testdata import generated_id_number, generated_uscc
from apps.accounts.validation import id_number_clean, uscc_clean

# The published example of python-stdnum's cn.ric documentation.
VALID_ID = "360426199101010071"
# The published example of python-stdnum's cn.uscc documentation.
VALID_USCC = "91110000600037341L"


def test_it_accepts_the_published_valid_id_number():
    assert id_number_clean(VALID_ID) == VALID_ID


def test_it_accepts_an_id_number_with_spaces_and_a_lowercase_x():
    number = generated_id_number(3)
    spaced = f"{number[:6]} {number[6:14]} {number[14:]}".lower()
    assert id_number_clean(spaced) == number


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("360426199101010072", "check digit"),  # one digit off
        ("36042619910101007", "18 characters"),  # too short
        ("36042619910101007A", "17 digits"),  # letter other than X
        ("3604261991O1010071", "17 digits"),  # letter O for a zero
        ("360426199113010075", "birth date"),  # month 13 (check digit made valid)
        ("990426199101010072", "check digit"),
        ("", "required"),
    ],
)
def test_it_refuses_a_malformed_id_number_with_a_specific_message(value, message):
    if value == "360426199113010075":
        from stdnum.cn import ric

        value = value[:17] + ric.calc_check_digit(value)
    with pytest.raises(AccountsError) as err:
        id_number_clean(value)
    assert message in err.value.message
    assert err.value.field == "id_number"


def test_it_accepts_the_published_valid_credit_code():
    assert uscc_clean(VALID_USCC) == VALID_USCC


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("91110000600037341M", "check character"),
        ("A1110000600037341L", "capital letters"),
        ("12345", "18 characters"),
        ("", "required"),
    ],
)
def test_it_refuses_a_malformed_credit_code_with_a_specific_message(value, message):
    with pytest.raises(AccountsError) as err:
        uscc_clean(value)
    assert message in err.value.message


def test_generated_identities_carry_valid_check_digits():
    for seq in range(50):
        assert id_number_clean(generated_id_number(seq)) == generated_id_number(seq)
        assert uscc_clean(generated_uscc(seq)) == generated_uscc(seq)
