"""Image input: discovery, decoding, open_clip's transform, the decode/embed pipeline, MegaDetector boxes. May import ``runtime.engine``."""
