"""Dataset format v1 (datasets/FORMAT.md): versioned Zarr shards, manifests, readers; Minari/OGBench interop.

Entry points: `DatasetStore(root)` (list / manifest / open / begin / remove), `parse_id`, `DatasetReader`.
"""

from crl.datasets.ids import DatasetId, parse_id, parse_name
from crl.datasets.reader import DatasetReader
from crl.datasets.schema import EPISODE_FIELDS, FORMAT_VERSION, TRANSITION_FIELDS, normalize_batch
from crl.datasets.staging import Staging
from crl.datasets.store import DatasetStore
from crl.datasets.writer import ShardWriter

__all__ = [
    "EPISODE_FIELDS",
    "FORMAT_VERSION",
    "TRANSITION_FIELDS",
    "DatasetId",
    "DatasetReader",
    "DatasetStore",
    "ShardWriter",
    "Staging",
    "normalize_batch",
    "parse_id",
    "parse_name",
]
