"""docs/config.md is generated from the models: it must match, and every field is described."""

from __future__ import annotations

from dockyard.config.reference import missing_descriptions, render
from tests.helpers import REPO


def test_every_field_has_a_description() -> None:
    assert missing_descriptions() == []


def test_committed_reference_is_up_to_date() -> None:
    committed = (REPO / "docs" / "config.md").read_text()
    assert committed == render(), "run: python -m dockyard.config.reference > docs/config.md"
