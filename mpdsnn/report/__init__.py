"""Reports from run folders: tables, the paper's figures, a Markdown/HTML page, DVC files.

``build_report(["runs"], "reports")`` is the whole job; the modules below are its parts:
``collect`` (find and load run folders), ``tables`` (mean +- std comparison), ``figures`` (the
paper's figures), ``vega`` (offline Vega-Lite curves for DVC), ``page`` (the page itself).
"""

from mpdsnn.report.collect import RunTables, load_runs, load_tables, order_methods
from mpdsnn.report.page import FIGURES, Report, Section, build_report
from mpdsnn.report.tables import comparison_table

__all__ = ["FIGURES", "Report", "RunTables", "Section", "build_report", "comparison_table",
           "load_runs", "load_tables", "order_methods"]
