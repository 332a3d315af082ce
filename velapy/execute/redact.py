"""The Secret values of a plan → a function that masks them (and bearer tokens) in any text.

Every line the executor prints, and every message it stores in run state, goes through it: an
API server may quote a value in an error (`Invalid value: "..."`), so masking at the source of
the values is the only safe place. A value is masked where it stands as a whole token, not
inside an unrelated name (`velapy.load.redact.mask`: a Secret value `orders` leaves
`shop/orders-api` as it is); values shorter than 4 characters and YAML words such as `true` are
not searched for (they would mask ordinary words). Values read during the run (a webhook URL
from a hub Secret) join it with `add` before anything is done with them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from velapy.load.redact import mask, maskable

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
MASK = "<redacted>"
MIN_MASKED = 4


class Redactor:
    def __init__(self, values: Iterable[str] = (), before: Callable[[str], str] | None = None) -> None:
        self.values = sorted({v for v in values if maskable(v, MIN_MASKED)}, key=len, reverse=True)
        self.before = before  # another masking function applied first

    def add(self, *values: str) -> None:
        """Mask these too, from now on."""
        self.values = sorted({*self.values, *(v for v in values if maskable(v, MIN_MASKED))}, key=len, reverse=True)

    @staticmethod
    def from_objects(objects: Iterable[Mapping[str, Any]]) -> Redactor:
        values: list[str] = []
        for obj in objects:
            if obj.get("kind") != "Secret" or obj.get("apiVersion") != "v1":
                continue
            for v in (obj.get("data") or {}).values():
                values.append(str(v))
                with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
                    values.append(base64.b64decode(str(v), validate=True).decode("utf-8"))
            for v in (obj.get("stringData") or {}).values():
                values.append(str(v))
                values.append(base64.b64encode(str(v).encode("utf-8")).decode())
        return Redactor(values)

    def __call__(self, text: str) -> str:
        if self.before is not None:
            text = self.before(text)
        text = mask(text, self.values, MASK, MIN_MASKED)
        return _BEARER.sub(r"\1" + MASK, text)


__all__ = ["MASK", "Redactor"]
