"""Label matrices: the matrix and its file store, build, import, taxonomy, the scorers (numpy, OpenVINO) and their row blocks. May import ``runtime.inference`` and ``runtime.text``."""
