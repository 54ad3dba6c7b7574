"""Evaluation outputs: JSON, Markdown tables (success; stages), a bar plot (PNG) and videos.

Layout of an output directory:

    results.json  everything below but the frames (what `vla eval --json` prints)
    results.md    success per task and split, with 95% intervals
    stages.md     per task and split: how far episodes got, and where failures stopped
    phrasings.md  per task and split: success per instruction template
    success.png   success per split
    videos/successes/<task>_<split>_s<seed>.mp4
    videos/failures/<stopped stage>/<task>_<split>_s<seed>.mp4
"""

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


def caption(result: dict) -> str:
    """Which episodes the numbers come from (stream, seeds), in one line."""
    from vla.eval.episode import STREAM_NAMES

    mode = result.get("mode", "eval")
    first, n = result["seed"], result["episodes"]
    line = (f"{STREAM_NAMES.get(mode, mode).capitalize()} stream (mode={mode}), seeds "
            f"{first}-{first + n - 1}: {n} episodes per task and split.")
    if result.get("execute_steps"):
        line += f" Re-planning every {result['execute_steps']} step(s) of each chunk."
    if mode == "val":
        line += " For choices while developing; report final numbers on the evaluation stream."
    return line


def video_relpath(rec: dict) -> Path:
    """Where a video record goes under the output directory: successes together, failures
    grouped by the stage they stopped at."""
    name = f"{rec['env_id'].split('/')[-1]}_{rec['split']}_s{rec['seed']}.mp4"
    if rec["success"]:
        return Path("videos") / "successes" / name
    return Path("videos") / "failures" / rec.get("stage", "unknown") / name


def write_episode_video(rec: dict, out: str | Path) -> dict:
    """Write a record's frames under `out`; returns the record with "video" (its path
    relative to `out`) in place of the frames. Usable as `evaluate(on_video=...)`."""
    rel = video_relpath(rec)
    write_video(Path(out) / rel, rec["frames"], text=rec["instruction"])
    return {**{k: v for k, v in rec.items() if k != "frames"}, "video": rel.as_posix()}


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


def stage_table(result: dict) -> str:
    """Rows task/split; a column per stage (share of episodes that got at least that far,
    blank where the task has no such stage), where the failed episodes stopped, and how
    near their target came to its goal (median and quartiles; tasks with a goal only)."""
    cells = [result["cells"][k] for k in sorted(result["cells"])]
    order: list[str] = []
    for cell in cells:
        order += [s for s in cell.get("stage_order", cell.get("stages", ())) if s not in order]
    if "success" in order:  # every task ends with it
        order.remove("success")
        order.append("success")
    lines = ["| task | split | " + " | ".join(order)
             + " | failures stopped at | failures' closest approach to the goal |",
             "|---|---|" + "---|" * (len(order) + 2)]
    for cell in cells:
        fractions = cell.get("stages", {})
        row = [f"{100 * fractions[s]:.0f}%" if s in fractions else "" for s in order]
        stopped = cell.get("stopped_at", {})
        names = dict.fromkeys(("none", *cell.get("stage_order", stopped)))
        stops = [f"{s} {stopped[s]}" for s in names if stopped.get(s)]
        lines.append(f"| {cell['env_id']} | {cell['split']} | " + " | ".join(row)
                     + f" | {', '.join(stops) or '-'} | {_approach(cell)} |")
    return "\n".join(lines) + "\n"


def phrasing_table(result: dict) -> str:
    """Rows task/split/template: successes of the episodes whose instruction it made."""
    lines = ["| task | split | phrasing | success |", "|---|---|---|---|"]
    for key in sorted(result["cells"]):
        cell = result["cells"][key]
        for template, count in cell.get("phrasings", {}).items():
            lines.append(f"| {cell['env_id']} | {cell['split']} | {template} | "
                         f"{count['successes']}/{count['episodes']} |")
    return "\n".join(lines) + "\n"


def _approach(cell: dict) -> str:
    """'median cm [quartiles]' of the failures' closest approach; '-' when none."""
    q = cell.get("failures_closest_m")
    if not q:
        return "-"
    return f"{100 * q['median']:.1f} cm [{100 * q['p25']:.1f}, {100 * q['p75']:.1f}]"


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
             "stages": out / "stages.md", "phrasings": out / "phrasings.md",
             "plot": out / "success.png"}
    # Records that still hold frames are written now; the others were written as they
    # were recorded (`evaluate(on_video=...)`).
    videos = [write_episode_video(r, out) if "frames" in r else r for r in result["videos"]]
    write_json_atomic(paths["json"], public_result({**result, "videos": videos}))
    head = caption(result) + "\n\n"
    paths["markdown"].write_text(head + markdown_table(result))
    paths["stages"].write_text(head + stage_table(result))
    paths["phrasings"].write_text(head + phrasing_table(result))
    bar_plot(result, paths["plot"])
    return {k: str(v) for k, v in paths.items()}


def load_result(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
