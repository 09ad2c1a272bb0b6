"""Moved to `crl.learners` (`crl-train offline` runs it from the core); this name stays until its last user, a
storage test, imports `crl.learners`."""

from crl.learners import learner_folders, run_learners  # noqa: F401
