"""The one exception a grading run raises for a problem the instructor must fix."""


class GradeError(Exception):
    """The batch cannot be graded as asked; the message says how to fix it."""
