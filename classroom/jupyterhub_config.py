# JupyterHub configuration of a docklab classroom: `docklab classroom up` starts the hub with it
# (jupyterhub -f classroom/jupyterhub_config.py), its settings in DOCKLAB_CLASSROOM_* (see
# docklab.classroom.settings) and these, which `up` sets:
#   DOCKLAB_CLASSROOM_GATEWAY   the classroom network's gateway: the hub's API listens there, for
#                               the learners' servers (and nowhere a learner's engine can reach)
#   DOCKLAB_CLASSROOM_IMAGES_TAR  the course images saved once, loaded into each learner's engine
#   DOCKLAB_CLASSROOM_PROXY     the configurable-http-proxy command
import sys

from docklab.classroom.settings import Settings

c = get_config()  # noqa: F821 (JupyterHub defines it)
room = Settings.from_env()
state = room.state_dir()
environ = __import__("os").environ

c.JupyterHub.bind_url = f"http://{room.ip}:{room.port}"
c.JupyterHub.hub_bind_url = f"http://{environ['DOCKLAB_CLASSROOM_GATEWAY']}:{room.hub_port}"
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "cookie_secret")
c.ConfigurableHTTPProxy.command = [environ["DOCKLAB_CLASSROOM_PROXY"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{room.proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
c.ConfigurableHTTPProxy.auth_token = room.secret("proxy-token")
# Servers start in ~5 s, more when a whole class logs in at once on a small host.
c.Spawner.start_timeout = 300
c.Spawner.http_timeout = 120
c.Spawner.default_url = "/lab/tree/notebooks/00-index.ipynb"

# One container and one private engine per learner (docklab.classroom.spawner).
c.JupyterHub.spawner_class = "docklab.classroom.spawner.ClassroomSpawner"
c.ClassroomSpawner.images_tar = environ.get("DOCKLAB_CLASSROOM_IMAGES_TAR", "")

# Who may log in. A workshop: one password for the learners ("shared-password", in
# STATE/password), the instructor's own (STATE/admin-password); learners are those the instructor
# added (`docklab classroom add NAME...`), or anyone with the password when
# DOCKLAB_CLASSROOM_OPEN=1. A university replaces this with its OAuth (oauthenticator) or LDAP.
c.Authenticator.admin_users = {room.admin}
c.Authenticator.allow_existing_users = True
c.Authenticator.allow_all = environ.get("DOCKLAB_CLASSROOM_OPEN") == "1"
if room.authenticator == "dummy":  # tests only: any password
    c.JupyterHub.authenticator_class = "dummy"
else:
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = room.secret("password", 12)
    c.SharedPasswordAuthenticator.admin_password = room.secret("admin-password", 32)

# The classroom's own client (docklab classroom add/status, the tests) and the idle culler.
c.JupyterHub.services = [
    {"name": "docklab", "api_token": room.secret("api-token")},
    {"name": "idle-culler",
     "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                 f"--timeout={room.idle_timeout}"]},
]
c.JupyterHub.load_roles = [
    {"name": "docklab", "services": ["docklab"],
     "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users",
                "access:servers", "list:services", "read:services"]},
    {"name": "idle-culler", "services": ["idle-culler"],
     "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]},
]
