"""The classroom: JupyterHub on one host, each learner with JupyterLab and a private engine.

``settings``  names, ports, limits (DOCKLAB_CLASSROOM_*)
``image``     the learner's image, built from the course's images and notebooks
``engine``    each learner's Docker-in-Docker engine, in the learner's network namespace
``spawner``   the hub's spawner (DockerSpawner + the private engine)
``hub``       up / status / down / add on this host
``remote``    the hub's REST API and a learner's kernel, from outside (tests, bench)

Not to be confused with ``docklab.grading.classroom``, which grades a whole class's submissions.
"""
