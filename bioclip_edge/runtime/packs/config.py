"""``bioclip-pack.json``: what a pack's runtime reads back, written by the pack command.

The host program hands the pack's code a folder; this file says where in it the bundle and the
labels are, which vision precision to run (``auto``: the runtime's own choice on the machine the
pack runs on, as ``classify`` makes it) and which bioclip-edge made it, so a pack made by a newer
bioclip-edge is refused with a message rather than misread.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from bioclip_edge.errors import UserError

PACK_FILE = "bioclip-pack.json"
PACK_FORMAT = 1


class PackError(UserError, ValueError):
    """A pack folder that cannot be used, or a pack that cannot be made; says which and what to do."""


@dataclass(frozen=True)
class PackConfig:
    """The pack's own record; paths are relative to the pack folder."""

    target: str  # the host program the pack is laid out for, e.g. addaxai
    bundle: str  # vision-only bundle folder
    labels: str  # label matrix file
    precision: str  # vision precision the runtime asks for (auto: decided where the pack runs)
    model_id: str  # the bundle's model, e.g. hf-hub:imageomics/bioclip
    random_weights: bool
    labels_count: int
    made_by: str  # bioclip-edge version that wrote the pack
    format: int = PACK_FORMAT

    def write(self, folder: Path) -> Path:
        path = Path(folder) / PACK_FILE
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: str | Path) -> "PackConfig":
        path = Path(folder) / PACK_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PackError(f"{path}: missing; this folder was not made by 'bioclip-edge pack' (make it again)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PackError(f"{path}: cannot read it ({exc}); make the pack again with 'bioclip-edge pack'") from None
        if not isinstance(data, dict) or data.get("format") != PACK_FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise PackError(f"{path}: pack format {found!r}, but this bioclip-edge reads format {PACK_FORMAT}; "
                            "install the bioclip-edge version that made the pack, or make the pack again")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(n for n in names - set(data) if n != "format")
        if missing:
            raise PackError(f"{path}: missing field(s) {missing}; make the pack again with 'bioclip-edge pack'")
        return cls(**{k: v for k, v in data.items() if k in names})
