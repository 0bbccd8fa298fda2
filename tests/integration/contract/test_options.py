"""OPTIONS answers with every method its path serves (RFC 9110 `Allow`)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import TestClient

from support import Account


def test_options_lists_every_method_of_the_path(client: TestClient[Any], owner: Account) -> None:
    # /members/{id} has GET, PATCH and DELETE in three handlers; OPTIONS listed only the first.
    answer = client.options(f"/api/v1/members/{uuid.uuid4()}", headers=owner.headers)
    assert answer.status_code == 204
    allowed = {m.strip() for m in answer.headers["allow"].split(",")}
    assert allowed == {"GET", "PATCH", "DELETE", "OPTIONS"}
    answer = client.options("/api/v1/members", headers=owner.headers)
    assert {m.strip() for m in answer.headers["allow"].split(",")} == {"GET", "POST", "OPTIONS"}
