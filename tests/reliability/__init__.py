"""The reliability suite: faults injected while jobs flow (chaos), long runs (soak),
hostile inputs (adversarial) and what the CLI must never do (safety).

The ``test_*`` modules are the short versions in the default ``pytest`` run;
``python -m tests.reliability`` runs the long ones and writes the published figures.
"""
