"""nbgrader's exchange on one machine, through the course's JupyterHub: an instructor's
formgrader, a teaching assistant and three students, each their own Linux user, release,
fetch, submit, collect, grade, feedback (grader_tests/exchange_flow.py, hub_session.py).

Run as root (CI), the test creates the students and the assistant (users.other_users) and
runs every nbgrader command as the user who runs it in a course, in a temporary copy of the
course with a temporary exchange folder set up as `sudo make exchange` sets up the machine's.
Run by anyone else, it is skipped: only root can act as several users.

Asserted: each student's exact score in the gradebook (`nbgrader export`) with the roster's
names; each student fetches one feedback page, their own, with their own score; no student
can list the exchange's inbound/ or feedback/ folders, nor read another's submission (its
notebook, its submission_secret.txt) or feedback page even by its real path, while each reads
their own; a submission one student makes for another (`nbgrader submit --student=<her>`) is
refused at collect, and hers is collected. Stock nbgrader's submit and release_feedback
leave both readable to anyone who has the path: to see this test fail,
CONVCOURSE_EXCHANGE_EXTRA_CONFIG is appended to the course's and the students' nbgrader_config.py, e.g.
``CONVCOURSE_EXCHANGE_EXTRA_CONFIG='c.ExchangeFactory.submit = "nbgrader.exchange.default.submit.ExchangeSubmit"
c.ExchangeFactory.release_feedback = "nbgrader.exchange.default.release_feedback.ExchangeReleaseFeedback"'``.

In the browser (headless Chromium with Selenium, as test_browser.py), through the course's
JupyterHub (`make hub`'s configuration, started by hub_session.Hub, users logging in with
their Linux passwords on the hub's login page): one student (BROWSER_STUDENT) does their part
in their own JupyterLab instead of the CLI: the Assignment List shows the released assignment,
Fetch, Validate refuses a wrong answer with the check's expected-versus-got message, the notes'
answer opened in the notebook runs (Run All) and passes Validate, Submit; later Fetch Feedback
and the feedback page opened in JupyterLab. Another student (OTHER_STUDENT) opens the
formgrader's address and is refused by the hub (403). The teaching assistant (ASSISTANT)
opens the formgrader through the hub, which runs it as the instructor's account in the
course: the assignment is released; Collect (the refusal of the forged submission in its
log), Autograde for each student (in the course's sandbox: its fork server runs under the
formgrader), the submissions and students with their names and scores, Generate and Release
Feedback. No server's log has an exchange error. A picture of each step is saved in
CONVCOURSE_BROWSER_SCREENSHOTS, else in pytest's temporary folder (printed). Without Chromium
or the hub's proxy (`make hub-proxy`) the browser tests are skipped (failed under CI) and
everything runs from the command line.
"""
import os
import re
import stat
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

import browsers
import exchange_flow
import users
from convcourse.exchange import COURSE_ID, SUBMISSION_FILE_MODE
from exchange_flow import ASSIGNMENT, STUDENTS
from hub_session import Hub, proxy_missing

try:
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the browser part says so (browser_missing)
    pass

pytestmark = pytest.mark.grading


# One student does their part in JupyterLab on the hub, in headless Chromium, instead of the
# CLI; another submits in her name (CLI) and tries the formgrader (browser).
BROWSER_STUDENT = STUDENTS[0].name  # the notes' answer, after a wrong one Validate refuses
OTHER_STUDENT = STUDENTS[1].name
ASSISTANT = "convcourse-ta"  # a teaching assistant: the formgrader, through the hub
WRONG_ANSWER = "flipped_kernel"
AS_THEMSELVES = "a student submits only as themselves"


def browser_missing():
    """Why the browser part cannot run here, or None."""
    missing = browsers.missing()
    if missing:
        return f"{', '.join(missing)} missing (`make chromium` installs Chromium)"
    return proxy_missing()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = os.environ.get("CONVCOURSE_BROWSER_SCREENSHOTS")
    folder = Path(folder) if folder else tmp_path_factory.mktemp("exchange-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the exchange's browser steps: {folder}")
    return folder


@pytest.fixture(scope="module")
def flow(screenshots, tmp_path_factory):
    started = time.monotonic()
    flow = exchange_flow.start()
    extra = os.environ.get("CONVCOURSE_EXCHANGE_EXTRA_CONFIG")
    if extra:
        for config in (flow.course / "nbgrader_config.py", flow.config_dir / "nbgrader_config.py"):
            with open(config, "a") as f:
                f.write("\n" + extra + "\n")
    flow.browser_missing = browser_missing()
    flow.browser = {}  # part -> Browser (what each browser part saw, and its error)
    hub, sessions = None, {}
    try:
        browser_dir = tmp_path_factory.mktemp("exchange-browser")
        if not flow.browser_missing:
            users.other_users([ASSISTANT])
            hub = flow.hub = Hub(flow, [ASSISTANT], browser_dir)  # starts as the instructor releases
        flow.release()
        in_cli = [s.name for s in STUDENTS if hub is None or s.name != BROWSER_STUDENT]
        # The browser student works while the others use the CLI (to save time, as in a class).
        with ThreadPoolExecutor(1) as pool:
            if hub:
                hub.wait_until_up()
                for name in (BROWSER_STUDENT, OTHER_STUDENT, ASSISTANT):
                    sessions[name] = Session(hub, name, browser_dir, screenshots)
                student = pool.submit(sessions[BROWSER_STUDENT].run, student_works_in_the_hub,
                                      flow)
            flow.fetch(in_cli)
            flow.submit(in_cli)
            flow.forged = flow.submit_as(OTHER_STUDENT, BROWSER_STUDENT)
            flow.instructor_runs("nbgrader", "db", "student", "import", flow.roster().name)
            if hub:
                flow.browser["other student"] = sessions[OTHER_STUDENT].run(
                    student_opens_the_formgrader, flow)
                sessions[OTHER_STUDENT].quit()
                flow.browser["student"] = student.result()
        if flow.browser.get("student") and flow.browser["student"].error:
            # The rest of the flow goes on without the browser.
            if not (flow.work(BROWSER_STUDENT) / ASSIGNMENT).exists():
                flow.fetch([BROWSER_STUDENT])
            if BROWSER_STUDENT not in flow.submissions():
                flow.submit([BROWSER_STUDENT])
        if hub:
            assistant = flow.browser["assistant"] = sessions[ASSISTANT].run(
                assistant_grades_in_the_formgrader, flow)
            sessions[ASSISTANT].quit()
        if hub and not assistant.error:
            flow.collected = SimpleNamespace(output=assistant.seen["collect"])
            flow.graded = SimpleNamespace(output="\n".join(assistant.seen["autograde"].values()))
            flow.instructor_runs("nbgrader", "export", "--to", "grades.csv")
        else:
            flow.collected, flow.graded, flow.released = flow.grade()
            if hub and "collect" in assistant.seen:  # the formgrader's collect came first
                flow.collected = SimpleNamespace(output=assistant.seen["collect"])
        with ThreadPoolExecutor(1) as pool:
            if hub and not flow.browser["student"].error:
                feedback = pool.submit(sessions[BROWSER_STUDENT].run, student_reads_feedback,
                                       flow)
                flow.fetch_feedback(in_cli)
                flow.browser["feedback"] = feedback.result()
                if flow.browser["feedback"].error:
                    flow.fetch_feedback([BROWSER_STUDENT])
            else:
                flow.fetch_feedback()
        print(f"\nexchange flow: {time.monotonic() - started:.1f} s; steps:\n" +
              "\n".join(f"  {s.seconds:5.1f} s  {s}" for s in flow.steps) +
              "".join(f"\n  {b.seconds:5.1f} s  [{b.user}] in the browser: {part}"
                      for part, b in flow.browser.items()))
        yield flow
    finally:
        for session in sessions.values():
            session.quit()
        if hub:
            hub.stop()
        flow.close()


@dataclass
class Browser:
    """What one user's browser part saw (step -> visible text), and how it ended."""
    user: str
    seen: dict = field(default_factory=dict)
    error: str = None
    log: str = ""  # the hub's log: its own, the proxy's, every server's and the formgrader's
    seconds: float = 0.0


class Session:
    """One user's headless Chromium on the hub: ``run`` a part, its error recorded."""

    def __init__(self, hub, name, workdir, shots):
        self.hub, self.name, self.shots = hub, name, shots
        (workdir / name).mkdir()
        self.driver = browsers.start_chromium(workdir / name)

    def run(self, part, flow):
        result, started = Browser(self.name), time.monotonic()
        try:
            part(flow, self, result)
        except Exception:
            result.error = traceback.format_exc()
            self.shot("error")
        result.seconds = time.monotonic() - started
        result.log = self.hub.log.read_text()
        return result

    def shot(self, step):
        # JupyterLab's question about its news, in a corner of the page: answered "No".
        self.driver.execute_script(
            "for (const b of document.querySelectorAll('.Toastify button'))"
            "  if (b.textContent.trim() === 'No') b.click();")
        self.driver.save_screenshot(str(self.shots / f"{self.name}-{step}.png"))

    def quit(self):
        if self.driver is not None:
            self.driver.quit()
            self.driver = None


def visible(driver, selector, text, timeout=60):
    """The visible text of the element ``selector`` once it contains ``text``."""
    deadline = time.monotonic() + timeout
    while True:
        shown = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, selector))
        if text in shown:
            return shown
        assert time.monotonic() < deadline, f"{text!r} not in {selector}: {shown[:2000]!r}"
        time.sleep(0.2)


def click(driver, selector, text=None, timeout=60):
    """Click the first displayed element ``selector`` (whose text is ``text``)."""
    deadline = time.monotonic() + timeout
    while True:
        for element in driver.find_elements(By.CSS_SELECTOR, selector):
            if element.is_displayed() and (text is None or element.text.strip() == text):
                element.click()
                return
        assert time.monotonic() < deadline, f"no {selector} {text or ''} to click"
        time.sleep(0.2)


def menu(driver, label, item):
    """Run a command from JupyterLab's menu bar: menu ``label``, its item ``item``."""
    click(driver, ".lm-MenuBar-item", label)
    click(driver, ".lm-Menu-item .lm-Menu-itemLabel", item)


def dialog(driver, text, timeout=120):
    """The text of JupyterLab's dialog once it shows ``text`` (Validate runs a kernel)."""
    return visible(driver, ".jp-Dialog", text, timeout)


def close_dialog(driver):
    click(driver, ".jp-Dialog .jp-Dialog-button")
    WebDriverWait(driver, 20).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, ".jp-Dialog"))


def fetch(driver, url, what):
    """GET ``url`` from the page, as JupyterLab does (its XSRF cookie as a header): the
    response's status, or the names of its JSON object."""
    return driver.execute_async_script(
        "const [url, what, done] = arguments;"
        "const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || '';"
        "fetch(url, {headers: {'X-XSRFToken': decodeURIComponent(xsrf)}})"
        "  .then(r => what === 'status' ? done(r.status) : r.json().then(j => done("
        "    Object.keys(j.kernelspecs || j))))"
        "  .catch(e => done(String(e)));", url, what)


def student_works_in_the_hub(flow, session, result):
    """Log in on the hub (PAM), which starts the student's JupyterLab; the Assignment List
    shows the released assignment; Fetch; Validate refuses a wrong answer with the check's
    expected and got; the notes' answer, opened, runs (Run All) and passes Validate; Submit."""
    driver, name, shot = session.driver, session.name, session.shot
    session.hub.login(driver, name)
    server = session.hub.server(name)
    WebDriverWait(driver, 150).until(lambda d: d.current_url.startswith(f"{server}/lab"))
    result.seen["server"] = driver.current_url
    result.seen["menu"] = visible(driver, ".lm-MenuBar", "Nbgrader")
    # What the student's server offers: the notebook's kernel only, no formgrader.
    result.seen["kernelspecs"] = fetch(driver, f"{server}/api/kernelspecs", "json")
    result.seen["own formgrader"] = fetch(driver, f"{server}/formgrader", "status")
    menu(driver, "Nbgrader", "Assignment List")
    result.seen["released"] = visible(driver, "#released_assignments_list", ASSIGNMENT)
    shot("1-released")
    click(driver, "#released_assignments_list button", "Fetch")
    result.seen["fetched"] = visible(driver, "#fetched_assignments_list", ASSIGNMENT)
    shot("2-fetched")

    flow.answer(name, WRONG_ANSWER)  # as the student types it: a flipped kernel
    click(driver, "#fetched_assignments_list .assignment-notebooks-link")
    click(driver, "#fetched_assignments_list button", "Validate")
    result.seen["validate wrong"] = dialog(driver, "has the wrong values")
    driver.execute_script(  # the check's message in view
        "const hit = [...document.querySelectorAll('.jp-Dialog pre')]"
        ".find(e => e.textContent.includes('has the wrong values'));"
        "if (hit) hit.scrollIntoView({block: 'end'});")
    shot("3-validate-wrong-answer")
    close_dialog(driver)

    flow.answer(name)  # the notes' answer
    notebook = exchange_flow.sample_class.notebook_path(flow.work(name), ASSIGNMENT)
    nested = "#fetched_assignments_list .nested_list_item .item_name a"
    if not any(e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, nested)):
        click(driver, "#fetched_assignments_list .assignment-notebooks-link")
    click(driver, nested, notebook.stem)
    visible(driver, ".jp-NotebookPanel", "corr2d_multi_in")
    menu(driver, "Run", "Run All Cells")
    deadline = time.monotonic() + 180
    while True:  # every code cell's prompt shows its execution count (a figure's cell has
        # its code hidden, and no prompt: the saved notebook's counts are checked after)
        prompts = driver.execute_script(  # a cell JupyterLab has not drawn yet, into view
            "const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
            ".jp-CodeCell')].filter(c => !c.querySelector('.jp-InputPlaceholder'));"
            "const prompts = cells.map(c => (c.querySelector('.jp-InputPrompt') || "
            "  {textContent: ''}).textContent.trim());"
            "const blank = cells.find((c, i) => prompts[i] === '');"
            "if (blank) blank.scrollIntoView({block: 'center'});"
            "return prompts;")
        if prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
            break
        assert time.monotonic() < deadline, f"Run All did not finish: {prompts}"
        time.sleep(0.5)
    result.seen["prompts"] = prompts
    driver.execute_script(  # the answer and its check's output in view
        "const hit = [...document.querySelectorAll('.jp-OutputArea-output')]"
        ".find(e => e.textContent.includes('The worked example is right'));"
        "if (hit) hit.scrollIntoView({block: 'center'});")
    shot("4-run-all")
    click(driver, ".jp-NotebookPanel:not(.lm-mod-hidden) .validate-button")
    result.seen["validate notes"] = dialog(driver, "Success! Your notebook passes all the tests.")
    shot("5-validate-notes-answer")
    close_dialog(driver)
    result.seen["saved"] = exchange_flow.read(notebook)  # Validate saved it first

    click(driver, ".lm-TabBar-tab", "Assignments")
    click(driver, "#fetched_assignments_list button", "Submit")
    result.seen["submitted"] = visible(driver, "#submitted_assignments_list", ASSIGNMENT)
    shot("6-submitted")


def student_opens_the_formgrader(flow, session, result):
    """A student logs in and goes to the formgrader's address: the hub refuses (403)."""
    session.hub.login(session.driver, session.name, session.hub.formgrader_path())
    result.seen["formgrader"] = visible(session.driver, "body", "403")
    result.seen["url"] = session.driver.current_url
    session.shot("1-formgrader-refused")


def formgrader_action(driver, row, selector, timeout=180):
    """Click ``selector`` in the formgrader's table row that holds ``row``; the text of the
    dialog that answers (nbgrader's log of the step), once closed."""
    deadline = time.monotonic() + 60
    while not driver.execute_script(
            "const tr = [...document.querySelectorAll('tbody tr')]"
            "  .find(r => r.textContent.includes(arguments[0]));"
            "const link = tr && tr.querySelector(arguments[1]);"
            "if (link) link.click(); return !!link;", row, selector):
        assert time.monotonic() < deadline, f"no {selector} in the row of {row}"
        time.sleep(0.2)
    deadline = time.monotonic() + timeout
    while True:  # the whole text, once Bootstrap has shown the dialog ("in")
        shown = driver.execute_script(
            "const m = document.querySelector('.modal.in .modal-content');"
            "return m && m.querySelector('.modal-title').textContent.trim() ? m.textContent : '';")
        if shown:
            return shown
        assert time.monotonic() < deadline, f"{selector} of {row}: no answer"
        time.sleep(0.3)


def close_modal(driver, timeout=30):
    """OK, until the dialog is gone (a click during Bootstrap's fade-in is lost)."""
    deadline = time.monotonic() + timeout
    while driver.find_elements(By.CSS_SELECTOR, ".modal"):
        driver.execute_script(
            "const ok = document.querySelector('.modal.in .modal-footer button');"
            "if (ok) ok.click();")
        assert time.monotonic() < deadline, "the formgrader's dialog does not close"
        time.sleep(0.5)


def formgrader_sandbox(flow):
    """The command lines of the sandbox's processes (bubblewrap, the warm fork server) that
    run under the hub's formgrader."""
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "jupyterhub-singleuser" in cmdline and f"--ServerApp.root_dir={flow.course}" in cmdline:
            return [" ".join(child.cmdline()) for child in process.children(recursive=True)
                    if "bwrap" in child.name() or "convgrader.kernels.inside.server" in " ".join(child.cmdline())]
    return []


def assistant_grades_in_the_formgrader(flow, session, result):
    """The teaching assistant logs in on the hub and opens the formgrader: the assignment is
    released; Collect; Autograde each submission; the submissions with the students' names
    and scores; Generate and Release Feedback; the students."""
    driver, shot, hub = session.driver, session.shot, session.hub
    hub.login(driver, session.name, hub.formgrader_path())
    result.seen["assignments"] = visible(driver, "tbody", "released", timeout=120)
    result.seen["url"] = driver.current_url
    shot("1-formgrader-assignments")
    result.seen["collect"] = formgrader_action(driver, ASSIGNMENT, ".collect a")
    shot("2-collected")
    close_modal(driver)

    driver.get(f"{hub.formgrader()}/manage_submissions/{ASSIGNMENT}")
    visible(driver, "tbody", STUDENTS[-1].name)
    result.seen["autograde"] = {}
    for student in STUDENTS:
        result.seen["autograde"][student.name] = formgrader_action(
            driver, student.name, ".autograde a")
        if student == STUDENTS[0]:
            result.seen["sandbox"] = formgrader_sandbox(flow)
            shot("3-autograded")
        close_modal(driver)
    driver.get(f"{hub.formgrader()}/manage_submissions/{ASSIGNMENT}")
    result.seen["submissions"] = visible(driver, "tbody", STUDENTS[-1].last_name)
    visible(driver, "tbody", "/ 3")
    result.seen["submissions"] = visible(driver, "tbody", STUDENTS[-1].last_name)
    shot("4-formgrader-submissions")

    driver.get(f"{hub.formgrader()}/manage_assignments")
    visible(driver, "tbody", "released")
    result.seen["generate feedback"] = formgrader_action(driver, ASSIGNMENT, ".generate-feedback a")
    close_modal(driver)
    result.seen["release feedback"] = formgrader_action(driver, ASSIGNMENT, ".release-feedback a")
    shot("5-feedback-released")
    close_modal(driver)
    driver.get(f"{hub.formgrader()}/manage_students")
    result.seen["students"] = visible(driver, "tbody", STUDENTS[-1].last_name)
    shot("6-formgrader-students")


def student_reads_feedback(flow, session, result):
    """Back in the Assignments tab: Fetch Feedback, "view feedback", the page opened."""
    driver, shot = session.driver, session.shot
    click(driver, ".lm-TabBar-tab", "Assignments")
    click(driver, "#refresh_assignments_list")
    click(driver, "#submitted_assignments_list button", "Fetch Feedback")
    click(driver, "#submitted_assignments_list .nested_list_item a", "(view feedback)")
    html = f"{exchange_flow.sample_class.notebook_path(flow.work(session.name), ASSIGNMENT).stem}.html"
    item = WebDriverWait(driver, 60).until(lambda d: next(
        (e for e in d.find_elements(By.CSS_SELECTOR, ".jp-DirListing-item")
         if e.is_displayed() and html in e.text), None))
    shot("7-feedback-fetched")
    ActionChains(driver).double_click(item).perform()
    frame = WebDriverWait(driver, 60).until(lambda d: next(
        (e for e in d.find_elements(By.CSS_SELECTOR, ".jp-HTMLViewer iframe")
         if e.is_displayed()), None))
    driver.switch_to.frame(frame)
    try:
        result.seen["feedback"] = visible(driver, "body", "Score:")
        driver.execute_script(
            "const hit = [...document.querySelectorAll('h1, h2, p, div')]"
            ".find(e => e.textContent.includes('The worked example is right'));"
            "if (hit) hit.scrollIntoView({block: 'center'});")
    finally:
        driver.switch_to.default_content()
    shot("8-feedback-page")
def test_the_exchange_is_set_up_as_nbgrader_asks(flow):
    assert stat.S_IMODE(flow.root.stat().st_mode) == 0o1777  # world-writable, sticky
    # The course's folder, made by the administrator for the instructor, is the instructor's.
    course = (flow.root / COURSE_ID).stat()
    assert (course.st_uid, stat.S_IMODE(course.st_mode)) == (flow.instructor.uid, 0o755)
    config = (flow.config_dir / "nbgrader_config.py").read_text()
    assert f"{COURSE_ID!r}" in config and f"{str(flow.root)!r}" in config
    # Students' nbgrader found the course and the exchange with that file alone.
    for step in flow.steps:
        if step.command[:2] == ["nbgrader", "fetch_assignment"]:
            assert f"Fetched as: {COURSE_ID} {ASSIGNMENT}" in step.output, step.output


def test_every_student_fetched_the_assignment_into_their_folder(flow):
    for student in STUDENTS:
        notebooks = list((flow.work(student.name) / ASSIGNMENT).glob("*.ipynb"))
        assert len(notebooks) == 1
        assert notebooks[0].stat().st_uid == flow.students[student.name][1].uid


def test_collect_takes_each_submission_from_its_own_student(flow):
    assert "Collecting submission" in flow.collected.output
    assert "cheating attempt" not in flow.collected.output, flow.collected.output
    assert sorted(p.name for p in (flow.course / "submitted").iterdir()) == \
        sorted(s.name for s in STUDENTS)


def test_each_student_gets_their_exact_score_under_their_name(flow):
    grades = flow.grades()
    assert sorted(grades) == sorted(s.name for s in STUDENTS)
    for student in STUDENTS:
        row = grades[student.name]
        assert (row["first_name"], row["last_name"]) == (student.first_name, student.last_name)
        assert (float(row["score"]), float(row["max_score"])) == (student.score, 3.0), row
    assert "FAILED" not in flow.graded.output, flow.graded.output


def test_each_student_fetches_their_own_feedback_with_their_own_score(flow):
    for student in STUDENTS:
        (page,) = flow.feedback_files(student.name)
        assert page.stat().st_uid == flow.students[student.name][1].uid
        html = page.read_text()
        assert f"(Score: {student.score} / 3.0)" in html
        for other in STUDENTS:
            if other.score != student.score:
                assert f"(Score: {other.score} / 3.0)" not in html


def test_no_student_lists_or_reads_another_students_work(flow):
    inbound, feedback = flow.root / COURSE_ID / "inbound", flow.root / COURSE_ID / "feedback"
    submissions, pages = flow.submissions(), flow.released_feedback()
    assert sorted(submissions) == sorted(pages) == sorted(s.name for s in STUDENTS)
    notebook = next((flow.course / "release" / ASSIGNMENT).glob("*.ipynb")).name
    released = flow.root / COURSE_ID / "outbound" / ASSIGNMENT / notebook
    for student in STUDENTS:
        own = submissions[student.name]
        mine = [own / notebook, own / "submission_secret.txt", pages[student.name], released]
        others = [inbound, feedback]
        for other in STUDENTS:
            if other != student:
                theirs = submissions[other.name]
                others += [theirs, theirs / notebook, theirs / "submission_secret.txt",
                           pages[other.name], flow.work(other.name)]
        seen = flow.probe(student.name, mine + others)
        # What is theirs they read (the probe works), and the released assignment.
        assert [seen[str(p)] for p in mine] == ["ok"] * len(mine), seen
        reached = {p: seen[str(p)] for p in others if seen[str(p)] != "PermissionError"}
        assert not reached, f"{student.name} reached others' work: {reached}"


def test_submissions_and_feedback_in_the_exchange_are_private(flow):
    """The modes behind the probes above: stock nbgrader leaves 777 folders and 644 files."""
    for name, folder in flow.submissions().items():
        assert stat.S_IMODE(folder.stat().st_mode) & 0o007 == 0, folder
        for path in folder.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == SUBMISSION_FILE_MODE, path
    for name, page in flow.released_feedback().items():
        assert stat.S_IMODE(page.stat().st_mode) & 0o007 == 0, page




def browser_part(flow, part):
    """What the browser part saw, failing with its error and the hub's log if it failed."""
    if flow.browser_missing:
        if os.environ.get("CI"):
            pytest.fail(f"{flow.browser_missing}: `make test` installs Chromium and the hub's "
                        "proxy as root")
        pytest.skip(flow.browser_missing)
    result = flow.browser[part]
    assert result.error is None, f"{result.error}\nhub's log:\n{result.log[-4000:]}"
    return result


def test_a_student_logs_in_on_the_hub_fetches_validates_and_submits(flow):
    seen = browser_part(flow, "student").seen
    assert f"/user/{BROWSER_STUDENT}/lab" in seen["server"]
    assert "Error" not in seen["released"] + seen["fetched"], seen
    # Validate refuses the wrong answer with the check's own expected-versus-got message.
    assert re.search(r"corr2d_multi_in\(X, K\) on the worked example has the wrong values: "
                     r"\d+ of \d+ elements differ; at index \(\d+, \d+\) expected -?[\d.]+, "
                     r"got -?[\d.]+", seen["validate wrong"]), seen["validate wrong"]
    assert "Success!" not in seen["validate wrong"]
    assert "Success! Your notebook passes all the tests." in seen["validate notes"]
    assert "failed" not in seen["validate notes"]
    # Run All ran every code cell without an error, and the notebook was saved so.
    cells = [c for c in seen["saved"].cells if c.cell_type == "code"]
    assert all(c.execution_count for c in cells), [c.execution_count for c in cells]
    assert not [o for c in cells for o in c.outputs if o.output_type == "error"]
    # Submit: in the exchange as theirs, and graded as the notes' answer.
    assert ASSIGNMENT in seen["submitted"]
    submission = flow.submissions()[BROWSER_STUDENT]
    assert submission.stat().st_uid == flow.students[BROWSER_STUDENT][1].uid
    assert float(flow.grades()[BROWSER_STUDENT]["score"]) == 3.0


def test_a_students_server_has_none_of_the_instructors_tools(flow):
    seen = browser_part(flow, "student").seen
    assert seen["kernelspecs"] == ["python3"]  # not the grader's sandboxed or warm kernels
    assert seen["own formgrader"] == 404


def test_a_student_is_refused_the_formgrader_by_the_hub(flow):
    seen = browser_part(flow, "other student").seen
    assert "403 : You do not have permission to access JupyterHub service " \
        f"{COURSE_ID}" in seen["formgrader"], seen["formgrader"]
    assert "/hub/api/oauth2/authorize" in seen["url"]  # the hub's page, not the formgrader's
    log = flow.browser["other student"].log
    assert re.search(rf"403 GET /hub/api/oauth2/authorize\?\S+ \({OTHER_STUDENT}@", log)


def test_a_submission_in_another_students_name_is_refused_at_collect(flow):
    """`nbgrader submit --student=<sofia>`, run by carl (users.run_as): refused by the
    trusted collect, whichever way it ran (the formgrader's Collect or the CLI's)."""
    assert flow.forged.returncode == 0, flow.forged.output
    entries = {os.lstat(p).st_uid: p.name for p in (flow.root / COURSE_ID / "inbound").iterdir()
               if p.name.startswith(f"{BROWSER_STUDENT}+")}
    forged = entries[flow.students[OTHER_STUDENT][1].uid]
    reason = f"it is named for {BROWSER_STUDENT}, but {OTHER_STUDENT} made it: {AS_THEMSELVES}"
    assert f"{OTHER_STUDENT}/{ASSIGNMENT}: {forged}: {reason}" in flow.collected.output, \
        flow.collected.output
    from convgrader.collect import read_refusals
    rows = [(r["entry"], r["owner"], r["named"]) for r in read_refusals(flow.course)]
    assert rows == [(forged, OTHER_STUDENT, BROWSER_STUDENT)]
    # Hers is her own work, graded as the notes' answer (carl's is a flipped kernel).
    assert float(flow.grades()[BROWSER_STUDENT]["score"]) == 3.0


def test_the_assistant_grades_in_the_formgrader_through_the_hub_in_the_sandbox(flow):
    seen = browser_part(flow, "assistant").seen
    assert seen["url"].startswith(f"{flow.hub.url}/services/{COURSE_ID}/formgrader"), seen["url"]
    assert "Successfully collected" in seen["collect"], seen["collect"]
    for name, text in seen["autograde"].items():
        assert f"Successfully autograded '{ASSIGNMENT}' for student '{name}'" in text, text
    # The formgrader's Autograde ran student code in the course's sandbox: bubblewrap and the
    # warm fork server run under it (stock nbgrader would start a plain ipykernel).
    assert any("bwrap" in c for c in seen["sandbox"]), seen["sandbox"]
    assert any("convgrader.kernels.inside.server serve" in c and "--sandboxed" in c for c in seen["sandbox"])
    assert "Successfully generated feedback" in seen["generate feedback"]
    assert "Successfully released feedback" in seen["release feedback"]


def test_the_formgrader_lists_the_released_assignment_and_each_students_name_and_score(flow):
    seen = browser_part(flow, "assistant").seen
    (row,) = [line for line in seen["assignments"].splitlines() if ASSIGNMENT in line]
    assert "released" in row and "draft" not in row, row
    for page in ("submissions", "students"):
        lines = seen[page].splitlines()
        for student in STUDENTS:
            (row,) = [line for line in lines if f"{student.last_name}, {student.first_name}" in line]
            assert "None" not in row and re.search(
                rf"\b{student.score:g}(\.0+)? / 3(\.0+)?\b", row), (page, row)


def test_a_student_reads_their_feedback_in_the_hub(flow):
    seen = browser_part(flow, "feedback").seen
    assert "(Score: 3.0 / 3.0)" in seen["feedback"], seen["feedback"][:2000]


def test_no_server_on_the_hub_shows_an_exchange_error(flow):
    """What students saw in the instructor's `make lab` before the exchange existed:
    "exchange directory does not exist", "Error fetching courses!", "Unwritable directory"
    and ExchangeError in the log."""
    for part in ("student", "assistant", "feedback"):
        browser_part(flow, part)
    log = flow.hub.log.read_text()
    for error in ("Unwritable directory", "ExchangeError", "directory does not exist",
                  "Error fetching courses", "Traceback (most recent call last)"):
        assert error not in log, f"the hub's log: {error}"
    for result in flow.browser.values():
        for text in result.seen.values():
            assert "Error fetching" not in str(text) and "does not exist" not in str(text)
