"""
Prices, sizes and collateral amounts: from the decimal numbers a trader thinks in to
the integers the wire carries, and back, exactly or not at all.

A market's ``priceDecimals`` and ``sizeDecimals`` (from ``ratchet_getConfig``) give
the meaning of one wire unit: a wire price of 1 is ``10^-priceDecimals`` USD per unit
of the asset, a wire size of 1 is ``10^-sizeDecimals`` units. A wire price must be a
multiple of ``tickSize`` and below ``tickSize * 2^24``; a wire size a multiple of
``lotSize`` (docs/protocol.md, section 9.4). Collateral amounts are in the token's
base units (``collateralDecimals``, 6).

The conversion never rounds. A value that does not land exactly on the grid (a price
between two ticks, a size between two lots, more decimals than the unit has) raises
:class:`UnitError` naming the market, the value, the grid and the nearest valid
values, so a program that computed ``60000.5`` learns it at once instead of trading
at a price it did not choose. Values are ``Decimal``, ``str`` (``"60000.5"``) or
``int`` (an exact whole number of dollars or asset units); ``float`` is refused with
``TypeError``: a binary float such as ``0.1`` is not the decimal number it prints as.
"""

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from .errors import SdkError

MAX_TICKS: Final = 1 << 24
"""A wire price divided by the tick size must be below this (docs/protocol.md, 10)."""

MAX_UINT64: Final = (1 << 64) - 1
"""The largest wire size, price or amount (``uint64``)."""

MAX_EXPONENT: Final = 40
"""Decimal exponents beyond +-this are refused before any arithmetic (no wire value is
anywhere near 10^40, and ``Decimal("1e999999999")`` must not become a billion-digit
integer)."""

DecimalLike = Decimal | str | int
"""What the SDK takes for a price, size or amount."""


class UnitError(SdkError, ValueError):
    """A price, size or amount that is not exactly representable on the market's grid
    (or in the collateral's base units), negative, zero where that is not allowed, or
    out of range. Nothing is rounded: choose one of the values the message suggests."""


def to_decimal(value: object, what: str) -> Decimal:
    """``value`` as a finite ``Decimal``: ``Decimal``, ``str`` or ``int``; ``TypeError``
    for a ``float`` (or ``bool``, or anything else), :class:`UnitError` for a string that
    is not a number, NaN or infinity."""
    if isinstance(value, float):
        raise TypeError(
            f"{what}: got the float {value!r}; use Decimal or str (a float is not an exact "
            "decimal number)"
        )
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise TypeError(f"{what}: expected Decimal, str or int, got {type(value).__name__}")
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise UnitError(f"{what} {value!r} is not a decimal number") from None
    else:
        number = Decimal(value)
    if not number.is_finite():
        raise UnitError(f"{what} {value} is not a finite number")
    return number


def _fraction(value: Decimal, decimals: int, what: str) -> tuple[int, int]:
    """``value * 10^decimals`` as ``(numerator, denominator)``, the denominator a power of
    ten (1 when it is a whole number). Exact: no decimal context, no rounding."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), "finite"
    zeros = len(digits) - len(bytes(digits).rstrip(b"\x00"))  # trailing zeros: 1.500 = 1.5
    if zeros == len(digits):
        return 0, 1
    digits, exponent = digits[: len(digits) - zeros], exponent + zeros
    coefficient = int("".join(map(str, digits))) * (-1 if sign else 1)
    if exponent + len(digits) > MAX_EXPONENT:
        raise UnitError(f"{what} {plain(value)} is out of range")
    shift = exponent + decimals
    if shift >= 0:
        return coefficient * 10**shift, 1
    if shift < -MAX_EXPONENT:
        raise UnitError(f"{what} {plain(value)} has far too many decimal places")
    return coefficient, 10**-shift


def scale_exactly(value: Decimal, decimals: int, what: str) -> int:
    """``value * 10^decimals`` as an integer; :class:`UnitError` if that is not a whole
    number (``value`` has more than ``decimals`` decimal places) or is absurdly large."""
    numerator, denominator = _fraction(value, decimals, what)
    if numerator % denominator:
        raise UnitError(
            f"{what} {plain(value)} has more than the {decimals} decimal places allowed"
        )
    return numerator // denominator


def on_grid(value: Decimal, decimals: int, step: int, what: str, noun: str) -> int:
    """``value * 10^decimals`` as an integer multiple of ``step``; :class:`UnitError`
    naming the two nearest multiples (as decimals) if it is not one."""
    numerator, denominator = _fraction(value, decimals, what)
    grid = denominator * step
    if numerator % grid == 0:
        return numerator // denominator
    low = numerator // grid * step
    nearest = (
        f"{plain(from_wire(low, decimals))} or {plain(from_wire(low + step, decimals))}"
        if low > 0
        else plain(from_wire(step, decimals))
    )
    raise UnitError(
        f"{what} {plain(value)} is not a multiple of the {noun} "
        f"{plain(from_wire(step, decimals))}; nearest valid: {nearest}"
    )


def from_wire(wire: int | str, decimals: int) -> Decimal:
    """A wire integer (or its decimal string) as the decimal number it stands for."""
    return Decimal(f"{int(wire)}E-{decimals}")  # exact: the constructor never rounds


def plain(value: Decimal) -> str:
    """``value`` in positional notation without trailing zeros (``60000``, ``0.00001``);
    scientific notation for a value too long to read that way."""
    if abs(value.adjusted()) > 30:
        return str(value)
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


@dataclass(frozen=True)
class Market:
    """One market's grid, from the market objects of ``ratchet_getConfig`` or
    ``ratchet_getMarkets``."""

    id: int
    """The market id the wire carries."""

    symbol: str
    """E.g. ``BTC-PERP``."""

    tick_size: int
    """Wire prices are multiples of this."""

    lot_size: int
    """Wire sizes are multiples of this."""

    price_decimals: int
    """A wire price of 1 is ``10^-price_decimals`` USD per unit."""

    size_decimals: int
    """A wire size of 1 is ``10^-size_decimals`` units."""

    info: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The whole JSON object it was made from (margins, fees, ...)."""

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Market":
        """From a market object of ``ratchet_getConfig.markets``."""
        return cls(
            id=int(obj["id"]),
            symbol=str(obj["symbol"]),
            tick_size=int(obj["tickSize"]),
            lot_size=int(obj["lotSize"]),
            price_decimals=int(obj["priceDecimals"]),
            size_decimals=int(obj["sizeDecimals"]),
            info=dict(obj),
        )

    @property
    def tick(self) -> Decimal:
        """The tick as a decimal price (USD per unit)."""
        return from_wire(self.tick_size, self.price_decimals)

    @property
    def lot(self) -> Decimal:
        """The lot as a decimal size (units of the asset)."""
        return from_wire(self.lot_size, self.size_decimals)

    @property
    def max_price(self) -> Decimal:
        """The highest valid price."""
        return from_wire((MAX_TICKS - 1) * self.tick_size, self.price_decimals)

    def price_to_wire(self, price: object, *, allow_zero: bool = False) -> int:
        """The wire price of ``price`` (USD per unit). :class:`UnitError` unless it is an
        exact multiple of the tick, positive (or 0, a market order, with ``allow_zero``)
        and below ``tick * 2^24``; ``TypeError`` for a float."""
        what = f"{self.symbol}: price"
        number = to_decimal(price, what)
        self._check_sign(number, what, allow_zero)
        wire = on_grid(number, self.price_decimals, self.tick_size, what, "tick")
        if wire // self.tick_size >= MAX_TICKS:
            raise UnitError(
                f"{what} {plain(number)} is above the highest valid price {plain(self.max_price)}"
            )
        return wire

    def size_to_wire(self, size: object) -> int:
        """The wire size of ``size`` (units of the asset). :class:`UnitError` unless it is
        a positive exact multiple of the lot that fits a ``uint64``; ``TypeError`` for a
        float."""
        what = f"{self.symbol}: size"
        number = to_decimal(size, what)
        self._check_sign(number, what, allow_zero=False)
        wire = on_grid(number, self.size_decimals, self.lot_size, what, "lot")
        if wire > MAX_UINT64:
            raise UnitError(f"{what} {plain(number)} is out of range")
        return wire

    def price_from_wire(self, wire: int | str) -> Decimal:
        """The decimal price of a wire price."""
        return from_wire(wire, self.price_decimals)

    def size_from_wire(self, wire: int | str) -> Decimal:
        """The decimal size of a wire size (a position's signed size too)."""
        return from_wire(wire, self.size_decimals)

    @staticmethod
    def _check_sign(number: Decimal, what: str, allow_zero: bool) -> None:
        if number < 0:
            raise UnitError(f"{what} {plain(number)} is negative")
        if number == 0 and not allow_zero:
            raise UnitError(f"{what} must be positive, got {plain(number)}")


@dataclass(frozen=True)
class Collateral:
    """The collateral token's base units (``collateralDecimals`` from getConfig)."""

    decimals: int = 6
    """A base unit is ``10^-decimals`` tokens (USD)."""

    symbol: str = "USD"
    """What the amounts are shown in."""

    def to_wire(self, amount: object, *, allow_zero: bool = False) -> int:
        """Base units of ``amount`` (tokens). :class:`UnitError` if it has more decimals
        than the token, is negative, zero (unless ``allow_zero``), or beyond ``uint64``;
        ``TypeError`` for a float."""
        what = "amount"
        number = to_decimal(amount, what)
        if number < 0:
            raise UnitError(f"{what} {plain(number)} is negative")
        if number == 0 and not allow_zero:
            raise UnitError(f"{what} must be positive, got {plain(number)}")
        wire = scale_exactly(number, self.decimals, what)
        if wire > MAX_UINT64:
            raise UnitError(f"{what} {plain(number)} is out of range")
        return wire

    def from_wire(self, wire: int | str) -> Decimal:
        """Tokens of a base-unit amount (signed amounts too, e.g. equity)."""
        return from_wire(wire, self.decimals)
