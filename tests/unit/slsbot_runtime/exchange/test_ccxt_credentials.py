"""Credentials come from a mounted Secret folder or the environment, never show in a repr, and a missing
one is named with the fix."""

from __future__ import annotations

import pytest

from slsbot_runtime.domain.errors import AuthenticationError
from slsbot_runtime.exchange.credentials import (
    ENV_API_KEY,
    ENV_PASSWORD,
    ENV_SECRET,
    CredentialFileNames,
    ExchangeCredentials,
    load_credentials,
)

KEY = "AbCdEfGhIjKlMnOpQrSt1234"
SECRET = "zYxWvUtSrQpOnMlKjIhG9876"


def test_reads_one_file_per_key_and_strips_the_trailing_newline(tmp_path):
    (tmp_path / "apiKey").write_text(KEY + "\n")
    (tmp_path / "secret").write_text(SECRET + "\n")

    credentials = load_credentials(tmp_path)

    assert (credentials.api_key, credentials.secret, credentials.password) == (KEY, SECRET, None)


def test_custom_file_names_and_an_optional_password(tmp_path):
    (tmp_path / "key").write_text(KEY)
    (tmp_path / "sec").write_text(SECRET)
    (tmp_path / "pass").write_text("phrase")

    credentials = load_credentials(tmp_path, names=CredentialFileNames("key", "sec", "pass"))

    assert credentials.password == "phrase"
    assert credentials.values == (KEY, SECRET, "phrase")


def test_a_missing_file_is_named_with_the_fix(tmp_path):
    (tmp_path / "apiKey").write_text(KEY)

    with pytest.raises(AuthenticationError, match=r"no file 'secret' in .*add the key 'secret' to the Secret"):
        load_credentials(tmp_path)


def test_an_empty_file_is_refused(tmp_path):
    (tmp_path / "apiKey").write_text(KEY)
    (tmp_path / "secret").write_text("\n")

    with pytest.raises(AuthenticationError, match=r"'secret' .* is empty"):
        load_credentials(tmp_path)


def test_a_folder_that_is_not_there_says_to_mount_the_secret(tmp_path):
    with pytest.raises(AuthenticationError, match="is not a folder; mount"):
        load_credentials(tmp_path / "missing")


def test_environment_variables_when_no_folder_is_given():
    credentials = load_credentials(env={ENV_API_KEY: KEY, ENV_SECRET: SECRET, ENV_PASSWORD: ""})
    assert (credentials.api_key, credentials.secret, credentials.password) == (KEY, SECRET, None)


def test_missing_environment_variables_are_named():
    with pytest.raises(AuthenticationError, match=ENV_SECRET):
        load_credentials(env={ENV_API_KEY: KEY})


def test_repr_and_str_never_show_the_values():
    credentials = ExchangeCredentials(KEY, SECRET, "phrase")
    for text in (repr(credentials), str(credentials), f"{credentials}", repr([credentials])):
        assert KEY not in text and SECRET not in text and "phrase" not in text
    assert "...1234" in repr(credentials)  # enough to tell accounts apart
    assert "AbCd" not in repr(ExchangeCredentials("short", SECRET))
