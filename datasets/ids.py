"""Dataset ids `namespace/name-vN` (Minari's convention) and their validation.

Every id that reaches the store passes through `parse_id` / `parse_name`, so a path-traversing or otherwise
malformed id never becomes a filesystem path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crl.errors import DatasetError

_PART = r"[a-z0-9][a-z0-9_-]*"
_NAME_RE = re.compile(rf"^({_PART})/({_PART})$")
_ID_RE = re.compile(rf"^({_PART})/({_PART})-v(0|[1-9][0-9]*)$")
_RULES = (
    "ids look like namespace/name-vN: lower-case letters, digits, '-' and '_' (starting with a letter or "
    "digit), one '/', version N >= 0"
)


@dataclass(frozen=True, order=True)
class DatasetId:
    """A parsed dataset id. `str(DatasetId)` is the canonical `namespace/name-vN`."""

    namespace: str
    name: str
    version: int

    @property
    def full_name(self) -> str:
        """`namespace/name`, the unversioned dataset name."""
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}-v{self.version}"


def _check_common(text: str, what: str) -> None:
    if not isinstance(text, str) or not text:
        raise DatasetError(f"empty {what}: {_RULES}")
    if ".." in text or text.startswith("/") or "\\" in text or ":" in text:
        raise DatasetError(f"invalid {what} {text!r}: no '..', absolute paths or URLs; {_RULES}")


def parse_id(text: str) -> DatasetId:
    """Parse and validate `namespace/name-vN`; raises DatasetError naming the rule that was broken."""
    _check_common(text, "dataset id")
    m = _ID_RE.match(text)
    if m is None:
        if _NAME_RE.match(text):
            raise DatasetError(f"dataset id {text!r} has no version: use {text}-vN (e.g. {text}-v0)")
        raise DatasetError(f"invalid dataset id {text!r}: {_RULES}")
    return DatasetId(m.group(1), m.group(2), int(m.group(3)))


def parse_name(text: str) -> tuple[str, str]:
    """Parse and validate an unversioned `namespace/name` (what writers and importers take)."""
    _check_common(text, "dataset name")
    m = _NAME_RE.match(text)
    if m is None:
        if _ID_RE.match(text):
            raise DatasetError(
                f"{text!r} carries a version; give namespace/name only (the next version is chosen for you)"
            )
        raise DatasetError(f"invalid dataset name {text!r}: namespace/name with {_RULES.split(': ', 1)[1]}")
    if re.search(r"-v[0-9]+$", m.group(2)):
        raise DatasetError(
            f"{text!r} carries a version (-vN); give namespace/name only (the next version is chosen for you)"
        )
    return m.group(1), m.group(2)
