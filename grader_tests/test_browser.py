"""In a real browser, a submission's scripts do not run in the formgrader or the feedback.

One submission of 01_multi_input_channels with a correct answer also displays a script tag,
an image whose onerror runs script, a JavaScript output, SVGs with script, and adds a markdown
cell with raw HTML; every one of them would fetch ``/api/contents?probe=<vector>`` from the
Jupyter server. It is autograded with `nbgrader autograde` and `nbgrader generate_feedback`
(the course's config), then JupyterLab with the formgrader serves the course copy and headless
Chromium logs in and opens the submission in the formgrader (its own page, and inside
JupyterLab's Formgrader tab, an iframe that allows scripts and the same origin) and the
feedback. The server records every request it handles: none may carry ``probe=``, and the
student's text must still be on each page.

The test needs Chromium and its driver (`make test` installs them as root) and Selenium.
To see it fail, grade without the sanitizing: CONVCOURSE_BROWSER_EXTRA_CONFIG is appended to
the course copy's nbgrader_config.py, e.g.
``CONVCOURSE_BROWSER_EXTRA_CONFIG='c.SanitizeSubmission.enabled = False
c.HTMLExporter.sanitize_html = False'``. CONVCOURSE_BROWSER_SCREENSHOTS=<folder> keeps
pictures of the three pages there.

A second test stores a notebook that autograde never saw (page_attacks.py: image metadata that
nbconvert writes into the tag unquoted, SVG, style, srcdoc, javascript: and data: links, ...)
and opens its formgrader page and its feedback, made by `nbgrader generate_feedback` without
the notebook-level sanitizing: only the pages' nh3 step (convgrader/pages.py) stands in the
way. To see it fail, switch nh3 off: CONVCOURSE_BROWSER_EXTRA_CONFIG='import convgrader.pages
convgrader.pages.CLEANER = convgrader.pages.NO_CLEANING' (both tests read it).
"""
import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

import page_attacks
from browsers import start_chromium
from convgrader.notebooks import read
from convgrader.sanitize import NOTE
from convgrader.tools import sample_class
from course_copies import SAMPLE_CLASS, copy_course, course_env, nbgrader
from ports import free_ports, stop_process_group

pytestmark = pytest.mark.grading

ASSIGNMENT = "01_multi_input_channels"
STUDENT = "mallory"
NOTE_TEXT = "Mallory's note: the channels are summed after each correlation."

ATTACK_CODE = """\
from IPython.display import HTML, SVG, Javascript, display
display(HTML('<script>fetch("/api/contents?probe=script")</script>'))
display(HTML('<img src=x onerror="fetch(\\'/api/contents?probe=img\\')">'))
display(Javascript('fetch("/api/contents?probe=js")'))
display(HTML('<svg onload="fetch(\\'/api/contents?probe=svghtml\\')"></svg>'))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" onload="fetch(\\'/api/contents?probe=svg\\')">'
            '<script>fetch("/api/contents?probe=svgscript")</script></svg>'))
print("Mallory's code ran")
"""
ATTACK_MARKDOWN = f"""\
{NOTE_TEXT}

<img src=x onerror="fetch('/api/contents?probe=md')">
"""

# Every request the server handles, one JSON line each (method, URI, status).
SERVER_CONFIG = """\
import json
from jupyter_server.log import log_request

def _record(handler):
    with open({requests!r}, "a") as f:
        f.write(json.dumps([handler.request.method, handler.request.uri,
                            handler.get_status()]) + "\\n")
    log_request(handler)

c.ServerApp.tornado_settings = {{"log_function": _record}}
"""


def submission(course):
    """A correct submission that also tries to run script in the grader's browser."""
    release = sample_class.notebook_path(course / "release", ASSIGNMENT)
    answers = sample_class.load_answers(SAMPLE_CLASS / ASSIGNMENT / "notes_code.py")
    nb = sample_class.fill(read(release), answers)
    nb.cells.append(new_code_cell(ATTACK_CODE))
    nb.cells.append(new_markdown_cell(ATTACK_MARKDOWN))
    path = course / "submitted" / STUDENT / ASSIGNMENT / release.name
    path.parent.mkdir(parents=True)
    nbformat.write(nb, str(path))
    return release.stem


class Lab:
    """JupyterLab with the formgrader on the course copy, on loopback with a fixed token.

    With ``user`` (users.User), the server runs as that user, in a clean environment with
    ``env`` added (users.environment); ``workdir`` must then be theirs."""

    def __init__(self, course, workdir, user=None, env=None):
        self.token = secrets.token_hex(16)
        (self.port,) = free_ports()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = workdir / "requests.jsonl"
        self.requests.touch()
        config = workdir / "jupyter_server_config.py"
        config.write_text(SERVER_CONFIG.format(requests=str(self.requests)))
        if user is None:
            env = {**course_env(), **(env or {})}
            start = subprocess.Popen
        else:
            import users
            users.give(user, workdir)
            start = functools.partial(users.popen_as, user)
        env["JUPYTER_RUNTIME_DIR"] = str(workdir / "runtime")
        self.log = workdir / "lab.log"
        with open(self.log, "w") as log:
            self.process = start(
                [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
                 f"--config={config}", "--ServerApp.ip=127.0.0.1",
                 f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                 f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={course}",
                 f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
                 "--LabApp.news_url=None",
                 "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                 "--debug"],
                cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}",
                                            timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"JupyterLab did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.3)

    def seen(self):
        """The URIs of the requests the server has handled so far."""
        return [json.loads(line)[1] for line in self.requests.read_text().splitlines()]

    def settle(self, driver, mark):
        """Wait until a request sent now from the page reached the server, then a moment more:
        the page's own requests, sent before, have arrived by then."""
        driver.execute_script(f"fetch('/api/status?control={mark}')")
        deadline = time.monotonic() + 20
        while not any(f"control={mark}" in uri for uri in self.seen()):
            assert time.monotonic() < deadline, f"the control request {mark} never arrived"
            time.sleep(0.1)
        time.sleep(1)

    def stop(self):
        stop_process_group(self.process, timeout=20)


def wait_for_text(driver, text, timeout=30):
    """The visible text of the current page (or frame) once it contains ``text``."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        body = driver.find_element(By.TAG_NAME, "body").text
        if text in body:
            return body
        assert time.monotonic() < deadline, f"{text!r} not on the page:\n{body[:3000]}"
        time.sleep(0.2)


def scroll_to_note(driver):
    driver.execute_script(
        "const hit = [...document.querySelectorAll('p, pre')]"
        ".find(e => e.textContent.includes(arguments[0]));"
        "if (hit) hit.scrollIntoView({block: 'center'});", NOTE_TEXT[:20])


def stop_and_keep_screenshots(driver, lab, tmp_path, pattern):
    """Quit the browser, stop JupyterLab, and copy the screenshots matching ``pattern`` to
    CONVCOURSE_BROWSER_SCREENSHOTS, when set."""
    if driver is not None:
        driver.quit()
    lab.stop()
    shots = os.environ.get("CONVCOURSE_BROWSER_SCREENSHOTS")
    if shots:
        for png in tmp_path.glob(pattern):
            shutil.copy(png, Path(shots) / png.name)


def test_submission_scripts_do_not_run_in_the_formgrader_or_feedback(chromium, tmp_path):
    from nbgrader.api import Gradebook
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    started = time.monotonic()
    course = copy_course(tmp_path / "course")
    extra = os.environ.get("CONVCOURSE_BROWSER_EXTRA_CONFIG")
    if extra:
        with open(course / "nbgrader_config.py", "a") as f:
            f.write("\n" + extra + "\n")
    nbgrader(course, "generate_assignment", ASSIGNMENT)
    notebook = submission(course)
    nbgrader(course, "autograde", ASSIGNMENT, "--student", STUDENT)
    nbgrader(course, "generate_feedback", ASSIGNMENT, "--student", STUDENT)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        graded = gb.find_submission_notebook(notebook, ASSIGNMENT, STUDENT)
        submission_id = graded.id
        assert graded.score == graded.max_score > 0, "the correct answer lost points"
    # The stored autograded notebook is clean already (other viewers read it too).
    stored = read(course / "autograded" / STUDENT / ASSIGNMENT / f"{notebook}.ipynb")
    mimes = {m for c in stored.cells for o in c.get("outputs", []) for m in o.get("data", {})}
    assert not {"application/javascript", "image/svg+xml"} & mimes or extra
    assert stored.cells[-1].source.startswith(NOTE) or extra
    graded_at = time.monotonic()

    lab = Lab(course, tmp_path)
    driver = None
    try:
        driver = start_chromium(tmp_path)
        wait = WebDriverWait(driver, 60)
        # Log in with the token, as an instructor does.
        driver.get(f"{lab.url}/login")
        driver.find_element(By.ID, "password_input").send_keys(lab.token)
        driver.find_element(By.ID, "login_submit").click()
        wait.until(lambda d: "/login" not in d.current_url)

        # The submission in the formgrader's own page.
        page = f"{lab.url}/formgrader/submissions/{submission_id}/"
        driver.get(page)
        standalone = wait_for_text(driver, NOTE_TEXT)
        assert "Mallory's code ran" in standalone
        lab.settle(driver, "standalone")
        scroll_to_note(driver)
        driver.save_screenshot(str(tmp_path / "formgrader.png"))

        # JupyterLab's Formgrader tab, and the submission inside its iframe.
        driver.get(f"{lab.url}/lab?formgrader=true")
        frame = wait.until(expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, "#formgrader-iframe iframe")))
        driver.switch_to.frame(frame)
        wait_for_text(driver, "Manage Assignments")
        driver.execute_script("window.location.href = arguments[0]", page)
        in_lab = wait_for_text(driver, NOTE_TEXT)
        assert "Mallory's code ran" in in_lab
        lab.settle(driver, "lab")
        scroll_to_note(driver)
        driver.switch_to.default_content()
        driver.save_screenshot(str(tmp_path / "formgrader-in-lab.png"))

        # The feedback, as the server serves it (followed from a page of the server: it
        # refuses a request for a file without a referer).
        feedback = f"feedback/{STUDENT}/{ASSIGNMENT}/{notebook}.html"
        assert (course / feedback).exists()
        driver.execute_script("window.location.href = arguments[0]", f"{lab.url}/files/{feedback}")
        wait_for_text(driver, NOTE_TEXT)
        lab.settle(driver, "feedback")
        scroll_to_note(driver)
        driver.save_screenshot(str(tmp_path / "feedback.png"))
    finally:
        stop_and_keep_screenshots(driver, lab, tmp_path, "*.png")

    probes = [uri for uri in lab.seen() if "probe=" in uri]
    assert not probes, f"the submission's scripts ran in the grader's browser: {probes}"
    print(f"graded in {graded_at - started:.1f} s, browser part {time.monotonic() - graded_at:.1f} s")


def click_the_notebooks_links(driver):
    """Click every link the notebook's content holds (a javascript: address runs only then)."""
    return driver.execute_script(
        "const links = [...document.querySelectorAll('.rendered_html a, .output_area a')];"
        "links.forEach(a => a.click()); return links.length;")


def test_notebook_markup_and_metadata_do_not_run_in_the_formgrader_or_feedback(chromium,
                                                                               tmp_path):
    from nbgrader.api import Gradebook
    from selenium.webdriver.common.by import By

    course = copy_course(tmp_path / "course")
    with open(course / "nbgrader_config.py", "a") as f:
        # Feedback without the notebook-level sanitizing, which would clean this notebook
        f.write("\nc.GenerateFeedback.preprocessors = [p for p in c.GenerateFeedback.preprocessors"
                " if not p.endswith('SanitizeSubmission')]\n")
        f.write("\n" + os.environ.get("CONVCOURSE_BROWSER_EXTRA_CONFIG", "") + "\n")
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db_url) as gb:
        submission_id = page_attacks.add_to_gradebook(gb)
    stored = course / "autograded" / page_attacks.STUDENT / page_attacks.ASSIGNMENT
    stored.mkdir(parents=True)
    nbformat.write(page_attacks.attack_notebook(), str(stored / f"{page_attacks.NOTEBOOK}.ipynb"))
    nbgrader(course, "generate_feedback", page_attacks.ASSIGNMENT)
    feedback = (f"feedback/{page_attacks.STUDENT}/{page_attacks.ASSIGNMENT}/"
                f"{page_attacks.NOTEBOOK}.html")
    assert (course / feedback).exists()

    lab = Lab(course, tmp_path)
    driver = None
    try:
        driver = start_chromium(tmp_path)
        driver.get(f"{lab.url}/login")
        driver.find_element(By.ID, "password_input").send_keys(lab.token)
        driver.find_element(By.ID, "login_submit").click()
        deadline = time.monotonic() + 60
        while "/login" in driver.current_url:
            assert time.monotonic() < deadline, "the login did not go through"
            time.sleep(0.1)

        driver.get(f"{lab.url}/formgrader/submissions/{submission_id}/")
        wait_for_text(driver, page_attacks.ANSWER_TEXT)
        assert "Mallory's code ran" in wait_for_text(driver, page_attacks.ANSWER_TEXT)
        assert click_the_notebooks_links(driver) > 0
        # nbgrader's controls still work: a comment and a score typed in are saved
        comment = driver.find_element(By.ID, "answer-comment")
        comment.send_keys("Summed, as it should be.")
        score = driver.find_element(By.ID, "answer")
        score.send_keys("1")
        comment.click()
        lab.settle(driver, "formgrader")
        driver.save_screenshot(str(tmp_path / "attack-formgrader.png"))

        driver.execute_script("window.location.href = arguments[0]", f"{lab.url}/files/{feedback}")
        wait_for_text(driver, page_attacks.ANSWER_TEXT)
        assert driver.title == page_attacks.NOTEBOOK
        assert click_the_notebooks_links(driver) > 0
        lab.settle(driver, "feedback")
        driver.save_screenshot(str(tmp_path / "attack-feedback.png"))
    finally:
        stop_and_keep_screenshots(driver, lab, tmp_path, "attack-*.png")

    probes = sorted({uri.split("probe=")[1] for uri in lab.seen() if "probe=" in uri})
    assert not probes, f"the notebook's markup ran or loaded in the grader's browser: {probes}"
    with Gradebook(db_url) as gb:
        args = ("answer", page_attacks.NOTEBOOK, page_attacks.ASSIGNMENT, page_attacks.STUDENT)
        assert gb.find_comment(*args).manual_comment == "Summed, as it should be."
        assert gb.find_grade(*args).manual_score == 1


def test_figure_cells_open_collapsed_with_the_figure_shown(chromium, tmp_path):
    """A source notebook in JupyterLab: its first figure cell's source is collapsed
    (``jupyter.source_hidden``) to JupyterLab's placeholder, its figure is shown, and one
    click on the placeholder shows the drawing code. CONVCOURSE_BROWSER_SCREENSHOTS keeps
    the two pictures."""
    from selenium.webdriver.common.by import By

    course = copy_course(tmp_path / "course")
    path = sample_class.notebook_path(course / "source", ASSIGNMENT)
    hidden = next((c for c in read(path).cells
                   if c.metadata.get("jupyter", {}).get("source_hidden")), None)
    assert hidden is not None, f"{path.name} has no cell with jupyter.source_hidden"
    lab = Lab(course, tmp_path)
    driver = None
    try:
        driver = start_chromium(tmp_path)
        driver.get(f"{lab.url}/lab/tree/{path.relative_to(course)}?token={lab.token}")
        find = ("return [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')]"
                ".find(c => c.querySelector('.jp-InputPlaceholder'))")
        deadline = time.monotonic() + 60
        while (cell := driver.execute_script(find)) is None or \
                not cell.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img"):
            assert time.monotonic() < deadline, "no collapsed cell with its figure rendered"
            time.sleep(0.2)
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", cell)
        placeholder = cell.find_element(By.CSS_SELECTOR, ".jp-InputPlaceholder")
        figure = cell.find_element(By.CSS_SELECTOR, ".jp-OutputArea-output img")
        deadline = time.monotonic() + 10
        while not driver.execute_script("return arguments[0].complete && "
                                        "arguments[0].naturalWidth > 0", figure):
            assert time.monotonic() < deadline, "the figure did not load"
            time.sleep(0.1)
        assert placeholder.is_displayed() and figure.is_displayed()
        assert hidden.source.splitlines()[0] in placeholder.text  # JupyterLab's preview
        assert not [e for e in cell.find_elements(By.CSS_SELECTOR, ".jp-InputArea-editor")
                    if e.is_displayed()], "the drawing code shows before any click"
        driver.save_screenshot(str(tmp_path / "collapsed-figure.png"))

        placeholder.click()
        deadline = time.monotonic() + 10
        while not (editors := [e for e in cell.find_elements(By.CSS_SELECTOR,
                                                             ".jp-InputArea-editor")
                               if e.is_displayed()]):
            assert time.monotonic() < deadline, "one click did not show the drawing code"
            time.sleep(0.1)
        assert hidden.source.splitlines()[-1].strip() in editors[0].text
        assert figure.is_displayed()
        driver.save_screenshot(str(tmp_path / "collapsed-figure-expanded.png"))
    finally:
        stop_and_keep_screenshots(driver, lab, tmp_path, "collapsed-*.png")
