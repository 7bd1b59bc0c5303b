"""Results of many photos as a CSV file: one row per photo with its verdict and top-k, for surveys and camera traps."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

VERDICT_COLUMNS = ("domain", "domain_probability", "status", "label", "index", "level", "explanation")


class CsvReport:
    """Writes a header, then a row per photo; a photo that could not be read has its reason under `error`."""

    def __init__(self, handle: TextIO, top_k: int):
        ranks = [f"top{n}_{field}" for n in range(1, top_k + 1) for field in ("label", "index", "probability")]
        self.columns = ["file", *(f"verdict_{c}" for c in VERDICT_COLUMNS), *ranks, "error"]
        self.top_k = top_k
        self.writer = csv.DictWriter(handle, fieldnames=self.columns, lineterminator="\n")
        self.writer.writeheader()

    def write(self, path: Path, result) -> None:
        """One row: `result` is the engine's Answer, or the reason (str) the file was not classified."""
        row = {"file": str(path)}
        if isinstance(result, str):
            row["error"] = result
        else:
            verdict = result.verdict.to_dict() if result.verdict else {}
            row.update({f"verdict_{c}": _cell(verdict.get(c)) for c in VERDICT_COLUMNS})
            for n, p in enumerate(result.predictions[: self.top_k], start=1):
                row.update({f"top{n}_label": p.label, f"top{n}_index": p.index, f"top{n}_probability": f"{p.probability:.6f}"})
        self.writer.writerow(row)


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.6f}" if isinstance(value, float) else str(value)
