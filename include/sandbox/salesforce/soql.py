"""A SOQL subset: parse, check against the emulated schema, evaluate over the org.

Supported, because the product and its tests use it:

    SELECT f1, Rel.f2, COUNT(), COUNT(f) FROM User|Profile|UserLicense|PermissionSet
    [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]

with ``=``, ``!=``, ``<>``, ``<``, ``>``, ``<=``, ``>=``, ``LIKE``, ``IN (...)``, ``NOT IN``,
``AND``, ``OR``, ``NOT``, parentheses, ``null``, ``true``/``false``, numbers, datetime
literals, and quoted strings with the escapes of ``simple_salesforce.format_soql``
("Quoted String Escape Sequences", SOQL and SOSL Reference). Text comparisons ignore
case, as SOQL's do.

Errors carry Salesforce's text, including the position banner real responses start
with (``\\nSELECT Id, FROM Account\\n          ^\\nERROR at Row:1:Column:11\\nunexpected
token: 'FROM'``): MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from include.sandbox.salesforce.exceptions import SoqlError
from include.sandbox.salesforce.validation import FIELD_INDEX, USER_FIELDS, to_id18

if TYPE_CHECKING:
    from include.sandbox.salesforce.models import Org

MAX_OFFSET = 2000

# --- schema of the queryable objects --------------------------------------------------------

# object → field → SOQL type (id, reference, string, boolean, int, datetime)
OBJECT_FIELDS: dict[str, dict[str, str]] = {
    "User": {
        f.name: ("string" if f.type in ("email", "phone", "textarea", "picklist") else f.type) for f in USER_FIELDS
    },
    "Profile": {
        "Id": "id",
        "Name": "string",
        "UserLicenseId": "reference",
        "UserType": "string",
        "Description": "string",
    },
    "UserLicense": {
        "Id": "id",
        "Name": "string",
        "MasterLabel": "string",
        "LicenseDefinitionKey": "string",
        "Status": "string",
        "TotalLicenses": "int",
        "UsedLicenses": "int",
    },
    "PermissionSet": {
        "Id": "id",
        "Name": "string",
        "Label": "string",
        "Description": "string",
        "IsOwnedByProfile": "boolean",
        "ProfileId": "reference",
        "LicenseId": "reference",
    },
    # Every org has Account; the emulator keeps none (it models users), but clients probe it:
    # SalesforceHook.test_connection (Airflow's Test button) describes Account.
    "Account": {"Id": "id", "Name": "string"},
}
# object → relationship name → (foreign key field, target object)
RELATIONSHIPS: dict[str, dict[str, tuple[str, str]]] = {
    "User": {
        "Profile": ("ProfileId", "Profile"),
        "Manager": ("ManagerId", "User"),
        "CreatedBy": ("CreatedById", "User"),
        "LastModifiedBy": ("LastModifiedById", "User"),
    },
    "Profile": {"UserLicense": ("UserLicenseId", "UserLicense")},
    "UserLicense": {},
    "PermissionSet": {"Profile": ("ProfileId", "Profile"), "License": ("LicenseId", "UserLicense")},
    "Account": {},
}
_CANONICAL_OBJECTS = {name.lower(): name for name in OBJECT_FIELDS}
_CANONICAL_FIELDS = {obj: {f.lower(): f for f in fields} for obj, fields in OBJECT_FIELDS.items()}
_CANONICAL_RELS = {obj: {r.lower(): r for r in rels} for obj, rels in RELATIONSHIPS.items()}

# --- tokens ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'?)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
KEYWORDS = frozenset(
    {"select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc", "desc"}
    | {"nulls", "first", "last", "limit", "offset", "null", "true", "false"}
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # name, keyword, string, number, datetime, date, op, punct, end
    text: str
    pos: int
    value: Any = None
    like: str | None = None  # LIKE pattern as a regex (strings only)


def _unescape(body: str, query: str, pos: int) -> tuple[str, str]:
    """The string's value and its LIKE regex (``\\%``/``\\_`` stay literal there)."""
    out, like = [], []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                like.append(re.escape(_ESCAPES[nxt]))
            elif nxt in ("%", "_"):
                out.append(nxt)
                like.append(re.escape(nxt))
            else:
                raise _malformed(
                    query,
                    pos,
                    f"Invalid string literal '{body}'. Illegal character sequence '\\{nxt}' in string literal.",
                )
            i += 2
            continue
        out.append(char)
        like.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return "".join(out), "".join(like)


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    for match in _TOKEN.finditer(query):
        kind, text, pos = match.lastgroup or "other", match.group(), match.start()
        if kind == "ws":
            continue
        if kind == "other":
            raise _malformed(query, pos, f"unexpected token: '{text}'")
        if kind == "string":
            if len(text) < 2 or not text.endswith("'") or _ends_escaped(text):
                raise _malformed(query, pos, f"unexpected token: '{text}'")
            value, like = _unescape(text[1:-1], query, pos)
            tokens.append(Token("string", text, pos, value, like))
            continue
        if kind == "name" and text.lower() in KEYWORDS:
            kind = "keyword"
        tokens.append(Token(kind, text, pos))
    tokens.append(Token("end", "<EOF>", len(query)))
    return tokens


def _ends_escaped(text: str) -> bool:
    backslashes = len(text[1:-1]) - len(text[1:-1].rstrip("\\"))
    return backslashes % 2 == 1


def _banner(query: str, pos: int) -> str:
    row = query.count("\n", 0, pos) + 1
    line_start = query.rfind("\n", 0, pos) + 1
    line_end = query.find("\n", pos)
    line = query[line_start : line_end if line_end != -1 else len(query)]
    column = pos - line_start + 1
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n"


def _malformed(query: str, pos: int, detail: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", _banner(query, pos) + detail)


def _no_such_column(query: str, pos: int, name: str, sobject: str) -> SoqlError:
    return SoqlError(
        "INVALID_FIELD",
        _banner(query, pos)
        + f"No such column '{name}' on entity '{sobject}'. If you are attempting to use a custom field, be sure to "
        "append the '__c' after the custom field name. Please reference your WSDL or the describe call for the "
        "appropriate names.",
    )


# --- the parsed query -----------------------------------------------------------------------


@dataclass
class FieldRef:
    path: tuple[str, ...]  # canonical: ("Profile", "Name") or ("Username",)
    type: str
    pos: int

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass
class Comparison:
    ref: FieldRef
    op: str  # = != < > <= >= like in notin
    value: Any


@dataclass
class BoolOp:
    op: str  # and / or / not
    parts: list[Any]


@dataclass
class Query:
    sobject: str
    fields: list[FieldRef] = field(default_factory=list)
    count_only: bool = False
    count_field: FieldRef | None = None
    where: Any = None
    order: list[tuple[FieldRef, bool, bool]] = field(default_factory=list)  # ref, descending, nulls_last
    limit: int | None = None
    offset: int = 0


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0
        self.sobject = ""

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def is_kw(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "keyword" and token.text.lower() in words

    def expect_kw(self, word: str) -> Token:
        token = self.next()
        if token.kind != "keyword" or token.text.lower() != word:
            raise self.unexpected(token)
        return token

    def expect_punct(self, char: str) -> Token:
        token = self.next()
        if token.kind != "punct" or token.text != char:
            raise self.unexpected(token)
        return token

    def unexpected(self, token: Token) -> SoqlError:
        if token.kind == "end":
            return _malformed(self.query, max(token.pos - 1, 0), "unexpected token: <EOF>")
        return _malformed(self.query, token.pos, f"unexpected token: '{token.text}'")

    # SELECT list first as raw tokens: the FROM object decides what the names mean.
    def parse(self) -> Query:
        self.expect_kw("select")
        items: list[tuple[str, Token]] = []
        while True:
            token = self.next()
            if token.kind == "name" and token.text.lower() == "count" and self.peek().text == "(":
                self.next()
                if self.peek().text == ")":
                    self.next()
                    items.append(("count", token))
                else:
                    inner = self.next()
                    if inner.kind != "name":
                        raise self.unexpected(inner)
                    self.expect_punct(")")
                    items.append(("countf", inner))
            elif token.kind == "name":
                items.append(("field", token))
            else:
                raise self.unexpected(token)
            if self.peek().text == ",":
                self.next()
                continue
            break
        self.expect_kw("from")
        obj = self.next()
        if obj.kind != "name":
            raise self.unexpected(obj)
        sobject = _CANONICAL_OBJECTS.get(obj.text.lower())
        if sobject is None:
            raise SoqlError(
                "INVALID_TYPE",
                _banner(self.query, obj.pos)
                + f"sObject type '{obj.text}' is not supported. If you are attempting to use a custom object, be "
                "sure to append the '__c' after the entity name. Please reference your WSDL or the describe call "
                "for the appropriate names.",
            )
        self.sobject = sobject
        query = Query(sobject)
        seen: set[str] = set()
        for kind, token in items:
            if kind == "count":
                if len(items) > 1:
                    raise _malformed(self.query, token.pos, "COUNT() and other fields cannot be selected together")
                query.count_only = True
                continue
            ref = self.resolve(token)
            if kind == "countf":
                query.count_field = ref
                continue
            if ref.name.lower() in seen:
                raise _malformed(self.query, token.pos, f"duplicate field selected: {ref.name}")
            seen.add(ref.name.lower())
            query.fields.append(ref)
        if query.count_field is not None and query.fields:
            raise _malformed(
                self.query,
                query.fields[0].pos,
                f"Field must be grouped or aggregated: {query.fields[0].name}",
            )
        if self.is_kw("where"):
            self.next()
            query.where = self.parse_or()
        if self.is_kw("order"):
            self.next()
            self.expect_kw("by")
            while True:
                ref = self.resolve(self.next_name())
                descending = False
                if self.is_kw("asc", "desc"):
                    descending = self.next().text.lower() == "desc"
                nulls_last = descending
                if self.is_kw("nulls"):
                    self.next()
                    if not self.is_kw("first", "last"):
                        raise self.unexpected(self.peek())
                    nulls_last = self.next().text.lower() == "last"
                query.order.append((ref, descending, nulls_last))
                if self.peek().text != ",":
                    break
                self.next()
        if self.is_kw("limit"):
            self.next()
            query.limit = self.integer()
        if self.is_kw("offset"):
            self.next()
            token = self.peek()
            query.offset = self.integer()
            if query.offset > MAX_OFFSET:
                raise SoqlError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    _banner(self.query, token.pos) + f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                )
        token = self.peek()
        if token.kind != "end":
            raise self.unexpected(token)
        return query

    def next_name(self) -> Token:
        token = self.next()
        if token.kind != "name":
            raise self.unexpected(token)
        return token

    def integer(self) -> int:
        token = self.next()
        if token.kind != "number" or not token.text.isdigit():
            raise self.unexpected(token)
        return int(token.text)

    def resolve(self, token: Token) -> FieldRef:
        """Canonical path and type of ``token`` (``Profile.Name`` etc.) on the FROM object."""
        parts = token.text.split(".")
        if len(parts) > 1 and parts[0].lower() == self.sobject.lower():
            parts = parts[1:]  # "User.Username" is allowed
        obj = self.sobject
        path: list[str] = []
        for rel in parts[:-1]:
            canonical = _CANONICAL_RELS[obj].get(rel.lower())
            if canonical is None:
                raise SoqlError(
                    "INVALID_FIELD",
                    _banner(self.query, token.pos)
                    + f"Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom "
                    "relationship, be sure to append the '__r' after the custom relationship name. Please reference "
                    "your WSDL or the describe call for the appropriate names.",
                )
            path.append(canonical)
            obj = RELATIONSHIPS[obj][canonical][1]
        name = _CANONICAL_FIELDS[obj].get(parts[-1].lower())
        if name is None:
            raise _no_such_column(self.query, token.pos, parts[-1], obj)
        path.append(name)
        return FieldRef(tuple(path), OBJECT_FIELDS[obj][name], token.pos)

    # conditions
    def parse_or(self) -> Any:
        parts = [self.parse_and()]
        while self.is_kw("or"):
            self.next()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else BoolOp("or", parts)

    def parse_and(self) -> Any:
        parts = [self.parse_not()]
        while self.is_kw("and"):
            self.next()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else BoolOp("and", parts)

    def parse_not(self) -> Any:
        if self.is_kw("not"):
            self.next()
            return BoolOp("not", [self.parse_not()])
        if self.peek().text == "(":
            self.next()
            inner = self.parse_or()
            self.expect_punct(")")
            return inner
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        ref = self.resolve(self.next_name())
        token = self.next()
        if token.kind == "op":
            op = "!=" if token.text == "<>" else token.text
            return Comparison(ref, op, self.literal(ref, self.next(), op))
        if token.kind == "keyword" and token.text.lower() == "like":
            value = self.next()
            if value.kind != "string":
                raise self.unexpected(value)
            return Comparison(ref, "like", re.compile(f"^{value.like}$", re.IGNORECASE | re.DOTALL))
        negate = False
        if token.kind == "keyword" and token.text.lower() == "not":
            negate = True
            token = self.next()
        if token.kind == "keyword" and token.text.lower() == "in":
            self.expect_punct("(")
            values = []
            while True:
                values.append(self.literal(ref, self.next(), "in"))
                closing = self.next()
                if closing.text == ")":
                    break
                if closing.text != ",":
                    raise self.unexpected(closing)
            return Comparison(ref, "notin" if negate else "in", values)
        raise self.unexpected(token)

    def literal(self, ref: FieldRef, token: Token, op: str) -> Any:
        """The literal's comparable value for a field of ``ref.type``."""
        kind, ftype = token.kind, ref.type
        if kind == "keyword" and token.text.lower() == "null":
            if op not in ("=", "!=", "in", "notin"):
                raise self.unexpected(token)
            return None
        if kind == "keyword" and token.text.lower() in ("true", "false"):
            if ftype != "boolean":
                raise self._type_error(ref, token, "string" if ftype in ("string", "id", "reference") else ftype)
            return token.text.lower() == "true"
        if ftype == "boolean":
            raise self._type_error(ref, token, "boolean")
        if kind == "string":
            if ftype in ("id", "reference"):
                canonical = to_id18(token.value)
                if canonical is None:
                    raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {token.value}")
                return canonical
            if ftype in ("datetime", "int"):
                raise self._type_error(ref, token, "dateTime" if ftype == "datetime" else "number")
            return token.value.lower()
        if kind == "number":
            if ftype == "int":
                return float(token.text)
            if ftype == "string":
                return token.text.lower()
            raise self._type_error(ref, token, ftype)
        if kind == "datetime":
            if ftype != "datetime":
                raise self._type_error(ref, token, ftype)
            return _canonical_datetime(token.text)
        if kind == "date":
            raise self._type_error(ref, token, "dateTime" if ftype == "datetime" else ftype)
        raise self.unexpected(token)

    def _type_error(self, ref: FieldRef, token: Token, wanted: str) -> SoqlError:
        quoted = " and should not be enclosed in quotes" if wanted not in ("string", "id", "reference") else ""
        return SoqlError(
            "INVALID_FIELD",
            _banner(self.query, token.pos)
            + f"value of filter criterion for field '{ref.path[-1]}' must be of type {wanted}{quoted}",
        )


def _canonical_datetime(text: str) -> str:
    """A SOQL datetime literal as the stored ``YYYY-MM-DDTHH:MM:SS.mmm+0000`` (UTC) text."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def parse(query: str) -> Query:
    return _Parser(query).parse()


# --- evaluation -----------------------------------------------------------------------------


@dataclass
class QueryResult:
    sobject: str
    fields: list[str]
    records: list[dict[str, Any]]
    total_size: int
    count_only: bool
    aggregate: bool = False


class _Source:
    """Row access for one object: the rows, a by-id lookup and field getters."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.tables: dict[str, dict[str, Any]] = {
            "User": org.users,
            "Profile": {p.id: p.record(org) for p in org.profiles.values()},
            "UserLicense": {lic.id: lic.record() for lic in org.licenses.values()},
            "PermissionSet": org.permission_sets,
            "Account": {},
        }

    def getter(self, obj: str, path: tuple[str, ...]) -> Callable[[Any], Any]:
        name = path[0]
        if len(path) == 1:
            if obj == "User":
                index = FIELD_INDEX[name]
                return lambda row: row[index]
            return lambda row: row.get(name)
        fk, target = RELATIONSHIPS[obj][name]
        key = self.getter(obj, (fk,))
        rest = self.getter(target, path[1:])
        table = self.tables[target]

        def follow(row: Any) -> Any:
            ref = key(row)
            parent = table.get(ref) if ref is not None else None
            return None if parent is None else rest(parent)

        return follow


def _comparable(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def _compile(cond: Any, source: _Source, obj: str) -> Callable[[Any], bool]:
    if isinstance(cond, BoolOp):
        parts = [_compile(p, source, obj) for p in cond.parts]
        if cond.op == "and":
            return lambda row: all(p(row) for p in parts)
        if cond.op == "or":
            return lambda row: any(p(row) for p in parts)
        inner = parts[0]
        return lambda row: not inner(row)
    get = source.getter(obj, cond.ref.path)
    exact = cond.ref.type in ("id", "reference", "boolean")
    read = get if exact else (lambda row: _comparable(get(row)))
    op, want = cond.op, cond.value
    if op == "=":
        return lambda row: read(row) == want
    if op == "!=":
        return lambda row: read(row) != want
    if op == "in":
        wanted = set(want)
        return lambda row: read(row) in wanted
    if op == "notin":
        unwanted = set(want)
        return lambda row: read(row) not in unwanted
    if op == "like":
        pattern = want

        def like(row: Any) -> bool:
            value = get(row)
            return value is not None and pattern.match(str(value)) is not None

        return like
    compare = {
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }[op]

    def ordered(row: Any) -> bool:
        value = read(row)
        return value is not None and want is not None and compare(value, want)

    return ordered


def _candidates(query: Query, source: _Source) -> Iterable[Any] | None:
    """Rows an indexed equality on User.Id/Username narrows the scan to, or None."""
    if query.sobject != "User":
        return None
    conjuncts = query.where.parts if isinstance(query.where, BoolOp) and query.where.op == "and" else [query.where]
    org = source.org
    for cond in conjuncts:
        if not isinstance(cond, Comparison) or cond.op not in ("=", "in") or len(cond.ref.path) != 1:
            continue
        values = cond.value if cond.op == "in" else [cond.value]
        if cond.ref.path[0] == "Id":
            return [org.users[v] for v in values if v in org.users]
        if cond.ref.path[0] == "Username":
            ids = [org.user_id_by_username(v) for v in values if v is not None]
            return [org.users[i] for i in ids if i is not None]
    return None


def run_query(org: Org, soql: str, *, with_ids: bool = False) -> QueryResult:
    """Parse and evaluate ``soql`` against ``org``; raises ``SoqlError``.

    ``with_ids`` adds ``"__ids__"`` to each record: the record's own Id under ``""`` and
    each selected relationship's parent Id under its path (``"Profile"``), which REST
    needs for the ``attributes.url`` of nested records.
    """
    query = parse(soql)
    source = _Source(org)
    obj = query.sobject
    with org.lock:
        narrowed = _candidates(query, source) if query.where is not None else None
        rows: Iterable[Any] = source.tables[obj].values() if narrowed is None else narrowed
        if query.where is not None:
            test = _compile(query.where, source, obj)
            matched = [row for row in rows if test(row)]
        else:
            matched = list(rows)
        if query.count_field is not None:
            get = source.getter(obj, query.count_field.path)
            count = sum(1 for row in matched if get(row) is not None)
            return QueryResult(obj, ["expr0"], [{"expr0": count}], 1, False, aggregate=True)
        for ref, descending, nulls_last in reversed(query.order):
            get = source.getter(obj, ref.path)
            present = [row for row in matched if get(row) is not None]
            absent = [row for row in matched if get(row) is None]
            present.sort(key=lambda row, get=get: _comparable(get(row)), reverse=descending)
            matched = present + absent if nulls_last else absent + present
        if query.offset:
            matched = matched[query.offset :]
        if query.limit is not None:
            matched = matched[: query.limit]
        if query.count_only:
            return QueryResult(obj, [], [], len(matched), True)
        names = [ref.name for ref in query.fields]
        getters = [source.getter(obj, ref.path) for ref in query.fields]
        pairs = list(zip(names, getters, strict=True))
        if with_ids:
            prefixes = sorted({ref.path[:n] for ref in query.fields for n in range(1, len(ref.path))})
            id_getters = [("", source.getter(obj, ("Id",)))]
            id_getters += [(".".join(p), _parent_id_getter(source, obj, p)) for p in prefixes]
            records = [
                {**{name: get(row) for name, get in pairs}, "__ids__": {k: g(row) for k, g in id_getters}}
                for row in matched
            ]
        else:
            records = [{name: get(row) for name, get in pairs} for row in matched]
    return QueryResult(obj, names, records, len(records), False)


def _parent_id_getter(source: _Source, obj: str, rels: tuple[str, ...]) -> Callable[[Any], Any]:
    """The Id of the record reached through relationship path ``rels`` (or None)."""
    target = obj
    for rel in rels[:-1]:
        target = RELATIONSHIPS[target][rel][1]
    fk = RELATIONSHIPS[target][rels[-1]][0]
    return source.getter(obj, (*rels[:-1], fk))
