"""Evaluation outputs: JSON, a Markdown table, a bar plot (PNG) and episode videos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from vla.data.store import write_json_atomic
from vla.data.video import write_video


def public_result(result: dict) -> dict:
    """The result without video frames (what `--json` prints and results.json holds)."""
    out = {k: v for k, v in result.items() if k != "videos"}
    out["videos"] = [{k: v for k, v in r.items() if k != "frames"} for r in result["videos"]]
    return out


def markdown_table(result: dict) -> str:
    splits = sorted(result["splits"])
    tasks = sorted(result["tasks"])
    lines = ["| task | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for task in tasks:
        row = []
        for split in splits:
            cell = result["cells"].get(f"{task}/{split}")
            row.append("" if cell is None else _fmt(cell))
        lines.append(f"| {task} | " + " | ".join(row) + " |")
    lines.append("| **mean** | " + " | ".join(_fmt(result["splits"][s]) for s in splits) + " |")
    return "\n".join(lines) + "\n"


def _fmt(cell: dict) -> str:
    low, high = cell["ci95"]
    return f"{100 * cell['success']:.0f}% [{100 * low:.0f}, {100 * high:.0f}]"


def bar_plot(result: dict, path: Path) -> None:
    """Success per split with 95% interval whiskers, drawn with OpenCV (no plotting lib)."""
    splits = sorted(result["splits"])
    w, h, left, bottom, top = 120 * len(splits) + 100, 360, 60, 40, 30
    img = np.full((h, w, 3), 255, np.uint8)
    plot_h = h - bottom - top
    y = lambda v: int(h - bottom - v * plot_h)  # noqa: E731
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        cv2.line(img, (left, y(v)), (w - 20, y(v)), (220, 220, 220), 1)
        cv2.putText(img, f"{int(v * 100)}%", (8, y(v) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (80, 80, 80), 1, cv2.LINE_AA)
    for i, split in enumerate(splits):
        cell = result["splits"][split]
        x0 = left + 20 + i * 120
        cv2.rectangle(img, (x0, y(cell["success"])), (x0 + 70, y(0)), (180, 120, 40), -1)
        low, high = cell["ci95"]
        cv2.line(img, (x0 + 35, y(low)), (x0 + 35, y(high)), (0, 0, 0), 2)
        cv2.putText(img, f"{split} {100 * cell['success']:.0f}%", (x0, h - 15),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def write_report(result: dict, out: str | Path) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "markdown": out / "results.md",
             "plot": out / "success.png"}
    write_json_atomic(paths["json"], public_result(result))
    paths["markdown"].write_text(markdown_table(result))
    bar_plot(result, paths["plot"])
    for rec in result["videos"]:
        verdict = "success" if rec["success"] else "failure"
        name = f"{rec['env_id'].split('/')[-1]}_{rec['split']}_s{rec['seed']}_{verdict}.mp4"
        write_video(out / "videos" / name, rec["frames"], text=rec["instruction"])
    return {k: str(v) for k, v in paths.items()}


def load_result(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
