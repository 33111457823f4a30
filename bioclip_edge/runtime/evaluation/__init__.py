"""How right a ``classify`` output is on the user's labels: ``evaluate(EvaluateRequest(...))``.

truth (the user's labels), predictions (any classify output, one prediction per file), matching
(pairing them by path), ranks (naming both sides alike, roll-ups), metrics (scikit-learn's
definitions in numpy), thresholds (accuracy and coverage against the score), report and plots
(the files and the console table), evaluate (the entry point).
"""
