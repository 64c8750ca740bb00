"""The grader's kernels as the tests drive them directly: one kept alive to run code in
(live_kernel, for test_sandbox and the kernel test_as_ordinary_user plants in), the text of a
cell it ran, and stopping this process's servers of grading kernels (stop_grading_servers)."""
import contextlib

import nbformat
from nbclient import NotebookClient

from convgrader.kernels import forkserver, sandbox


def text(nb, index):
    """What cell ``index`` of ``nb`` printed, and its error's message."""
    return "".join(o.get("text", "") + o.get("evalue", "") for o in nb.cells[index].outputs)


@contextlib.contextmanager
def live_kernel(folder, kernel=sandbox.KERNEL_NAME):
    """A grading kernel started in ``folder`` and kept alive: yields ``run(code) -> text``
    and the kernel's pid on the host."""
    nb = nbformat.v4.new_notebook()
    client = NotebookClient(nb, kernel_name=kernel, timeout=120, allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
    with client.setup_kernel():
        def execute(code):
            nb.cells.append(nbformat.v4.new_code_cell(code))
            client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
            return text(nb, len(nb.cells) - 1)
        yield execute, client.km.provisioner.pid


def stop_grading_servers():
    """Stop this test process's sandbox and warm fork server, and so their kernels."""
    sandbox.Sandbox.stop_current()
    forkserver.ForkServer.stop_current()
