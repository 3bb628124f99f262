"""The course's grading pipeline, plugged into nbgrader's own commands.

The course root's ``nbgrader_config.py`` calls :func:`configure`; so does the private course
folder that ``python -m autograder grade`` writes for a batch (with the batch's limits). Then
``nbgrader autograde``, ``generate_feedback``, ``export``, ``validate``, the Formgrader and the
students' Validate button all use the same pieces:

- sanitize: outputs cleared, metadata rebuilt for notebooks that lost it (``RebuildMetadata``),
  test cells and other locked cells restored from the master, deleted graded cells put back
  (``RestoreCells``);
- execute: ``GradingExecute`` in the sandboxed kernel (``GradingSandbox``: probe, per-student
  grading seed, ``ci`` profile, memory and CPU limits), tamper guards, stderr tolerated, output
  cap, timeouts;
- feedback: ``ScrubFeedback`` (hidden tests removed) and ``FeedbackExporter`` (HTML cleaned,
  last check);
- validate: ``ValidateExecute`` (stderr does not fail a test that passed: the grader's rule).
"""

from __future__ import annotations

DEFAULT_TIMEOUT = 120  # seconds one cell may run before it is interrupted


def configure(c, *, course_root: str | None = None, timeout: int = DEFAULT_TIMEOUT, sandbox: dict | None = None,
              hidden_lines_file: str | None = None) -> None:
    """Configure nbgrader (the ``c`` of an nbgrader_config.py) to grade with this course's pipeline.

    ``course_root``: the nbgrader course folder (default: nbgrader's, the current folder);
    ``sandbox``: ``GradingSandbox`` settings (``{"memory_mb": 4096, ...}``)."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds,
                                        GetGrades, LimitOutput, OverwriteKernelspec, SaveAutoGrades)

    from autograder.feedback import ScrubFeedback
    from autograder.preprocessors import GradingExecute, RestoreCells
    from autograder.rebuild_metadata import RebuildMetadata

    if course_root is not None:
        c.CourseDirectory.root = course_root
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]

    # Sanitize: outputs cleared; cells matched to the master's exercises when the notebook lost
    # its nbgrader metadata; test cells and other locked cells restored from the master
    # (OverwriteCells), and graded cells the student deleted added back.
    c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, RebuildMetadata,
                                          RestoreCells, CheckCellMetadata]
    c.RestoreCells.add_missing_cells = True
    # Execute in the sandboxed kernel; GradingExecute applies the scoring rule (see its docstring).
    c.Autograde.autograde_preprocessors = [GradingExecute, ClearMetadataPreprocessor, LimitOutput,
                                           SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    c.GradingExecute.timeout = timeout
    c.GradingExecute.startup_timeout = 120
    c.GradingExecute.interrupt_on_timeout = True
    # Nothing is read from a kernel after its last cell: kill it rather than wait 2-3 s for
    # torch and TensorFlow to shut down politely.
    c.GradingExecute.shutdown_kernel = "immediate"
    c.LimitOutput.max_lines = 200
    for key, value in (sandbox or {}).items():
        setattr(c.GradingSandbox, key, value)

    c.GenerateFeedback.preprocessors = [ScrubFeedback, GetGrades, CSSHTMLHeaderPreprocessor]
    if hidden_lines_file:
        c.ScrubFeedback.hidden_lines_file = hidden_lines_file
    configure_feedback_exporter(c)
    configure_validate(c, timeout=timeout)


def configure_feedback_exporter(c) -> None:
    """The HTML exporter of ``generate_feedback`` (also used by ``feedback.template_scripts``):
    markdown rendered through bleach (``FeedbackExporter``), and nbconvert's own sanitizer on
    HTML/Markdown outputs and no JavaScript/widget outputs (``sanitize_html``; a second layer:
    ``ScrubFeedback`` already drops those outputs). The template is nbgrader's feedback template
    with MathJax written into the page (``autograder/templates/offline_feedback``,
    ``autograder/mathjax.py``): equations render offline, and nothing is loaded from the network."""
    import os

    import nbgrader.converters

    from autograder.feedback import FeedbackExporter
    from autograder.mathjax import TEMPLATE_DIR, TEMPLATE_NAME

    nbgrader_templates = os.path.join(os.path.dirname(os.path.abspath(nbgrader.converters.__file__)), os.pardir,
                                      "server_extensions", "formgrader", "templates")
    c.GenerateFeedback.exporter_class = FeedbackExporter
    c.HTMLExporter.sanitize_html = True
    c.HTMLExporter.template_name = TEMPLATE_NAME
    c.HTMLExporter.extra_template_basedirs = [str(TEMPLATE_DIR), os.path.normpath(nbgrader_templates)]


def configure_validate(c, *, timeout: int = DEFAULT_TIMEOUT) -> None:
    """``nbgrader validate`` and the Validate button: the grader's rule for stderr (the same
    function configures the student repository's nbgrader_config.py)."""
    from dlcourse.validate import configure_validate as configure_student_validate

    configure_student_validate(c, timeout=timeout)
