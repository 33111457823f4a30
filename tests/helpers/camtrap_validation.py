"""Validate a Camtrap DP package offline against the official 1.0.2 profile and table schemas.

The files are kept in tests/data/camtrap-dp-1.0.2 (their README names the sources and licences).
``datapackage.json`` is checked against the profile with jsonschema, the profile's remote
``$ref``s (Frictionless' data-package schema, SchemaStore's and geojson.org's GeoJSON schemas)
resolved to the local copies through a ``referencing`` registry; the three tables are checked by
frictionless against the local table schemas (types, formats, required, unique, enums, patterns,
ranges, primary and foreign keys across the tables). Nothing is fetched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC = Path(__file__).resolve().parents[1] / "data" / "camtrap-dp-1.0.2"
TABLES = ("deployments", "media", "observations")
REMOTE = {  # the URLs the profile (and SchemaStore's file) point to -> the local copy
    "https://specs.frictionlessdata.io/schemas/data-package.json": "remote/data-package.json",
    "http://json.schemastore.org/geojson.json": "remote/schemastore-geojson.json",
    "https://json.schemastore.org/geojson.json": "remote/schemastore-geojson.json",
    "https://geojson.org/schema/GeoJSON.json": "remote/GeoJSON.json",
}
TABLE_SCHEMA_URL = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/{name}-table-schema.json"


def spec_json(name: str) -> dict[str, Any]:
    return json.loads((SPEC / name).read_text(encoding="utf-8"))


def _registry() -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    resources = []
    for url, local in REMOTE.items():
        contents = spec_json(local)
        resources.append((url, Resource.from_contents(contents, default_specification=DRAFT4)))
    return Registry().with_resources(resources)


def profile_errors(descriptor: dict[str, Any]) -> list[str]:
    """Every way ``descriptor`` breaks the Camtrap DP profile (with the Data Package and GeoJSON schemas it includes)."""
    from jsonschema import Draft4Validator, FormatChecker

    validator = Draft4Validator(spec_json("camtrap-dp-profile.json"), registry=_registry(),
                                format_checker=FormatChecker())
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(descriptor)]


def table_errors(folder: Path, descriptor: dict[str, Any]) -> list[str]:
    """Every error frictionless finds in the three tables, against the local copies of the official table schemas."""
    from frictionless import Package, Resource, Schema

    resources = []
    for entry in descriptor["resources"]:
        name = entry["name"]
        if name not in TABLES:
            continue
        assert entry["schema"] == TABLE_SCHEMA_URL.format(name=name), entry["schema"]
        schema = Schema.from_descriptor(spec_json(f"{name}-table-schema.json"))
        resources.append(Resource(name=name, path=entry["path"], basepath=str(folder), schema=schema))
    assert sorted(r.name for r in resources) == sorted(TABLES)
    report = Package(resources=resources, basepath=str(folder)).validate()
    errors = [f"{e.type}: {e.note}" for e in report.errors]
    for task in report.tasks:
        errors += [f"{task.name}: {e.type} (row {getattr(e, 'row_number', '-')}, field {getattr(e, 'field_name', '-')}): "
                   f"{e.note}" for e in task.errors]
    return errors


def assert_camtrap_valid(folder: Path) -> dict[str, Any]:
    """Assert the package in ``folder`` validates; returns its ``datapackage.json``."""
    descriptor = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    errors = profile_errors(descriptor) + table_errors(folder, descriptor)
    assert not errors, "Camtrap DP package does not validate:\n" + "\n".join(errors[:30])
    return descriptor
