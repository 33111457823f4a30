"""Label matrices: the matrix and its file store, build, import, taxonomy, scoring engines. May import ``runtime.inference`` and ``runtime.text``."""
