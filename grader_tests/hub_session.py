"""The course's JupyterHub (deploy/hub/jupyterhub_config.py) started for a test, as root, on
free loopback ports, over an exchange flow's course and exchange (exchange_flow.Flow).

    hub = Hub(flow, teaching_assistants=[ta.name], folder=...)   # convgrader.hub.setup, then
    hub.login(driver, name, next_path)                           # jupyterhub, in its session
    hub.stop()

The hub's own configuration file is used as it is; the test's file loads it and changes only
what a test needs: each student's server works in the flow's folder of their home (its root
folder, and nbgrader's cache there, flow.env), the formgrader gets the tests' short cell
time limits, and every server carries the test session's mark (conftest checks that no process
of the tests outlives them). The formgrader runs as the flow's instructor in the flow's
course, so that account is the hub's grader account. Passwords are set with chpasswd for the
users who log in (``password``) and locked again by ``stop``.
"""
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from convgrader import hub
from course_copies import SESSION_MARK, TEST_TIME_LIMITS
from ports import free_ports, stop_process_group

PROXY = hub.PROXY

TEST_CONFIG = """\
c = get_config()  # noqa: F821
load_subconfig({config!r})  # noqa: F821 (the course's hub, as `make hub` runs it)

SERVER_ENV = {server_env!r}  # user -> what their server's environment adds
NOTEBOOK_DIRS = {notebook_dirs!r}


def _in_the_test_folders(spawner):
    name = spawner.user.name
    spawner.environment = {{**spawner.environment, **SERVER_ENV.get(name, {{}})}}
    if name in NOTEBOOK_DIRS:  # the server starts there: not notebook_dir, since nbgrader's
        # Assignment List fetches into the folder the server runs in (its Exchange's
        # assignment_dir "."), the home where JupyterHub starts it
        spawner.cmd = ["/usr/bin/env", f"--chdir={{NOTEBOOK_DIRS[name]}}", *spawner.cmd]


c.Spawner.pre_spawn_hook = _in_the_test_folders
c.JupyterHub.services[0]["environment"].update({service_env!r})
"""


def proxy_missing():
    """Why the hub cannot start here (its proxy is not installed), or None."""
    if os.access(PROXY, os.X_OK):
        return None
    return f"{PROXY} missing (`make hub-proxy` installs it with npm)"


class Hub:
    """JupyterHub of the course over ``flow``, started now; ``url`` is its address."""

    def __init__(self, flow, teaching_assistants, folder):
        self.flow, self.folder = flow, Path(folder)
        self.mark = f"hub-{secrets.token_hex(6)}"
        port, proxy_api, api, service = free_ports(4)
        self.url = f"http://127.0.0.1:{port}"
        students = list(flow.students)
        self.env = {
            "CONVCOURSE_HUB_PORT": str(port), "CONVCOURSE_HUB_PROXY_API_PORT": str(proxy_api),
            "CONVCOURSE_HUB_API_PORT": str(api), "CONVCOURSE_HUB_SERVICE_PORT": str(service),
            "CONVCOURSE_HUB_STATE": str(flow.base / "hub-state"),
            "CONVCOURSE_HUB_GRADER": flow.instructor.name,
            "CONVCOURSE_HUB_COURSE": str(flow.course),
            "CONVCOURSE_EXCHANGE": str(flow.root),
            "CONVCOURSE_HUB_EXCHANGE_CONFIG": str(flow.config_dir),
            "CONVCOURSE_HUB_GRADERS": " ".join(teaching_assistants),
            "CONVCOURSE_HUB_STUDENTS": " ".join(students),
        }
        self.settings = hub.Settings.from_environment(self.env)
        self.passwords = {}
        self.setup_notes = hub.setup(self.settings)  # as `make hub` does, before the hub
        marks = {SESSION_MARK: os.environ.get(SESSION_MARK, ""), "CONVCOURSE_HUB_TEST": self.mark}
        server_env = {name: {**{k: v for k, v in flow.env(name).items()
                                if k != "JUPYTER_CONFIG_PATH"}, **marks} for name in students}
        config = self.folder / "jupyterhub_config.py"
        config.write_text(TEST_CONFIG.format(
            config=str(hub.CONFIG_FILE), server_env=server_env,
            notebook_dirs={name: str(flow.work(name)) for name in students},
            service_env={**TEST_TIME_LIMITS, **marks}))
        self.log = self.folder / "hub.log"
        env = {**os.environ, **self.env, "CONVCOURSE_HUB_TEST": self.mark}
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [str(hub.VENV_BIN / "jupyterhub"), "-f", str(config)], cwd=self.settings.state,
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def wait_until_up(self, timeout=90):
        """Once the hub answers through its proxy and the formgrader is routed."""
        deadline = time.monotonic() + timeout
        while "JupyterHub is now running" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"JupyterHub did not start:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.3)
        with urllib.request.urlopen(f"{self.url}/hub/login", timeout=10) as response:
            assert response.status == 200

    def password(self, name):
        """A new password for ``name``, set now with chpasswd (as an administrator would)."""
        if name not in self.passwords:
            self.passwords[name] = secrets.token_urlsafe(12)
            subprocess.run(["chpasswd"], input=f"{name}:{self.passwords[name]}\n", text=True,
                           check=True)
        return self.passwords[name]

    def login(self, driver, name, next_path=None):
        """Log ``name`` in on the hub's own login page (PAM), going on to ``next_path``."""
        from selenium.webdriver.common.by import By
        driver.get(f"{self.url}/hub/login" + (f"?next={next_path}" if next_path else ""))
        driver.find_element(By.ID, "username_input").send_keys(name)
        driver.find_element(By.ID, "password_input").send_keys(self.password(name))
        driver.find_element(By.ID, "login_submit").click()

    def server(self, name):
        """The address of ``name``'s own server."""
        return f"{self.url}/user/{name}"

    def formgrader_path(self):
        return f"/services/{self.settings.course_id}/formgrader"

    def formgrader(self):
        return f"{self.url}{self.formgrader_path()}"

    def processes(self):
        """The processes this hub started (they carry its mark), the hub's own excepted."""
        found = []
        for process in psutil.process_iter(["pid", "username", "cmdline"]):
            try:
                if process.pid != self.process.pid and \
                        process.environ().get("CONVCOURSE_HUB_TEST") == self.mark:
                    found.append(process)
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
        return found

    def stop(self):
        """Stop the hub (it stops the servers, the formgrader and the proxy), then whatever of
        it is left; lock the passwords set."""
        stop_process_group(self.process, timeout=60)
        left = self.processes()
        for process in left:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(left, timeout=10)
        for name in self.passwords:
            subprocess.run(["usermod", "--lock", name], capture_output=True)
        if left:
            print(f"the hub left {len(left)} processes running, killed: "
                  + "; ".join(" ".join(p.info["cmdline"] or [])[:100] for p in left),
                  file=sys.stderr)
