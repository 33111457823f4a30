"""The torch-free runtime: open a bundle, preprocess images, embed, score against labels.

Imports only numpy, onnxruntime and Pillow (and tokenizers for label text). Importing this
package is cheap; heavy modules load when first used.
"""

from .bundle import Bundle, BundleError
from .manifest import Manifest, ManifestError

__all__ = ["Bundle", "BundleError", "Manifest", "ManifestError"]
