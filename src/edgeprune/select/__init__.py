"""Budgets met by measurement: :mod:`~edgeprune.select.meter` measures every budget kind on a model (beside the
input model where the budget is relative), :mod:`~edgeprune.select.knob` calibrates a method's own knob (a
ratio, a sparsity) to a budget by bisection."""
