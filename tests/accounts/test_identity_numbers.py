"""Resident ID numbers (GB 11643) and unified social credit codes (GB 32100)
against published examples, valid and invalid."""

import datetime

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
        ("3604261991010100", "this one has 16"),
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


# Real-shaped numbers (generated, valid check digits) whose region code
# python-stdnum's table refuses for the holder's birth year, or does not
# know at all: the code names where the number was issued, often a district
# created, renamed or renumbered after the holder was born.
REGIONS_THAT_CHANGED = [
    ("330112", datetime.date(1980, 5, 17)),  # 杭州市临安区, since 2017 (临安市 330185 before)
    ("110115", datetime.date(1962, 11, 2)),  # 北京市大兴区, since 2001 (大兴县 110224 before)
    ("120116", datetime.date(1950, 1, 31)),  # 天津市滨海新区, since 2009
    ("510118", datetime.date(1965, 8, 8)),  # 成都市新津区, since 2020
    ("350112", datetime.date(1999, 12, 31)),  # 福州市长乐区, since 2017
    ("330114", datetime.date(1990, 3, 7)),  # 杭州市钱塘区, since 2021: not in the table at all
    ("330113", datetime.date(2001, 6, 1)),  # 杭州市临平区, since 2021: not in the table at all
    ("500118", datetime.date(1958, 4, 4)),  # 重庆市永川区 (2006), in 重庆 (50, since 1997)
    ("460321", datetime.date(1985, 2, 28)),  # 三沙市 area, 海南 (46, since 1988)
]


@pytest.mark.parametrize(("region", "born"), REGIONS_THAT_CHANGED)
def test_it_accepts_a_valid_number_whose_district_code_is_newer_than_its_holder(region, born):
    from stdnum.cn import ric
    from stdnum.exceptions import ValidationError

    number = generated_id_number(17, birth_date=born, region=region)
    # The library's table refuses it (or, for a code it lists without a
    # county, fails with a KeyError).
    with pytest.raises((ValidationError, KeyError)):
        ric.validate(number)
    assert id_number_clean(number) == number


@pytest.mark.parametrize(
    ("region", "born"),
    [
        ("110224", datetime.date(1975, 9, 9)),  # 北京市大兴县, retired in 2001: still valid IDs
        ("330185", datetime.date(1988, 1, 1)),  # 临安市, retired in 2017
        ("810000", datetime.date(1970, 7, 1)),  # a Hong Kong resident's residence permit
        ("820000", datetime.date(1971, 7, 1)),  # a Macao resident's residence permit
        ("830000", datetime.date(1972, 7, 1)),  # a Taiwan resident's residence permit
        ("110101", datetime.date(1886, 6, 25)),  # a holder born in the 1880s
    ],
)
def test_it_accepts_retired_codes_and_residence_permits(region, born):
    number = generated_id_number(3, birth_date=born, region=region)
    assert id_number_clean(number) == number


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("99042619910101007", "starts with 99, which is no province"),
        ("00010119910101007", "starts with 00, which is no province"),
        ("72010119910101007", "starts with 72, which is no province"),
        ("11010119910230007", "birth date (digits 7 to 14: 19910230) is not a real date"),
        ("11010118000101007", "birth date (digits 7 to 14: 18000101) is not a real date"),
        ("11010120990101007", "birth date (2099-01-01) is in the future"),
    ],
)
def test_it_names_the_actual_problem_of_a_number_with_a_valid_check_digit(body, message):
    from stdnum.cn import ric

    number = body + ric.calc_check_digit(body + "0")
    with pytest.raises(AccountsError) as err:
        id_number_clean(number)
    assert message in err.value.message
    assert err.value.code == "invalid_id_number"


def test_the_messages_are_translated():
    from django.utils import translation

    with translation.override("zh-hans"), pytest.raises(AccountsError) as err:
        id_number_clean("360426199101010072")
    assert "校验码" in err.value.message
