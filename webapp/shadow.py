"""Shadow comparison: a registered, inactive version also classifies a sample of live requests in the background
of the web worker, off the request's path; how often it agrees with the active version is kept per request.

Samples beyond a small backlog are dropped rather than queued: the shadow must never slow the service down.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from recognizer.errors import Translatable, gettext_noop
from recognizer.optimized import load_engine
from recognizer.preprocessing import open_image
from webapp.models import ModelVersion, Shadow, ShadowResult

log = logging.getLogger(__name__)
BACKLOG = 4


class ShadowError(Translatable, Exception):
    """The version cannot be put in (or taken out of) shadow as asked."""


def shadow_start(*, version: ModelVersion, by=None) -> Shadow:
    """Put an inactive version in shadow; it replaces any other shadow of its model name."""
    from webapp.services import ActivationError, model_version_check_unchanged

    if version.is_active:
        raise ShadowError(gettext_noop("%(version)s is active; put an inactive version in shadow."), version=str(version))
    try:  # a file changed or gone since registration would fail every sample, as activating it is refused
        model_version_check_unchanged(version=version)
    except ActivationError as exc:
        raise ShadowError(exc.template, **exc.params) from None
    Shadow.objects.filter(version__name=version.name, stopped_at__isnull=True).update(stopped_at=timezone.now())
    return Shadow.objects.create(version=version, started_by=by)


def shadow_stop(*, shadow: Shadow) -> bool:
    """Stop comparing; False if the shadow had already stopped (its stop time stays as it was)."""
    changed = Shadow.objects.filter(pk=shadow.pk, stopped_at__isnull=True).update(stopped_at=timezone.now()) == 1
    shadow.refresh_from_db()
    return changed


def shadow_agreement(*, shadow: Shadow) -> dict:
    """Requests compared with the name's active version, share agreeing, and the most frequent disagreements (active
    label, shadow label, count). Comparisons made while another version was active are counted apart (`earlier`):
    mixed in, they would make one figure of two different comparisons."""
    active = ModelVersion.objects.filter(name=shadow.version.name, is_active=True).first()
    current = shadow.results.filter(prediction__model_version=active)
    totals = current.aggregate(n=Count("id"), agree=Count("id", filter=Q(agrees=True)))
    differ = current.filter(agrees=False).values("active_label", "shadow_label").annotate(count=Count("id")).order_by("-count")[:10]
    rate = totals["agree"] / totals["n"] if totals["n"] else None
    earlier = shadow.results.count() - totals["n"]
    return {"compared": totals["n"], "agreement": rate, "differences": list(differ), "earlier": earlier}


class _Runner:
    """One background thread per web worker; engines of shadow versions loaded once, on first use."""

    def __init__(self):
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self.engines: dict[tuple, object] = {}
        self.pending = threading.BoundedSemaphore(BACKLOG)

    def submit(self, *args) -> bool:
        if not self.pending.acquire(blocking=False):
            return False  # the shadow is behind: skip this sample
        self.executor.submit(self._run, *args)
        return True

    def _run(self, shadow_id, version_id, artifact, kind, prediction_id, data, domain, active_label) -> None:
        try:
            key = (version_id, artifact)  # a version's file, loaded once per process
            engine = self.engines.get(key) or self.engines.setdefault(key, load_engine(artifact, kind=kind))
            probabilities = engine.probabilities(engine.prepare(open_image(data)))
            ranked = engine.rank(probabilities, top_k=1, domain=domain or None)[0]
            label = ranked[0].label if ranked else ""
            ShadowResult.objects.create(
                shadow_id=shadow_id, prediction_id=prediction_id, active_label=active_label, shadow_label=label,
                agrees=label == active_label,
            )
        except Exception:  # a shadow's failure is logged, never felt by a request
            log.exception("shadow classification failed")
        finally:
            connection.close()  # this thread's own connection: never left open between samples
            self.pending.release()

    def wait(self) -> None:
        """Block until every sample submitted so far is done (for tests)."""
        self.executor.submit(lambda: None).result()


@functools.cache
def runner() -> _Runner:
    """This process's shadow runner, made on first use (in a worker, after fork)."""
    return _Runner()


def shadow_sample(*, prediction_id: int | None, data: bytes, model_name: str, domain: str | None, active_label: str) -> bool:
    """Maybe (SHADOW_SAMPLE_RATE) classify this request with the shadow of its model, in the background."""
    if prediction_id is None or settings.SHADOW_SAMPLE_RATE <= 0 or random.random() >= settings.SHADOW_SAMPLE_RATE:
        return False
    shadow = Shadow.objects.filter(version__name=model_name, stopped_at__isnull=True).select_related("version").first()
    if shadow is None:
        return False
    version = shadow.version
    return runner().submit(shadow.pk, version.pk, version.artifact_path, version.engine, prediction_id, data, domain, active_label)


def shadow_sample_result(*, result, data: bytes, domain: str | None) -> bool:
    """shadow_sample for a served PredictionResult."""
    top = result.predictions[0].label if result.predictions else ""
    return shadow_sample(prediction_id=result.id, data=data, model_name=result.model_name, domain=domain, active_label=top)
