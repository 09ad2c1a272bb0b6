"""Evaluators: goal reaching, stitching distance, geodesicity; reports and plots."""
