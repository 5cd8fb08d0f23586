"""Estimates from replications: confidence intervals, paired and unpaired differences, holdout intervals."""
