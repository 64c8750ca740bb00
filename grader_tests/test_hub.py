"""The course's JupyterHub configuration (`make hub`: convgrader/hub.py,
deploy/hub/jupyterhub_config.py), read as JupyterHub reads it, without starting it.

The hub itself, with real accounts logging in, is test_exchange.py's (as root, in Chromium).
"""
import contextlib
import json
import sqlite3

import pytest
from traitlets.config.loader import PyFileConfigLoader

from convcourse.exchange import COURSE_ID
from convgrader import hub

ENV = {"CONVCOURSE_HUB_PORT": "8100", "CONVCOURSE_HUB_INSTRUCTORS": "ada",
       "CONVCOURSE_HUB_GRADERS": "tom, tia", "CONVCOURSE_HUB_STUDENTS": "sofia carl",
       "CONVCOURSE_HUB_STUDENTS_GROUP": "conv-students", "CONVCOURSE_HUB_ADMINS": "root-ish",
       "CONVCOURSE_HUB_STATE": "/srv/hub-state", "CONVCOURSE_HUB_COURSE": "/srv/grader/course",
       "CONVCOURSE_EXCHANGE": "/srv/exchange", "CONVCOURSE_HUB_EXCHANGE_CONFIG": "/srv/etc"}


@pytest.fixture
def config(monkeypatch):
    """The hub's configuration as JupyterHub loads it, with ENV's parameters."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    loader = PyFileConfigLoader(hub.CONFIG_FILE.name, path=str(hub.CONFIG_FILE.parent))
    return loader.load_config()


def test_parameters_come_from_the_environment_with_the_documented_defaults():
    default = hub.Settings.from_environment({})
    assert (default.port, default.proxy_api_port, default.hub_api_port, default.service_port) \
        == (8000, 8001, 8002, 8003)
    assert str(default.state) == "/srv/convcourse-hub" and default.grader == "convcourse-grader"
    assert default.course.name == COURSE_ID and str(default.exchange) == "/srv/nbgrader/exchange"
    assert default.staff == [] and default.students == ()
    given = hub.Settings.from_environment(ENV)
    assert given.staff == ["ada", "tia", "tom"] and given.students == ("carl", "sofia")
    assert given.service_port == 8103 and given.formgrade_group == f"formgrade-{COURSE_ID}"


def test_the_hub_listens_on_loopback_and_keeps_its_state_out_of_the_course(config):
    assert config.JupyterHub.ip == config.JupyterHub.hub_ip == "127.0.0.1"
    assert config.JupyterHub.port == 8100
    assert config.ConfigurableHTTPProxy.command == [str(hub.PROXY)]
    assert config.JupyterHub.db_url == "sqlite:////srv/hub-state/jupyterhub.sqlite"
    assert config.JupyterHub.cookie_secret_file == "/srv/hub-state/jupyterhub_cookie_secret"


def test_who_may_log_in(config):
    assert config.JupyterHub.authenticator_class == "pam"
    assert config.Authenticator.allowed_users == {"ada", "tom", "tia", "sofia", "carl"}
    assert config.PAMAuthenticator.allowed_groups == {"conv-students"}
    assert config.Authenticator.admin_users == {"root-ish"}


def test_only_instructors_and_assistants_reach_the_formgrader(config):
    (service,) = config.JupyterHub.services
    assert service["name"] == COURSE_ID and service["url"] == "http://127.0.0.1:8103"
    group = f"formgrade-{COURSE_ID}"
    assert config.JupyterHub.load_groups == {group: {"users": ["ada", "tia", "tom"]}}
    (role,) = config.JupyterHub.load_roles
    assert role["groups"] == [group] and "users" not in role
    assert sorted(role["scopes"]) == sorted([f"access:services!service={COURSE_ID}",
                                             "list:services",
                                             f"read:services!service={COURSE_ID}"])


def test_the_formgrader_runs_as_the_grader_in_its_course_copy(config):
    (service,) = config.JupyterHub.services
    assert service["user"] == "convcourse-grader" and service["cwd"] == "/srv/grader/course"
    assert service["command"][0] == f"{hub.VENV_BIN}/jupyterhub-singleuser"
    assert "--ServerApp.root_dir=/srv/grader/course" in service["command"]
    assert service["environment"]["CONVCOURSE_EXCHANGE"] == "/srv/exchange"
    # Not the students' settings: the formgrader's extensions are the course venv's own.
    assert str(hub.USER_JUPYTER_CONFIG) not in service["environment"]["JUPYTER_CONFIG_PATH"]


def test_every_users_server_is_jupyterlab_of_the_course_with_the_students_settings(config):
    assert config.Spawner.cmd == [f"{hub.VENV_BIN}/jupyterhub-singleuser"]
    assert config.Spawner.default_url == "/lab"
    paths = config.Spawner.environment["JUPYTER_CONFIG_PATH"].split(":")
    assert paths == [str(hub.USER_JUPYTER_CONFIG), "/srv/etc"]  # theirs first, the exchange's


def test_the_students_settings_leave_the_assignments_and_validate_only():
    settings = hub.USER_JUPYTER_CONFIG
    disabled = json.loads((settings / "labconfig" / "page_config.json").read_text())
    assert {name for name, off in disabled["disabledExtensions"].items() if off} >= {
        "@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
        "@jupyter/nbgrader:course-list"}
    assert not {"@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment",
                "@jupyter/nbgrader:menu"} & set(disabled["disabledExtensions"])
    (extensions,) = [json.loads(p.read_text())["ServerApp"]["jpserver_extensions"]
                     for p in (settings / "jupyter_server_config.d").glob("*.json")]
    assert extensions == {"nbgrader.server_extensions.formgrader": False,
                          "nbgrader.server_extensions.course_list": False}
    server = json.loads((settings / "jupyter_server_config.json").read_text())
    assert server["KernelSpecManager"]["allowed_kernelspecs"] == ["python3"]


def test_whoever_left_the_graders_is_taken_out_of_the_formgrade_group(tmp_path):
    settings = hub.Settings.from_environment({**ENV, "CONVCOURSE_HUB_STATE": str(tmp_path)})
    assert hub.prune_formgrade_group(settings) == []  # no database yet
    with contextlib.closing(sqlite3.connect(tmp_path / "jupyterhub.sqlite")) as db, db:
        db.executescript(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
            "CREATE TABLE groups (id INTEGER PRIMARY KEY, name TEXT);"
            "CREATE TABLE user_group_map (user_id INTEGER, group_id INTEGER);"
            "INSERT INTO users VALUES (1, 'ada'), (2, 'old-ta'), (3, 'sofia');"
            f"INSERT INTO groups VALUES (1, 'formgrade-{COURSE_ID}'), (2, 'other');"
            "INSERT INTO user_group_map VALUES (1, 1), (2, 1), (2, 2), (3, 2);")
    assert hub.prune_formgrade_group(settings) == ["old-ta"]
    with contextlib.closing(sqlite3.connect(tmp_path / "jupyterhub.sqlite")) as db:
        assert sorted(db.execute("SELECT * FROM user_group_map")) == [(1, 1), (2, 2), (3, 2)]
