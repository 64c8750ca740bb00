"""nbgrader configuration of the course "Convolutional networks: the basics".

nbgrader reads this file from the directory it runs in: run its commands from here.
"""
import os

c = get_config()  # noqa: F821 (injected by traitlets when nbgrader loads this file)

COURSE_ROOT = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = "conv-basics"
c.CourseDirectory.root = COURSE_ROOT

# The gradebook: SQLite beside this file by default. Set CONVCOURSE_DB_URL to use another
# database without editing this file, e.g. postgresql://grader@localhost/conv_basics.
c.CourseDirectory.db_url = os.environ.get(
    "CONVCOURSE_DB_URL", "sqlite:///" + os.path.join(COURSE_ROOT, "gradebook.db"))

# nbgrader's exchange: the folder of this machine where assignments are released, students
# submit and feedback is returned (`sudo make exchange` creates it once, with the machine-wide
# nbgrader_config.py students' nbgrader reads). CONVCOURSE_EXCHANGE names another folder.
# Stock nbgrader leaves submissions and feedback there readable by any student who learns
# their names; the course's exchange classes make each readable by its own student and the
# instructors only (convcourse/exchange.py, convgrader/exchange.py).
import convcourse.exchange  # noqa: E402
c.Exchange.root = convcourse.exchange.exchange_root()
c.ExchangeFactory.submit = "convcourse.exchange.PrivateSubmit"
c.ExchangeFactory.release_feedback = "convgrader.exchange.PrivateReleaseFeedback"
# Collect takes a submission's student from its owner and its time from the kernel (the
# newest ctime), never from its name or timestamp.txt, and refuses links, special files,
# others' files and oversized folders with a line each (convgrader/collect.py; the refusals
# are kept in collect_refusals.csv). The limits are c.SubmissionLimits's below.
c.ExchangeFactory.collect = "convgrader.collect.TrustedCollect"

# Students' folders may carry checkpoints and caches: never copy or grade them.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# Submission folders are checked before nbgrader copies or reads them (convcourse/
# submissions.py): links, devices, FIFOs, sockets, oversized folders and malformed notebooks
# are refused with a one-line reason, and every other student is graded. nbgrader offers no
# hook for this, so its autograde app and API are pointed at a subclass of its Autograde.
import convgrader.submissions  # noqa: E402
convgrader.submissions.use_checked_autograde()
c.SubmissionLimits.max_bytes = 50 * 2 ** 20
c.SubmissionLimits.max_entries = 200
c.SubmissionLimits.max_depth = 5
c.SubmissionLimits.max_notebook_bytes = 20 * 2 ** 20

# Per-cell time limit while autograding. A fresh `from d2l import torch as d2l` takes about
# 5 s here, so stay well above it; a looping submission is interrupted after this long and
# the cell counts as failed. CONVCOURSE_CELL_TIMEOUT overrides it (the tests use less).
c.Execute.timeout = int(os.environ.get("CONVCOURSE_CELL_TIMEOUT", "60"))
c.Execute.interrupt_on_timeout = True

# Student code runs in a sandbox (convgrader/kernels/sandbox.py): bubblewrap namespaces with no
# network and no view of the course, cgroup limits, kernels forked warm inside it. Without
# bubblewrap grading refuses to start, unless you allow unsandboxed grading here.
c.Execute.kernel_name = "convcourse-sandbox"
# The sandbox is for grading only. A student's Validate (`nbgrader validate`, and JupyterLab's
# Validate button, whose server extension reads this file too) runs nbgrader's Execute as a
# child of its Validator: there, "" makes nbclient start the notebook's own kernelspec
# (python3), as the student runs it, with nothing left running afterwards. Configured under
# Validator rather than moving the sandbox to c.GuardedExecute: traitlets gives a subclass's
# section priority over its parent's, so that would silently override every
# `Execute.kernel_name` given elsewhere (the batch grader's --unsandboxed and --cold, the
# benchmark's stock run), while a section nested under the parent wins only here.
c.Validator.Execute.kernel_name = ""
# Validate cuts every line of a failure at this width (nbgrader's default, 90, cut the checks'
# "expected ..., got ..." off). The same in the kit's and the exchange's student config.
c.Validator.width = 300
c.SandboxedProvisioner.memory_limit = os.environ.get("CONVCOURSE_MEMORY_LIMIT", "2G")
c.SandboxedProvisioner.max_processes = 512
c.SandboxedProvisioner.allow_unsandboxed = False
# A kernel client that starts on a kernel's greeting instead of 0.2 s of silence (warm.py),
# and bounds what a kernel sends before parsing it (grading.py, outputs.py): a frame over
# 64 MiB drops the connection; a message over 4 MiB, with over 10,000 lists and objects or
# nested over 64 levels, or unreadable, is refused and becomes a one-line note in its cell.
c.AsyncKernelManager.client_class = "convgrader.grading.BoundedKernelClient"
c.BoundedSession.max_message_bytes = 4 * 2 ** 20
# Output kept per cell and per notebook, counted in bytes as messages came over the wire
# (data, metadata, transient, JSON structure) and in messages; outputs are rebuilt from an
# allow-list of types and fields, and execution counts are the grader's (outputs.py).
c.GuardedExecute.max_output_bytes = 1_000_000
c.GuardedExecute.max_notebook_output_bytes = 5_000_000
c.GuardedExecute.max_output_messages = 2_000
c.GuardedExecute.max_notebook_output_messages = 10_000
# Grading runs the figure cells (an error in them still shows) but does not render their
# pictures: a PNG costs about 0.2 s of CPU, a sixth of grading a notebook, and the pictures
# are the course's, the same for every student. Feedback shows matplotlib's "<Figure size
# ...>" in their place. CONVCOURSE_GRADE_FIGURES=1 renders them. Validate gets these arguments
# too: it shows no outputs, only which tests pass, so it is faster without the pictures.
if os.environ.get("CONVCOURSE_GRADE_FIGURES") != "1":
    c.Execute.extra_arguments = ["--InlineBackend.figure_formats=[]"]
# Wall time for a whole notebook; cells after it fail.
c.GuardedExecute.notebook_timeout = int(os.environ.get("CONVCOURSE_NOTEBOOK_TIMEOUT", "600"))
# Seconds an interrupted kernel has to answer again before its notebook stops.
c.GuardedExecute.interrupt_grace = int(os.environ.get("CONVCOURSE_INTERRUPT_GRACE", "10"))

# Release notebooks: nbgrader's standard stub in place of each solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Grading that holds against broken and hostile submissions (convgrader/grading.py says how).
# Sanitizing: cells get back the roles the gradebook records, deleted tests are put back.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "convgrader.grading.RestoreCellRoles",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.OverwriteCells.add_missing_cells = True
# Executing: a dead or stuck kernel fails every later cell; test cells run in the grader's
# own process, calling the student's functions in the kernel (convgrader/judge.py).
c.Autograde.autograde_preprocessors = [
    "convgrader.grading.GuardedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    # No script of the submission reaches a grader's browser (convgrader/sanitize.py).
    "convgrader.sanitize.SanitizeSubmission",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Feedback (feedback/<student>/<assignment>/*.html) shows grades, the visible tests and why
# a check failed; hidden tests' source is cleared, and so are tracebacks that would quote it.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "convgrader.feedback.ClearKnownHiddenTests",  # only the gradebook's test cells
    "convgrader.grading.HideTracebacks",
    "convgrader.sanitize.SanitizeSubmission",
]
# Feedback pages are files students open alone, often offline: their formulas are MathML made
# with the page (no script; stock pages load MathJax from a CDN), their CSS is the rules they
# use, and long output lines wrap (convgrader/feedback.py, convgrader/mathml.py).
# Feedback only: the formgrader builds its own exporter.
c.GenerateFeedback.exporter_class = "convgrader.feedback.FeedbackExporter"
# Feedback and the formgrader (which reads this file too) export with nbconvert's own
# sanitizing as well: no JavaScript output, HTML outputs cleaned by bleach.
c.HTMLExporter.sanitize_html = True
# And the pages themselves pass nh3 (Ammonia) last, with an allow-list (convgrader/pages.py):
# nbconvert's templates write some of a notebook's metadata into attributes unquoted. The
# formgrader builds nbconvert's HTMLExporter with nbgrader's "formgrade" template: the course's
# template file extends it, each cell's HTML through nh3, nbgrader's controls as they are.
# Feedback (FeedbackExporter) keeps nbgrader's "feedback" template: all of the finished page
# after its head passes nh3.
import convgrader.pages  # noqa: E402
c.HTMLExporter.extra_template_basedirs = [convgrader.pages.NBGRADER_TEMPLATES,
                                          convgrader.pages.TEMPLATES]
c.HTMLExporter.template_file = convgrader.pages.FORMGRADE_TEMPLATE
c.HTMLExporter.filters = convgrader.pages.FILTERS
c.FeedbackExporter.template_file = "index.html.j2"  # the formgrader's file is not for it
