"""The Secret values of YAML files, read again on an error path to scrub the error's messages.

Apart from `velapy.load.redact`, which `velapy.load.yamlio` uses to withhold values by position:
this module reads files with yamlio, so redact itself imports no reader (no import circle).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from velapy.errors import VelapyError
from velapy.load import limits
from velapy.load.redact import secret_strings
from velapy.load.yamlio import load_file


def secret_strings_of_files(paths: Iterable[str]) -> set[str]:
    """Secret values in the YAML files (or folders of them) named; unreadable files add nothing."""
    out: set[str] = set()
    for p in paths:
        if not p:
            continue
        files = [p] if os.path.isfile(p) else sorted(
            str(f) for f in Path(p).rglob("*") if f.suffix in (".yaml", ".yml", ".json") and f.is_file()) \
            if os.path.isdir(p) else []
        for f in files:
            try:
                with open(f, "rb") as fh:
                    if b"Secret" not in fh.read(limits.current().file_bytes + 1):
                        continue  # no Secret in it: not worth parsing again on an error path
                for doc in load_file(f):
                    out |= secret_strings(doc.data)
            except (VelapyError, OSError):
                continue
    return out


__all__ = ["secret_strings_of_files"]
