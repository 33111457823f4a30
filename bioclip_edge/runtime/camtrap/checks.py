"""The built-in check of a package's tables and metadata, run before anything is written.

The base install does not carry frictionless or jsonschema, so the command checks what it writes
against the Camtrap DP 1.0.2 rules it can state in a few lines (``columns``): required cells,
types, ranges, enums, the file-path and media-type patterns, unique primary keys, foreign keys
between the tables, and the profile's required metadata. A package that fails is not written:
the error lists the first problems. The tests validate every package the full way as well
(frictionless against the official table schemas, jsonschema against the official profile).
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Mapping, Sequence

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.camtrap.columns import DATETIME_FORMAT, FOREIGN_KEYS, PRIMARY_KEYS, TABLES, Column

Rows = Sequence[Mapping[str, str]]
PROFILE_REQUIRED = ("resources", "profile", "created", "contributors", "project", "spatial", "temporal", "taxonomic")
PROJECT_REQUIRED = ("title", "samplingDesign", "captureMethod", "individualAnimals", "observationLevel")
BOOLEANS = ("true", "false")


class InvalidPackageError(UserError, ValueError):
    """A package that would not validate against Camtrap DP 1.0.2; nothing was written."""


def cell_problem(column: Column, value: str) -> str | None:
    """Why ``value`` does not fit ``column`` (None: it fits). Empty cells only fail required columns."""
    if value == "":
        return "is required" if column.required else None
    if column.enum and value not in column.enum:
        return f"{value!r} is not one of {', '.join(column.enum)}"
    if column.pattern and not re.match(column.pattern, value):
        return f"{value!r} does not match {column.pattern}"
    return _type_problem(column, value)


def _type_problem(column: Column, value: str) -> str | None:
    number: float
    try:
        if column.type == "boolean":
            return None if value in BOOLEANS else f"{value!r} is not true or false"
        if column.type == "datetime":
            _dt.datetime.strptime(value, DATETIME_FORMAT)
            return None
        if column.type == "integer":
            number = int(value)
        elif column.type == "number":
            number = float(value)
        else:
            return None
    except ValueError:
        return f"{value!r} is not a {column.type}" + (" with a time zone (YYYY-MM-DDThh:mm:ss+hh:mm)" if column.type == "datetime" else "")
    if column.minimum is not None and number < column.minimum:
        return f"{value} is below {column.minimum:g}"
    if column.maximum is not None and number > column.maximum:
        return f"{value} is above {column.maximum:g}"
    return None


def table_problems(tables: Mapping[str, Rows]) -> list[str]:
    """Every problem in the three tables (cells, primary keys, foreign keys), as short sentences."""
    problems: list[str] = []
    keys: dict[str, set[str]] = {}
    for name, columns in TABLES.items():
        rows = tables[name]
        for i, row in enumerate(rows, start=2):  # row 1 is the header
            for column in columns:
                why = cell_problem(column, row.get(column.name, ""))
                if why:
                    problems.append(f"{name}.csv row {i}, {column.name}: {why}")
        ids = [row.get(PRIMARY_KEYS[name], "") for row in rows]
        keys[name] = set(ids)
        if len(keys[name]) != len(ids):
            problems.append(f"{name}.csv: {PRIMARY_KEYS[name]} is not unique")
    for name, links in FOREIGN_KEYS.items():
        for field, target in links:
            stray = sorted({row.get(field, "") for row in tables[name]} - keys[target] - {""})
            if stray:
                problems.append(f"{name}.csv: {field} {stray[0]!r} is not in {target}.csv ({len(stray)} such)")
    return problems


def metadata_problems(descriptor: Mapping[str, Any]) -> list[str]:
    problems = [f"datapackage.json: {key} is missing" for key in PROFILE_REQUIRED if not descriptor.get(key) and key != "taxonomic"]
    if not isinstance(descriptor.get("taxonomic"), list):
        problems.append("datapackage.json: taxonomic is missing")
    project = descriptor.get("project") or {}
    problems += [f"datapackage.json: project.{key} is missing" for key in PROJECT_REQUIRED if project.get(key) in (None, "", [])]
    if not all(c.get("title") for c in descriptor.get("contributors") or []):
        problems.append("datapackage.json: a contributor has no title")
    return problems


def check_package(descriptor: Mapping[str, Any], tables: Mapping[str, Rows]) -> None:
    """Raise ``InvalidPackageError`` listing the first problems, if there are any."""
    problems = metadata_problems(descriptor) + table_problems(tables)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InvalidPackageError(f"the package would not validate against Camtrap DP 1.0.2, so nothing was written: {shown}")
