"""``bioclip-edge camtrap-dp``: a classify output as a Camtrap DP 1.0.2 package, to publish on GBIF.

Standard library only at module level (``--help`` stays fast); the package is built in ``run``.
Exit codes: 0 the package was written, 2 missing metadata (project title, contributor), a bad
deployments CSV, files no deployment claims, a predictions file that is not a classify output,
or an ``--out`` that would replace files without ``--overwrite``. Nothing is written then.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write a Camtrap DP 1.0.2 data package (GBIF's camera-trap format) from a classify output"
DESCRIPTION = (
    "Turn a classify output (MegaDetector JSON, CSV, JSON Lines or Parquet; whole images, --detections runs, videos, "
    "--sequence-gap runs) and a deployments CSV (deploymentID, folder or cameraID, latitude, longitude, optional "
    "deploymentStart, deploymentEnd, timezone) into a Camtrap DP 1.0.2 package in --out: datapackage.json, "
    "deployments.csv, media.csv and observations.csv. Observations are machine classifications (classifiedBy: the "
    "model and bundle variant); failed files are left out and listed. The package is checked before it is written."
)
EPILOG = """examples:
  bioclip-edge camtrap-dp predictions.json --deployments deployments.csv --project-title "Mara 2026" \\
      --contributor "Jane Doe <jane@example.org>" --timezone Africa/Nairobi --out study-dp/
  bioclip-edge camtrap-dp boxes.csv --deployments deployments.csv --labels labels/kenya.npz --project-title "Mara 2026" \\
      --contributor "Jane Doe <jane@example.org>" --media-base-url https://example.org/mara/ --out study-dp/"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", metavar="PREDICTIONS", help="the output file 'bioclip-edge classify' wrote")
    parser.add_argument("--deployments", required=True, metavar="CSV",
                        help="deploymentID, folder (a path prefix of the predictions' paths) or cameraID (EXIF serial), "
                             "latitude, longitude; optional deploymentStart, deploymentEnd, timezone and other Camtrap DP columns")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the package (new, or pass --overwrite)")
    parser.add_argument("--project-title", default=None, metavar="TITLE", help="title of the project that took the images (required)")
    parser.add_argument("--contributor", action="append", default=[], metavar="'NAME <EMAIL> (ROLE)'",
                        help="a person or organisation; repeat for several (required; the first is the contact unless a "
                             "role is given: contact, principalInvestigator, rightsHolder, publisher, contributor)")
    parser.add_argument("--timezone", default=None, metavar="TZ",
                        help="the camera clocks' time zone (+03:00, -05:00, Z, or a name like Africa/Nairobi) for "
                             "deployments without a timezone column or an offset in deploymentStart")
    parser.add_argument("--labels", default=None, metavar="LABELS.npz",
                        help="the label matrix classify used: its taxonomy gives scientificName (default: a MegaDetector "
                             "output's category descriptions)")
    parser.add_argument("--image-root", default=None, metavar="DIR",
                        help="folder relative paths start from, and absolute paths are written relative to "
                             "(default: the predictions file's folder; for absolute paths their common folder)")
    parser.add_argument("--media-base-url", default=None, metavar="URL",
                        help="where the media are published: filePath becomes URL/path and filePublic true")
    parser.add_argument("--classified-by", default=None, metavar="TEXT",
                        help="classifiedBy (default: the model and variant the output records)")
    parser.add_argument("--license", default=None, metavar="ID",
                        help="licence of the data, e.g. CC0-1.0, CC-BY-4.0 or CC-BY-NC-4.0 (GBIF accepts these three)")
    parser.add_argument("--media-license", default=None, metavar="ID", help="licence of the media files (default: --license)")
    parser.add_argument("--sampling-design", default="opportunistic",
                        choices=("simpleRandom", "systematicRandom", "clusteredRandom", "experimental", "targeted", "opportunistic"),
                        help="the project's sampling design (default: opportunistic)")
    parser.add_argument("--capture-method", default="activityDetection", choices=("activityDetection", "timeLapse"),
                        help="how the cameras were triggered (default: activityDetection)")
    parser.add_argument("--blank-labels", default=None, metavar="LABELS",
                        help="comma-separated labels that mean an empty frame (default: blank, empty, nothing, background, "
                             "no animal; labels beginning 'empty ' or 'blank ' too)")
    parser.add_argument("--skip-unmatched", action="store_true",
                        help="leave out files no deployment claims (default: stop and name them)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier package's files in --out")


def run(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.camtrap import CamtrapRequest, write_camtrap_dp
    from bioclip_edge.runtime.camtrap.request import DEFAULT_BLANK_LABELS

    blank = tuple(b.strip() for b in args.blank_labels.split(",") if b.strip()) if args.blank_labels else DEFAULT_BLANK_LABELS
    request = CamtrapRequest(
        predictions=Path(args.predictions), deployments=Path(args.deployments), out=Path(args.out),
        project_title=args.project_title, contributors=tuple(args.contributor), timezone=args.timezone,
        image_root=Path(args.image_root) if args.image_root else None, labels=Path(args.labels) if args.labels else None,
        media_base_url=args.media_base_url, classified_by=args.classified_by, sampling_design=args.sampling_design,
        capture_method=args.capture_method, license=args.license, media_license=args.media_license, blank_labels=blank,
        skip_unmatched=args.skip_unmatched, overwrite=args.overwrite)
    print(write_camtrap_dp(request).line())
    return 0
