"""Reports from run folders: tables, the paper's figures, a Markdown/HTML page, DVC files.

``build_report(read_runs(["runs"]), ["runs"], "reports")`` is the whole job; the modules below
are its parts: ``tables`` (mean +- std comparison), ``figures`` (the paper's figures), ``vega``
(offline Vega-Lite curves for DVC), ``page`` (the page itself). Run folders are read by
:mod:`mpdsnn.runfolder.reader`, the one reader shared with the verdicts.
"""

from mpdsnn.report.page import FIGURES, Report, Section, build_report
from mpdsnn.report.tables import comparison_table

__all__ = ["FIGURES", "Report", "Section", "build_report", "comparison_table"]
