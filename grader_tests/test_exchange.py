"""nbgrader's exchange on one machine: an instructor and three students, each their own Linux
user, release, fetch, submit, collect, grade, feedback (grader_tests/exchange_flow.py).

Run as root (CI), the test creates the students (users.other_users) and runs every nbgrader
command as the user who runs it in a course, in a temporary copy of the course with a
temporary exchange folder set up as `sudo make exchange` sets up the machine's. Run by anyone
else, it is skipped: only root can act as several users.

Asserted: each student's exact score in the gradebook (`nbgrader export`) with the roster's
names; each student fetches one feedback page, their own, with their own score; no student
can list the exchange's inbound/ or feedback/ folders, nor read another's submission (its
notebook, its submission_secret.txt) or feedback page even by its real path, while each reads
their own. Stock nbgrader's submit and release_feedback leave both readable to anyone who
has the path: to see this test fail, CONVCOURSE_EXCHANGE_EXTRA_CONFIG is appended to the
course's and the students' nbgrader_config.py, e.g.
``CONVCOURSE_EXCHANGE_EXTRA_CONFIG='c.ExchangeFactory.submit = "nbgrader.exchange.default.submit.ExchangeSubmit"
c.ExchangeFactory.release_feedback = "nbgrader.exchange.default.release_feedback.ExchangeReleaseFeedback"'``.

In the browser (headless Chromium with Selenium, as test_browser.py): one student
(BROWSER_STUDENT) does their part in JupyterLab, run as them on loopback with a fixed token
and their config, instead of the CLI: the Assignment List shows the released assignment,
Fetch, Validate refuses a wrong answer with the check's expected-versus-got message, the
notes' answer opened in the notebook runs (Run All) and passes Validate, Submit. After
grading, the instructor's JupyterLab in the course: the formgrader lists the assignment as
released and the submissions and students with their names and scores, and the instructor's
Assignment List shows no exchange error (nor does either server's log). A picture of each
step is saved in CONVCOURSE_BROWSER_SCREENSHOTS, else in pytest's temporary folder (printed).
Without Chromium the browser tests are skipped (failed under CI) and that student uses the CLI.
"""
import os
import re
import stat
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import exchange_flow
import users
from convcourse.exchange import COURSE_ID, SUBMISSION_FILE_MODE
from exchange_flow import ASSIGNMENT, STUDENTS
from test_browser import CHROMEDRIVER, CHROMIUM, Lab, start_chromium

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the browser part says so (browser_missing)
    pass

pytestmark = pytest.mark.grading


# One student does their part in JupyterLab, in headless Chromium, instead of the CLI.
BROWSER_STUDENT = STUDENTS[0].name  # the notes' answer, after a wrong one Validate refuses
WRONG_ANSWER = "flipped_kernel"


def browser_missing():
    """Why the browser part cannot run here, or None."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    return f"{', '.join(missing)} missing (`make chromium` installs Chromium)" if missing else None


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
    try:
        flow.release()
        in_cli = [s.name for s in STUDENTS if flow.browser_missing or s.name != BROWSER_STUDENT]
        browser_dir = tmp_path_factory.mktemp("exchange-browser")
        # The browser student works while the others use the CLI (to save time, as in a class).
        with ThreadPoolExecutor(1) as pool:
            if not flow.browser_missing:
                student = pool.submit(run_browser, student_in_browser, flow, BROWSER_STUDENT,
                                      browser_dir, screenshots)
            flow.fetch(in_cli)
            flow.submit(in_cli)
            if not flow.browser_missing:
                flow.browser["student"] = student.result()
        if flow.browser.get("student") and flow.browser["student"].error:
            # The rest of the flow goes on without the browser.
            if not (flow.work(BROWSER_STUDENT) / ASSIGNMENT).exists():
                flow.fetch([BROWSER_STUDENT])
            if BROWSER_STUDENT not in flow.submissions():
                flow.submit([BROWSER_STUDENT])
        flow.collected, flow.graded, flow.released = flow.grade()
        with ThreadPoolExecutor(1) as pool:
            if not flow.browser_missing:
                instructor = pool.submit(run_browser, instructor_in_browser, flow,
                                         flow.instructor.name, browser_dir, screenshots)
            flow.fetch_feedback()
            if not flow.browser_missing:
                flow.browser["instructor"] = instructor.result()
        print(f"\nexchange flow: {time.monotonic() - started:.1f} s; steps:\n" +
              "\n".join(f"  {s.seconds:5.1f} s  {s}" for s in flow.steps) +
              "".join(f"\n  {b.seconds:5.1f} s  [{b.user}] in the browser"
                      for b in flow.browser.values()))
        yield flow
    finally:
        flow.close()


@dataclass
class Browser:
    """What one user's browser part saw (step -> visible text), and how it ended."""
    user: str
    seen: dict = field(default_factory=dict)
    error: str = None
    log: str = ""  # the JupyterLab server's log
    seconds: float = 0.0


def run_browser(part, flow, name, workdir, shots):
    """JupyterLab as user ``name`` (their folder, their environment), headless Chromium
    logged in with the token, then ``part``; its error is recorded, not raised."""
    result, started = Browser(name), time.monotonic()
    user = flow.user(name)
    (workdir / name).mkdir()
    with users.temporary_folder(user, prefix="convcourse-lab-") as labdir:
        lab = driver = None
        try:
            lab = Lab(flow.cwd(name), labdir, user=user, env=flow.env(name))
            driver = start_chromium(workdir / name)
            driver.get(f"{lab.url}/login")
            driver.find_element(By.ID, "password_input").send_keys(lab.token)
            driver.find_element(By.ID, "login_submit").click()
            WebDriverWait(driver, 60).until(lambda d: "/login" not in d.current_url)
            part(flow, name, lab, driver, result, lambda step: shot(driver, shots, name, step))
        except Exception:
            result.error = traceback.format_exc()
            if driver is not None:
                shot(driver, shots, name, "error")
        finally:
            if driver is not None:
                driver.quit()
            if lab is not None:
                lab.stop()
                result.log = lab.log.read_text()
    result.seconds = time.monotonic() - started
    return result


def shot(driver, folder, name, step):
    # JupyterLab's question about its news, in a corner of every page: answered "No".
    driver.execute_script(
        "for (const b of document.querySelectorAll('.Toastify button'))"
        "  if (b.textContent.trim() === 'No') b.click();")
    driver.save_screenshot(str(folder / f"{name}-{step}.png"))


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


def student_in_browser(flow, name, lab, driver, result, shot):
    """The Assignment List shows the released assignment; Fetch; Validate refuses a wrong
    answer with the check's expected and got; the notes' answer, opened, runs (Run All) and
    passes Validate; Submit."""
    driver.get(f"{lab.url}/lab")
    visible(driver, ".lm-MenuBar", "Nbgrader")
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
    while True:  # every code cell's prompt shows its execution count
        prompts = driver.execute_script(
            "return [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
            ".jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim())")
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


def instructor_in_browser(flow, name, lab, driver, result, shot):
    """The formgrader (in the course copy) lists the assignment as released, the submissions
    with the students' names and scores; the instructor's Assignment List has no error."""
    driver.get(f"{lab.url}/formgrader")
    result.seen["assignments"] = visible(driver, "body", "released")
    shot("1-formgrader-assignments")
    driver.get(f"{lab.url}/formgrader/manage_submissions/{ASSIGNMENT}")
    result.seen["submissions"] = visible(driver, "body", STUDENTS[-1].last_name)
    shot("2-formgrader-submissions")
    driver.get(f"{lab.url}/formgrader/manage_students")
    result.seen["students"] = visible(driver, "body", STUDENTS[-1].last_name)
    shot("3-formgrader-students")
    driver.get(f"{lab.url}/lab")
    visible(driver, ".lm-MenuBar", "Nbgrader")
    menu(driver, "Nbgrader", "Assignment List")
    result.seen["assignment list"] = visible(driver, "#released_assignments_list", ASSIGNMENT)
    shot("4-instructor-assignment-list")


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
    """What the browser part saw, failing with its error and server log if it failed."""
    if flow.browser_missing:
        if os.environ.get("CI"):
            pytest.fail(f"{flow.browser_missing}: `make test` installs Chromium as root")
        pytest.skip(flow.browser_missing)
    result = flow.browser[part]
    assert result.error is None, f"{result.error}\nserver log:\n{result.log[-3000:]}"
    return result


def test_a_student_fetches_validates_and_submits_in_jupyterlab(flow):
    seen = browser_part(flow, "student").seen
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


def test_the_formgrader_lists_the_released_assignment_and_each_students_name_and_score(flow):
    seen = browser_part(flow, "instructor").seen
    (row,) = [line for line in seen["assignments"].splitlines() if ASSIGNMENT in line]
    assert "released" in row and "draft" not in row, row
    for page in ("submissions", "students"):
        lines = seen[page].splitlines()
        for student in STUDENTS:
            (row,) = [line for line in lines if f"{student.last_name}, {student.first_name}" in line]
            assert "None" not in row and re.search(
                rf"\b{student.score:g}(\.0+)? / 3(\.0+)?\b", row), (page, row)


def test_jupyterlab_shows_no_exchange_error_once_the_exchange_exists(flow):
    """What students saw today in the instructor's `make lab`: "exchange directory does not
    exist", "Error fetching courses!", "Unwritable directory" and ExchangeError in the log."""
    browser_part(flow, "student"), browser_part(flow, "instructor")
    for result in flow.browser.values():
        for error in ("Unwritable directory", "ExchangeError", "does not exist",
                      "Error fetching courses"):
            assert error not in result.log, f"{result.user}'s JupyterLab log: {error}"
        for text in result.seen.values():
            assert "Error fetching" not in str(text) and "does not exist" not in str(text)
    assert ASSIGNMENT in flow.browser["instructor"].seen["assignment list"]
