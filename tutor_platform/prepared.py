"""Querysets compiled to SQL once, then run with new values.

Django compiles a queryset to SQL each time it is evaluated: it resolves
every name, join and deferred column again. For the reads of a chat screen
(the chat with its owner, tutor and course; a page of messages; the chat
list) that was about a third of their CPU (bench/read_path.py). A
`Prepared` query builds its queryset once per thread and shape from
placeholder values, keeps the compiler (its SQL, columns, converters and
related-object populators), and each call runs that SQL with the real
values, then builds the model instances exactly as Django's ModelIterable
does: converters, `Model.from_db`, the `select_related` objects.

    chat_by_owner = Prepared(
        lambda chat_id, user_id: Chat.objects.select_related("user").filter(pk=chat_id, user_id=user_id)[:1]
    )
    chat_by_owner.first(chat_id=7, user_id=3)

The named arguments are integers (ids): the placeholders are integers that
no id can be, and each must reach the SQL as a parameter. A
value that changes the SQL's shape (a limit, a filter present or not) is a
`shape` argument instead: each shape is compiled once.

Private names used (pinned in tutor_platform.serving.PRIVATE_NAMES):
django.db.models.query's `get_related_populators`, QuerySet's
`_iterable_class` and `_known_related_objects`.
"""

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable, get_related_populators
from django.db.models.sql.compiler import SQLCompiler

M = TypeVar("M", bound=Model)

# Far below any id a sequence hands out, and distinct from each other.
_PLACEHOLDER = -(2**62)
# Shapes kept per query and thread: far more than the callers have (a limit
# of 1 to 101, a filter or not); a caller that makes more is compiling anyway.
SHAPES_MAX = 256


@dataclass(frozen=True)
class _Compiled(Generic[M]):
    model: type[M]
    compiler: SQLCompiler
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, str], ...]  # (position in params, argument name)
    converters: dict[int, tuple[list[Callable[..., Any]], Any]]
    model_slice: slice
    init_list: list[str]
    related: list[Any]  # RelatedPopulator


class Prepared(Generic[M]):
    def __init__(self, build: Callable[..., QuerySet[M]]) -> None:
        self.build = build
        self._threads = threading.local()  # a compiler holds its thread's connection

    def all(self, *shape: Hashable, using: str = DEFAULT_DB_ALIAS, **values: int) -> list[M]:
        compiled = self._compiled(shape, using, tuple(values))
        params = list(compiled.params)
        for position, name in compiled.slots:
            params[position] = values[name]
        with compiled.compiler.connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if compiled.converters:
            rows = list(compiled.compiler.apply_converters(rows, compiled.converters))
        instances = []
        for row in rows:
            instance = compiled.model.from_db(using, compiled.init_list, row[compiled.model_slice])
            for populator in compiled.related:
                populator.populate(row, instance)
            instances.append(instance)
        return instances

    def first(self, *shape: Hashable, using: str = DEFAULT_DB_ALIAS, **values: int) -> M | None:
        """The first instance, for a queryset sliced to one row by `build`."""
        instances = self.all(*shape, using=using, **values)
        return instances[0] if instances else None

    def _compiled(self, shape: tuple[Hashable, ...], using: str, names: tuple[str, ...]) -> _Compiled[M]:
        cache: dict[tuple[Any, ...], _Compiled[M]] = self._threads.__dict__.setdefault("compiled", {})
        key = (using, shape, names)
        if key not in cache:
            if len(cache) >= SHAPES_MAX:
                cache.clear()
            cache[key] = _compile(self.build, shape, using, names)
        return cache[key]


def _compile(
    build: Callable[..., QuerySet[M]], shape: tuple[Hashable, ...], using: str, names: tuple[str, ...]
) -> _Compiled[M]:
    placeholders = {name: _PLACEHOLDER - i for i, name in enumerate(names)}
    queryset = build(*shape, **placeholders)
    if queryset._iterable_class is not ModelIterable or queryset._known_related_objects:  # type: ignore[attr-defined]
        raise TypeError("Prepared runs querysets of model instances without known related objects.")
    compiler = queryset.query.get_compiler(using=using, connection=connections[using])
    sql, params = compiler.as_sql()  # also fills compiler.select and klass_info
    if compiler.has_extra_select or compiler.annotation_col_map:
        raise TypeError("Prepared runs querysets without extra columns or annotations.")
    slots = tuple((i, names[_PLACEHOLDER - p]) for i, p in enumerate(params) if p in placeholders.values())
    if {name for _, name in slots} != set(names):
        raise TypeError(f"Each of {names} must reach the SQL as a parameter: {params!r}.")
    select, klass_info = compiler.select, compiler.klass_info
    fields = klass_info["select_fields"]
    return _Compiled(
        model=queryset.model,
        compiler=compiler,
        sql=sql,
        params=tuple(params),
        slots=slots,
        converters=compiler.get_converters([column for column, *_ in select[: compiler.col_count]]),
        model_slice=slice(fields[0], fields[-1] + 1),
        init_list=[column[0].target.attname for column in select[fields[0] : fields[-1] + 1]],
        related=get_related_populators(klass_info, select, using),  # type: ignore[call-arg]  # Django 6's stubs
    )
