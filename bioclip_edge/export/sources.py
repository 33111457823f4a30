"""Load an open_clip model from what a user types, and say honestly where its weights came from.

Specs:
- ``hf-hub:org/repo``: open_clip's hub loader (open_clip_config.json + weights).
- ``local-dir:PATH``: the same layout on disk.
- ``NAME`` with ``pretrained`` = a tag (``openai``, ``metaclip_400m``) or a checkpoint file.
- ``NAME`` with ``random=True``: random weights, seeded so they can be rebuilt.
- a short name from the registry (``bioclip``, ``metaclip-b32``).

Checkpoints load with ``weights_only=True`` (or safetensors), never by unpickling code.
When a hub cannot be reached and ``allow_random`` is set, the same architecture is built with
random weights and every output says so.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.inference.manifest import WeightsSource
from bioclip_edge.export.registry import find_known

log = logging.getLogger(__name__)

WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pt")


class SourceError(UserError, ValueError):
    """A model spec that cannot be loaded; the message says what to do."""


@dataclass(frozen=True)
class ModelRequest:
    spec: str
    pretrained: str | None = None  # tag or checkpoint file, for built-in names
    random: bool = False  # build random weights on purpose
    allow_random: bool = False  # fall back to random weights when the real ones cannot be fetched
    seed: int = 0
    resize_mode: str | None = None  # override open_clip's resize mode (pybioclip uses squash)
    cache_dir: str | None = None


@dataclass
class LoadedModel:
    id: str
    architecture: str
    model: Any  # open_clip CLIP / CustomTextCLIP in eval mode
    tokenizer: Any | None  # open_clip tokenizer, None when it could not be obtained
    tokenizer_error: str | None
    preprocess_cfg: dict[str, Any]
    model_cfg: dict[str, Any]
    source: WeightsSource


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick connect to the hub, so an offline machine fails in seconds, not after minutes of retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _go_offline() -> None:
    """Make huggingface_hub use its local cache only (cached weights still load, nothing retries)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as hub_constants

        hub_constants.HF_HUB_OFFLINE = True
    except ImportError:
        pass


def load_model(req: ModelRequest) -> LoadedModel:
    """Resolve a request to an open_clip model in eval mode, with its tokenizer and provenance."""
    import open_clip  # noqa: F401  (heavy: imported only when exporting)

    spec = req.spec.strip()
    known = find_known(spec)
    pretrained = req.pretrained
    if known is not None and spec.lower() == known.name.lower():  # a short name brings its default weights
        log.info("%s is %s%s", spec, known.spec, f" ({known.pretrained})" if known.pretrained else "")
        spec = known.spec
        pretrained = pretrained or known.pretrained
    if not hub_reachable():
        _go_offline()

    if req.random:
        return _random_model(spec, req, reason="random weights requested (--random)")
    if spec.startswith("local-dir:"):
        return _from_local_dir(spec, req)
    if spec.startswith("hf-hub:"):
        return _from_remote(spec, None, req)
    _check_builtin(spec)
    if pretrained and Path(pretrained).suffix in (".bin", ".pt", ".pth", ".safetensors"):
        return _from_checkpoint(spec, Path(pretrained), req)
    if pretrained:
        return _from_remote(spec, pretrained, req)
    raise SourceError(
        f"{spec}: no weights given. Pass --pretrained TAG (one of "
        f"{_tags(spec) or 'none known'}) or --pretrained FILE, or --random for random weights"
    )


def _tags(name: str) -> list[str]:
    import open_clip

    return list(open_clip.list_pretrained_tags_by_model(name))


def _check_builtin(name: str) -> None:
    import open_clip

    if open_clip.get_model_config(name) is None:
        raise SourceError(
            f"{name!r} is not an open_clip model name, a known short name, 'hf-hub:org/repo' or "
            f"'local-dir:PATH'. open_clip names look like ViT-B-16 or ViT-B-32-quickgelu "
            f"(see `python -c \"import open_clip; print(open_clip.list_models())\"`)"
        )


def _from_local_dir(spec: str, req: ModelRequest) -> LoadedModel:
    folder = Path(spec[len("local-dir:"):]).expanduser()
    if not folder.is_dir():
        raise SourceError(f"{folder}: no such folder (from {spec}); it should hold open_clip_config.json and weights")
    config = folder / "open_clip_config.json"
    if not config.is_file():
        raise SourceError(f"{folder}: no open_clip_config.json; a local-dir model needs the hub repository's layout")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceError(f"{config}: not readable JSON ({exc})") from None
    if "model_cfg" not in data:
        raise SourceError(f"{config}: has no 'model_cfg'; is this an open_clip_config.json?")
    weights = next((folder / w for w in WEIGHT_FILES if (folder / w).is_file()), None)
    if weights is None:
        if not req.allow_random:
            raise SourceError(
                f"{folder}: no weights file ({' or '.join(WEIGHT_FILES)}); copy the weights there, "
                "or pass --allow-random to export the architecture with random weights"
            )
        return _random_model(spec, req, reason=f"no weights file in {folder}")
    model = _create(spec, None, req)
    source = WeightsSource("local-dir", str(folder), False, checkpoint_sha256=_sha256(weights))
    return _finish(spec, _arch_name(data["model_cfg"]), model, source, req)


def _from_checkpoint(name: str, path: Path, req: ModelRequest) -> LoadedModel:
    if not path.is_file():
        raise SourceError(f"{path}: checkpoint file not found (from --pretrained)")
    try:
        model = _create(name, str(path), req)
    except Exception as exc:  # open_clip raises several types for a bad checkpoint
        raise SourceError(
            f"{path}: could not load as {name} weights ({type(exc).__name__}: {str(exc)[:300]}). "
            "Checkpoints load with weights_only=True: pickled code is refused; use safetensors or a plain state dict"
        ) from None
    source = WeightsSource("checkpoint", str(path), False, checkpoint_sha256=_sha256(path))
    return _finish(name, name, model, source, req)


def _from_remote(spec: str, tag: str | None, req: ModelRequest) -> LoadedModel:
    what = f"{spec} ({tag})" if tag else spec
    try:
        model = _create(spec, tag, req)
    except Exception as exc:
        if os.environ.get("HF_HUB_OFFLINE") == "1" and not hub_reachable():
            reason = f"the model hub cannot be reached and {what} is not in the local cache"
        else:
            reason = f"could not fetch {what}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        if not req.allow_random:
            raise SourceError(
                f"{reason}. Check the network or the name, copy the files and use local-dir:PATH, "
                "or pass --allow-random to export the same architecture with random weights"
            ) from None
        return _random_model(spec, req, reason=reason)
    kind = "hf-hub" if spec.startswith("hf-hub:") else "pretrained-tag"
    source = WeightsSource(kind, tag or spec, False)
    arch = spec
    if spec.startswith("hf-hub:"):
        known = find_known(spec)
        arch = known.architecture if known else "custom"
    return _finish(spec, arch, model, source, req)


def _random_model(spec: str, req: ModelRequest, reason: str) -> LoadedModel:
    """The same architecture with random weights, seeded, and labelled as such."""
    import torch

    known = find_known(spec)
    if spec.startswith("local-dir:"):
        arch = spec  # open_clip builds it from the folder's config
    elif spec.startswith("hf-hub:"):
        if known is None:
            raise SourceError(
                f"{reason}; and {spec} is not a known model, so its architecture is unknown. "
                "Use local-dir:PATH with its open_clip_config.json, or an open_clip name with --random"
            )
        arch = known.architecture
    else:
        _check_builtin(spec)
        arch = spec
    torch.manual_seed(req.seed)
    model = _create(arch, None, req)
    note = f"RANDOM WEIGHTS: {reason}. Embeddings are meaningless; use this bundle for speed and parity only."
    log.warning(note)
    source = WeightsSource("random", spec, True, note=note, seed=req.seed)
    arch_name = known.architecture if known else (arch if not arch.startswith("local-dir:") else "custom")
    return _finish(spec, arch_name, model, source, req)


def _create(name: str, pretrained: str | None, req: ModelRequest):
    import open_clip

    kwargs: dict[str, Any] = {"weights_only": True}
    if req.cache_dir:
        kwargs["cache_dir"] = req.cache_dir
    return open_clip.create_model(name, pretrained=pretrained, **kwargs).eval()


def _finish(spec: str, arch: str, model, source: WeightsSource, req: ModelRequest) -> LoadedModel:
    import open_clip
    from open_clip.model import get_model_preprocess_cfg

    pre = dict(get_model_preprocess_cfg(model))
    if req.resize_mode:
        pre["resize_mode"] = req.resize_mode
    tokenizer, tok_err = None, None
    from_repo = spec.startswith("local-dir:") or (spec.startswith("hf-hub:") and not source.random_weights)
    tok_spec = spec if from_repo else arch
    try:
        tokenizer = open_clip.get_tokenizer(tok_spec)
    except Exception as exc:  # HF tokenizers need the hub
        tok_err = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        log.warning("tokenizer for %s unavailable: %s", spec, tok_err)
    cfg = _model_cfg(spec, arch)
    return LoadedModel(spec, arch, model, tokenizer, tok_err, pre, cfg, source)


def _model_cfg(spec: str, arch: str) -> dict[str, Any]:
    import open_clip

    if spec.startswith("local-dir:"):
        path = Path(spec[len("local-dir:"):]) / "open_clip_config.json"
        return json.loads(path.read_text(encoding="utf-8"))["model_cfg"]
    return open_clip.get_model_config(arch) or {}


def _arch_name(model_cfg: dict[str, Any]) -> str:
    """The built-in open_clip name whose config equals this one, else 'custom'."""
    import open_clip

    for name in open_clip.list_models():
        if open_clip.get_model_config(name) == model_cfg:
            return name
    return "custom"


def _sha256(path: Path) -> str:
    from bioclip_edge.runtime.inference.bundle import sha256_file

    return sha256_file(path)
