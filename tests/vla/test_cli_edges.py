"""Rough edges a new user hit: each error names the problem without a traceback, and the
defaults the CLI shows are the Python API's own."""

from __future__ import annotations

import argparse

from bridges.client import LoopConfig
from tests.vla.test_bridges_cli import vla
from vla.commands.bridge import add_loop_arguments
from vla.serving.server import ServerConfig


def test_malformed_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [5\n")
    done = vla("train", "--config", str(bad), "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert f"{bad}: not valid YAML (line 2, column 1)" in done.stderr
    assert "Traceback" not in done.stderr


def test_bind_without_a_transport_says_what_to_write():
    done = vla("serve", "--bind", "127.0.0.1:5560", "--policy", "builtin:hold")
    assert done.returncode == 2
    assert "expected e.g. tcp://127.0.0.1:5560" in done.stderr
    assert "WITHOUT CurveZMQ" not in done.stderr  # refused before any banner


def test_command_errors_carry_the_program_name_and_no_library_chatter():
    done = vla("command", "", "--policy", "builtin:hold")
    assert done.returncode == 2
    assert done.stderr.startswith("vla command: error: the command is empty")
    done = vla("command", "pick up the red block", "--policy", "builtin:hold",
               "--max-steps", "1")
    assert "pybullet build time" not in done.stderr + done.stdout
    assert "Loading weights" not in done.stderr


def test_cli_defaults_are_the_configs_defaults():
    p = argparse.ArgumentParser()
    add_loop_arguments(p)
    args = p.parse_args([])
    loop = LoopConfig()
    assert (args.deadline, args.connect_timeout, args.mode) == (
        loop.deadline_s, loop.connect_timeout_s, loop.mode)
    from vla.cli import build_parser

    serve = build_parser().parse_args(["serve"])
    server = ServerConfig()
    assert (serve.bind, serve.max_batch, serve.max_wait_ms, serve.client_timeout_s) == (
        server.bind, server.max_batch, server.max_wait_ms, server.client_timeout_s)
    assert serve.max_message_mb * 2**20 == server.max_message_bytes
