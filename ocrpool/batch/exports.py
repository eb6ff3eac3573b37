"""The export folder of a run: each input's exported documents, mirroring input paths
(``/data/scans/a.tif`` -> ``DIR/data/scans/a.tif.pdf``), as the text format does.

The runner writes an input's exports before its record, each to a ``.part`` name then
renamed: a record means its exports are whole under their final names, and a run killed
in between leaves at most ``.part`` files, replaced when the input is done again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ocrpool.batch.errors import OutputRefused, write_error
from ocrpool.batch.outpath import make_parents, mirror_path
from ocrpool.exports import Export

EXPORTS_SUFFIX = "-exports"


def default_export_dir(out: str) -> str:
    """Next to the output: ``results.jsonl`` -> ``results-exports``, ``texts/`` ->
    ``texts-exports``."""
    root, _ = os.path.splitext(os.path.normpath(out))
    return root + EXPORTS_SUFFIX


class ExportFolder:
    def __init__(self, folder: str) -> None:
        self.folder = os.path.abspath(folder)
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as exc:
            raise OutputRefused(f"cannot create the folder {folder}: {exc.strerror}") from None

    def write(self, source: str, exports: Iterable[Export]) -> dict[str, str]:
        """Write the exports of the input at ``source`` (absolute); their paths by format."""
        written = {}
        for export in exports:
            target = mirror_path(self.folder, source, export.format.suffix)
            try:
                make_parents(self.folder, target)
                export.save(target)
            except OSError as exc:
                raise write_error(target, exc) from None
            written[export.format.value] = target
        return written
