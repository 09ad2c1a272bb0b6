"""Moved to `crl.fanout` (the core runs several learners with it); this name stays until the collection runner,
its last user, imports `crl.fanout`."""

from crl.fanout import LOG_LEVELS, RETRIES, dask_logging, error_text, fan_out  # noqa: F401
