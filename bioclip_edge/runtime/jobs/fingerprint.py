"""What decides a run's results, so that ``--resume`` never mixes two classifiers' answers.

A *run fingerprint* is a flat dict of everything that decides what a run writes for an image:
the model, the vision graph (name and sha256) and the provider that runs it (OpenVINO bf16 and
onnxruntime fp32 differ slightly on the same graph; written under the key ``backend``), a sha256 of the label *embeddings*
(``label_digest``: the matrix, its scales, names and logit scale; the same names embedded with
another ``--recipe`` differ here), the label count and recipe, the top-k, the mode (whole images
or ``--detections``) with its threshold and categories, ``--relative-paths`` (the filepath is the
key a resumed run skips by) and the decoding (``exact``, or ``draft``: ``--decode draft``, or
``auto`` on a bundle whose decode check passed; written as ``fast``, ``DRAFT_WRITTEN``, the value
every existing output holds, so that they stay resumable).

Where it is stored:

* the checkpoint's header line and MegaDetector output
  (``info.classifier_metadata.run_fingerprint``) hold it whole;
* CSV and JSON Lines output hold a per-row ``run`` field, a *token*: ``"2:"`` then one 6-hex-digit
  digest per field of ``FIELDS``, dot-separated (about 100 characters). Every reader tolerates one more
  column; a mismatch can still be named field by field without a 400-byte JSON blob on each row;
* ``embed``'s index (``embeddings.json``) holds its own fingerprint whole (``embed_fingerprint``:
  no labels, plus the stored ``--dtype``).

A mismatch is refused (``ResumeMismatchError``, exit 2) naming each field that differs.
Fingerprints from before version 2 hashed only the label names, so they cannot prove that two
label sets agree: those are refused with a message of their own.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bioclip_edge.errors import ResumeMismatchError
from bioclip_edge.runtime.images.video import VideoSampling

FINGERPRINT_VERSION = 2
VERSION_KEY = "fingerprint_version"
# classify's fields -> how a mismatch names them; the order is the token's order (append only)
FIELDS: dict[str, str] = {
    VERSION_KEY: "run-fingerprint version",
    "model": "model",
    "variant": "vision graph",
    "variant_sha256": "vision graph sha256",
    "backend": "provider (what --backend / --precision run)",  # PROVIDER_KEY
    "labels_sha256": "label embeddings sha256",
    "labels": "number of labels",
    "recipe": "label recipe (--recipe)",
    "top_k": "--top-k",
    "mode": "mode (whole images or --detections)",
    "detection_threshold": "--detection-threshold",
    "detection_categories": "--detection-categories",
    "relative_paths": "--relative-paths",
    "decode": "decoding (--decode exact or draft)",
    "video_sampling": "video sampling (--frame-interval / --max-frames)",
}
# Fields recorded only when they differ from the default: a run that does not use them has the same
# fingerprint and token as before they existed, so its outputs stay resumable (append only, at the end).
OPTIONAL_FIELDS = ("video_sampling",)
PROVIDER_KEY = "backend"  # the provider string, e.g. "OpenVINO CPU (bfloat16)", under the key outputs have always had
DRAFT_WRITTEN = "fast"  # draft decoding, as every existing fingerprint writes it: a resumed run must match it
DESCRIPTIONS = {**FIELDS, "dtype": "--dtype"}  # embed's fingerprint adds the stored dtype
REMEDY = "use the same bundle, labels and options to continue, or pass --overwrite to start over"


def decode_description(draft_size: Any, detections: bool = False) -> str:
    """How images were decoded, for the outputs' info blocks (the fingerprint keeps the mode; why
    it was chosen goes beside it, as ``decode_chosen_because``)."""
    if draft_size is None:
        return "exact"
    crops = (f"; a MegaDetector crop's frame drafted only while the crop keeps >= {draft_size[0]} px on its short side, "
             "else exact; video frames exact") if detections else ""
    return (f"draft: JPEGs decoded at reduced scale (1/2, 1/4 or 1/8) keeping >= {draft_size[0]}x{draft_size[1]} px, "
            f"then the exact resize; not bit-identical to open_clip; other formats exact{crops}")


def decode_field(draft_size: Any) -> str:
    """The fingerprint's decoding: exact, or draft (written ``DRAFT_WRITTEN``)."""
    return "exact" if draft_size is None else DRAFT_WRITTEN


def classify_fingerprint(clf: Any, *, detections: bool, threshold: float | None, categories: tuple[str, ...] | None,
                         relative_paths: bool) -> dict[str, Any]:
    """The fingerprint of a ``Classifier`` run (see the module docstring for what and why)."""
    return {
        VERSION_KEY: FINGERPRINT_VERSION,
        "model": clf.bundle.manifest.model.id,
        "variant": clf.embedder.variant.name,
        "variant_sha256": clf.embedder.variant.sha256,
        PROVIDER_KEY: clf.embedder.provider,
        "labels_sha256": clf.labels_sha256,
        "labels": len(clf.names),
        "recipe": clf.labels.recipe,
        "top_k": clf.top_k,
        "mode": "detections" if detections else "whole-image",
        "detection_threshold": threshold if detections else None,
        "detection_categories": (sorted(categories) if categories is not None else "all") if detections else None,
        "relative_paths": bool(relative_paths),
        "decode": decode_field(clf.draft_size),
        **video_sampling_field(clf.sampling),
    }


def video_sampling_field(sampling: VideoSampling) -> dict[str, Any]:
    """``video_sampling`` when not the default (``VideoSampling()``): see OPTIONAL_FIELDS."""
    if sampling == VideoSampling():
        return {}
    return {"video_sampling": {"interval": sampling.interval, "max_frames": sampling.max_frames}}


def embed_fingerprint(embedder: Any, *, dtype: str, relative_paths: bool, sampling: VideoSampling) -> dict[str, Any]:
    """The fingerprint of an ``embed`` run: the graph and provider, the stored dtype, paths, decoding, video sampling."""
    return {
        VERSION_KEY: FINGERPRINT_VERSION,
        "model": embedder.bundle.manifest.model.id,
        "variant": embedder.variant.name,
        "variant_sha256": embedder.variant.sha256,
        PROVIDER_KEY: embedder.provider,
        "dtype": dtype,
        "relative_paths": bool(relative_paths),
        "decode": decode_field(embedder.decode.draft_size),
        **video_sampling_field(sampling),
    }


def fingerprint_token(fingerprint: dict[str, Any]) -> str:
    """The compact per-row form (CSV, JSON Lines): version, then a short digest per field."""
    keys = list(FIELDS)
    while keys and keys[-1] in OPTIONAL_FIELDS and keys[-1] not in fingerprint:
        keys.pop()  # absent optional fields leave the token as it was before they existed
    return f"{FINGERPRINT_VERSION}:" + ".".join(_digest(fingerprint.get(key)) for key in keys)


def check_fingerprint(then: Any, now: dict[str, Any], where: str, remedy: str = REMEDY) -> None:
    """Refuse ``then`` (a stored fingerprint) unless it equals ``now``, naming what differs."""
    if not isinstance(then, dict):
        raise ResumeMismatchError(f"{where}: holds no readable run fingerprint; {remedy}")
    _check_version(then.get(VERSION_KEY), now, where)
    keys = [k for k in [*now, *(k for k in OPTIONAL_FIELDS if k in then and k not in now)] if then.get(k) != now.get(k)]
    if keys:
        detail = "; ".join(f"{DESCRIPTIONS.get(k, k)}: {_show(k, then.get(k))} then, {_show(k, now.get(k))} now" for k in keys)
        raise ResumeMismatchError(f"{where}: was written by a different run ({detail}); {remedy}")


def check_token(token: str, now: dict[str, Any], where: str) -> None:
    """As ``check_fingerprint`` for a stored token: the differing fields are named, not their values."""
    version, _, digests = str(token).partition(":")
    _check_version(int(version) if version.isdigit() else None, now, where)
    theirs = digests.split(".")
    ours = fingerprint_token(now).partition(":")[2].split(".")
    if not len(FIELDS) - len(OPTIONAL_FIELDS) <= len(theirs) <= len(FIELDS):
        raise ResumeMismatchError(f"{where}: its run token {token!r} is damaged; {REMEDY}")
    absent = _digest(None)  # optional fields a shorter token leaves off (OPTIONAL_FIELDS)
    theirs += [absent] * (len(FIELDS) - len(theirs))
    ours += [absent] * (len(FIELDS) - len(ours))
    keys = [key for key, a, b in zip(FIELDS, theirs, ours) if a != b]
    if keys:
        named = ", ".join(FIELDS[k] for k in keys)
        raise ResumeMismatchError(f"{where}: was written by a different run ({named} differ: now {_now_values(keys, now)}); {REMEDY}")


def _check_version(version: Any, now: dict[str, Any], where: str) -> None:
    if VERSION_KEY not in now or version == now[VERSION_KEY]:
        return
    if version is None or (isinstance(version, int) and version < now[VERSION_KEY]):
        raise ResumeMismatchError(
            f"{where}: was written by an earlier bioclip-edge whose run record covers the label names but not their "
            "embeddings, so continuing it could mix two label sets in one output; pass --overwrite to start over "
            "(or finish it with the bioclip-edge that started it)")
    raise ResumeMismatchError(f"{where}: was written by a newer bioclip-edge (run fingerprint version {version}); "
                              "continue it with that version, or pass --overwrite to start over")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()[:6]


def _show(key: str, value: Any) -> str:
    if key.endswith("sha256") and isinstance(value, str):
        return value[:12]
    return repr(value)


def _now_values(keys: list[str], now: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_show(k, now.get(k))}" for k in keys)
