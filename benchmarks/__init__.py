"""Memory and throughput benchmarks: ocrpool against in-process use and against its peers.

Run ``python -m benchmarks --help``. ``harness/`` holds what every benchmark uses (inputs,
the process-tree sampler, tables, plots, the method of alternating rounds);
``comparisons/`` the scenarios and the consolidated run with its goals; ``studies/`` the
engine's tuning, option costs and worker starts; ``service.py``, ``pages.py`` and
``engines.py`` one benchmark each. Every scenario runs in its own child process, so a
hang or an abort stays contained and the whole process tree's RSS and CPU can be
measured; the benchmark's own process never imports an OCR engine.
"""
