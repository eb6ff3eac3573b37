"""Everything Aspose: the engine, its native runtime, and the tools around it.

``engine`` (the ``aspose`` engine), ``runtime`` (make a process able to load .NET),
``provision`` (fetch OpenSSL 1.1 with apt), ``child`` (run Aspose in a throwaway
process), ``doctor`` and ``models``. Importing this package imports none of them, and
nothing here imports ``aspose.ocr`` except inside a worker or a throwaway child.
"""
