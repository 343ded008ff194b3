# nbgrader in a learner's JupyterLab on the classroom's hub: /etc/jupyter/nbgrader_config.py of
# docklab/classroom-learner. The exchange is the learner's own part of the class's exchange, which
# the hub mounts (docklab.classroom.exchange): the released labs read-only, their own inbound,
# feedback and nbgrader cache. `nbgrader fetch_assignment LAB`, `submit LAB`, `fetch_feedback LAB`
# and the Assignments tab need no --course and no path.
import os

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

c.CourseDirectory.course_id = "docklab"
c.Exchange.root = "/srv/nbgrader/exchange"
c.Exchange.cache = "/srv/nbgrader/cache"
# Fetched labs go here (two folders down, as labs/LAB/: the labs' links to ../../notebooks work).
c.Exchange.assignment_dir = "/home/learner/course/assignments"
# Every learner's container runs as the same Unix user ("learner"): nbgrader would hand in as
# "learner". The hub's name for them is who they are.
c.CourseDirectory.student_id = os.environ.get("JUPYTERHUB_USER") or "*"
