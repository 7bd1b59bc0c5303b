import contextlib
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from recognizer.backbones import NAMES
from recognizer.errors import RecognizerError, TrainingCancelled
from recognizer.evaluation import format_table
from recognizer.manifest import MODEL_NAME_PATTERN, MODEL_NAME_RULE, QUERY_DOMAINS
from recognizer.progress import TrainingHooks
from recognizer.training import TrainConfig
from webapp import runs, services, training_jobs
from webapp.management.base import Command as ProjectCommand


@contextlib.contextmanager
def _interrupt_stops(say):
    """The first Ctrl-C asks the run to stop between two batches, or before it registers anything; a second one
    interrupts at once."""
    stop = threading.Event()

    def asked(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        say("stopping between two batches; nothing will be registered (Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, asked)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


class Command(ProjectCommand):
    help = "Train a classifier on an image-folder dataset (transfer learning), export H5 + manifest, register it."

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="folder with one subfolder of images per class")
        parser.add_argument("--name", required=True, help="model name (lowercase letters, digits, - _ .)")
        parser.add_argument("--backbone", choices=NAMES, default="efficientnet_lite0")
        parser.add_argument("--domain", choices=QUERY_DOMAINS, help="domain of every class (without classes.csv)")
        parser.add_argument("--epochs", type=int, default=40)
        parser.add_argument("--fine-tune-layers", type=int, default=0, help="also train the top K backbone layers")
        parser.add_argument("--fine-tune-epochs", type=int, default=3)
        parser.add_argument("--val-split", type=float, default=0.2)
        parser.add_argument("--folds", type=int, default=0, help="also report k-fold cross-validated accuracy")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--from-scratch", action="store_true", help="random backbone weights, all layers trained")
        parser.add_argument("--activate", action="store_true", help="serve the new version right away")

    def handle(self, *args, **opts):
        self._check_options(opts)
        started = time.perf_counter()
        with training_jobs.machine_lock(wait=False) as slot:
            if not slot:
                raise CommandError("Another training runs on this machine (a training job or manage.py train): one at a "
                                   f"time, so that they do not write the same version; try again when it ends "
                                   f"({settings.TRAINING_LOCK_FILE} is its lock).")
            with _interrupt_stops(self.stderr.write) as stop:
                run = self._train(opts, stop)
        self._skipped(run.skipped)
        self._report(run, time.perf_counter() - started)

    def _train(self, opts, stop: threading.Event):
        config = replace(self._config(opts), hooks=TrainingHooks(should_stop=stop.is_set))
        try:
            return runs.model_version_train(
                data=Path(opts["data"]), config=config, domain=opts["domain"], activate=opts["activate"], log=self.stdout.write,
            )
        except TrainingCancelled:
            raise CommandError("Stopped on Ctrl-C; nothing was registered.") from None
        except KeyboardInterrupt:  # a second Ctrl-C
            raise CommandError("Interrupted at once: manage.py models shows whether a version was registered.") from None
        except RecognizerError as exc:
            self._skipped(getattr(exc, "skipped", []))
            raise CommandError(str(exc)) from None
        except services.RegistrationError as exc:
            raise CommandError(f"trained, but the artifact failed registration: {exc}") from None
        except services.ActivationError as exc:
            raise CommandError(f"trained and registered {exc.version}, but it is not active: {exc}") from None

    def _skipped(self, skipped):
        for path, reason in skipped:
            self.stderr.write(f"skipped {path}: {reason}")

    def _check_options(self, opts):
        if not MODEL_NAME_PATTERN.match(opts["name"]):
            raise CommandError(f"--name must be {MODEL_NAME_RULE}.")
        if not 0 <= opts["val_split"] < 1:
            raise CommandError("--val-split must be at least 0 and below 1.")
        if opts["epochs"] < 1 or opts["batch_size"] < 1 or opts["fine_tune_layers"] < 0:
            raise CommandError("--epochs and --batch-size must be positive, --fine-tune-layers not negative.")
        if opts["folds"] == 1 or opts["folds"] < 0:
            raise CommandError("--folds must be 0 (off) or at least 2.")
        if not 0 <= opts["seed"] < 2**32:
            raise CommandError("--seed must be a whole number from 0 to 4294967295.")

    def _config(self, opts) -> TrainConfig:
        return TrainConfig(
            name=opts["name"], backbone=opts["backbone"], epochs=opts["epochs"], fine_tune_layers=opts["fine_tune_layers"],
            fine_tune_epochs=opts["fine_tune_epochs"], val_split=opts["val_split"], folds=opts["folds"], seed=opts["seed"],
            batch_size=opts["batch_size"], from_scratch=opts["from_scratch"], progress=opts["verbosity"] > 0,
        )

    def _report(self, run, seconds):
        result, version = run.result, run.version
        self.stdout.write(format_table(result.metrics))
        held_out = result.split["validation"]
        self.stdout.write(f"evaluated on: {result.metrics['evaluated_on']}" + (f" ({held_out} images not trained on)" if held_out else ""))
        if result.cross_validation:
            cv = result.cross_validation
            self.stdout.write(f"{cv['folds']}-fold cross-validated accuracy: {cv['accuracy_mean']:.3f} +/- {cv['accuracy_std']:.3f}")
        state = "active" if version.is_active else "inactive (activate it in the admin or with --activate)"
        self.stdout.write(
            f"registered {version}, {state}, on {version.engine}; artifact {run.artifact_path}; {seconds:.0f} s in all"
        )
