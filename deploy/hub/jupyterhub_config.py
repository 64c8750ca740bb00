"""JupyterHub for the course "Convolutional networks: the basics" (`sudo make hub`).

Run by `python -m convgrader.hub run`, which first makes the accounts and folders named
below (convgrader/hub.py says what, and ``Settings`` which environment variable sets each
parameter; the Makefile's HUB_PORT, INSTRUCTORS, GRADERS, HUB_STUDENTS, HUB_STUDENTS_GROUP,
HUB_ADMINS, GRADER_ACCOUNT set them). Modelled on nbgrader's demo "one class, multiple
graders" (demos/demo_one_class_multiple_graders in jupyter/nbgrader).
"""
import os
import secrets

from convgrader import hub

c = get_config()  # noqa: F821
settings = hub.Settings.from_environment()
VENV_BIN = str(hub.VENV_BIN)

# -- where: 127.0.0.1 only (put a TLS reverse proxy in front to serve a class) ------------
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = settings.port
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = settings.hub_api_port
c.ConfigurableHTTPProxy.command = [str(hub.PROXY)]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
c.ConfigurableHTTPProxy.auth_token = secrets.token_hex(32)  # the hub starts the proxy anew
c.ConfigurableHTTPProxy.pid_file = str(settings.state / "jupyterhub-proxy.pid")
# The hub's state, root's (mode 700): never in the course's folder.
c.JupyterHub.db_url = f"sqlite:///{settings.state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(settings.state / "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every server and the formgrader
# A newer jupyterhub (requirements.txt) upgrades the database's schema at start, after a copy.
c.JupyterHub.upgrade_db = True

# -- who logs in: Linux accounts, through PAM (JupyterHub's default authenticator) --------
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set(settings.students) | set(settings.staff)
if settings.students_group:
    c.PAMAuthenticator.allowed_groups = {settings.students_group}
c.Authenticator.admin_users = set(settings.admins)

# -- each user's own server: JupyterLab of the course's environment, as that user ---------
c.Spawner.cmd = [f"{VENV_BIN}/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.environment = {
    # The Assignments tab and Validate, none of the instructor's tools; then the exchange's
    # nbgrader_config.py (`make exchange`: the exchange folder, the course id, PrivateSubmit).
    "JUPYTER_CONFIG_PATH": os.pathsep.join([str(hub.USER_JUPYTER_CONFIG),
                                            str(settings.exchange_config)]),
    "CONVCOURSE_EXCHANGE": str(settings.exchange),
    "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
    "MPLBACKEND": "Agg",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}
c.Spawner.args = ["--LabApp.news_url=None",
                  "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
# A server imports JupyterLab and nbgrader before it answers: generous on a busy machine.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120

# -- the formgrader: one server for the course, run as the grader account -----------------
# Its folder is the grader's copy of the course: the formgrader reads the course's
# nbgrader_config.py there, so its Autograde runs student code in the course's sandbox
# (GuardedExecute, kernel convcourse-sandbox), and its collect is TrustedCollect.
c.JupyterHub.services = [{
    "name": settings.course_id,
    "url": settings.service_url,
    "command": [f"{VENV_BIN}/jupyterhub-singleuser", f"--ServerApp.root_dir={settings.course}",
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
    "user": settings.grader,
    "cwd": str(settings.course),
    "environment": {
        "JUPYTERHUB_DEFAULT_URL": "/formgrader",
        "JUPYTER_CONFIG_PATH": str(settings.exchange_config),
        "CONVCOURSE_EXCHANGE": str(settings.exchange),
        # nbgrader runs alembic from PATH when it creates the gradebook.
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    },
    "oauth_no_confirm": True,
}]

# The instructors and teaching assistants, and no one else (nor students), reach it.
c.JupyterHub.load_groups = {settings.formgrade_group: {"users": settings.staff}}
c.JupyterHub.load_roles = [{
    "name": settings.formgrade_group,
    "groups": [settings.formgrade_group],
    "scopes": [
        f"access:services!service={settings.course_id}",
        "list:services",  # the hub's Services menu lists it
        f"read:services!service={settings.course_id}",
    ],
}]
