"""A manifest ``Variant`` for a file the export wrote: checksums, sizes, kind."""

from __future__ import annotations

from pathlib import Path

from bioclip_edge.runtime.inference.bundle import sha256_file
from bioclip_edge.runtime.inference.manifest import Variant
from bioclip_edge.export.onnx_export import OnnxFile


def variant_record(work: Path, f: OnnxFile, tower: str, precision: str, input_name: str, opset: int,
                   dynamic_length: bool, name: str | None = None, storage: str = "fp32", compute: str = "fp32",
                   quantization: dict | None = None, format: str = "onnx") -> Variant:
    """The variant for graph ``f`` (and its data file) inside the bundle folder ``work``."""
    return Variant(
        name=name or f"{tower}.{precision}",
        tower=tower,
        precision=precision,
        file=f.graph.name,
        sha256=sha256_file(f.graph),
        size_bytes=f.graph.stat().st_size,
        opset=opset,
        input_name=input_name,
        output_name="embeddings",
        dynamic_length=dynamic_length if tower == "text" else False,
        data_file=f.data.name if f.data else None,
        data_sha256=sha256_file(f.data) if f.data else None,
        data_size_bytes=f.data.stat().st_size if f.data else None,
        storage=storage,
        compute=compute,
        quantization=quantization,
        format=format,
    )
