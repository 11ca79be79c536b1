"""Safe expressions for IVR ``condition`` and ``set`` nodes.

Flow authors write small Python-like expressions such as
``crm.customer.vip and len(digits(input)) == 4``. They come from tenants, so
nothing is ever handed to ``eval``: the source is parsed with
``ast.parse(mode="eval")``, every node is checked against a whitelist when the
flow is loaded (:func:`compile_expression`), and a tiny interpreter walks the
tree when the call reaches the node (:meth:`Expression.evaluate`).

The language:

* literals: strings, integers, floats, ``True``/``False``/``None`` (also
  spelled ``true``/``false``/``null`` as in JSON), list and tuple literals
  (both evaluate to lists);
* variable names; an undefined name is ``None`` (CRM data may be absent);
* ``a.b`` and ``a["b"]`` look a key up in a dict (missing key -> ``None``);
  ``a[0]`` indexes a list or string (out of range -> ``None``); looking
  anything up in ``None`` gives ``None``, so ``crm.customer.vip`` is ``None``
  when there is no ``crm`` at all. There is never Python attribute access;
* comparisons (chained too), ``in`` / ``not in``, ``is None`` style tests
  against ``None``/``True``/``False`` only, ``and`` / ``or`` / ``not``,
  ``a if cond else b``;
* ``+ - * / // %`` and unary ``-``/``+`` on numbers; ``+`` also joins two
  strings or two lists. No ``**``, no bit operations;
* calls to the functions in :data:`FUNCTIONS` only.

Anything else with ``None`` (``None + 1``, ``len(None)``, ``None < 3``) is a
runtime :class:`ExpressionError`: the engine decides what an expression that
cannot be computed means (typically the node's error branch).

Conditions use Python truthiness (:meth:`Expression.evaluate_bool`): ``None``,
``False``, ``0``, ``0.0``, ``""``, ``[]`` and ``{}`` are false, everything
else is true.

Resource limits keep a hostile expression cheap: :data:`MAX_SOURCE_LENGTH`
characters, :data:`MAX_NODES` syntax nodes nested at most :data:`MAX_DEPTH`
deep, strings and lists produced of at most :data:`MAX_LENGTH` items, and
integers of at most :data:`MAX_INT_DIGITS` digits.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_LENGTH",
    "MAX_NODES",
    "MAX_SOURCE_LENGTH",
    "Expression",
    "ExpressionError",
    "compile_expression",
]

MAX_SOURCE_LENGTH = 500
MAX_NODES = 200
MAX_DEPTH = 32
#: Longest string or list an expression may produce (``+``, ``str()``, ...).
MAX_LENGTH = 10_000
MAX_INT_DIGITS = 30
_INT_LIMIT = 10**MAX_INT_DIGITS

#: Names that mean JSON's constants, so authors used to JSON can write them.
_CONSTANT_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None}


class ExpressionError(ValueError):
    """An expression that cannot be compiled or evaluated.

    ``reason`` is the message without the position; ``line`` and ``column``
    (1-based) point into the source when known; ``detail`` (syntax errors)
    follows the position: ``syntax error at column 4: '(' was never closed``.
    """

    def __init__(
        self, reason: str, line: int | None = None, column: int | None = None, detail: str | None = None
    ) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        self.detail = detail
        super().__init__(reason + _where(line, column) + (f": {detail}" if detail else ""))


def _where(line: int | None, column: int | None) -> str:
    if column is None:
        return ""
    if line is not None and line > 1:
        return f" at line {line}, column {column}"
    return f" at column {column}"


def _error(node: ast.AST, reason: str, column: int | None = None) -> ExpressionError:
    """An ExpressionError positioned at ``node`` (or at ``column`` on its line)."""
    line = getattr(node, "lineno", None)
    if column is None:
        offset = getattr(node, "col_offset", None)
        column = None if offset is None else offset + 1
    return ExpressionError(reason, line, column)


def _type_name(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, Mapping):
        return "dict"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    # bool is an int in Python, but ``True + 1`` in a flow is almost surely a mistake.
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _checked(value: Any) -> Any:
    """Enforce the size limits on a value the expression produced."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not -_INT_LIMIT < value < _INT_LIMIT:
            raise ExpressionError(f"integer result has more than {MAX_INT_DIGITS} digits")
    elif isinstance(value, (str, list)) and len(value) > MAX_LENGTH:
        kind = "string" if isinstance(value, str) else "list"
        raise ExpressionError(f"{kind} result longer than {MAX_LENGTH}")
    return value


# --- functions ----------------------------------------------------------------


def _want_str(fname: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ExpressionError(f"{fname}() needs a str, got {_type_name(value)}")
    return value


def _want_number(fname: str, value: Any) -> int | float | Decimal:
    if not _is_number(value):
        raise ExpressionError(f"{fname}() needs a number, got {_type_name(value)}")
    return value  # type: ignore[no-any-return]


def _fn_len(value: Any) -> int:
    if not isinstance(value, (str, list, tuple, Mapping)):
        raise ExpressionError(f"len() needs a str, list or dict, got {_type_name(value)}")
    return len(value)


def _fn_str(value: Any) -> str:
    """Text for a value: ``None`` is empty and booleans are ``true``/``false``,
    which is what a prompt or a CRM field wants rather than Python's ``None``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if _is_number(value) or isinstance(value, (list, tuple, Mapping)):
        return str(value)
    raise ExpressionError(f"str() cannot convert {_type_name(value)}")


def _fn_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, (float, Decimal)):
        if not math.isfinite(value):
            raise ExpressionError(f"int() cannot convert {value}")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        # Checked here, not by int(): Python accepts '1_000' and non-ASCII digits.
        body = text[1:] if text[:1] in "+-" else text
        if not body or not body.isascii() or not body.isdigit() or len(body) > MAX_INT_DIGITS:
            raise ExpressionError(f"int() cannot convert {value[:50]!r}")
        return int(text)
    raise ExpressionError(f"int() cannot convert {_type_name(value)}")


def _fn_float(value: Any) -> float:
    if isinstance(value, str):
        try:
            if "_" in value:  # Python accepts '1_0'; a caller's input should not
                raise ValueError
            result = float(value)
        except ValueError:
            raise ExpressionError(f"float() cannot convert {value[:50]!r}") from None
    elif _is_number(value) or isinstance(value, bool):
        result = float(value)
    else:
        raise ExpressionError(f"float() cannot convert {_type_name(value)}")
    if not math.isfinite(result):
        raise ExpressionError("float() result is not a finite number")
    return result


def _fn_round(value: Any, ndigits: Any = None) -> Any:
    number = _want_number("round", value)
    if ndigits is None:
        return round(number)
    if not isinstance(ndigits, int) or isinstance(ndigits, bool) or abs(ndigits) > 20:
        raise ExpressionError("round() needs a whole number of digits between -20 and 20")
    return round(number, ndigits)


def _fn_abs(value: Any) -> Any:
    return abs(_want_number("abs", value))


def _extreme(fname: str, pick: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    items: Sequence[Any] = args
    if len(args) == 1:
        if not isinstance(args[0], (list, tuple)):
            raise ExpressionError(f"{fname}() with one argument needs a list, got {_type_name(args[0])}")
        items = args[0]
    if not items:
        raise ExpressionError(f"{fname}() of an empty list")
    if all(_is_number(item) for item in items) or all(isinstance(item, str) for item in items):
        try:
            return pick(items)
        except TypeError:  # Decimal mixed with float
            pass
    names = sorted({_type_name(item) for item in items})
    raise ExpressionError(f"{fname}() needs all numbers or all strings, got {', '.join(names)}")


def _fn_min(*args: Any) -> Any:
    return _extreme("min", min, args)


def _fn_max(*args: Any) -> Any:
    return _extreme("max", max, args)


def _fn_lower(value: Any) -> str:
    return _want_str("lower", value).lower()


def _fn_upper(value: Any) -> str:
    return _want_str("upper", value).upper()


def _fn_startswith(value: Any, prefix: Any) -> bool:
    return _want_str("startswith", value).startswith(_want_str("startswith", prefix))


def _fn_endswith(value: Any, suffix: Any) -> bool:
    return _want_str("endswith", value).endswith(_want_str("endswith", suffix))


def _fn_contains(container: Any, item: Any) -> bool:
    """``contains(s, p)``: substring test on strings, membership on lists."""
    if isinstance(container, (list, tuple)):
        return item in container
    return _want_str("contains", item) in _want_str("contains", container)


def _fn_digits(value: Any) -> str:
    """Keep only the ASCII digits: ``digits("+86 138-0013")`` is ``"861380013"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return "".join(ch for ch in _want_str("digits", value) if "0" <= ch <= "9")


@dataclass(frozen=True)
class _Function:
    impl: Callable[..., Any]
    min_args: int
    max_args: int | None  # None: any number


#: The only functions an expression may call.
FUNCTIONS: Mapping[str, _Function] = {
    "len": _Function(_fn_len, 1, 1),
    "str": _Function(_fn_str, 1, 1),
    "int": _Function(_fn_int, 1, 1),
    "float": _Function(_fn_float, 1, 1),
    "round": _Function(_fn_round, 1, 2),
    "abs": _Function(_fn_abs, 1, 1),
    "min": _Function(_fn_min, 1, None),
    "max": _Function(_fn_max, 1, None),
    "lower": _Function(_fn_lower, 1, 1),
    "upper": _Function(_fn_upper, 1, 1),
    "startswith": _Function(_fn_startswith, 2, 2),
    "endswith": _Function(_fn_endswith, 2, 2),
    "contains": _Function(_fn_contains, 2, 2),
    "digits": _Function(_fn_digits, 1, 1),
}


# --- compile-time checks ---------------------------------------------------------

_BINARY_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
}
_FORBIDDEN_BINARY_OPS: dict[type[ast.operator], str] = {
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
}
_COMPARE_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
#: What the common forbidden constructs are called in error messages.
_CONSTRUCT_NAMES: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "generator expression",
    ast.NamedExpr: "assignment expression ':='",
    ast.JoinedStr: "f-string",
    ast.Dict: "dict literal",
    ast.Set: "set literal",
    ast.Slice: "slice",
    ast.Starred: "unpacking '*'",
    ast.Await: "await",
}


#: Nodes allowed as they are; their children are checked.
_PLAIN_NODES = (
    ast.Expression, ast.BoolOp, ast.IfExp, ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop
)


def _is_singleton(node: ast.expr) -> bool:
    """True for a literal None/True/False (or null/true/false)."""
    if isinstance(node, ast.Constant):
        return node.value is None or isinstance(node.value, bool)
    return isinstance(node, ast.Name) and node.id in _CONSTANT_NAMES


def _check(node: ast.AST, names: set[str]) -> None:
    """Reject anything outside the language; collect the variable names used."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and value >= _INT_LIMIT:
            raise _error(node, f"integer literal has more than {MAX_INT_DIGITS} digits")
        if value is not None and not isinstance(value, (str, int, float)):
            raise _error(node, f"{type(value).__name__} literals are not allowed")
        return
    if isinstance(node, ast.Name):
        if node.id not in _CONSTANT_NAMES:
            names.add(node.id)
        return
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            raise _error(node, f"attribute access {node.attr!r} is not allowed", _attr_column(node))
        _check(node.value, names)
        return
    if isinstance(node, ast.Subscript):
        if isinstance(node.slice, ast.Slice):
            raise _error(node.slice, "slice is not allowed")
        _check(node.value, names)
        _check(node.slice, names)
        return
    if isinstance(node, ast.Call):
        _check_call(node, names)
        return
    if isinstance(node, ast.BinOp):
        forbidden = _FORBIDDEN_BINARY_OPS.get(type(node.op))
        if forbidden is not None:
            raise _error(node, f"operator {forbidden!r} is not allowed")
    elif isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Invert):
            raise _error(node, "operator '~' is not allowed")
    elif isinstance(node, ast.Compare):
        for cmp, left, right in zip(node.ops, [node.left, *node.comparators], node.comparators):
            if isinstance(cmp, (ast.Is, ast.IsNot)) and not (_is_singleton(left) or _is_singleton(right)):
                raise _error(node, "'is' only compares with None, True or False; use == instead")
    elif isinstance(node, (ast.List, ast.Tuple)):
        pass  # elements are checked below (a Starred element is refused there)
    elif not isinstance(node, _PLAIN_NODES):
        what = _CONSTRUCT_NAMES.get(type(node), type(node).__name__)
        raise _error(node, f"{what} is not allowed")
    for child in ast.iter_child_nodes(node):
        _check(child, names)


def _attr_column(node: ast.Attribute) -> int | None:
    """Column of the attribute name itself (``__class__`` in ``().__class__``)."""
    if node.end_col_offset is None or node.end_lineno != node.lineno:
        return node.col_offset + 1
    return node.end_col_offset - len(node.attr) + 1


def _check_call(node: ast.Call, names: set[str]) -> None:
    func = node.func
    if isinstance(func, ast.Attribute):
        raise _error(node, f"method calls like '.{func.attr}()' are not allowed; use {func.attr}(x) style functions")
    if not isinstance(func, ast.Name):
        raise _error(node, "only calls to the built-in functions are allowed")
    spec = FUNCTIONS.get(func.id)
    if spec is None:
        raise _error(node, f"function {func.id!r} is not allowed")
    if node.keywords:
        raise _error(node, f"keyword arguments are not allowed in {func.id}()")
    count = len(node.args)
    if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
        if spec.max_args is None:
            expected = f"at least {spec.min_args}"
        elif spec.min_args == spec.max_args:
            expected = str(spec.min_args)
        else:
            expected = f"{spec.min_args} to {spec.max_args}"
        plural = "" if expected.endswith("1") else "s"
        raise _error(node, f"{func.id}() takes {expected} argument{plural}, got {count}")
    for arg in node.args:
        _check(arg, names)


def _depth(tree: ast.AST) -> int:
    """Nesting depth, computed without recursion (the tree may be deep)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def compile_expression(source: str) -> Expression:
    """Parse and check ``source``; raise :class:`ExpressionError` if it is not allowed."""
    if not isinstance(source, str):
        raise ExpressionError(f"expression must be a string, got {_type_name(source)}")
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_SOURCE_LENGTH} characters")
    # Python refuses leading blanks; positions in errors count in the stripped text,
    # which is what Expression.source keeps.
    source = source.strip()
    if not source:
        raise ExpressionError("expression is empty")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise _syntax_error(source, exc) from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError("expression cannot be parsed") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExpressionError(f"expression is too complex ({count} syntax nodes, at most {MAX_NODES})")
    if _depth(tree) > MAX_DEPTH:
        raise ExpressionError(f"expression is nested too deeply (at most {MAX_DEPTH} levels)")
    names: set[str] = set()
    _check(tree, names)
    return Expression(source, tree.body, frozenset(names))


def _syntax_error(source: str, exc: SyntaxError) -> ExpressionError:
    if "null bytes" in str(exc.msg):
        return ExpressionError("expression contains a NUL character")
    lines = source.split("\n")
    line = exc.lineno or len(lines)
    detail: str | None = None if exc.msg == "invalid syntax" else exc.msg
    column = exc.offset
    if not column:  # Python reports the end of the input as offset 0
        line = len(lines)
        column, detail = len(lines[-1]) + 1, "unexpected end of expression"
    return ExpressionError("syntax error", line, column, detail)


# --- evaluation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    """A checked expression, ready to evaluate any number of times (thread-safe)."""

    source: str
    _tree: ast.expr = field(repr=False, compare=False)
    #: Top-level variable names the expression reads (``crm`` for ``crm.customer.vip``).
    names: frozenset[str] = field(compare=False)

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Compute the value; raise :class:`ExpressionError` when it cannot be computed."""
        return _Evaluator(variables).visit(self._tree)

    def evaluate_bool(self, variables: Mapping[str, Any]) -> bool:
        """Evaluate as a condition, with Python truthiness (see the module docstring)."""
        return bool(self.evaluate(variables))


class _Evaluator:
    def __init__(self, variables: Mapping[str, Any]) -> None:
        self.variables = variables

    def visit(self, node: ast.expr) -> Any:
        method = getattr(self, "_" + type(node).__name__)
        return method(node)

    def _Constant(self, node: ast.Constant) -> Any:
        return node.value

    def _Name(self, node: ast.Name) -> Any:
        if node.id in _CONSTANT_NAMES:
            return _CONSTANT_NAMES[node.id]
        return self.variables.get(node.id)

    def _List(self, node: ast.List | ast.Tuple) -> list[Any]:
        return [self.visit(element) for element in node.elts]

    _Tuple = _List

    def _Attribute(self, node: ast.Attribute) -> Any:
        container = self.visit(node.value)
        if container is None:
            return None
        if not isinstance(container, Mapping):
            raise _error(node, f"cannot look up {node.attr!r} in a {_type_name(container)}", _attr_column(node))
        return container.get(node.attr)

    def _Subscript(self, node: ast.Subscript) -> Any:
        container = self.visit(node.value)
        key = self.visit(node.slice)
        if container is None:
            return None
        if isinstance(container, Mapping):
            try:
                return container.get(key)
            except TypeError:  # unhashable key such as a list
                raise _error(node, f"a {_type_name(key)} cannot be a dict key") from None
        if isinstance(container, (str, list, tuple)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise _error(node, f"{_type_name(container)} index must be an int, got {_type_name(key)}")
            if -len(container) <= key < len(container):
                return container[key]
            return None
        raise _error(node, f"cannot index a {_type_name(container)}")

    def _Call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)  # guaranteed by _check_call
        args = [self.visit(arg) for arg in node.args]
        try:
            return _checked(FUNCTIONS[node.func.id].impl(*args))
        except ExpressionError as exc:
            raise _error(node, exc.reason) from None
        except (ArithmeticError, ValueError, TypeError):
            types = ", ".join(_type_name(arg) for arg in args)
            raise _error(node, f"{node.func.id}() cannot handle {types}") from None

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not operand
        symbol = "-" if isinstance(node.op, ast.USub) else "+"
        if not _is_number(operand):
            raise _error(node, f"unary {symbol!r} needs a number, got {_type_name(operand)}")
        return _checked(-operand if symbol == "-" else +operand)

    def _BinOp(self, node: ast.BinOp) -> Any:
        left = self.visit(node.left)
        right = self.visit(node.right)
        symbol = _BINARY_OPS[type(node.op)]
        if _is_number(left) and _is_number(right):
            if symbol in ("/", "//", "%") and right == 0:
                raise _error(node, "division by zero")
            try:
                return _checked(_arithmetic(symbol, left, right))
            except ExpressionError as exc:
                raise _error(node, exc.reason) from None
            except ArithmeticError:
                raise _error(node, f"result of {symbol!r} is out of range") from None
            except TypeError:
                pass  # Decimal with float: reported below
        elif symbol == "+":
            # Sizes are checked before joining: the result must not get built first.
            if isinstance(left, str) and isinstance(right, str):
                if len(left) + len(right) > MAX_LENGTH:
                    raise _error(node, f"string result longer than {MAX_LENGTH}")
                return left + right
            if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
                if len(left) + len(right) > MAX_LENGTH:
                    raise _error(node, f"list result longer than {MAX_LENGTH}")
                return [*left, *right]
        raise _error(node, f"operator {symbol!r} is not supported between {_type_name(left)} and {_type_name(right)}")

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        # Like Python: returns the deciding operand, evaluating no further than needed.
        is_and = isinstance(node.op, ast.And)
        value: Any = None
        for operand in node.values:
            value = self.visit(operand)
            if bool(value) != is_and:
                return value
        return value

    def _IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def _Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = self.visit(right_node)
            if not _compare(node, _COMPARE_OPS[type(op)], left, right):
                return False
            left = right
        return True


def _arithmetic(symbol: str, left: Any, right: Any) -> Any:
    if symbol == "+":
        return left + right
    if symbol == "-":
        return left - right
    if symbol == "*":
        return left * right
    if symbol == "/":
        return left / right
    if symbol == "//":
        return left // right
    return left % right


def _compare(node: ast.Compare, symbol: str, left: Any, right: Any) -> bool:
    if symbol == "==":
        return bool(left == right)
    if symbol == "!=":
        return bool(left != right)
    if symbol == "is":
        return left is right
    if symbol == "is not":
        return left is not right
    if symbol in ("in", "not in"):
        return _contains(node, symbol, right, left) == (symbol == "in")
    if (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str)):
        try:
            if symbol == "<":
                return bool(left < right)
            if symbol == "<=":
                return bool(left <= right)
            if symbol == ">":
                return bool(left > right)
            return bool(left >= right)
        except TypeError:  # Decimal with float
            pass
    raise _error(node, f"cannot compare {_type_name(left)} and {_type_name(right)} with {symbol!r}")


def _contains(node: ast.Compare, symbol: str, container: Any, item: Any) -> bool:
    if isinstance(container, str):
        if not isinstance(item, str):
            raise _error(node, f"{symbol!r} on a str needs a str on the left, got {_type_name(item)}")
        return item in container
    if isinstance(container, (list, tuple)):
        return item in container
    if isinstance(container, Mapping):
        try:
            return item in container
        except TypeError:
            raise _error(node, f"a {_type_name(item)} cannot be a dict key") from None
    raise _error(node, f"{symbol!r} needs a str, list or dict on the right, got {_type_name(container)}")
