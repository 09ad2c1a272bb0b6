"""Jobs composing the core: the collector, Dask fan-out, dataset-wide passes."""
