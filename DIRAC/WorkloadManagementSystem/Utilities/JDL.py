"""A parser for DIRAC's job descriptions: the ClassAd-like JDL.

Grammar (the subset of ClassAds DIRAC job descriptions use)::

    jdl        := '[' attributes ']'  |  attributes        (outer brackets optional)
    attributes := ( assignment ( ';' assignment )* ';'? )?
    assignment := NAME '=' value
    NAME       := [A-Za-z_][A-Za-z0-9_.]*                 (case-insensitive, as in ClassAds)
    value      := STRING | NUMBER | 'true' | 'false' | list | '[' attributes ']' | expression
    list       := '{' ( value ( ',' value )* ','? )? '}'
    STRING     := '"' ( [^"\\] | '\\' any )* '"'           (\" \\ \n \t escapes)
    NUMBER     := [+-]? digits ( '.' digits )? ( [eE] [+-]? digits )?
    expression := any other text up to the next ';' (or ']' / ',' / '}' closing the
                  enclosing construct) outside strings and brackets, kept verbatim:
                  ``Requirements = other.Site == "X" && other.CPU > 2;``

Comments: ``// ...`` and ``# ...`` to the end of the line, ``/* ... */``.

Everything malformed raises :class:`JDLError` with the line and column and what was
expected there; :func:`parseJDL` is the only entry point the services use.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "ClassAd",
    "Expression",
    "JDLError",
    "formatValue",
    "parseJDL",
    "parseValue",
]

#: A JDL bigger than this is refused (bytes of UTF-8 text).
MAX_JDL_SIZE = 1024 * 1024
#: Nesting deeper than this ([ { [ { ... ) is refused.
MAX_DEPTH = 32

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "/": "/"}


class JDLError(ValueError):
    """A JDL that cannot be parsed or does not describe a valid job."""


@dataclasses.dataclass(frozen=True)
class Expression:
    """A ClassAd expression kept as its source text (e.g. a ``Requirements``)."""

    text: str

    def __str__(self) -> str:
        return self.text


class ClassAd:
    """An ordered attribute map whose names are case-insensitive, as in ClassAds.

    Values are Python objects: ``str``, ``int``, ``float``, ``bool``, ``list`` (of
    values), :class:`ClassAd` (nested) or :class:`Expression`.  The method names
    DIRAC code uses on its own ``ClassAd`` are provided too.
    """

    def __init__(self, attributes: dict[str, Any] | None = None) -> None:
        self._values: dict[str, tuple[str, Any]] = {}
        for name, value in (attributes or {}).items():
            self[name] = value

    # ---------------------------------------------------------------- mapping
    def __getitem__(self, name: str) -> Any:
        return self._values[name.lower()][1]

    def __setitem__(self, name: str, value: Any) -> None:
        key = name.lower()
        spelled = self._values[key][0] if key in self._values else name
        self._values[key] = (spelled, value)

    def __delitem__(self, name: str) -> None:
        del self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return (spelled for spelled, _ in self._values.values())

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClassAd):
            return NotImplemented
        return {k: v for k, (_, v) in self._values.items()} == \
            {k: v for k, (_, v) in other._values.items()}

    def __repr__(self) -> str:
        return f"ClassAd({self.asJDL(indent=None)})"

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name``, or ``default``."""
        entry = self._values.get(name.lower())
        return default if entry is None else entry[1]

    def items(self) -> Iterator[tuple[str, Any]]:
        """``(name, value)`` pairs in definition order."""
        return iter(self._values.values())

    def copy(self) -> ClassAd:
        """A deep copy (lists and nested ClassAds are copied)."""
        new = ClassAd()
        for name, value in self.items():
            new[name] = _copy(value)
        return new

    # ---------------------------------------------------- DIRAC's method names
    def lookupAttribute(self, name: str) -> bool:
        """Whether ``name`` is defined."""
        return name in self

    def getAttributes(self) -> list[str]:
        """The attribute names, as spelled where defined."""
        return list(self)

    def getAttributeString(self, name: str) -> str:
        """The value as text without quotes, as DIRAC's ("" when undefined)."""
        value = self.get(name)
        if value is None:
            return ""
        return value if isinstance(value, str) else formatValue(value).replace('"', "")

    def get_expression(self, name: str) -> str:
        """The value's JDL text (strings quoted), "" when undefined (DIRAC's name)."""
        value = self.get(name)
        return "" if value is None else formatValue(value)

    def set_expression(self, name: str, expression: str) -> None:
        """Set ``name`` from JDL text: a literal becomes its value, else an expression."""
        try:
            self[name] = parseValue(str(expression))
        except JDLError:
            self[name] = Expression(str(expression))

    def getAttributeBool(self, name: str) -> bool:
        """Whether the value is true (``true``/``"true"``, any case); False when undefined."""
        value = self.get(name)
        return value is True or (isinstance(value, (str, Expression))
                                 and str(value).strip().lower() == "true")

    def insertAttributeBool(self, name: str, value: bool) -> None:
        """Set ``name`` to a boolean."""
        self[name] = bool(value)

    def insertAttributeVectorInt(self, name: str, values: list) -> None:
        """Set ``name`` to a list of ints."""
        self[name] = [int(v) for v in values]

    def getDictionaryFromSubJDL(self, name: str) -> dict[str, str]:
        """A nested ``[ a = 1; b = "x" ]`` as ``{"a": "1", "b": "x"}`` ({} otherwise)."""
        value = self.get(name)
        if not isinstance(value, ClassAd):
            return {}
        return {n: v if isinstance(v, str) else formatValue(v).replace('"', "")
                for n, v in value.items()}

    def getAttributeInt(self, name: str) -> int | None:
        """The value as an int, or None."""
        value = self.get(name)
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip()) if value is not None else None
        except ValueError:
            return None

    def getAttributeFloat(self, name: str) -> float | None:
        """The value as a float, or None."""
        value = self.get(name)
        if isinstance(value, bool) or value is None:
            return None
        try:
            return float(value if isinstance(value, (int, float)) else str(value).strip())
        except ValueError:
            return None

    def getListFromExpression(self, name: str) -> list[str]:
        """The value as a list of strings (a scalar gives a one-item list)."""
        value = self.get(name)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        return [v if isinstance(v, str) else formatValue(v) for v in values]

    def isAttributeList(self, name: str) -> bool:
        """Whether ``name`` holds a list."""
        return isinstance(self.get(name), list)

    def insertAttributeString(self, name: str, value: str) -> None:
        """Set ``name`` to a string."""
        self[name] = str(value)

    def insertAttributeInt(self, name: str, value: int) -> None:
        """Set ``name`` to an int."""
        self[name] = int(value)

    def insertAttributeVectorString(self, name: str, values: list) -> None:
        """Set ``name`` to a list of strings."""
        self[name] = [str(v) for v in values]

    def deleteAttribute(self, name: str) -> bool:
        """Remove ``name``; whether it was there."""
        if name in self:
            del self[name]
            return True
        return False

    def isOK(self) -> bool:
        """Always true: a ClassAd that exists was parsed successfully."""
        return True

    def asJDL(self, indent: int | None = 4) -> str:
        """The JDL text of this ClassAd (parses back to an equal ClassAd)."""
        if indent is None:
            body = " ".join(f"{n} = {formatValue(v)};" for n, v in self.items())
            return f"[ {body} ]" if body else "[]"
        pad = " " * indent
        lines = [f"{pad}{n} = {formatValue(v, indent)};" for n, v in self.items()]
        return "[\n" + "\n".join(lines) + ("\n]" if lines else "]")


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, ClassAd):
        return value.copy()
    return value


def _quote(text: str) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + out.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r") + '"'


def formatValue(value: Any, indent: int | None = None) -> str:
    """JDL text of one value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, Expression):
        return value.text
    if isinstance(value, list):
        return "{" + ", ".join(formatValue(v) for v in value) + "}"
    if isinstance(value, ClassAd):
        return value.asJDL(indent=None)
    raise TypeError(f"cannot write a {type(value).__name__} in a JDL")


# --------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -------------------------------------------------------------- utilities
    def where(self, pos: int | None = None) -> str:
        pos = self.pos if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return f"line {line}, column {column}"

    def error(self, message: str, pos: int | None = None) -> JDLError:
        return JDLError(f"{message} at {self.where(pos)}")

    def describe(self) -> str:
        """What stands at the current position, for error messages."""
        if self.pos >= len(self.text):
            return "the end of the JDL"
        return repr(self.text[self.pos:self.pos + 20].split("\n")[0])

    def skip(self) -> None:
        """Skip blanks and comments."""
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch.isspace():
                self.pos += 1
            elif ch == "#" or text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    # ---------------------------------------------------------------- grammar
    def parse_document(self) -> ClassAd:
        if self.peek() == "":
            raise JDLError("empty JDL: expected '[ Attribute = value; ... ]'")
        if self.peek() == "[":
            self.pos += 1
            ad = self.parse_attributes(closer="]", depth=1)
            self.pos += 1  # the ']'
            if self.peek() != "":
                raise self.error(f"unexpected {self.describe()} after the closing ']'")
            return ad
        return self.parse_attributes(closer="", depth=1)

    def parse_attributes(self, closer: str, depth: int) -> ClassAd:
        """``name = value;`` pairs until ``closer`` (not consumed) or the end."""
        ad = ClassAd()
        while True:
            ch = self.peek()
            if ch == closer:
                return ad
            if ch == "":
                raise self.error(f"missing closing '{closer}'")
            if ch == ";":  # tolerate empty statements (";;")
                self.pos += 1
                continue
            start = self.pos
            match = _NAME.match(self.text, self.pos)
            if not match:
                raise self.error(f"expected an attribute name, found {self.describe()}")
            name = match.group()
            self.pos = match.end()
            if self.peek() != "=":
                raise self.error(f"expected '=' after attribute name {name!r}, "
                                 f"found {self.describe()}")
            self.pos += 1
            if name in ad:
                raise self.error(f"attribute {name!r} is defined twice", start)
            ad[name] = self.parse_value(terminators=";" + closer, depth=depth, name=name)
            ch = self.peek()
            if ch == ";":
                self.pos += 1
            elif ch == "" and closer:
                raise self.error(f"missing closing '{closer}'")
            elif ch != closer:
                raise self.error(f"expected ';' after the value of {name!r}, "
                                 f"found {self.describe()}")

    def parse_value(self, terminators: str, depth: int, name: str) -> Any:
        """A value, ended by one of ``terminators`` ("" in it: the end of the text)."""
        if depth > MAX_DEPTH:
            raise self.error(f"nesting deeper than {MAX_DEPTH} levels")
        ch = self.peek()
        start = self.pos
        if ch == "" or (ch in terminators and ch):
            raise self.error(f"missing value for {name!r}")
        value: Any
        try:
            if ch == '"':
                value = self.parse_string()
            elif ch == "{":
                value = self.parse_list(depth + 1, name)
            elif ch == "[":
                self.pos += 1
                value = self.parse_attributes(closer="]", depth=depth + 1)
                self.pos += 1
            else:
                value = self.parse_scalar()
        except _NotLiteral:
            value = None
            self.pos = start
        if value is not None:
            nxt = self.peek()
            if nxt == "" or nxt in terminators:
                return value  # at the end of the text, the caller says what is missing
            self.pos = start  # e.g. ``"a" + "b"``: an expression
        return Expression(self.parse_expression(terminators, name))

    def parse_string(self) -> str:
        start = self.pos
        self.pos += 1
        out: list[str] = []
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "\\":
                if self.pos + 1 >= n:
                    break
                esc = text[self.pos + 1]
                out.append(_ESCAPES.get(esc, "\\" + esc))
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1
        raise self.error("unterminated string (missing closing '\"')", start)

    def parse_list(self, depth: int, name: str) -> list:
        start = self.pos
        self.pos += 1
        items: list = []
        while True:
            ch = self.peek()
            if ch == "}":
                self.pos += 1
                return items
            if ch == "":
                raise self.error(f"unterminated list for {name!r} (missing '}}')", start)
            items.append(self.parse_value(terminators=",}", depth=depth, name=name))
            ch = self.peek()
            if ch == ",":
                self.pos += 1
            elif ch == "":
                raise self.error(f"unterminated list for {name!r} (missing '}}')", start)
            elif ch != "}":
                raise self.error(f"expected ',' or '}}' in the list of {name!r}, "
                                 f"found {self.describe()}")

    def parse_scalar(self) -> Any:
        match = _NUMBER.match(self.text, self.pos)
        if match:
            end = match.end()
            if end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "_."):
                raise _NotLiteral
            self.pos = end
            literal = match.group()
            if re.fullmatch(r"[+-]?\d+", literal):
                return int(literal)
            return float(literal)
        match = _NAME.match(self.text, self.pos)
        if match and match.group().lower() in ("true", "false"):
            self.pos = match.end()
            return match.group().lower() == "true"
        raise _NotLiteral

    def parse_expression(self, terminators: str, name: str) -> str:
        """Raw text up to a terminator at nesting level 0."""
        text, n = self.text, len(self.text)
        start = self.pos
        stack: list[str] = []
        pairs = {"(": ")", "[": "]", "{": "}"}
        while self.pos < n:
            ch = text[self.pos]
            if ch == '"':
                self.parse_string()
                continue
            if ch == "#" or text.startswith("//", self.pos) or text.startswith("/*", self.pos):
                if not stack:
                    break
                self.skip()
                continue
            if not stack and ch in terminators:
                break
            if ch == "=" and text[self.pos - 1] not in "=!<>?" \
                    and text[self.pos + 1:self.pos + 2] not in ("=", "?", "!"):
                raise self.error(f"unexpected '=' in the value of {name!r} "
                                 f"(is a ';' missing before the next attribute?)")
            if ch in pairs:
                stack.append(pairs[ch])
            elif ch in ")]}":
                if not stack:
                    break  # closes something the caller opened: it reports the mismatch
                if stack[-1] != ch:
                    raise self.error(f"expected {stack[-1]!r} before {ch!r} in the value "
                                     f"of {name!r}")
                stack.pop()
            self.pos += 1
        if stack:
            raise self.error(f"missing {stack[-1]!r} in the value of {name!r}", start)
        expr = text[start:self.pos].strip()
        if not expr:
            raise self.error(f"missing value for {name!r}", start)
        return expr


class _NotLiteral(Exception):
    """Internal: the text at this position is not a simple literal."""


def parseJDL(text: str) -> ClassAd:
    """Parse a JDL into a :class:`ClassAd`; raise :class:`JDLError` with a clear reason."""
    if not isinstance(text, str):
        raise JDLError(f"a JDL is text, not {type(text).__name__}")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_JDL_SIZE:
        raise JDLError(f"JDL larger than {MAX_JDL_SIZE} bytes")
    if "\x00" in text:
        raise JDLError("JDL contains a NUL character")
    return _Parser(text).parse_document()


def parseValue(text: str) -> Any:
    """Parse one JDL value (``"x"``, ``3``, ``{1, 2}``, or an expression)."""
    parser = _Parser(text)
    value = parser.parse_value(terminators="", depth=1, name="value")
    if parser.peek() != "":
        raise parser.error(f"unexpected {parser.describe()} after the value")
    return value
