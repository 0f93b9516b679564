"""Reports: Pareto front + hypervolume, tables over seeds, matplotlib plots, markdown and CSV."""

from edgeprune.report.pareto import hypervolume, pareto_front
from edgeprune.report.tables import write_csv

__all__ = ["pareto_front", "hypervolume", "write_csv"]
