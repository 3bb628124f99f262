"""nbgrader configuration for the Validate button of a JupyterLab started in this folder (and
``nbgrader validate``): a test that passes but writes to stderr (a framework's warning, a
debug print) counts as passed, as it does when the course is graded."""

from dlcourse.validate import configure_validate

configure_validate(get_config())  # noqa: F821  (provided by nbgrader when it loads this file)
