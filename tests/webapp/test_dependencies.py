"""A cache that cannot be reached: every path answers the 503 that /readyz names, and logs one line, not a 500 and a
traceback. (The database going down under a running service: tests/multihost/.)"""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from tests.webapp.helpers import assert_error, predict, upload

DEAD_REDIS = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}}


@pytest.fixture
def cache_down(active_tiny, settings):
    settings.CACHES = DEAD_REDIS  # nothing listens there: every cache call fails to connect


def test_a_prediction_with_the_cache_down_is_a_503_naming_it(cache_down, client, jpeg_bytes, caplog):
    reply = predict(client, jpeg_bytes)
    assert_error(reply, 503, "cache_unavailable")
    assert reply["Retry-After"] == "5"
    said = [r.getMessage().split(":")[0] for r in caplog.records if r.name == "webapp.errors"]
    assert said == ["the cache cannot be reached"]
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.ERROR)  # no traceback


def test_readyz_says_the_cache_is_down(cache_down, client):
    assert_error(client.get("/readyz"), 503, "cache_unavailable")


def test_the_page_and_the_sign_in_with_the_cache_down_say_so_to_a_person(cache_down, jpeg_bytes):
    browser = Client()
    page = browser.post("/", {"image": upload(jpeg_bytes), "top_k": "5"})
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert "The cache cannot be reached." in page.content.decode()
    sign_in = browser.post("/admin/login/", {"username": "someone", "password": "wrong"})
    assert sign_in.status_code == 503 and "The cache cannot be reached." in sign_in.content.decode()
    assert_error(browser.post("/", {"image": upload(jpeg_bytes)}, headers={"Accept": "application/json"}), 503, "cache_unavailable")
