"""Money: an integer of minor units plus its ISO currency. Never a float."""

from __future__ import annotations

from dataclasses import dataclass

# minor units per currency; CNY first, others as the business adds them
CURRENCY_EXPONENT = {"CNY": 2}
CURRENCY_SYMBOL = {"CNY": "¥"}
BASIS_POINTS = 10_000


@dataclass(frozen=True, slots=True, order=False)
class Money:
    amount: int
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise TypeError(
                f"Money amount must be an int of minor units, not {type(self.amount).__name__}"
            )
        if self.currency not in CURRENCY_EXPONENT:
            raise ValueError(f"unsupported currency {self.currency!r}")

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError("can only combine Money with Money")
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def fee(self, rate_bp: int) -> Money:
        """The fee at `rate_bp` basis points (38 = 0.38%), rounded half up."""
        if self.amount < 0:
            raise ValueError("fee of a negative amount")
        return Money((self.amount * rate_bp + BASIS_POINTS // 2) // BASIS_POINTS, self.currency)

    def format(self) -> str:
        """¥1,234.56"""
        exponent = CURRENCY_EXPONENT[self.currency]
        sign = "-" if self.amount < 0 else ""
        major, minor = divmod(abs(self.amount), 10**exponent)
        symbol = CURRENCY_SYMBOL.get(self.currency, self.currency + " ")
        return f"{sign}{symbol}{major:,}.{minor:0{exponent}d}"

    def __str__(self) -> str:
        return self.format()
