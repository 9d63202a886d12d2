"""Every error code has an entry in docs/troubleshooting.md, and every entry a code."""

from __future__ import annotations

import re

from dockyard.errors import CODES
from tests.helpers import REPO


def test_every_code_is_documented() -> None:
    doc = (REPO / "docs" / "troubleshooting.md").read_text()
    documented = set(re.findall(r"^## (DY\d{3}):", doc, flags=re.MULTILINE))
    assert documented == set(CODES)
