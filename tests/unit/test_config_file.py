"""The configuration file: TOML parsing, validation, a stable version, re-reading on change."""

from __future__ import annotations

import datetime as dt
import os
import textwrap

import pytest

from DIRAC.ConfigurationSystem.Client.ConfigurationFile import (
    ConfigurationError,
    ConfigurationFile,
    as_list,
    parse,
    validate,
    version_of,
)

GOOD = textwrap.dedent('''\
    [Registry]
    DefaultGroup = "users"

    [Registry.Users.alice]
    BrokerUser = "alice"
    DN = "/DC=org/CN=Alice"
    Groups = ["users"]

    [Registry.Users.bob]
    Groups = "users, admins"

    [Registry.Groups.users]
    Properties = ["NormalUser"]

    [Registry.Groups.admins]
    Users = ["alice"]
    Properties = "NormalUser, JobAdministrator"

    [Registry.Hosts.wms]
    BrokerUser = "dirac-wms"
    Properties = ["TrustedHost"]

    [Systems.WorkloadManagement.Services.JobManager.Authorization]
    killJob = ["JobAdministrator", "group:admins"]
    Default = "authenticated"

    [Operations.Defaults]
    MaxJobs = 100
    When = 2024-01-02T03:04:05Z
    At = 07:30:00
    ''')


def test_a_good_file_parses_to_the_tree():
    tree = parse(GOOD)
    assert tree["Registry"]["Users"]["alice"]["DN"] == "/DC=org/CN=Alice"
    assert tree["Operations"]["Defaults"]["MaxJobs"] == 100
    assert tree["Operations"]["Defaults"]["When"] == dt.datetime(2024, 1, 2, 3, 4, 5,
                                                                 tzinfo=dt.UTC)
    assert tree["Operations"]["Defaults"]["At"] == "07:30:00"  # a bare time travels as text


def test_the_version_depends_on_the_content_only():
    version = version_of(parse(GOOD))
    assert len(version) == 16 and int(version, 16) >= 0
    assert version_of(parse(GOOD)) == version  # stable (no time, no randomness)
    reformatted = "# a comment\n" + GOOD.replace('MaxJobs = 100', 'MaxJobs   =   100  # max')
    assert version_of(parse(reformatted)) == version
    assert version_of(parse(GOOD.replace("100", "101"))) != version


def test_bad_toml_names_the_file():
    with pytest.raises(ConfigurationError, match=r"cs\.toml is not valid TOML"):
        parse("[Registry\n", "cs.toml")


@pytest.mark.parametrize("text, problem", [
    ('Registry = 1', "/Registry must be a section"),
    ('[Registry]\nUsers = 1', "/Registry/Users must be a section"),
    ('[Registry.Users]\nalice = "x"', "/Registry/Users/alice must be a section"),
    ('[Registry.Users.alice]\nGroups = ["nope"]',
     "/Registry/Users/alice/Groups names 'nope', which is not defined in /Registry/Groups"),
    ('[Registry.Groups.g]\nUsers = ["ghost"]',
     "/Registry/Groups/g/Users names 'ghost', which is not defined in /Registry/Users"),
    ('[Registry.Users.a]\nBrokerUser = "x"\n[Registry.Users.b]\nBrokerUser = "x"',
     "broker user 'x' is claimed by both /Registry/Users/a and /Registry/Users/b"),
    ('[Registry.Users.a]\n[Registry.Hosts.h]\nBrokerUser = "a"',
     "broker user 'a' is claimed by both"),
    ('[Registry.Users.a]\nBrokerUser = ""', "/Registry/Users/a/BrokerUser must be a non-empty"),
    ('[Registry.Users.a]\nDN = 5', "/Registry/Users/a/DN must be a non-empty string"),
    ('[Registry.Groups.g]\nProperties = [1, 2]', "/Registry/Groups/g/Properties must be a list"),
    ('[Registry]\nDefaultGroup = 3', "/Registry/DefaultGroup must be a list"),
    ('[Systems.S.Services.X]\nAuthorization = "all"',
     "/Systems/S/Services/X/Authorization must be a section"),
    ('[Systems.S.Services.X.Authorization]\nm = 1',
     "/Systems/S/Services/X/Authorization/m must be a list"),
])
def test_validation_says_what_is_wrong(text, problem):
    with pytest.raises(ConfigurationError) as info:
        parse(text, "cs.toml")
    assert problem in str(info.value)


def test_free_form_sections_are_not_validated():
    assert validate({"Operations": {"anything": [1, {"x": 2}]}, "Resources": 3}) == []


def test_as_list():
    assert as_list("a, b ,,c") == ["a", "b", "c"]
    assert as_list(["a", " b "]) == ["a", "b"]
    assert as_list("") == []
    assert as_list([1]) is None and as_list(3) is None


def _rewrite(path, text):
    """Write and make sure the change is visible in the stat signature."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10_000_000, before + 10_000_000))


def test_the_file_is_re_read_when_it_changes(tmp_path):
    path = tmp_path / "cs.toml"
    path.write_text(GOOD)
    source = ConfigurationFile(path)
    source.load()
    first = source.version
    assert source.check() is False  # unchanged: not even re-parsed
    _rewrite(path, GOOD.replace("100", "200"))
    assert source.check() is True
    assert source.version != first and source.tree["Operations"]["Defaults"]["MaxJobs"] == 200


def test_a_broken_edit_keeps_the_last_good_content(tmp_path, caplog):
    path = tmp_path / "cs.toml"
    path.write_text(GOOD)
    source = ConfigurationFile(path)
    source.load()
    good = source.version
    _rewrite(path, "[Registry\n")
    assert source.check() is False
    assert source.version == good and "not valid TOML" in source.error
    assert "still serving version" in caplog.text
    _rewrite(path, GOOD.replace("100", "300"))
    source._bad_at = 0.0  # the retry delay of a bad file has passed
    assert source.check() is True
    assert source.error == "" and source.version != good


def test_a_missing_file_keeps_the_last_good_content(tmp_path):
    path = tmp_path / "cs.toml"
    path.write_text(GOOD)
    source = ConfigurationFile(path)
    source.load()
    path.unlink()
    assert source.check() is False
    assert source.tree["Registry"] and "cannot read" in source.error
