import pytest

from apps.core.money import Money


def test_money_is_integer_minor_units_with_a_currency():
    assert Money(123456).format() == "¥1,234.56"
    assert Money(-5).format() == "-¥0.05"
    assert Money(100) + Money(250) == Money(350)


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(12.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unsupported currency"):
        Money(1, "XXX")


@pytest.mark.parametrize(
    ("amount", "rate_bp", "fee"),
    [(10_000, 38, 38), (100, 38, 0), (132, 38, 1), (1_000_000, 38, 3_800), (131, 38, 0)],
)
def test_fee_rounds_half_up_in_integer_arithmetic(amount, rate_bp, fee):
    assert Money(amount).fee(rate_bp) == Money(fee)
