"""schemathesis over the published OpenAPI document, authenticated: no operation answers 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from tests.web.conftest import World, bearer

pytestmark = pytest.mark.integration
EXAMPLES = 8  # per operation: the whole run stays well under a minute
# keep the fuzzing principal able to act: its own token and account stay usable
SKIP = {("DELETE", "/api/v1/tokens/{token_id}"), ("PUT", "/api/v1/users/{user_id}/password")}


@pytest.mark.parametrize(
    ("served", "username"),
    [
        ("server", "admin-a"),
        ("server_before_firmware_init", "admin-a"),
        # the whole fleet's administrator reaches the catalogue writes an agency's admin may not
        ("server", "root"),
    ],
)
def test_no_server_errors(
    request: pytest.FixtureRequest, world: World, served: str, username: str
) -> None:
    server: httpx.Client = request.getfixturevalue(served)
    base = str(server.base_url).rstrip("/")
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    headers = bearer(world, username)
    failures: list[str] = []
    checked = 0
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        checked += 1

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case[Any]) -> None:
            response = case.call(base_url=base, headers=headers, timeout=60)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        run()
    assert checked > 25
    assert failures == []
    assert sum(statuses.values()) > checked * 5
    assert statuses.get(200, 0) > checked  # the examples reach the handlers, not only validation
