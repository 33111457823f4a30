"""The manifest's fields, field by field, read from the dataclasses that define them.

Each field's description is the comment on its line in the source (``name: type  # what it is``),
so the table on the bundle page changes when the code does.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys

RECORDS = (
    ("bioclip_edge.runtime.inference.manifest", "Manifest", "top level of manifest.json"),
    ("bioclip_edge.runtime.inference.manifest", "ModelInfo", "manifest.model"),
    ("bioclip_edge.runtime.inference.manifest", "WeightsSource", "manifest.model.source"),
    ("bioclip_edge.runtime.inference.manifest", "Preprocess", "manifest.preprocess"),
    ("bioclip_edge.runtime.inference.manifest", "TokenizerSpec", "manifest.tokenizer"),
    ("bioclip_edge.runtime.inference.manifest", "Variant", "each of manifest.variants"),
    ("bioclip_edge.runtime.inference.measurements", "Parity", "a variant's parity"),
    ("bioclip_edge.runtime.inference.measurements", "Top1Check", "parity.top1: zero-shot agreement on clear margins"),
    ("bioclip_edge.runtime.inference.measurements", "DecodeCheck", "manifest.decode_check"),
    ("bioclip_edge.runtime.inference.measurements", "ExportResources", "manifest.export_resources"),
)
# Fields whose source line carries no comment: described here. A field with neither fails
# tests/docs/test_generators.py, so a new manifest field cannot go undocumented.
EXTRA = {
    "Manifest.schema_version": "format version of manifest.json; the runtime refuses versions it does not know",
    "Manifest.model": "the model and where its weights came from (ModelInfo)",
    "Manifest.preprocess": "open_clip's image transform for this model (Preprocess)",
    "Manifest.tokenizer": "how label text becomes token ids (TokenizerSpec)",
    "Manifest.variants": "every graph in the bundle with checksum, size and parity (Variant)",
    "Manifest.created_by": "versions of bioclip_edge, torch, open_clip, onnx and onnxruntime that wrote the bundle",
    "Manifest.created_at": "when the export finished (ISO 8601, UTC)",
    "ModelInfo.source": "where the weights came from (WeightsSource)",
    "ModelInfo.embed_dim": "length of the embeddings both towers output",
    "ModelInfo.logit_bias": "added to the scaled cosine for SigLIP-style models; null for CLIP",
    "ModelInfo.params_vision": "parameters of the vision tower",
    "ModelInfo.params_text": "parameters of the text tower",
    "ModelInfo.open_clip_config": "open_clip's model configuration as exported",
    "WeightsSource.random_weights": "true when the weights are random: said on the console, in every output and preview",
    "WeightsSource.note": "why (e.g. the hub could not be reached and --allow-random was given)",
    "WeightsSource.checkpoint_sha256": "sha256 of the checkpoint file the weights were read from",
    "Preprocess.interpolation": "resize filter: bicubic, bilinear or nearest",
    "Preprocess.mean": "per-channel mean subtracted after scaling pixels to 0..1",
    "Preprocess.std": "per-channel standard deviation divided by",
    "TokenizerSpec.kind": "clip_bpe (open_clip's SimpleTokenizer, as tokenizer.json) or hf (a Hugging Face tokenizer)",
    "TokenizerSpec.context_length": "tokens the text tower was trained on (77 for CLIP); shorter batches are trimmed",
    "TokenizerSpec.eot_id": "end-of-text token id",
    "TokenizerSpec.pad_id": "padding token id",
    "TokenizerSpec.sot_id": "start-of-text token id (null when the tokenizer has none)",
    "TokenizerSpec.hf_name": "the Hugging Face tokenizer's name for kind hf (e.g. facebook/xlm-v-base)",
    "TokenizerSpec.available": "false when the exporter could not obtain the tokenizer files: images only",
    "TokenizerSpec.note": "why the tokenizer is missing, when it is",
    "Variant.tower": "vision or text",
    "Variant.precision": "fp32, fp16, int8, int8-static or int8-nncf: what --precision names",
    "Variant.sha256": "checksum of file, checked when the bundle is opened",
    "Variant.size_bytes": "size of file, checked when the bundle is opened",
    "Variant.opset": "ONNX opset of the graph",
    "Variant.input_name": "the graph's input (pixels or token ids)",
    "Variant.output_name": "the graph's output (L2-normalised embeddings)",
    "Variant.data_size_bytes": "size of data_file",
    "Variant.parity": "agreement with PyTorch fp32 measured at export (Parity)",
    "Parity.cosine_min": "lowest cosine between this variant's and PyTorch's embeddings over the inputs",
    "Parity.cosine_mean": "mean of those cosines",
    "Parity.n_inputs": "photos (vision) or label texts (text) measured",
    "Parity.passed": "every held figure within its bound; export and verify exit 1 otherwise",
    "Parity.n_labels": "labels of the zero-shot check",
    "Parity.max_abs_diff": "largest absolute difference of any embedding component",
    "DecodeCheck.cosine_min": "lowest cosine between the drafted and the exactly decoded frame's embedding",
    "DecodeCheck.cosine_mean": "mean of those cosines",
    "DecodeCheck.top1": "zero-shot top-1 agreement on frames with a clear margin (Top1Check)",
    "DecodeCheck.passed": "cosine_min >= min_cosine and no clear top-1 changed: --decode auto drafts",
    "ExportResources.seconds": "wall time of the whole export",
    "ExportResources.peak_rss_bytes": "peak resident memory (the PyTorch child's included)",
    "ExportResources.fp32_weights_bytes": "4 bytes per parameter: the size of an fp32 checkpoint",
    "Variant.data_sha256": "checksum of data_file",
}
_FIELD = re.compile(r"^\s+(\w+):\s*([^=#]+?)(?:\s*=\s*[^#]+?)?\s*(?:#\s*(.*))?$")


def field_comments(cls: type) -> dict[str, str]:
    """name -> the comment on the field's line (empty when it has none)."""
    out = {}
    for line in inspect.getsource(cls).splitlines():
        m = _FIELD.match(line)
        if m:
            out[m.group(1)] = (m.group(3) or "").strip()
    return out


def describe(cls: type, name: str, comments: dict[str, str] | None = None) -> str:
    """A field's description: its source comment, else EXTRA's entry, else empty."""
    comments = field_comments(cls) if comments is None else comments
    return comments.get(name) or EXTRA.get(f"{cls.__name__}.{name}", "")


def undocumented() -> list[str]:
    """Fields with no description at all."""
    import importlib

    missing = []
    for module_name, name, _ in RECORDS:
        cls = getattr(importlib.import_module(module_name), name)
        missing += [f"{name}.{f.name}" for f in dataclasses.fields(cls) if not describe(cls, f.name)]
    return missing


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render() -> str:
    """One table per record: field, type, what it holds."""
    import importlib

    lines = []
    for module_name, name, where in RECORDS:
        cls = getattr(importlib.import_module(module_name), name)
        comments = field_comments(cls)
        doc = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
        doc = "" if doc.startswith(f"{name}(") else doc  # dataclasses' generated docstring says nothing
        lines += [f"### {name}", "", f"`{where}`. {_cell(doc)}", "", "| field | type | what it holds |", "|---|---|---|"]
        for f in dataclasses.fields(cls):
            lines.append(f"| `{f.name}` | `{_cell(str(f.type))}` | {_cell(describe(cls, f.name, comments))} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
