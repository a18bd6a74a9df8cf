"""The run folder: the one seam between training and everything that reads its results.

- :mod:`~mpdsnn.runfolder.layout`: the file names (the only place that spells them);
- :class:`RunWriter` (training) and :func:`read_runs` (reports, verdicts, evaluation): one
  writer, one reader, one definition of what a run is (docs/run-folder.md);
- :mod:`~mpdsnn.runfolder.guard`: the ``--out`` rules and the lock that keep runs from being
  lost or mixed; :mod:`~mpdsnn.runfolder.fingerprint`: what makes runs seeds of one recipe.

The reader is imported lazily (it needs pandas, not torch); the writer side needs torch.
"""

from mpdsnn.runfolder import layout
from mpdsnn.runfolder.io import atomic_write_bytes, read_json, read_yaml, write_json

__all__ = ["atomic_write_bytes", "layout", "read_json", "read_yaml", "write_json"]
