"""``dataforge dashboard``: the panel serve command line and environment (pure, no process started)."""

from __future__ import annotations

from dataforge import envvars
from devkit.cli.dashboard import dashboard_env, panel_command


def test_cli_command_binds_localhost_with_liveness_and_keeps_the_key_off_the_command_line() -> None:
    command = panel_command(port=5099)
    assert command[command.index("--address") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "5099"
    assert "--liveness" in command
    assert "127.0.0.1:5099" in command
    env = dashboard_env({}, api_url="http://api", api_key="secret", realtime_seconds=1.0)
    assert env[envvars.API_KEY] == "secret"
    assert "secret" not in " ".join(command)
    assert env[envvars.REALTIME_REFRESH_SECONDS] == "1.0"
