"""The grader's kernels, laid out by where their code runs.

Inside the sandbox (``inside/``, with the student's code beside it; it imports nothing of
the grader's side):
    ``inside.server``   the fork server: imports torch once, forks every kernel
    ``inside.kernel``   a forked child becoming a kernel: namespaces, limits, ipykernel
    ``inside.reset``    between two kernels: every process killed, every writable folder emptied
    ``inside.calls``    what a kernel runs when the grader calls a student's function

Between them:
    ``protocol``        the JSON lines the grader and the fork server exchange

In the grader:
    ``forkserver``      the fork server's client, and the warm kernels' provisioner
    ``sandbox``         one bubblewrap sandbox per grading process, and its provisioner
    ``bwrap``           bubblewrap's command line, what the sandbox shows, the kernel's identity
    ``limits``          memory and process limits: cgroup v2, v1, or rlimits
    ``clients``         the kernel clients: prompt, and bounded in what they read
    ``kernelspecs``     the kernelspecs ``convcourse-warm`` and ``convcourse-sandbox``

A record of what a called function did travels as ``convcourse.records`` describes.
"""
