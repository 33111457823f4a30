"""Image input: the image request, discovery, decoding, open_clip's transform, the decode/embed pipeline and its flow, MegaDetector boxes. May import ``runtime.inference``."""
