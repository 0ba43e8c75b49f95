"""Reports a person can read: the state graph with edge scores and the chosen path, every
edge's curve with its fitted knee, the planned schedule, the search cost and baselines, in one
self-contained HTML page (``build_report(run_dir)``, ``optplan report RUN``).
"""

from optplan.report.build import build_report, write_report
from optplan.report.data import EdgeView, ReportData
from optplan.report.load import load_run

__all__ = ["EdgeView", "ReportData", "build_report", "load_run", "write_report"]
