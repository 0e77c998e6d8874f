"""``dealflow plugins list``: what is installed, from which package and version."""

from __future__ import annotations

import os
import subprocess
from importlib.metadata import version

from helpers import DEALFLOW


def plugins_list(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DEALFLOW_")}
    return subprocess.run(
        [str(DEALFLOW), "plugins", "list"], env={**base, **env},
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_plugins_list_names_each_action_with_its_package_and_version() -> None:
    done = plugins_list()
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:] if line.strip()}
    # a third-party action: its plugin, distribution and installed version
    assert rows["post_with_token"][:6] == [
        "post_with_token", "side_effect", "sample", "sample", "dealflow-sample-plugin",
        version("dealflow-sample-plugin"),
    ]
    # the four shipped plugins: registered through the entry points of the dealflow package
    for action in ("erp_export", "email_marketing", "notify_slack", "notify_telegram"):
        assert rows[action][:6] == [action, "side_effect", action, action, "dealflow",
                                    version("dealflow")], rows[action]
    # a built-in one
    assert rows["email"][:4] == ["email", "side_effect", "-", "builtin"]
    assert "template filters: shout" in done.stdout


def test_a_disabled_plugin_is_not_listed_and_is_named_as_disabled() -> None:
    done = plugins_list(DEALFLOW_PLUGINS_DISABLE="sample")
    assert done.returncode == 0, done.stderr
    assert "post_to" not in done.stdout
    assert "disabled (DEALFLOW_PLUGINS_DISABLE): sample" in done.stdout
