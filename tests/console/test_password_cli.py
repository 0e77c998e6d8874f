"""``dealflow user password`` sets the password the console signs in with."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import DEALFLOW, Cli

from server.core.db import make_engine, make_session_factory
from server.core.models import User
from server.core.passwords import verify_password
from server.core.services.console_sessions import open_with_password


def set_password(cli: Cli, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DEALFLOW), "user", "password", *args], input=stdin,
                          cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_a_password_read_from_stdin_is_stored_hashed_and_signs_in(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.ok("migrate")
    cli.ok("team", "create", "Acme", "--admin-email", "boss@acme.test")

    done = set_password(cli, "--team", "Acme", "--email", "boss@acme.test",
                        stdin="correct horse battery\n")

    assert done.returncode == 0, done.stderr
    assert "console password set for boss@acme.test" in done.stdout
    engine = make_engine(cli.url)
    with make_session_factory(engine)() as session:
        user = session.query(User).filter_by(email="boss@acme.test").one()
        assert user.password_hash and user.password_hash.startswith("scrypt$16384$8$1$")
        assert "correct horse" not in user.password_hash
        assert verify_password(user.password_hash, "correct horse battery")
        assert not verify_password(user.password_hash, "correct horse")
        assert open_with_password(session, "boss@acme.test", "correct horse battery").token
    engine.dispose()


def test_a_short_password_or_unknown_user_is_refused(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.ok("migrate")
    cli.ok("team", "create", "Acme", "--admin-email", "boss@acme.test")

    short = set_password(cli, "--team", "Acme", "--email", "boss@acme.test", stdin="short\n")
    nobody = set_password(cli, "--team", "Acme", "--email", "x@acme.test", stdin="long enough!\n")

    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    assert nobody.returncode == 1 and "has no user" in nobody.stderr
    assert "Traceback" not in short.stderr + nobody.stderr
