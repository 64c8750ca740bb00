"""Kernels that flood the grader, run through the real GuardedExecute; the grader's cost.

Each attack is code put before the notes' (correct) answer of 01_multi_input_channels, so
every attacked notebook must still earn the answer's full points (3.0). Some use
IPython's own display functions; others send raw ZeroMQ frames signed with the kernel's
session key, as any kernel can (nesting a million lists deep, which json cannot even
write).

    python grader_tests/output_floods.py [ATTACK ...]

grades the honest notebook and each attack, each in a fresh process, and prints the grading
process's peak RSS (``ru_maxrss``, the grader only: kernels run in the sandbox), its time,
the points and the size of the graded notebook.
"""
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from course_copies import COURSE_ROOT, SAMPLE_CLASS, TEST_TIME_LIMITS  # noqa: E402

ASSIGNMENT = "01_multi_input_channels"
FULL_POINTS = 3.0

# Sends frames as the kernel's own messages would go, but with any bytes in them.
RAW = """\
def send_raw(msg_type, content, metadata=b"{}", header=None, sign=True):
    import json
    kernel = get_ipython().kernel
    session = kernel.session
    head = json.dumps(header or session.msg_header(msg_type), default=str).encode()
    parent = json.dumps(kernel.get_parent()["header"], default=str).encode()
    frames = [head, parent, metadata, content]
    kernel.iopub_socket.send_multipart(
        [b"<IDS|MSG>", session.sign(frames) if sign else b"0" * 64, *frames])
"""

ATTACKS = {
    "honest": "",
    # The red team's: five displays whose metadata holds 2,000,000 empty lists each.
    "metadata_lists": """\
from IPython.display import publish_display_data
for _ in range(5):
    publish_display_data({"text/plain": "x"}, metadata={"m": [[] for _ in range(2_000_000)]})
""",
    # Many small messages: each is cheap, together they are many outputs.
    "many_small_displays": """\
from IPython.display import publish_display_data
for i in range(50_000):
    publish_display_data({"text/plain": str(i)}, metadata={"image/png": {"width": [[]]}})
""",
    # A million lists deep: json.loads raises RecursionError on it.
    "deep_nesting": RAW + """\
deep = b"[" * 1_000_000 + b"]" * 1_000_000
for _ in range(20):
    send_raw("display_data", b'{"data": {"text/plain": "x"}, "metadata": {"m": ' + deep + b"}}")
""",
    # A transient field the notebook never stores, full of structure and text.
    "huge_transient": """\
from IPython.display import publish_display_data
for _ in range(20):
    publish_display_data({"text/plain": "x"}, transient={
        "display_id": "d" * 1_000_000, "junk": [[] for _ in range(1_000_000)]})
""",
    # Updates of one display, each with a large payload and metadata.
    "display_updates": """\
from IPython.display import display
handle = display("start", display_id=True)
for i in range(200):
    handle.update({"text/plain": "u" * 500_000}, raw=True,
                  metadata={"m": [[] for _ in range(100_000)]})
""",
    # Frames a reader must not choke on: no delimiter, a bad signature, invalid JSON,
    # fields of the wrong types, an unknown message type.
    "malformed": RAW + """\
get_ipython().kernel.iopub_socket.send_multipart([b"no delimiter", b"{}"])
send_raw("display_data", b'{"data": {"text/plain": "x"}, "metadata": {}}', sign=False)
send_raw("display_data", b'{"data": ')
send_raw("display_data", b'{"data": ["text/plain"], "metadata": 7, "transient": "d"}')
send_raw("stream", b'{"name": {"a": 1}, "text": ["x", 1]}')
send_raw("error", b'{"ename": 1, "evalue": null, "traceback": "tb"}')
send_raw("status", b'{"execution_state": ["idle"]}')
send_raw("surprise", b'{"anything": [1, 2, {"x": "y"}]}')
send_raw("display_data", b'{"data": {"text/plain": "x", "image/png": "\\\\" onerror=\\\\"x"},'
                         b' "metadata": {"image/png": {"width": "1 onerror=alert(1)"}}}')
send_raw("clear_output", b'{"wait": {"a": [1]}}')  # last: it clears the notes before it
""",
    # One message of forty 50 MB frames, one buffer sent without copying: ZeroMQ's
    # MAXMSGSIZE limits each frame, and a multipart message is buffered whole.
    "multi_frame": """\
import json
kernel = get_ipython().kernel
session = kernel.session
big = b"z" * 50_000_000
head = json.dumps(session.msg_header("display_data"), default=str).encode()
parent = json.dumps(kernel.get_parent()["header"], default=str).encode()
frames = [head, parent, b"{}", b'{"data": {"text/plain": "x"}, "metadata": {}}']
kernel.iopub_socket.send_multipart([b"<IDS|MSG>", session.sign(frames), *frames] + [big] * 40,
                                   copy=False)
""",
    # A string execution count, in execute_input, execute_result and execute_reply.
    "forged_execution_count": """\
session = get_ipython().kernel.session
send = session.send

def forged(stream, msg_or_type, content=None, *args, **kwargs):
    content = msg_or_type["content"] if isinstance(msg_or_type, dict) else content
    if isinstance(content, dict) and "execution_count" in content:
        content["execution_count"] = "1; forged"
    return send(stream, msg_or_type, content, *args, **kwargs)

session.send = forged
"this very output is an execute_result with it"
""",
    "forged_execution_count_raw": RAW + """\
send_raw("execute_result", b'{"data": {"text/plain": "7"}, "metadata": {},'
                           b' "execution_count": {"forged": [1]}}')
send_raw("execute_input", b'{"code": "x", "execution_count": "forged"}')
""",
}


def notebook(attack):
    """The source notebook of 01 (hidden tests included) answered with the notes' code,
    ``ATTACKS[attack]`` run first in the answer cell."""
    from convgrader.notebooks import read
    from convgrader.tools import sample_class
    source = read(sample_class.notebook_path(sample_class.COURSE_SOURCE, ASSIGNMENT))
    edits = sample_class.load_answers(SAMPLE_CLASS / ASSIGNMENT / "notes_code.py")
    for edit in edits:
        edit.body = edit.body + "\n" + ATTACKS[attack]
    return sample_class.fill(source, edits)


def one_cell_each(attacks, shrink=True):
    """The notes' answer of 01, then one cell per attack (its loops shortened)."""
    from nbformat.v4 import new_code_cell
    nb = notebook("honest")
    answer = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get(
        "grade_id") == "corr2d_multi_in")
    for offset, attack in enumerate(attacks, start=1):
        code = ATTACKS[attack]
        if shrink:
            code = code.replace("range(20)", "range(3)").replace("range(200)", "range(20)") \
                .replace("range(5)", "range(2)")
        nb.cells.insert(answer + offset, new_code_cell(code, metadata={"attack": attack}))
    return nb


def executor(**limits):
    """GuardedExecute as the course configures it (sandboxed kernel, bounded client), with
    the tests' time limits."""
    from convgrader.course import load_config
    from convgrader.grading import GuardedExecute
    os.environ.update(TEST_TIME_LIMITS)
    config = load_config(COURSE_ROOT)
    return GuardedExecute(config=config, **limits)


def grade(nb, folder, **limits):
    """``nb`` executed and judged as autograde does, sanitized; (points, notebook's bytes)."""
    import nbformat
    from nbgrader.utils import determine_grade

    from convgrader.notebooks import is_test
    from convgrader.sanitize import SanitizeSubmission
    executor(**limits).preprocess(nb, {"metadata": {"path": str(folder)}})
    nb, _ = SanitizeSubmission().preprocess(nb, {})
    nbformat.validate(nb)
    points = sum(determine_grade(cell)[0] for cell in nb.cells if is_test(cell))
    return points, len(nbformat.writes(nb))


def _measure(attacks):
    """Grade each attack in turn in this process; print the figures of each as JSON (peak
    RSS is the process's so far: an attack after the honest notebook shows what it adds)."""
    import tempfile
    from grading_kernels import stop_grading_servers
    for attack in attacks:
        nb = notebook(attack)
        start = time.monotonic()
        with tempfile.TemporaryDirectory() as folder:
            points, size = grade(nb, folder)
        print(json.dumps({
            "attack": attack, "points": points, "notebook_bytes": size,
            "seconds": round(time.monotonic() - start, 1),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}),
            flush=True)
    stop_grading_servers()


def measure(*attacks, timeout=300):
    """The figures of grading ``attacks`` one after the other in a fresh Python process."""
    # A session of its own: on a time-out, its sandbox and kernels (which hold its output
    # pipes) end with it, instead of keeping communicate() waiting.
    process = subprocess.Popen([sys.executable, __file__, "--in-one-process", *attacks],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if process.returncode or len(lines) < len(attacks):
        raise RuntimeError(f"{attacks}: {stdout[-2000:]}\n{stderr[-4000:]}")
    return [json.loads(line) for line in lines]


def main(argv):
    if argv[:1] == ["--in-one-process"]:
        return _measure(argv[1:])
    print(f"{'attack':28} {'points':>6} {'peak RSS':>9} {'seconds':>8} {'notebook':>10}")
    for attack in argv or list(ATTACKS):
        try:
            (figures,) = measure(attack)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"{attack:28} grading failed: {str(error).strip().splitlines()[-1][:100]}")
            continue
        print(f"{attack:28} {figures['points']:6.1f} {figures['peak_rss_mb']:6d} MB "
              f"{figures['seconds']:8.1f} {figures['notebook_bytes']:10,}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
