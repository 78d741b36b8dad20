"""No password is ever printed: URLs libpq cannot parse are bad input (exit 2), said in our words.

libpq's own parse errors quote the whole string, password included; these
tests feed each kind of malformed URL to the CLI (text and JSON) and to
`Runtime`, and check the secret appears nowhere.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import cli_env, run_cli
from zdmigrate.dsn import problem, redact, scrub
from zdmigrate.runtime import Runtime

SECRET = "s3cr3t"

MALFORMED = {
    "misspelt scheme": f"postgress://app:{SECRET}@db.example:5432/shop",
    "upper-case scheme": f"POSTGRESQL://app:{SECRET}@db.example/shop",
    "another database": f"mysql://app:{SECRET}@db.example/shop",
    "bad percent escape": f"postgresql://app:{SECRET}%zz@db.example/shop",
    "unclosed bracket": f"postgresql://app:{SECRET}@[::1/shop",
    "key=value without =": f"host=db.example password {SECRET}",
    "not a url": "notaurl",
}


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("url", MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_url_is_bad_input_and_never_printed(url: str, fmt: str, tmp_path) -> None:
    result = run_cli(["--format", fmt, "status"], cli_env(url, tmp_path))
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert SECRET not in out
    assert "Traceback" not in out
    assert "database URL" in out
    if fmt == "json":
        assert SECRET not in json.dumps(json.loads(result.stdout or result.stderr))


def test_runtime_refuses_a_malformed_url_without_showing_it() -> None:
    for url in MALFORMED.values():
        with pytest.raises(ValueError) as caught:
            Runtime(url, app="shop", version="1.0")
        assert SECRET not in str(caught.value)
        assert "database URL" in str(caught.value)


def test_unreachable_server_message_shows_no_password(tmp_path) -> None:
    url = f"postgresql://app:{SECRET}@127.0.0.1:1/shop"
    result = run_cli(["--format", "json", "status"], cli_env(url, tmp_path))
    assert result.returncode == 3, result.stdout + result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "127.0.0.1" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (MALFORMED["misspelt scheme"], "postgress://db.example (cannot be parsed)"),
        (MALFORMED["unclosed bracket"], "postgresql:// (cannot be parsed)"),
        (MALFORMED["key=value without ="], "<a connection string that cannot be parsed>"),
        # libpq reads host "app", port "s3", dbname "cr3t@db/shop": the URL syntax hides
        # the password in the path, so only the scheme and host may be shown
        (f"postgresql://app:s3/{SECRET}@db/shop", "postgresql://app (cannot be parsed)"),
        (f"postgresql://app:{SECRET}@db/shop", "postgresql://app:***@db/shop"),
        (f"host=db password='{SECRET} x' dbname=shop", "host=db password=*** dbname=shop"),
    ],
)
def test_redact_is_total(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert SECRET not in redact(url)


def test_problem_says_what_is_wrong_in_a_sentence_without_the_url() -> None:
    assert "lower case" in (problem(MALFORMED["upper-case scheme"]) or "")
    assert "mysql://" in (problem(MALFORMED["another database"]) or "")
    assert "%25" in (problem(MALFORMED["bad percent escape"]) or "")
    assert "IPv6" in (problem(MALFORMED["unclosed bracket"]) or "")
    assert "key=value" in (problem(MALFORMED["key=value without ="]) or "")
    for url in MALFORMED.values():
        assert SECRET not in (problem(url) or "")
    assert problem("postgresql://app@db/shop") is None
    assert problem("postgresql+psycopg://app@db/shop") is None
    assert problem("host=db dbname=shop") is None


def test_scrub_removes_the_password_from_a_driver_message() -> None:
    url = f"postgresql://app:{SECRET}@db/shop"
    assert SECRET not in scrub(f'could not connect with "{url}" ({SECRET})', url)
