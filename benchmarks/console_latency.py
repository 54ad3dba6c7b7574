"""How fast `vla console` answers a person, measured in a real browser; one JSON object.

    python benchmarks/console_latency.py [--commands 5] [--checkpoint DIR]

Headless Chromium (Debian's, driven by Playwright) types commands into a console serving
the policy at its 10 Hz control rate, in two ways a person works: N commands about the
scene on screen (pick, evaluation seed 6), then N commands of other tasks, for each of
which the console first searches a scene that holds what it names (`auto`). From the page:
- first_frame_ms: from pressing enter to the first frame of the moving robot shown
  (the command parsed, the scene chosen and reset, the policy asked, a step simulated,
  the frame overlaid, JPEG-encoded, sent, decoded and shown);
- glass_to_glass_ms: per frame, from the simulator's render (server clock) to the page
  showing it (browser clock; one machine, one clock);
- frame_hz: frames shown per second while the robot moves.
Each command is stopped after --seconds (press stop), as a person would.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

CHROMIUM = "/usr/lib/chromium/chromium"
# Two ways a person works: commands about the scene on screen (pick's evaluation seed 6
# holds a red cube, a brown cylinder, a cyan cylinder, a cyan cube and a blue cube), and
# commands of other tasks, for which the console first searches a scene (`auto`).
SAME_SCENE = ("pick up the red block", "pick up the blue cube", "lift the brown cylinder",
              "pick up the cyan cube", "grab the red block and lift it")
OTHER_TASKS = ("touch the blue block", "put the red block in the green zone",
               "push the green block to the top left corner",
               "stack the yellow block on the blue block", "touch the red block")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=5)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--seconds", type=float, default=3.0, help="watched per command")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from policies.registry import resolve_checkpoint
    from policies.vla_policy import VLAPolicy
    from vla.console.thread import ConsoleThread

    policy = VLAPolicy.from_pretrained(resolve_checkpoint(args.checkpoint), device="cpu")
    policy.warm_up()
    running = ConsoleThread(policy, fps=10.0)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page()
            page.goto(running.url())
            page.wait_for_function("window.consoleState && window.consoleState.you")
            page.evaluate("""() => { send({type: 'reset', task: 'pick', split: 'L1',
                                             seed: 6}); }""")
            time.sleep(1.0)
            same = watch(page, SAME_SCENE[: args.commands], args.seconds)
            other = watch(page, OTHER_TASKS[: args.commands], args.seconds)
            browser.close()
    finally:
        running.close()
    print(json.dumps({
        "benchmark": "console_latency",
        "same_scene": summary(*same), "other_tasks_auto_scene": summary(*other),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }, indent=1))


def watch(page, commands, seconds: float):
    """Type each command, watch `seconds`, press stop; (first-frame ms per command,
    glass-to-glass ms per frame, frames/s per command, commands that moved nothing)."""
    first, glass, rates, still = [], [], [], []
    for text in commands:
        page.evaluate("consoleState.paints = []")
        page.fill("#text", text)
        sent = page.evaluate("performance.now()")
        page.press("#text", "Enter")
        time.sleep(seconds)
        page.click("#stop")
        page.wait_for_function("document.getElementById('verdict').textContent "
                               "!== 'running'", timeout=30000)
        paints = [x for x in page.evaluate("consoleState.paints") if x["step"] >= 1]
        if not paints:
            still.append(f"{text}: {page.inner_text('#understood')}")
            continue
        first.append(paints[0]["page_ms"] - sent)
        glass += [(x["painted_at"] - x["rendered_at"]) * 1e3 for x in paints]
        if len(paints) > 1:
            rates.append((len(paints) - 1) / ((paints[-1]["page_ms"] - paints[0]["page_ms"])
                                               / 1e3))
        time.sleep(0.3)
    return first, glass, rates, still


def summary(first, glass, rates, still) -> dict:
    return {"commands_moved": len(first), "moved_nothing": still,
            "first_frame_ms": {"median": round(float(np.median(first)), 1),
                               "max": round(float(np.max(first)), 1),
                               "each": [round(x, 1) for x in first]},
            "glass_to_glass_ms": {"median": round(float(np.median(glass)), 1),
                                  "p90": round(float(np.percentile(glass, 90)), 1),
                                  "frames": len(glass)},
            "frame_hz": round(float(np.median(rates)), 2)}


if __name__ == "__main__":
    main()
