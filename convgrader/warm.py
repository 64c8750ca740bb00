"""The old home of warm kernels, kept for what names it from outside the package: the kernel
provisioner entry point ``convgrader.warm:WarmProvisioner`` of venvs installed before the
move, and the command ``python -m convgrader.warm install`` in instructors' notes.

The code lives in ``convgrader.kernels`` (see its docstring for the layout).
"""
import sys

from convgrader.kernels.clients import STOCK_CLIENT, PromptKernelClient
from convgrader.kernels.forkserver import KERNEL_NAME, ForkServer, WarmProvisioner
from convgrader.kernels.kernelspecs import install_kernelspec

__all__ = ["KERNEL_NAME", "STOCK_CLIENT", "ForkServer", "PromptKernelClient", "WarmProvisioner",
           "install_kernelspec", "main"]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["install"]:
        print(install_kernelspec())
    else:
        sys.exit("usage: python -m convgrader.warm install (or: convgrader kernelspec)")


if __name__ == "__main__":
    main()
