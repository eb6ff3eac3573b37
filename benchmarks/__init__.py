"""Memory and throughput benchmarks: ocrpool against in-process use and against its peers.

Run ``python -m benchmarks --help``. Every scenario runs in its own child process, so a
hang or an abort stays contained and the whole process tree's RSS and CPU can be measured;
the benchmark's own process never imports an OCR engine.
"""
