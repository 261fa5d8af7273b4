"""Curves of the training-health monitor's record runs (HEALTH_NOTES.md), drawn with PIL.

    python experiments/health_curves.py RUN_DIR OUT.png [METRIC ...]

reads RUN_DIR/csv/*/metrics.csv (logger=csv) and draws one panel per metric against the training
iteration (`train/iteration`; validation rows take the iteration of the step they were logged at),
with a dashed line where the monitor's first warning fired (the first row whose health/* is 1).
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

from PIL import Image, ImageDraw

LOG_SCALE = {"train/grad_norm_g", "train/grad_norm_d", "train/D(G(z))"}
# Ratios and probabilities on their whole range, so a flat 0.25 reads as low, not as a slope.
FIXED_RANGE = {"health/diversity_ratio": (0.0, 1.2), "val/class_coverage": (0.0, 1.0), "train/D(x)": (0.0, 1.0)}
PANEL_W, PANEL_H, MARGIN = 560, 170, 56


def read(run_dir: Path) -> list[dict[str, float]]:
    (path,) = run_dir.glob("csv/*/metrics.csv")
    rows = []
    for row in csv.DictReader(path.open()):
        rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    # Validation rows carry `step` only: give them the iteration of the training row at that step.
    iteration_at = {r["step"]: r["train/iteration"] for r in rows if "train/iteration" in r}
    for r in rows:
        r.setdefault("train/iteration", iteration_at.get(r.get("step"), math.nan))
    return [r for r in rows if math.isfinite(r["train/iteration"])]


def first_warning(rows: list[dict[str, float]]) -> tuple[float, str] | None:
    for r in rows:
        for k, v in r.items():
            if k in ("health/vanishing_gradients", "health/collapse", "health/divergence") and v == 1.0:
                return r["train/iteration"], k
    return None


def draw(rows: list[dict[str, float]], metrics: list[str], out: Path, title: str) -> None:
    width, height = PANEL_W + 2 * MARGIN, len(metrics) * (PANEL_H + MARGIN) + MARGIN
    image = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(image)
    pen.text((MARGIN, 12), title, fill="black")
    x_max = max(r["train/iteration"] for r in rows) or 1.0
    warning = first_warning(rows)
    for i, metric in enumerate(metrics):
        top = MARGIN + i * (PANEL_H + MARGIN)
        points = [(r["train/iteration"], r[metric]) for r in rows if metric in r and math.isfinite(r[metric])]
        pen.rectangle([MARGIN, top, MARGIN + PANEL_W, top + PANEL_H], outline="gray")
        pen.text((MARGIN, top - 16), metric + (" (log scale)" if metric in LOG_SCALE else ""), fill="black")
        if not points:
            continue
        log = metric in LOG_SCALE
        ys = [math.log10(max(y, 1e-12)) if log else y for _, y in points]
        lo, hi = FIXED_RANGE.get(metric, (min(ys), max(ys)))
        lo, hi = (lo - 0.5, hi + 0.5) if hi - lo < 1e-9 else (lo, hi)
        to_x = lambda x: MARGIN + PANEL_W * x / x_max  # noqa: E731
        to_y = lambda y: top + PANEL_H - PANEL_H * (y - lo) / (hi - lo)  # noqa: E731
        for y_tick in (lo, hi):
            label = f"{10**y_tick:.2g}" if log else f"{y_tick:.3g}"
            pen.text((4, to_y(y_tick) - 6), label, fill="gray")
        xy = [(to_x(x), to_y(y)) for (x, _), y in zip(points, ys)]
        if len(xy) > 1:
            pen.line(xy, fill="navy", width=2)
        for px, py in xy:
            pen.ellipse([px - 2, py - 2, px + 2, py + 2], fill="navy")
        if warning is not None:
            wx = to_x(warning[0])
            for y0 in range(top, top + PANEL_H, 8):
                pen.line([(wx, y0), (wx, y0 + 4)], fill="red", width=1)
        pen.text((MARGIN + PANEL_W - 60, top + PANEL_H + 4), f"iter {x_max:.0f}", fill="gray")
    if warning is not None:
        pen.text((MARGIN + 300, 12), f"red: first {warning[1]} at iteration {warning[0]:.0f}", fill="red")
    image.save(out)


def main(argv: list[str]) -> None:
    run_dir, out, *metrics = argv
    rows = read(Path(run_dir))
    draw(rows, metrics, Path(out), f"{Path(run_dir).name}: {len(rows)} logged rows")


if __name__ == "__main__":
    main(sys.argv[1:])
