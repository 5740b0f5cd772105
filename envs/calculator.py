"""A safe, exact arithmetic evaluator for the ``calc`` tool.

Expressions are parsed with :mod:`ast` and walked node by node; nothing is ever passed to
``eval``. Numbers are :class:`fractions.Fraction`, so ``0.1 + 0.2`` is exactly ``0.3`` and results
are the same on every machine (replays compare observations character by character). Sizes are
bounded so that no expression can take long or use much memory.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

#: Longest expression accepted.
MAX_EXPR_LEN = 500
#: Most AST nodes accepted (bounds the work per expression).
MAX_NODES = 200
#: Numerators and denominators beyond this are refused (bounds memory and time).
MAX_MAGNITUDE = 10**40
#: Largest exponent accepted in ``**``.
MAX_EXPONENT = 128

_FUNCTIONS = ("abs", "round", "min", "max")


class CalcError(ValueError):
    """Raised when an expression is not valid, safe arithmetic; the message says how to fix it."""


def evaluate(expr: str) -> Fraction:
    """Evaluate an arithmetic expression exactly.

    Supports numbers, ``+ - * / // % **`` (integer exponents), parentheses and the functions
    ``abs``, ``round(x[, digits])``, ``min`` and ``max``.

    Args:
        expr: The expression, e.g. ``"(50 - 14*3) / 4"``.

    Returns:
        The exact value.

    Raises:
        CalcError: Syntax error, unsupported construct, division by zero or a number too large.

    >>> evaluate("(50 - 14*3) / 4")
    Fraction(2, 1)
    >>> try:
    ...     evaluate("14 x 3")
    ... except CalcError as exc:
    ...     print(exc)
    invalid syntax at column 4 of '14 x 3'; use numbers, + - * / // % **, parentheses, abs, round, min, max
    """
    if len(expr) > MAX_EXPR_LEN:
        raise CalcError(f"expression is {len(expr)} characters long, the limit is {MAX_EXPR_LEN}; split it into steps")
    if not expr.strip():
        raise CalcError("expression is empty; send e.g. '2 * (3 + 4)'")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise CalcError(
            f"invalid syntax{where} of {_quote(expr)}; use numbers, + - * / // % **, parentheses, {', '.join(_FUNCTIONS)}"
        ) from None
    except (ValueError, RecursionError, MemoryError):
        # ast.parse raises ValueError for NUL bytes and RecursionError/MemoryError for absurd nesting.
        raise CalcError(f"cannot parse {_quote(expr)}; use plain arithmetic") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise CalcError(f"expression has {nodes} parts, the limit is {MAX_NODES}; split it into steps")
    return _eval(tree.body)


def format_number(value: Fraction) -> str:
    """Render a value exactly when it has a finite decimal form, else to 12 significant digits.

    >>> format_number(Fraction(5, 2)), format_number(Fraction(-7)), format_number(Fraction(1, 3))
    ('2.5', '-7', '0.333333333333 (exactly 1/3)')
    """
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den == 1:
        text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    approx = format(Decimal(value.numerator) / Decimal(value.denominator), ".12g")
    return f"{approx} (exactly {value.numerator}/{value.denominator})"


def parse_number(text: str) -> Fraction:
    """Parse a submitted answer: ``42``, ``-3.5``, ``7/2``, ``$1,250.00``, ``1e3``.

    Raises:
        CalcError: ``text`` is not a number.

    >>> parse_number("$1,250.50")
    Fraction(2501, 2)
    """
    cleaned = text.strip().replace(",", "").replace("_", "")
    if cleaned.startswith("$"):
        cleaned = cleaned[1:].strip()
    elif cleaned.startswith("-$"):
        cleaned = "-" + cleaned[2:].strip()
    if not cleaned or len(cleaned) > 100:
        raise CalcError(f"{_quote(text)} is not a number; expected e.g. 42, 3.5 or 7/2")
    try:
        value = Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        raise CalcError(f"{_quote(text)} is not a number; expected e.g. 42, 3.5 or 7/2") from None
    _check_size(value)
    return value


def _quote(expr: str) -> str:
    short = expr if len(expr) <= 60 else expr[:57] + "..."
    return repr(short)


def _check_size(value: Fraction) -> Fraction:
    if abs(value.numerator) > MAX_MAGNITUDE or value.denominator > MAX_MAGNITUDE:
        raise CalcError("number too large for the calculator (limit 1e40); use smaller numbers")
    return value


_BINOPS: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: Fraction(a // b),
    ast.Mod: lambda a, b: a % b,
}

_OP_NAMES = {ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}


def _eval(node: ast.expr) -> Fraction:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CalcError(f"only numbers are allowed, found {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise CalcError("number out of range")
        # repr() gives the shortest decimal that round-trips, so 0.1 means exactly 1/10.
        return _check_size(Fraction(repr(value)) if isinstance(value, float) else Fraction(value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        operand = _eval(node.operand)
        return operand if isinstance(node.op, ast.UAdd) else -operand
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise CalcError(
                f"operator {_OP_NAMES.get(type(node.op), type(node.op).__name__)} is not supported; use + - * / // % **"
            )
        if right == 0 and isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):
            raise CalcError("division by zero")
        return _check_size(op(left, right))
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Name):
        hint = "; use * for multiplication" if node.id.lower() == "x" else ""
        raise CalcError(
            f"unknown name {node.id!r}{hint}; only numbers and the functions {', '.join(_FUNCTIONS)} are allowed"
        )
    raise CalcError(f"{type(node).__name__} is not arithmetic; use numbers, + - * / // % ** and parentheses")


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise CalcError("only whole-number exponents are supported (no roots)")
    exp = exponent.numerator
    if abs(exp) > MAX_EXPONENT:
        raise CalcError(f"exponent {exp} is too large (limit {MAX_EXPONENT})")
    if base == 0 and exp < 0:
        raise CalcError("division by zero")
    # Refuse before computing when the result surely has over 41 digits, so a 40-digit base
    # to the 128th power (5,000 digits) is never built just to be rejected.
    digits = max(len(str(abs(base.numerator))), len(str(base.denominator)))
    if (digits - 1) * abs(exp) > 41:
        raise CalcError("number too large for the calculator (limit 1e40); use smaller numbers")
    return _check_size(base**exp)


def _call(node: ast.Call) -> Fraction:
    name = node.func.id if isinstance(node.func, ast.Name) else None
    if name not in _FUNCTIONS:
        shown = name or _quote(ast.unparse(node.func))
        raise CalcError(f"unknown function {shown}(); available: {', '.join(_FUNCTIONS)}")
    if node.keywords:
        raise CalcError(f"{name}() takes positional arguments only")
    args = [_eval(arg) for arg in node.args]
    if name == "abs":
        if len(args) != 1:
            raise CalcError(f"abs() takes 1 argument, found {len(args)}")
        return abs(args[0])
    if name == "round":
        if len(args) not in (1, 2) or (len(args) == 2 and args[1].denominator != 1):
            raise CalcError("round() takes a number and optionally a whole number of digits")
        digits = int(args[1]) if len(args) == 2 else 0
        if abs(digits) > 40:
            raise CalcError("round() digits must be between -40 and 40")
        return _check_size(Fraction(round(args[0], digits)))
    if not args:
        raise CalcError(f"{name}() needs at least one argument")
    return min(args) if name == "min" else max(args)
