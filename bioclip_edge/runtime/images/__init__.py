"""Image input: the image request, discovery, decoding, open_clip's transform, the decode/embed pipeline and its batch plan, MegaDetector boxes. May import ``runtime.inference``."""
