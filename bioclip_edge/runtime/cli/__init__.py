"""The runtime's commands (classify, embed, labels, info): parse arguments, call a job, print. May import every runtime sub-package; standard library only at module level."""
