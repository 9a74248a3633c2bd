"""The one error a catalog is refused with: it names the file, the key and what is wrong."""

from __future__ import annotations

from pathlib import Path

from yafdp.errors import ConfigurationError


class CatalogError(ConfigurationError):
    """A catalog file is missing, is not JSON, or has an entry that is wrong; says which file and key."""

    def __init__(self, file: Path | str, key: str, problem: str):
        self.file, self.key, self.problem = str(file), key, problem
        where = f"{self.file}: {key}: " if key else f"{self.file}: "
        super().__init__(where + problem)
