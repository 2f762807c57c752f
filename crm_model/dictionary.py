"""Writes the warehouse data dictionary (docs/warehouse.md) from the models' comments.

    python -m crm_model.dictionary > docs/warehouse.md     (or: make docs)
"""

from __future__ import annotations

import inspect
import sys

from sqlalchemy import Table

from crm_model import schema
from crm_model.schema import OPERATIONS_TABLES, UNIFIED_TABLES, Base

HEADER = """# Warehouse data dictionary

Generated from `crm_model/schema.py` by `make docs`; a test keeps it current.
The same columns exist on SQLite and PostgreSQL (on PostgreSQL, `\\d+ table` shows
these descriptions too). Primary-key columns are marked **PK**.

""" + "## Conventions\n\n" + inspect.cleandoc(schema.__doc__.split("Conventions", 1)[1]) + "\n"


def _type(column) -> str:
    type_ = column.type
    name = type(type_).__name__
    if name == "Numeric":
        return f"decimal({type_.precision},{type_.scale})"
    if name == "String":
        return f"text({type_.length})"
    return {"UtcDateTime": "timestamp (UTC)", "Text": "text", "JSON": "json", "Integer": "integer",
            "Boolean": "boolean", "Date": "date"}.get(name, name.lower())


def _table(table: Table) -> list[str]:
    own = Base.classes[table.name].__dict__.get("__doc__")  # not a mixin's
    doc = inspect.cleandoc(own) if own else ""
    lines = [f"## `{table.name}`", ""]
    if doc:
        lines += [doc, ""]
    lines += ["| column | type | description |", "| --- | --- | --- |"]
    for column in table.columns:
        pk = " **PK**" if column.primary_key else ""
        lines.append(f"| `{column.name}`{pk} | {_type(column)} | {column.comment or ''} |")
    return lines + [""]


def render() -> str:
    out = [HEADER, "# Unified CRM tables", ""]
    for name in UNIFIED_TABLES:
        out += _table(Base.metadata.tables[name])
    out += ["# Operations tables", ""]
    for name in OPERATIONS_TABLES:
        out += _table(Base.metadata.tables[name])
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
