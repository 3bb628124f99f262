"""nbgrader configuration of the course's grading command.

``python -m autograder grade`` writes, into its private nbgrader course folder, an
``nbgrader_config.py`` that calls :func:`configure` with the run's settings. Instructors do
not edit this; the command-line options of ``grade`` set the numbers.
"""

from __future__ import annotations

KERNEL_NAME = "autograder-sandbox"


def configure(c, *, course_root: str, timeout: int, hidden_lines_file: str) -> None:
    from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds,
                                        GetGrades, LimitOutput, OverwriteKernelspec,
                                        SaveAutoGrades)

    from autograder.feedback import ScrubFeedback
    from autograder.preprocessors import GradingExecute, RestoreCells

    c.CourseDirectory.root = course_root
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]

    # Sanitize: outputs cleared, test cells and other locked cells restored from the master
    # (OverwriteCells), and graded cells the student deleted added back.
    c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec,
                                          RestoreCells, CheckCellMetadata]
    c.RestoreCells.add_missing_cells = True
    # Execute in the sandboxed kernel; GradingExecute applies the scoring rule (see its docstring).
    c.Autograde.autograde_preprocessors = [GradingExecute, ClearMetadataPreprocessor, LimitOutput,
                                           SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    c.GradingExecute.kernel_name = KERNEL_NAME
    c.GradingExecute.timeout = timeout
    c.GradingExecute.startup_timeout = 120
    c.GradingExecute.interrupt_on_timeout = True
    c.KernelManager.transport = "ipc"  # TCP cannot cross bwrap's --unshare-net
    c.LimitOutput.max_lines = 200

    c.GenerateFeedback.preprocessors = [ScrubFeedback, GetGrades, CSSHTMLHeaderPreprocessor]
    c.ScrubFeedback.hidden_lines_file = hidden_lines_file
    configure_feedback_exporter(c)


def configure_feedback_exporter(c) -> None:
    """The HTML exporter of ``generate_feedback`` (also used by ``feedback.template_scripts``):
    markdown rendered through bleach (``FeedbackExporter``), and nbconvert's own sanitizer on
    HTML/Markdown outputs and no JavaScript/widget outputs (``sanitize_html``; a second layer:
    ``ScrubFeedback`` already drops those outputs)."""
    from autograder.feedback import FeedbackExporter

    c.GenerateFeedback.exporter_class = FeedbackExporter
    c.HTMLExporter.sanitize_html = True
