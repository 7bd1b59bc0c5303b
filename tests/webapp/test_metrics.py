"""/metrics after real requests through the Django test client: names, labels, counts, and who may read it."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TINY_NAME, random_photo
from tests.webapp.helpers import assert_error, encode, predict


def scrape(client, **headers) -> dict[tuple, float]:
    """(sample name, sorted labels) -> value, from one GET /metrics."""
    reply = client.get("/metrics", **headers)
    assert reply.status_code == 200, reply.content[:300]
    assert reply["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(reply.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def jpeg(seed: int = 0) -> bytes:
    return encode(random_photo((96, 72), seed=seed), "JPEG")


SERVED = {"model": TINY_NAME, "version": "1", "engine": "keras"}


def test_predictions_are_counted_by_model_version_engine_and_status(client, active_tiny):
    before = scrape(client)
    assert predict(client, jpeg(1)).status_code == 200
    assert predict(client, jpeg(2)).status_code == 200
    assert_error(predict(client, b"not an image at all", "notes.jpg"), 415, "unsupported_format")
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("recognizer_predictions_total", **SERVED, status="ok") == 2
    assert delta("recognizer_inference_seconds_count", **SERVED) == 2
    assert delta("recognizer_decode_seconds_count", model=TINY_NAME) == 2
    assert delta("recognizer_predictions_total", **SERVED, status="unsupported_format") == 1
    assert delta("http_requests_total", method="POST", view="api:predict", status="200") == 2
    assert value(after, "recognizer_model_loaded", **SERVED) == 1
    assert value(after, "recognizer_queue_depth") == 0
    assert value(after, "process_resident_memory_bytes") > 0
    assert value(after, "recognizer_worker_resident_memory_bytes") > 0


def test_made_up_http_methods_share_one_label_so_a_client_cannot_add_series(client):
    before = scrape(client)
    for made_up in ("FOOBARBAZ", "QWERTYUIOP", "PROPFIND"):
        assert client.generic(made_up, "/healthz").status_code == 405
    after = scrape(client)
    methods = {dict(labels).get("method") for name, labels in after if name == "http_requests_total"}
    assert not methods & {"FOOBARBAZ", "QWERTYUIOP", "PROPFIND"}, methods
    def others(samples):
        return sum(v for (name, labels), v in samples.items() if name == "http_requests_total" and ("method", "other") in labels)

    assert others(after) - others(before) == 3


def test_rejections_are_counted_by_error_code(client, active_tiny, settings):
    settings.API_RATE_LIMIT = "1/m"
    before = scrape(client)
    assert predict(client, jpeg()).status_code == 200
    error = assert_error(predict(client, jpeg()), 429, "rate_limited")
    assert error["request_id"]
    assert_error(client.get("/api/v1/no-such-endpoint"), 404, "not_found")
    after = scrape(client)
    for reason, status in (("rate_limited", "429"), ("not_found", "404")):
        assert value(after, "recognizer_rejected_total", reason=reason, status=status) - value(
            before, "recognizer_rejected_total", reason=reason, status=status
        ) == 1


@pytest.mark.parametrize("networks, status", [(["10.0.0.0/8"], 403), (["127.0.0.0/8"], 200)])
def test_an_allow_list_limits_metrics_to_its_networks(client, db, settings, networks, status):
    settings.METRICS_ALLOWED_NETWORKS = networks
    reply = client.get("/metrics")  # the test client's REMOTE_ADDR is 127.0.0.1
    assert reply.status_code == status
    if status == 403:
        assert_error(reply, 403, "forbidden")


def test_a_metrics_token_is_required_once_set(client, db, settings):
    settings.METRICS_TOKEN = "s3cret-scraper-token"
    assert_error(client.get("/metrics"), 403, "forbidden")
    assert_error(client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong"), 403, "forbidden")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scraper-token").status_code == 200


def test_metrics_are_open_on_the_embedded_default_and_loopback_only_in_production():
    from webapp.settings import base

    assert (base.METRICS_TOKEN, base.METRICS_ALLOWED_NETWORKS) == ("", [])


def test_a_request_shed_for_load_counts_as_busy_in_predictions_and_rejections(client, active_tiny, settings):
    settings.INFERENCE_QUEUE_MAX = 0  # read when this process's runtime is made, i.e. at the first request below
    before = scrape(client)
    assert_error(predict(client, jpeg()), 503, "busy")
    after = scrape(client)
    assert value(after, "recognizer_predictions_total", **SERVED, status="busy") - value(
        before, "recognizer_predictions_total", **SERVED, status="busy"
    ) == 1
    assert value(after, "recognizer_rejected_total", reason="busy", status="503") - value(
        before, "recognizer_rejected_total", reason="busy", status="503"
    ) == 1
