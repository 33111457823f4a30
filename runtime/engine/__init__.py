"""The bundle and its engines: manifest, bundle checks, engine selection, sessions, backends, caches. Imports only the standard library, numpy, onnxruntime/OpenVINO and ``bioclip_edge.errors``."""
