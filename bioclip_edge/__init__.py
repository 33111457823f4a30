"""bioclip-edge: BioCLIP and open_clip models as small, fast, verified ONNX bundles.

Subpackages:
- ``bioclip_edge.export``: open_clip model -> bundle (needs torch and open_clip).
- ``bioclip_edge.runtime``: bundle -> embeddings and predictions (onnxruntime, numpy, Pillow).
- ``bioclip_edge.profiling``: FLOPs, throughput and hardware sizing reports.

Nothing heavy is imported here so that ``bioclip-edge --help`` stays fast.
"""

__version__ = "0.1.0"
