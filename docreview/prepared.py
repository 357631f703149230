"""Queries compiled to SQL once, then run with new values: the write path's lookups.

Django compiles a QuerySet to SQL every time it is evaluated.  For the small
lookups every write makes (the token, the document and the writer's role) that
compilation costs 0.2-0.3 ms of CPU each, ten times what SQLite or PostgreSQL
then take to run the statement; measured here it was a third of a comment
POST's CPU.  ``PreparedQuery`` builds the QuerySet once per database with
marker values, keeps Django's SQL, and on each call runs that SQL with the
real values, turning rows into instances with the compiler's own converters,
as the QuerySet would.  The SQL is Django's, so it is quoted and written for
each backend as usual, and a model change needs no edit here.

Supported: a QuerySet of model instances, with annotations and one level of
``select_related``.  Each parameter must reach the SQL as a parameter equal to
its marker, exactly once (``PreparedQuery`` checks this when it compiles),
and is passed as the database value (an id, not an instance).
"""

from __future__ import annotations

from typing import Any, Callable

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet


class _Compiled:
    __slots__ = ("sql", "slots", "constants", "compiler", "converters", "model", "select", "fields", "annotations",
                 "related")

    def __init__(self, queryset: QuerySet, markers: tuple[Any, ...], using: str) -> None:
        compiler = queryset.query.get_compiler(using)
        sql, params = compiler.as_sql()
        slots: list[int | None] = []
        for param in params:
            found = [i for i, marker in enumerate(markers) if type(param) is type(marker) and param == marker]
            slots.append(found[0] if found else None)
        for i in range(len(markers)):
            if slots.count(i) != 1:
                raise ValueError(f"parameter {i} must appear exactly once in the compiled query: {sql}")
        self.sql = sql
        self.slots = slots
        self.constants = list(params)
        self.compiler = compiler
        self.converters = compiler.get_converters([col for col, _, _ in compiler.select])
        info = compiler.klass_info
        self.model: type[Model] = info["model"]
        self.select = info["select_fields"]
        self.fields = [compiler.select[i][0].target.attname for i in self.select]
        self.annotations = list(compiler.annotation_col_map.items())
        self.related = []
        for rel in info.get("related_klass_infos", []):
            if rel.get("related_klass_infos") or rel.get("reverse"):
                raise ValueError("only one level of forward select_related is supported")
            self.related.append((rel["field"], rel["model"], rel["select_fields"],
                                 [compiler.select[i][0].target.attname for i in rel["select_fields"]]))


class PreparedQuery:
    """``build(*values)`` returns the QuerySet; ``markers`` are example values
    that appear nowhere else in it (one per parameter, of the type the field
    takes)."""

    def __init__(self, build: Callable[..., QuerySet], *markers: Any, using: str = DEFAULT_DB_ALIAS) -> None:
        self.build = build
        self.markers = markers
        self.using = using
        self._compiled: _Compiled | None = None

    def _get(self) -> _Compiled:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = _Compiled(self.build(*self.markers), self.markers, self.using)
        return compiled

    def all(self, *values: Any) -> list[Model]:
        c = self._get()
        params = [c.constants[i] if slot is None else values[slot] for i, slot in enumerate(c.slots)]
        with connections[self.using].cursor() as cursor:
            cursor.execute(c.sql, params)
            rows = cursor.fetchall()
        if c.converters:
            rows = list(c.compiler.apply_converters(rows, c.converters))
        out = []
        for row in rows:
            obj = c.model.from_db(self.using, c.fields, [row[i] for i in c.select])
            for field, model, select, names in c.related:
                values_ = [row[i] for i in select]
                related = None if values_[names.index(model._meta.pk.attname)] is None else \
                    model.from_db(self.using, names, values_)
                field.set_cached_value(obj, related)
            for name, index in c.annotations:
                setattr(obj, name, row[index])
            out.append(obj)
        return out

    def first(self, *values: Any) -> Model | None:
        rows = self.all(*values)
        return rows[0] if rows else None


class PreparedInsert:
    """An ``INSERT`` of one row of ``model`` (the given fields, returning its
    primary key), compiled once per database.  Values are adapted with each
    field's ``get_db_prep_save`` as ``Model.save`` does; no ``pre_save`` runs
    (pass ``auto_now`` values yourself) and no model signal is sent, so use it
    only for rows that nothing listens to."""

    def __init__(self, model: type[Model], fields: list[str], using: str = DEFAULT_DB_ALIAS) -> None:
        self.model = model
        self.fields = [model._meta.get_field(name) for name in fields]
        self.using = using
        self._sql: str | None = None

    def _compile(self) -> str:
        from django.db.models.sql import InsertQuery

        query = InsertQuery(self.model)
        query.insert_values(self.fields, [self.model()], raw=True)
        compiler = query.get_compiler(using=self.using)
        if not compiler.connection.features.can_return_columns_from_insert:
            raise NotImplementedError("PreparedInsert needs INSERT ... RETURNING (PostgreSQL, SQLite 3.35+)")
        compiler.returning_fields = [self.model._meta.pk]
        statements = compiler.as_sql()
        if len(statements) != 1 or len(statements[0][1]) != len(self.fields):
            # A field compiled to something other than one parameter
            # (``db_default``, a custom placeholder): not for this helper.
            raise ValueError("expected one INSERT statement with one parameter per field")
        return statements[0][0]

    def insert(self, **values: Any) -> Model:
        """Insert the row and return it as an instance (primary key set)."""
        if self._sql is None:
            self._sql = self._compile()
        connection = connections[self.using]
        params = [field.get_db_prep_save(values[field.attname if field.attname in values else field.name], connection)
                  for field in self.fields]
        with connection.cursor() as cursor:
            cursor.execute(self._sql, params)
            pk = cursor.fetchone()[0]
        obj = self.model(pk=pk, **values)
        obj._state.adding = False
        obj._state.db = self.using
        return obj
