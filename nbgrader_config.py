"""nbgrader configuration of the course (read by every nbgrader command run from this folder,
by the Formgrader and by the Validate button of a JupyterLab started here).

It plugs the course's grading pipeline into nbgrader itself (autograder/nbgrader_config.py):
the sandboxed, seeded kernel in the ci profile, tests restored from the masters, stderr
tolerated, the tamper guard, output caps, hidden tests kept out of feedback, and Validate
applying the grader's rules. ``nbgrader autograde``, ``generate_feedback`` and ``export`` then
give what ``python -m autograder grade`` gives. See autograder/README.md, section 6.

To grade in a course folder elsewhere (e.g. on a JupyterHub), copy this file there: it
configures the folder it lies in. The grader's private state (scratch folders, the course
secret that seeds hidden tests) goes to ``.autograder/`` in that folder; keep it private.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import autograder  # noqa: F401  (installed with pip install -e . from the course repository)
except ImportError:  # this folder is the repository itself, not installed
    sys.path.insert(0, HERE)

from autograder.nbgrader_config import configure  # noqa: E402

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)
configure(c, course_root=HERE)

# Limits of student kernels (the defaults; python -m autograder grade sets them per run):
# c.GradingExecute.timeout = 120             # seconds per cell
# c.GradingSandbox.memory_mb = 6144          # address space of a kernel
# c.GradingSandbox.cpu_seconds = 900         # CPU time of a kernel
# c.GradingSandbox.secret_file = "/path/to/course-secret"   # default: .autograder/course-secret
