"""``trajrec.importers``: the import API under a short name (it lives in :mod:`trajrec.replay.importers`).

>>> from trajrec.importers import import_paths, detect, IMPORTERS
"""

from __future__ import annotations

from trajrec.replay.importers import (  # noqa: F401  (re-exported)
    IMPORTER_VERSION,
    IMPORTERS,
    FieldReport,
    ImportedEpisode,
    ImportedStep,
    Importer,
    ImportFormatError,
    ImportReport,
    detect,
    get_importer,
    import_paths,
)

__all__ = ["IMPORTERS", "IMPORTER_VERSION", "FieldReport", "ImportFormatError", "ImportReport", "ImportedEpisode",
           "ImportedStep", "Importer", "detect", "get_importer", "import_paths"]
