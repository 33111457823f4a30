"""Jobs and results: the Classifier, classify/embed jobs, checkpoints, fingerprints, output writers and readers. May import every runtime sub-package but ``runtime.cli``."""
