"""The grading kernelspecs, installed in the environment (`convgrader kernelspec`).

``convcourse-warm`` (``forkserver.WarmProvisioner``) and ``convcourse-sandbox``
(``sandbox.SandboxedProvisioner``) name their provisioners by entry point (pyproject.toml).
"""
import json
import os
import sys
import tempfile
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

from convgrader.kernels.forkserver import KERNEL_NAME

KERNELSPECS = {  # name: (provisioner, display name)
    KERNEL_NAME: ("convcourse-warm", "Python 3 (warm, for grading)"),
    "convcourse-sandbox": ("convcourse-sandbox", "Python 3 (sandboxed and warm, for grading)"),
}


def install_kernelspec(prefix: str = sys.prefix) -> str:
    """Install the grading kernelspecs (``convcourse-warm``, ``convcourse-sandbox``)."""
    installed = []
    for name, (provisioner, display_name) in KERNELSPECS.items():
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": display_name,
            "language": "python",
            "metadata": {"kernel_provisioner": {"provisioner_name": provisioner}},
        }
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "kernel.json").write_text(json.dumps(spec, indent=1))
            # The spec is copied with its modes: readable by every user of the venv, not
            # the temporary folder's 700.
            os.chmod(directory, 0o755)
            os.chmod(Path(directory, "kernel.json"), 0o644)
            installed.append(KernelSpecManager().install_kernel_spec(
                directory, name, prefix=prefix))
    return "\n".join(installed)



def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv not in ([], ["install"]):
        sys.exit("usage: python -m convgrader.kernels.kernelspecs [install]")
    print(install_kernelspec())


if __name__ == "__main__":
    main()
