"""The Validate button's rule for stderr, the same as the grader's (used by the course's
``nbgrader_config.py``; no notebook imports this).

nbgrader scores a test cell that wrote anything to stderr as failed, so a correct solution
whose code warns (a ``UserWarning`` from a framework, a debug print to ``sys.stderr``) would
fail Validate. The course's grader gives such a test its points: a test passes when it ran
without an exception. :class:`ValidateExecute` applies that rule to Validate: after the
notebook ran, the stderr output of every test cell that raised nothing is relabelled as
stdout, so nbgrader's own check agrees with the grade. The output stays visible."""

from __future__ import annotations

from nbgrader.preprocessors import Execute


def is_test_cell(cell) -> bool:
    nbg = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(nbg.get("grade")) and not nbg.get("solution")


def stderr_as_stdout(cell) -> bool:
    """Relabel the stderr output of ``cell`` as stdout when the cell raised no error; return
    whether it raised none (then it passed, whatever it printed where)."""
    outputs = cell.get("outputs", [])
    if any(out.get("output_type") == "error" for out in outputs):
        return False
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            out["name"] = "stdout"
    return True


class ValidateExecute(Execute):
    """nbgrader's Execute for Validate, with the grader's stderr rule applied to test cells."""

    def preprocess(self, nb, resources, km=None):
        nb, resources = super().preprocess(nb, resources, km)
        for cell in nb.cells:
            if is_test_cell(cell):
                stderr_as_stdout(cell)
        return nb, resources


def configure_validate(c, *, timeout: int = 120) -> None:
    """Configure ``nbgrader validate`` and the Validate button (the ``c`` of an
    nbgrader_config.py): the grader's stderr rule, and the grader's per-cell timeout."""
    from nbgrader.preprocessors import ClearOutput
    from nbgrader.validator import Validator

    # nbgrader 0.9.6 runs Validator.preprocessors but does not mark the list configurable, so
    # c.Validator.preprocessors would be ignored ("not recognized"): mark it.
    Validator.class_traits()["preprocessors"].tag(config=True)
    c.Validator.preprocessors = [ClearOutput, ValidateExecute]
    c.ValidateExecute.timeout = timeout
