"""The old home of the grading sandbox, kept for what names it from outside the package:
the kernel provisioner entry point ``convgrader.sandbox:SandboxedProvisioner`` of venvs
installed before the move, and ``python -m convgrader.sandbox`` (what this machine allows)
in README and instructors' notes.

The code lives in ``convgrader.kernels.sandbox`` (see ``convgrader.kernels``).
"""
import sys

from convgrader.kernels.sandbox import KERNEL_NAME, Sandbox, SandboxedProvisioner, main

__all__ = ["KERNEL_NAME", "Sandbox", "SandboxedProvisioner", "main"]

if __name__ == "__main__":
    sys.exit(main())
