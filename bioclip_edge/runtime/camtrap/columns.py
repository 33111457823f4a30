"""The three Camtrap DP 1.0.2 tables' columns, in the official order, with the constraints a cell must meet.

Copied by hand from the official table schemas (``deployments-table-schema.json``,
``media-table-schema.json``, ``observations-table-schema.json``); the tests compare these lists
with the schemas kept in tests/data/camtrap-dp-1.0.2, so they cannot drift apart. ``checks``
uses them for the built-in check run before any file is written (the base install has no
frictionless); the tests validate every package with frictionless and jsonschema as well.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = "1.0.2"
BASE_URL = f"https://raw.githubusercontent.com/tdwg/camtrap-dp/{VERSION}"
PROFILE_URL = f"{BASE_URL}/camtrap-dp-profile.json"
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
FILE_PATH_PATTERN = r"^(?=^[^./~])(^((?!\.{2}).)*$).*$"
MEDIATYPE_PATTERN = r"^(image|video|audio)/.*$"


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"  # string, number, integer, boolean, datetime, any
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] = ()
    pattern: str | None = None


def schema_url(table: str) -> str:
    return f"{BASE_URL}/{table}-table-schema.json"


FEATURE_TYPES = ("roadPaved", "roadDirt", "trailHiking", "trailGame", "roadUnderpass", "roadOverpass", "roadBridge", "culvert",
                 "burrow", "nestSite", "carcass", "waterSource", "fruitingTree")
CAPTURE_METHODS = ("activityDetection", "timeLapse")
OBSERVATION_TYPES = ("animal", "human", "vehicle", "blank", "unknown", "unclassified")

DEPLOYMENTS = (
    Column("deploymentID", required=True), Column("locationID"), Column("locationName"),
    Column("latitude", "number", True, -90, 90), Column("longitude", "number", True, -180, 180),
    Column("coordinateUncertainty", "integer", minimum=1),
    Column("deploymentStart", "datetime", True), Column("deploymentEnd", "datetime", True),
    Column("setupBy"), Column("cameraID"), Column("cameraModel"), Column("cameraDelay", "integer", minimum=0),
    Column("cameraHeight", "number", minimum=0), Column("cameraDepth", "number", minimum=0),
    Column("cameraTilt", "integer", minimum=-90, maximum=90), Column("cameraHeading", "integer", minimum=0, maximum=360),
    Column("detectionDistance", "number", minimum=0), Column("timestampIssues", "boolean"), Column("baitUse", "boolean"),
    Column("featureType", enum=FEATURE_TYPES), Column("habitat"), Column("deploymentGroups"), Column("deploymentTags"),
    Column("deploymentComments"),
)

MEDIA = (
    Column("mediaID", required=True), Column("deploymentID", required=True),
    Column("captureMethod", enum=CAPTURE_METHODS), Column("timestamp", "datetime", True),
    Column("filePath", required=True, pattern=FILE_PATH_PATTERN), Column("filePublic", "boolean", True), Column("fileName"),
    Column("fileMediatype", required=True, pattern=MEDIATYPE_PATTERN), Column("exifData", "any"),
    Column("favorite", "boolean"), Column("mediaComments"),
)

OBSERVATIONS = (
    Column("observationID", required=True), Column("deploymentID", required=True), Column("mediaID"), Column("eventID"),
    Column("eventStart", "datetime", True), Column("eventEnd", "datetime", True),
    Column("observationLevel", required=True, enum=("media", "event")),
    Column("observationType", required=True, enum=OBSERVATION_TYPES),
    Column("cameraSetupType", enum=("setup", "calibration")), Column("scientificName"), Column("count", "integer", minimum=1),
    Column("lifeStage", enum=("adult", "subadult", "juvenile")), Column("sex", enum=("female", "male")), Column("behavior"),
    Column("individualID"), Column("individualPositionRadius", "number", minimum=0),
    Column("individualPositionAngle", "number", minimum=-90, maximum=90), Column("individualSpeed", "number", minimum=0),
    Column("bboxX", "number", minimum=0, maximum=1), Column("bboxY", "number", minimum=0, maximum=1),
    Column("bboxWidth", "number", minimum=1e-15, maximum=1), Column("bboxHeight", "number", minimum=1e-15, maximum=1),
    Column("classificationMethod", enum=("human", "machine")), Column("classifiedBy"),
    Column("classificationTimestamp", "datetime"), Column("classificationProbability", "number", minimum=0, maximum=1),
    Column("observationTags"), Column("observationComments"),
)

TABLES: dict[str, tuple[Column, ...]] = {"deployments": DEPLOYMENTS, "media": MEDIA, "observations": OBSERVATIONS}
PRIMARY_KEYS = {"deployments": "deploymentID", "media": "mediaID", "observations": "observationID"}
FOREIGN_KEYS = {"media": (("deploymentID", "deployments"),),
                "observations": (("deploymentID", "deployments"), ("mediaID", "media"))}
