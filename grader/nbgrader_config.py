"""nbgrader configuration of the docklab course (its root is this folder).

    grader/source/<lab>/        the one source of each lab (notebook with nbgrader markup + files)
    grader/release/<lab>/       student versions; copied to labs/<lab>/ by `docklab grader generate`
    grader/submitted/<student>/<lab>/, autograded/, feedback/   nbgrader's usual steps

Autograding runs no cell of a submission: SealedJudge (docklab.grading.nbgrader) takes the place
of nbgrader's Execute step, reads the answer cells as data and judges them on a sealed engine of
their own; the grade cells get the checks' verdicts. See README.md, "What grading isolates".
"""

import os

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

c.CourseDirectory.course_id = "docklab"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# The Dockerfile is what the lab's %%writefile cell writes: never hand it out, never overwrite
# a learner's with one left over in the source folder.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*",
                            "Dockerfile"]

# The sealed judge in Execute's place; the rest is nbgrader's default list, unchanged.
c.Autograde.autograde_preprocessors = [
    "docklab.grading.nbgrader.SealedJudge",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# `nbgrader validate` and a learner's own kernel still run the test cells: building an image (apt-get install in a RUN) takes far longer than nbgrader's default 30 s.
c.ExecutePreprocessor.timeout = 300
c.Execute.timeout = 300
# Grading checks print whole whales and build logs; keep enough of them in the feedback.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60
