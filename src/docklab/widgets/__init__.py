"""ipywidgets views for the course: one module per view, each a model bound to the engine.

* ``lifecycle.LifecycleView``        containers' states and transitions, live from ``docker events``
* ``inside_outside.InsideOutsideView`` PID 1, hostname, interfaces, mounts, limits: inside vs host
* ``layers.LayersView``              an image's layer stack; layers shared with another image
* ``build.BuildView``                a build as it happens: steps, cache hits and misses, progress
* ``volumes.VolumesView``            who mounts which volume, bind path or tmpfs; anonymous volumes
* ``networks.NetworkView``           networks, containers, ports, and a probed reachability matrix
* ``compose.ComposeView``            a Compose project: compose.yaml against the engine
* ``registry.RegistryView``          repositories, tags, digests and layers of a registry (API v2)
* ``swarm.SwarmView``                nodes, quorum, services and rolling updates
* ``connect.ConnectPanel``           the engine chooser of 00-index

Each module's docstring starts with a usage example. Views keep their state in synced traits
(``view.get_state()``), never block the kernel, and ``view.close()`` stops their threads.
"""
