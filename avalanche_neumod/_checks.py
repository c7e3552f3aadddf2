"""Argument checks shared by the constructors (no dependencies inside the package).

Out-of-range or non-finite numbers raise ``ValueError`` naming the argument:
NaN compares false with everything, so a bare ``if x < 0: raise`` lets ``nan``
through, and ``inf`` passes any lower bound. These helpers refuse both.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional


def _range_text(
    low: Optional[float], high: Optional[float], low_open: bool, high_open: bool
) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "finite"


def check_real(
    name: str,
    value: Any,
    low: Optional[float] = None,
    high: Optional[float] = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float if it is a finite real number in the range, else ``ValueError``.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; ``None`` means
    unbounded on that side (the value must still be finite). Booleans are refused.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
    if not ok:
        rng = _range_text(low, high, low_open, high_open)
        what = "a finite number" if rng == "finite" else f"a finite number {rng}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return v


def check_integer(
    name: str,
    value: Any,
    low: Optional[int] = None,
    high: Optional[int] = None,
    *,
    none_ok: bool = False,
) -> Optional[int]:
    """``value`` as an int if it is an integer (an integral float is accepted) in
    ``[low, high]``, else ``ValueError``; NaN, inf and booleans are refused.
    With ``none_ok``, ``None`` is accepted and returned."""
    if value is None and none_ok:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and not isinstance(value, numbers.Integral):
        ok = math.isfinite(float(value)) and float(value).is_integer()
    if ok:
        v = int(value)
        ok = (low is None or v >= low) and (high is None or v <= high)
    if not ok:
        rng = _range_text(low, high, False, False)
        what = "an integer" if rng == "finite" else f"an integer {rng}"
        what += " (or None)" if none_ok else ""
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return v
