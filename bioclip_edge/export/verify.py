"""Re-measure a bundle's parity from its stored reference, without torch."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from bioclip_edge.runtime.inference.backends import openvino_capabilities
from bioclip_edge.runtime.inference.bundle import Bundle, BundleError
from bioclip_edge.runtime.inference.manifest import DecodeCheck, Parity, Variant
from bioclip_edge.runtime.inference.summary import decode_check_line, quantization_notes
from bioclip_edge.export.parity import Reference, measure, run_variant
from bioclip_edge.export.summary import parity_table


@dataclass(frozen=True)
class VerifyReport:
    bundle: Path
    variants: tuple[Variant, ...]  # with freshly measured parity
    random_weights: bool
    drift: tuple[str, ...]  # variants whose figures moved from what the manifest recorded
    decode_check: DecodeCheck | None = None  # as recorded at export: shown, not re-measured (it needs the sample photos)
    unmeasured: tuple[str, ...] = ()  # OpenVINO IR variants on a machine without OpenVINO

    @property
    def passed(self) -> bool:
        return all(v.parity is not None and v.parity.passed for v in self.variants if v.name not in self.unmeasured)

    def text(self) -> str:
        head = f"verify {self.bundle}: " + ("all variants within their parity bounds" if self.passed
                                             else "SOME VARIANTS ARE BELOW THEIR PARITY BOUND")
        lines = [head]
        if self.random_weights:
            lines.append("note: this bundle has RANDOM weights; parity is still meaningful, predictions are not "
                         "(labels nearly tie, so many images have no clear top-1 margin)")
        lines += ["", parity_table(self.variants)]
        for name in self.drift:
            lines.append(f"note: {name} differs from the figures recorded at export (onnxruntime version or CPU?)")
        for name in self.unmeasured:
            lines.append(f"note: {name} is an OpenVINO IR and OpenVINO is not installed here: not re-measured "
                         "(pip install \"bioclip-edge[openvino]\" to verify it)")
        notes = quantization_notes(self.variants)  # which images the int8 graphs were calibrated on
        lines += [""] + notes if notes else []
        return "\n".join(lines + ["", decode_check_line(self.decode_check) + " (recorded at export)"])

    def to_json(self) -> str:
        return json.dumps({"bundle": str(self.bundle), "passed": self.passed,
                           "variants": {v.name: dataclasses.asdict(v.parity) for v in self.variants if v.parity},
                           "decode_check": dataclasses.asdict(self.decode_check) if self.decode_check else None},
                          indent=2) + "\n"


def verify_bundle(folder: Path) -> VerifyReport:
    bundle = Bundle.open(folder, verify_checksums=True, reuse_verified=False)  # verify always re-hashes
    rel = bundle.manifest.parity_reference
    if not rel:
        raise BundleError(f"{folder}: the manifest names no parity reference; re-export the bundle to verify it")
    path = bundle.path(rel)
    if not path.is_file():
        raise BundleError(f"{path}: parity reference named in the manifest is missing; re-export the bundle")
    ref = Reference.load(path)
    measured, drift, unmeasured = [], [], []
    for v in bundle.manifest.variants:
        if v.openvino_only and not openvino_capabilities():
            measured.append(dataclasses.replace(v, parity=None))
            unmeasured.append(v.name)
            continue
        parity = measure(v, run_variant(bundle.path(v.file), v, ref), ref)
        if v.parity is not None and _moved(v.parity, parity):
            drift.append(v.name)
        measured.append(dataclasses.replace(v, parity=parity))
    return VerifyReport(Path(folder), tuple(measured), bundle.random_weights, tuple(drift), bundle.manifest.decode_check,
                        tuple(unmeasured))


def _moved(old: Parity, new: Parity) -> bool:
    return abs(old.cosine_min - new.cosine_min) > 1e-4 or old.passed != new.passed
