"""`vla console` in a real browser: headless Chromium (Debian's, through Playwright)
against the real server, the real simulator and the shipped policy.

Without Debian's chromium these tests are skipped, unless VLA_BROWSER_TESTS=required
(as `.ci/run` sets it, after installing chromium), when they fail instead."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from vla.console.thread import ConsoleThread

CHROMIUM = Path("/usr/lib/chromium/chromium")
REQUIRED = os.environ.get("VLA_BROWSER_TESTS") == "required"


def _need_browser():
    if not CHROMIUM.exists():
        if REQUIRED:
            pytest.fail(f"VLA_BROWSER_TESTS=required but {CHROMIUM} is missing: "
                        f"apt-get install -y --no-install-recommends chromium")
        pytest.skip(f"no {CHROMIUM} (apt-get install -y --no-install-recommends chromium)")
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def policy():
    from policies.vla_policy import VLAPolicy

    p = VLAPolicy.from_pretrained(_default(), device="cpu")
    p.warm_up()
    return p


def _default():
    from policies.registry import resolve_checkpoint

    return resolve_checkpoint(None)


@pytest.fixture(scope="module")
def console(policy):
    running = ConsoleThread(policy, fps=10.0)
    yield running
    running.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = _need_browser()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()


def _open(browser, console):
    page = browser.new_page()
    page.goto(console.url())
    page.wait_for_function("window.consoleState && window.consoleState.you")
    return page


def _say(page, text: str) -> None:
    page.fill("#text", text)
    page.press("#text", "Enter")


def _finish(page) -> None:
    """Stop whatever runs and wait until the robot is free again."""
    page.click("#stop")
    page.wait_for_function("document.getElementById('verdict').textContent !== 'running'",
                           timeout=30000)
    time.sleep(0.3)


def test_a_command_naming_what_is_not_there_is_refused_before_anything_moves(browser,
                                                                             console):
    page = _open(browser, console)
    _say(page, "pick up the purple elephant")
    page.wait_for_function("document.getElementById('understood').textContent"
                           ".includes('refused')", timeout=30000)
    assert "elephant" in page.inner_text("#understood")
    time.sleep(0.5)
    assert page.evaluate("consoleState.frames") == 0  # nothing moved, nothing streamed
    page.close()


def test_a_command_streams_the_camera_with_the_attention_at_the_control_rate(browser,
                                                                             console):
    page = _open(browser, console)
    page.evaluate("""() => { consoleState.times = [];
        const img = document.getElementById('camera');
        new MutationObserver(() => consoleState.times.push(Date.now() / 1000))
          .observe(img, {attributes: true, attributeFilter: ['src']}); }""")
    _say(page, "pick up the red block")
    page.wait_for_function("document.getElementById('understood').textContent"
                           ".startsWith('pick:')", timeout=60000)
    page.wait_for_function("consoleState.frames >= 12", timeout=30000)
    meta = page.evaluate("consoleState.lastMeta")
    assert meta["attention"] and meta["labels"][0].startswith("object:")
    assert "red" in meta["labels"][0]  # the object group reads the object's words
    assert meta["presence"] is not None and meta["threshold"] is not None
    times = page.evaluate("consoleState.times")
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 6.0 <= rate <= 12.0, f"{rate:.1f} frames/s at a 10 Hz control rate"
    assert page.eval_on_selector("#stages", "e => e.children.length") == 4  # pick's stages
    _finish(page)
    page.close()


def test_stop_holds_the_robot_mid_episode(browser, console):
    page = _open(browser, console)
    _say(page, "touch the blue block")
    page.wait_for_function("consoleState.frames >= 3", timeout=60000)
    page.click("#stop")
    page.wait_for_function("document.getElementById('verdict').textContent"
                           ".startsWith('stopped')", timeout=5000)
    stopped = page.evaluate("consoleState.last")
    frames = page.evaluate("consoleState.frames")
    assert stopped["type"] == "stopped" and stopped["steps"] < 60
    time.sleep(0.6)  # six control periods: the robot takes no further step
    assert page.evaluate("consoleState.frames") == frames
    assert len(console.server.robot.frames) == stopped["steps"]
    video = urllib.request.urlopen(console.url("/video.mp4"), timeout=30).read()
    assert len(video) > 1000  # the episode's video, as the policy saw it
    page.close()


def test_one_drives_the_others_watch(browser, console):
    driver, other = _open(browser, console), _open(browser, console)
    _say(driver, "pick up the green block")
    driver.wait_for_function("document.getElementById('driver').textContent"
                             ".includes('(you)')", timeout=60000)
    other.wait_for_function("document.getElementById('driver').textContent.startsWith("
                            "'viewer')", timeout=10000)
    _say(other, "pick up the blue block")
    other.wait_for_function("document.getElementById('log').textContent"
                            ".includes('is driving')", timeout=10000)
    _finish(driver)
    driver.close()  # the driver leaves: the seat is free
    other.wait_for_function("document.getElementById('driver').textContent === 'nobody'",
                            timeout=10000)
    other.close()


def test_closing_the_drivers_page_mid_episode_holds_the_robot(browser, console):
    driver, watcher = _open(browser, console), _open(browser, console)
    _say(driver, "touch the red block")
    watcher.wait_for_function("consoleState.frames >= 3", timeout=60000)
    driver.close()  # the driver's socket closes with the page
    watcher.wait_for_function("document.getElementById('verdict').textContent"
                              ".startsWith('stopped')", timeout=5000)
    steps = int(re.search(r"after (\d+) steps", watcher.inner_text("#verdict")).group(1))
    frames = watcher.evaluate("consoleState.frames")
    time.sleep(0.6)
    assert watcher.evaluate("consoleState.frames") == frames  # held: no further step
    assert steps < 60 and watcher.inner_text("#driver") == "nobody"
    watcher.close()


def test_off_loopback_every_request_needs_the_token(policy):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    running = ConsoleThread(policy, host="0.0.0.0")  # traffic below stays on 127.0.0.1
    try:
        token = running.server.token
        assert token and f"?token={token}" in running.server.url
        bare = f"http://127.0.0.1:{running.server.port}/"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bare, timeout=10)
        assert refused.value.code == 403
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(bare + "?token=wrong", timeout=10)
        assert urllib.request.urlopen(running.url(), timeout=10).status == 200
        with pytest.raises(InvalidStatus):
            connect(f"ws://127.0.0.1:{running.server.port}/ws", open_timeout=10)
        with connect(f"ws://127.0.0.1:{running.server.port}/ws?token={token}") as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
    finally:
        running.close()


def test_bad_messages_get_errors_and_the_console_keeps_serving(console):
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{console.server.port}/ws"
    with connect(url) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
        for bad in ("not json", json.dumps([1, 2]), json.dumps({"type": "fly"}),
                    json.dumps({"type": "command", "text": 7}),
                    json.dumps({"type": "command", "text": "x" * 400}),
                    json.dumps({"type": "reset", "task": "juggle"}),
                    json.dumps({"type": "reset", "seed": -3})):
            ws.send(bad)
            reply = json.loads(ws.recv(timeout=10))
            assert reply["type"] == "error" and reply["reason"], bad
    assert urllib.request.urlopen(console.url(), timeout=10).status == 200


def test_vla_console_prints_its_url_and_serves_the_page():
    import re
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "vla.cli", "console", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
        assert url, line
        page = urllib.request.urlopen(url.group(1), timeout=30).read().decode()
        assert "vla console" in page and "/ws" in page
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0


def test_vla_console_refuses_bad_flags(capsys):
    from vla.cli import main

    assert main(["console", "--port", "70000"]) == 2
    assert "--port 70000: expected 0 to 65535" in capsys.readouterr().err
    assert main(["console", "--robot", "bridges.mock_robot:MockRobot"]) == 2
    assert "--robot needs --connect URL" in capsys.readouterr().err


def _served(policy):
    from vla.serving.server import PolicyServer, ServerConfig

    server = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*"),
                          policy_name="shipped")
    server.start()
    return server


def _pick_contract(policy):
    import gymnasium as gym

    import sims  # noqa: F401  (registers the envs)
    from bridges.contract import ActionContract
    from sims.camera import camera_options

    env = gym.make("sims/Pick-v0", **camera_options(policy.contract.cameras))
    try:
        return ActionContract.from_env(env)
    finally:
        env.close()


def test_a_remote_policy_server_sends_its_attention_to_the_console(policy):
    from vla.console.driver import ConsoleDriver
    from vla.console.remote import RemotePolicy
    from vla.serving.client import PolicyClient

    server = _served(policy)
    try:
        # An old client that does not ask gets no maps: version 1 is unchanged.
        with_old = PolicyClient(server.endpoint)
        with_old.hello(_pick_contract(policy))
        obs = {"images": {"front": np.zeros((128, 128, 3), np.uint8)},
               "state": np.zeros(6, np.float32), "instruction": "pick up the red block"}
        assert "attention" not in with_old.act(obs)
        maps = with_old.act(obs, attention=True)["attention"]
        groups = policy.cfg.keypoint_groups
        assert maps.dtype == np.float16 and maps.shape[0] == groups
        assert np.allclose(maps.astype(np.float32).sum((1, 2)), 1.0, atol=1e-2)
        with_old.close()

        remote = RemotePolicy(server.endpoint, _pick_contract(policy))
        assert remote.attention and remote.presence_threshold == policy.presence_threshold
        events = []
        final = ConsoleDriver(remote, events.append, fps=0).command("pick up the red block")
        frames = [meta for e in events if isinstance(e, tuple) for meta in [e[2]]]
        assert final["type"] == "verdict" and final["steps"] == len(frames) - 1
        assert all(meta["attention"] for meta in frames[1:])  # every moving frame
        remote.close()
    finally:
        server.stop()


def test_a_server_that_stops_answering_holds_the_robot(policy):
    from vla.console.driver import ConsoleDriver
    from vla.console.remote import RemotePolicy

    server = _served(policy)
    events = []

    def emit(event):
        events.append(event)
        if sum(isinstance(e, tuple) for e in events) == 4:
            server.stop()  # the server goes away mid-episode

    try:
        remote = RemotePolicy(server.endpoint, _pick_contract(policy), timeout_s=0.5)
        final = ConsoleDriver(remote, emit, fps=0).command("pick up the red block")
    finally:
        server.stop()
    assert final["type"] == "stopped" and "the robot holds" in final["reason"]
    assert final["steps"] <= 4 + len(policy.contract.action_names)  # no step after it


def test_the_console_attached_to_a_robots_control_loop(policy):
    """`vla console --robot`: a Robot (the sim robot standing in for a real one) driven by
    bridges' ControlLoop against a vla serve; the console watches every observation with
    the server's attention, and stop ends the loop between ticks, the robot holding."""
    from sims.sim_robot import SimRobot
    from vla.console.robot_driver import RobotConsoleDriver

    server = _served(policy)
    events = []

    def emit(event):
        events.append(event)
        if sum(isinstance(e, tuple) and e[2]["attention"] for e in events) == 5:
            driver.stop()

    robot = SimRobot("sims/Pick-v0", seed=6, split="L1", cameras=("front",))
    try:
        robot.connect()
        driver = RobotConsoleDriver(robot, server.endpoint, emit)
        assert driver.presence_threshold == policy.presence_threshold
        refused = driver.command("fly to the moon")
        assert refused["type"] == "refused" and refused["kind"] == "not understood"
        final = driver.command("pick up the red block")
        assert final["type"] == "stopped" and 5 <= final["steps"] <= 7
        frames = [e[2] for e in events if isinstance(e, tuple)]
        assert sum(meta["attention"] for meta in frames) >= 5
        assert len(driver.frames) >= 5  # the episode's video
        driver.close()
    finally:
        robot.close()
        server.stop()


def test_a_plan_of_several_steps_runs_step_by_step_in_one_scene(policy):
    from vla.console.driver import ConsoleDriver

    events = []
    driver = ConsoleDriver(policy, events.append, fps=0)
    refused = driver.command("touch the red block, then pick up the purple elephant")
    assert refused["type"] == "refused" and "step 2" in refused["reason"]
    final = driver.command("pick up the red block, then put it in the green zone")
    kinds = [e["type"] for e in events if isinstance(e, dict)]
    understood = next(e for e in events if isinstance(e, dict) and e["type"] == "understood")
    assert understood["steps"] == ["pick up the red block",
                                   "put the red block in the green zone"]
    steps = [e for e in events if isinstance(e, dict) and e["type"] == "step"]
    assert steps[0]["step"] == 1 and steps[0]["of"] == 2
    assert final["type"] == "verdict" and final["last"]
    if final["success"]:  # both ran, the second from where the first left the block
        assert [s["step"] for s in steps] == [1, 2] and final["step"] == 2
    else:  # the verdict names the first step not done, and nothing after it ran
        assert [s["step"] for s in steps] == list(range(1, final["step"] + 1))
    assert kinds.count("understood") == 1
