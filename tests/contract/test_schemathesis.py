"""Property-based contract test: generated requests from our own OpenAPI schema never get a 5xx or break the schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import TINY_NAME

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api_schema(transactional_db, settings, tiny_artifact, fresh_runtime):
    """The schema the app serves, loaded in process (WSGI): no server needed."""
    from webapp import services
    from webapp.wsgi import application

    settings.DEFAULT_MODEL_NAME = TINY_NAME
    settings.API_RATE_LIMIT = "100000/m"
    services.model_version_register(artifact_path=tiny_artifact, activate=True)
    _, key = services.api_token_create(name="schemathesis")
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application), key


def check_case(case, seen: list, key: str) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
    response = case.call()
    seen.append(response.status_code)
    assert response.status_code < 500, f"{case.method} {case.path} answered {response.status_code}: {response.text[:300]}"
    case.validate_response(response, checks=[response_schema_conformance])


def test_generated_requests_get_no_5xx_and_match_the_schema(api_schema):
    api_schema, key = api_schema
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/predict", "/api/v1/predict/batch", "/api/v1/models", "/api/v1/models/{name}"}
    seen: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
        def run(case):
            check_case(case, seen, key)

        run()
    assert len(seen) >= 40, f"only {len(seen)} generated requests ran"
    assert any(200 <= code < 300 for code in seen) and any(400 <= code < 500 for code in seen)
