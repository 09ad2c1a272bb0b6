"""Dataset format v1: Zarr shards, manifests, versions, splits, loaders, Minari/OGBench interop."""
