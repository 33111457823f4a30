"""What ``write_camtrap_dp`` is asked for (``CamtrapRequest``) and what it did (``CamtrapResult``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bioclip_edge.errors import OptionError

ROLES = ("contact", "principalInvestigator", "rightsHolder", "publisher", "contributor")
SAMPLING_DESIGNS = ("simpleRandom", "systematicRandom", "clusteredRandom", "experimental", "targeted", "opportunistic")
DEFAULT_BLANK_LABELS = ("blank", "empty", "nothing", "background", "no animal")
CONTRIBUTOR = re.compile(r"^(?P<title>[^<>()]+?)\s*(?:<(?P<email>[^<>\s]+@[^<>\s]+)>)?\s*(?:\((?P<role>\w+)\))?$")


@dataclass(frozen=True)
class Contributor:
    title: str
    email: str | None = None
    role: str = "contributor"

    def to_dict(self) -> dict[str, str]:
        out = {"title": self.title}
        if self.email:
            out["email"] = self.email
        out["role"] = self.role
        return out


def parse_contributor(text: str, first: bool) -> Contributor:
    """``Jane Doe <jane@example.org> (principalInvestigator)``: name, optional e-mail and role (the
    first contributor is the ``contact`` unless a role is given; the others ``contributor``)."""
    match = CONTRIBUTOR.match(text.strip())
    if not match:
        raise OptionError(f"--contributor {text!r}: write it as \"Name <email>\", optionally followed by a role in "
                          f"parentheses ({', '.join(ROLES)}), e.g. \"Jane Doe <jane@example.org> (principalInvestigator)\"")
    role = match["role"] or ("contact" if first else "contributor")
    if role not in ROLES:
        raise OptionError(f"--contributor {text!r}: role {role!r} is not one of {', '.join(ROLES)}")
    return Contributor(match["title"].strip(), match["email"], role)


@dataclass(frozen=True)
class CamtrapRequest:
    """A Camtrap DP package from one classify output. ``image_root``: the folder relative prediction
    paths start from (default: the predictions file's folder) and absolute paths are written
    relative to (default: their common folder). ``timezone``: the camera clocks' zone for
    deployments that do not give theirs. ``labels``: the label matrix classify used, for its taxonomy.
    ``skip_unmatched``: leave out files no deployment claims instead of stopping."""

    predictions: Path
    deployments: Path
    out: Path
    project_title: str | None = None
    contributors: tuple[str, ...] = ()
    timezone: str | None = None
    image_root: Path | None = None
    labels: Path | None = None
    media_base_url: str | None = None
    classified_by: str | None = None
    sampling_design: str = "opportunistic"
    capture_method: str = "activityDetection"
    license: str | None = None  # the data's licence, e.g. CC-BY-4.0 (an Open Definition / SPDX identifier)
    media_license: str | None = None  # the media files' licence (default: the data's)
    blank_labels: tuple[str, ...] = DEFAULT_BLANK_LABELS
    skip_unmatched: bool = False
    overwrite: bool = False

    def check(self) -> list[Contributor]:
        """Refuse missing or malformed metadata before reading anything; returns the contributors."""
        if not (self.project_title or "").strip():
            raise OptionError("--project-title is missing: Camtrap DP requires the title of the project that took the "
                              "images, e.g. --project-title \"Mara camera survey 2026\"")
        if not self.contributors:
            raise OptionError("--contributor is missing: Camtrap DP requires at least one contributor (the first is the "
                              "contact), e.g. --contributor \"Jane Doe <jane@example.org>\"")
        if self.sampling_design not in SAMPLING_DESIGNS:
            raise OptionError(f"--sampling-design {self.sampling_design!r}: choose one of {', '.join(SAMPLING_DESIGNS)}")
        if self.capture_method not in ("activityDetection", "timeLapse"):
            raise OptionError(f"--capture-method {self.capture_method!r}: choose activityDetection or timeLapse")
        if self.media_base_url is not None and not re.match(r"^https?://\S+$", self.media_base_url):
            raise OptionError(f"--media-base-url {self.media_base_url!r}: give an http(s) URL the media folder is served at")
        for option, value in (("--license", self.license), ("--media-license", self.media_license)):
            if value is not None and not re.match(r"^[-a-zA-Z0-9._]+$", value):
                raise OptionError(f"{option} {value!r}: give a licence identifier such as CC0-1.0, CC-BY-4.0 or CC-BY-NC-4.0")
        if self.media_license and not self.license:
            raise OptionError("--media-license needs --license too: Camtrap DP lists the data's licence and the media's together")
        if self.image_root is not None and not Path(self.image_root).is_dir():
            raise OptionError(f"--image-root {self.image_root}: not a folder; give the folder the images are in")
        return [parse_contributor(text, i == 0) for i, text in enumerate(self.contributors)]


@dataclass
class CamtrapResult:
    out: Path
    deployments: int
    media: int
    observations: int
    levels: list[str]
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason): not in the package
    unmatched: list[str] = field(default_factory=list)  # files no deployment claims (--skip-unmatched)
    notes: list[str] = field(default_factory=list)  # what a publisher should look at
    files: list[Path] = field(default_factory=list)

    def line(self) -> str:
        head = (f"wrote Camtrap DP 1.0.2 package {self.out}: {self.deployments} deployment(s), {self.media} media, "
                f"{self.observations} observation(s) ({'/'.join(self.levels) or 'none'} level)")
        lines = [head]
        if self.failed:
            shown = ", ".join(f"{path} ({why})" for path, why in self.failed[:5])
            lines.append(f"left out {len(self.failed)} failed file(s), not observations: {shown}" + (" ..." if len(self.failed) > 5 else ""))
        if self.unmatched:
            lines.append(f"left out {len(self.unmatched)} file(s) no deployment claims (--skip-unmatched): "
                         + ", ".join(self.unmatched[:5]) + (" ..." if len(self.unmatched) > 5 else ""))
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)
