import json

from django.core.management.base import CommandError
from django.utils import timezone

from webapp import fleet, selectors, services
from webapp.management.base import Command as ProjectCommand


class Command(ProjectCommand):
    help = "List model versions (active flag, compiled engine) and what every live worker of every host serves."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="only this model name")
        parser.add_argument("--json", action="store_true", help="one JSON document instead of tables")

    def handle(self, *args, name, json: bool, **options):
        versions = list(selectors.model_version_list(name=name).order_by("name", "-version"))
        if name and not versions:
            raise CommandError(f"no model named {name!r}.")
        live = fleet.worker_heartbeat_list(live_within=fleet.heartbeat_live_window())
        workers = [w for w in live if not name or w.model_name == name]
        report = {"versions": [_version(v) for v in versions], "workers": [_worker(w) for w in workers]}
        if json:
            self.stdout.write(_dumps(report))
        else:
            self._print(report, others_live=bool(live))

    def _print(self, report: dict, *, others_live: bool) -> None:
        self.stdout.write(_table(report["versions"], ("name", "version", "active", "engine", "predictions", "created_at", "problem")))
        self.stdout.write("")
        if not report["workers"] and others_live:  # the service runs: this model is not loaded by any worker
            name = report["versions"][0]["name"]
            self.stdout.write(f"no live worker serves {name}: it has no active version, or the workers failed to load it "
                              "(/readyz names such versions under \"failed\", with why)")
            return
        if not report["workers"]:
            self.stdout.write("no worker has reported in the last few seconds (is the service running?)")
            return
        self.stdout.write(_table(report["workers"], ("instance", "pid", "model", "version", "engine", "wanted", "seen_s_ago")))
        for w in report["workers"]:
            if w["engine"] != w["wanted"]:
                self.stdout.write(f"warning: {w['instance']}:{w['pid']} serves {w['model']} v{w['version']} with {w['engine']}, "
                                  f"not {w['wanted']}: run manage.py recompile {w['model']}")


def _version(v) -> dict:
    try:  # the check activation and recompile make: an .h5 changed or deleted since registration cannot serve again
        services.model_version_check_unchanged(version=v)
    except services.ActivationError as exc:
        problem = str(exc)
    else:
        problem = selectors.model_version_stale_reason(version=v) or (v.engine_note if v.engine == "keras" else "")
    return {
        "name": v.name, "version": v.version, "active": v.is_active, "engine": v.engine, "predictions": v.predictions_served,
        "created_at": v.created_at.strftime("%Y-%m-%d %H:%M"), "problem": problem,
    }


def _worker(w) -> dict:
    return {
        "instance": w.instance, "pid": w.pid, "model": w.model_name, "version": w.version, "engine": w.engine,
        "wanted": w.wanted_engine, "seen_s_ago": round((timezone.now() - w.seen_at).total_seconds(), 1),
    }


def _dumps(report: dict) -> str:
    return json.dumps(report, indent=2)


def _table(rows: list[dict], columns: tuple) -> str:
    cells = [[str(c) for c in columns]] + [["yes" if r[c] is True else "" if r[c] is False else str(r[c]) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells)
