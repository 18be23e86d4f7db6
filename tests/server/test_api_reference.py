"""docs/api.md covers every endpoint the app serves, and its index is the app's own."""

from __future__ import annotations

from typing import Any

import pytest

from server.api_reference import (
    API_DOC,
    BEGIN,
    END,
    documented_sections,
    openapi_document,
    operations,
    render_index,
    section_key,
)
from tests.conftest import SessionServices


@pytest.fixture(scope="module")
def document(services: SessionServices) -> dict[str, Any]:
    return openapi_document()


def test_the_endpoint_index_in_docs_api_is_the_one_the_app_renders(document: dict[str, Any]) -> None:
    text = API_DOC.read_text()
    written = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert written == render_index(document), (
        "docs/api.md's endpoint index is stale: run `uv run python -m server.api_reference --write`"
    )


def test_every_endpoint_has_a_section_of_its_own_in_docs_api(document: dict[str, Any]) -> None:
    sections = documented_sections(API_DOC.read_text())
    missing = [
        f"{method} {path}"
        for method, path in operations(document)
        if section_key(method, path) not in sections
    ]
    assert not missing, f"docs/api.md has no ### section for: {missing}"
