"""Querysets compiled to SQL once, then run with new values.

Django compiles a queryset to SQL each time it is evaluated: it resolves
every name, join, annotation and deferred column again. For the reads of a
chat screen (the chat with its owner, tutor and course; a page of messages;
the chat list) that was about a third of their CPU, and the learner
window's annotated query was the largest part of a send's
(docs/decisions/2026-12-06-read-path-and-send-statements.md). A `Prepared`
query builds its queryset once per process and shape from placeholder
values, keeps what Django's compiler made of it (the SQL, the columns'
converters, the related-object populators), and each call runs that SQL
on the calling thread's connection with the real values, then builds the
rows exactly as Django does: model instances with their `select_related`
objects (ModelIterable), dicts (`values()`) or tuples (`values_list()`).
Nothing kept refers to a connection, so the threads share it: a compiler
kept per thread cost 125 KiB per thread for a send's and a page's
queries.

    chat_by_owner = Prepared(
        lambda chat_id, user_id: Chat.objects.select_related("user").filter(pk=chat_id, user_id=user_id)[:1]
    )
    chat_by_owner.first(chat_id=7, user_id=3)

The named arguments are integers (ids): the placeholders are integers that
no id can be, and each must reach the SQL as a parameter. A value that
changes the SQL's shape (a limit, a filter present or not) is a `shape`
argument instead: each shape is compiled once.

Private names used (pinned in tutor_platform.serving.PRIVATE_NAMES):
django.db.models.query's `get_related_populators`, QuerySet's
`_iterable_class` and `_known_related_objects`.
"""

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable, ValuesIterable, ValuesListIterable, get_related_populators
from django.db.models.sql.compiler import SQLCompiler

R = TypeVar("R")

# Far below any id a sequence hands out, and distinct from each other.
_PLACEHOLDER = -(2**62)
# Shapes kept per query: far more than the callers have (a limit of 1 to
# 101, a filter or not); a caller that makes more is compiling anyway.
SHAPES_MAX = 256


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, str], ...]  # (position in params, argument name)
    converters: tuple[tuple[int, list[Callable[..., Any]], Any], ...]  # (column, converters, expression)
    rows: Callable[[list[Any], str], list[Any]]  # what a fetched, converted row becomes


class Prepared(Generic[R]):
    def __init__(self, build: Callable[..., QuerySet[Any, R]]) -> None:
        self.build = build
        self.compiled: dict[tuple[Any, ...], _Compiled] = {}  # two threads may both compile: either is right

    def all(self, *shape: Hashable, using: str = DEFAULT_DB_ALIAS, **values: int) -> list[R]:
        compiled = self._compiled(shape, using, tuple(values))
        params = list(compiled.params)
        for position, name in compiled.slots:
            params[position] = values[name]
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if compiled.converters:  # as SQLCompiler.apply_converters, with this thread's connection
            rows = [list(row) for row in rows]
            for row in rows:
                for column, converters, expression in compiled.converters:
                    value = row[column]
                    for converter in converters:
                        value = converter(value, expression, connection)
                    row[column] = value
        return compiled.rows(rows, using)

    def first(self, *shape: Hashable, using: str = DEFAULT_DB_ALIAS, **values: int) -> R | None:
        """The first row, for a queryset sliced to one row by `build`."""
        rows = self.all(*shape, using=using, **values)
        return rows[0] if rows else None

    def _compiled(self, shape: tuple[Hashable, ...], using: str, names: tuple[str, ...]) -> _Compiled:
        key = (using, shape, names)
        compiled = self.compiled.get(key)
        if compiled is None:
            if len(self.compiled) >= SHAPES_MAX:
                self.compiled.clear()
            compiled = self.compiled[key] = _compile(self.build, shape, using, names)
        return compiled


def _compile(
    build: Callable[..., QuerySet[Any, Any]], shape: tuple[Hashable, ...], using: str, names: tuple[str, ...]
) -> _Compiled:
    placeholders = {name: _PLACEHOLDER - i for i, name in enumerate(names)}
    queryset = build(*shape, **placeholders)
    if queryset._known_related_objects:  # type: ignore[attr-defined]
        raise TypeError("Prepared runs querysets without known related objects.")
    compiler = queryset.query.get_compiler(using=using, connection=connections[using])
    sql, params = compiler.as_sql()  # also fills compiler.select, klass_info and col_count
    if compiler.has_extra_select:
        raise TypeError("Prepared runs querysets without extra(select=...).")
    slots = tuple((i, names[_PLACEHOLDER - p]) for i, p in enumerate(params) if p in placeholders.values())
    if {name for _, name in slots} != set(names):
        raise TypeError(f"Each of {names} must reach the SQL as a parameter: {params!r}.")
    columns = [column for column, *_ in compiler.select[: compiler.col_count]]
    if compiler.has_composite_fields(columns):
        raise TypeError("Prepared runs querysets without composite fields.")
    converters = compiler.get_converters(columns)
    return _Compiled(
        sql=sql,
        params=tuple(params),
        slots=slots,
        converters=tuple((column, found, expression) for column, (found, expression) in converters.items()),
        rows=_row_maker(queryset, compiler, using),
    )


def _row_maker(queryset: QuerySet[Any, Any], compiler: SQLCompiler, using: str) -> Callable[..., list[Any]]:
    """What each row becomes, as the queryset's own iterable makes it."""
    kind = queryset._iterable_class
    query = queryset.query
    if kind is ValuesListIterable:
        return lambda rows, _using: [tuple(row) for row in rows]
    if kind is ValuesIterable:
        names = list(query.selected or (*query.extra_select, *query.values_select, *query.annotation_select))
        return lambda rows, _using: [dict(zip(names, row, strict=True)) for row in rows]
    if kind is not ModelIterable or compiler.annotation_col_map:
        raise TypeError("Prepared makes model instances, values() dicts or values_list() tuples.")
    return _Instances(compiler, using)


class _Instances:
    """ModelIterable's hydration: `Model.from_db`, then the `select_related`
    objects. Keeps no compiler: the populators hold the alias, not a connection."""

    def __init__(self, compiler: SQLCompiler, using: str) -> None:
        select, klass_info = compiler.select, compiler.klass_info
        assert klass_info is not None  # a model queryset
        fields = klass_info["select_fields"]
        self.model = klass_info["model"]
        self.columns = slice(fields[0], fields[-1] + 1)
        self.init_list = [column[0].target.attname for column in select[self.columns]]
        self.related = get_related_populators(klass_info, select, using)  # type: ignore[call-arg]  # Django 6's stubs

    def __call__(self, rows: list[Any], using: str) -> list[Any]:
        instances = []
        for row in rows:
            instance = self.model.from_db(using, self.init_list, row[self.columns])
            for populator in self.related:
                populator.populate(row, instance)
            instances.append(instance)
        return instances
