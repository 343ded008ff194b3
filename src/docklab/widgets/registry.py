"""Registry: the repositories, tags, digests and layer sizes in a registry, via its HTTP API v2.

    from docklab.widgets.registry import RegistryView
    RegistryView(lesson.client)                            # the course registry on localhost:5000
    RegistryView(lesson.client, "http://localhost:5001")   # another one

What it asks: ``GET /v2/_catalog`` (repositories), ``GET /v2/<repo>/tags/list`` (tags) and
``GET /v2/<repo>/manifests/<tag>`` with ``Accept: application/vnd.docker.distribution.manifest.v2+json``
(the layers and their compressed sizes; the ``Docker-Content-Digest`` header is the digest that
``docker pull repo@sha256:...`` names). Layers that several tags share are stored once: the view
marks them. It re-reads when the engine reports a push (``docker events --filter event=push``),
and on ``refresh()``. With a local engine the kernel asks the registry itself; with a remote one
(``via="engine"``, chosen by itself) a busybox helper on the engine's host network asks it, so that
``localhost:5000`` means the same registry that ``docker push localhost:5000/...`` reaches.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable

import docker
import docker.errors
import requests
import traitlets as t

from docklab import labels as L
from docklab.engine import engine_address
from docklab.widgets._base import COLORS, Debouncer, EngineView, badge, esc, human_size, table

__all__ = ["RegistryView", "fetch_from_kernel", "fetch_via_engine", "read_registry"]

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


#: fetch(urls, accept) → one (status, headers, body) per URL; status 0: nothing answered.
Fetch = Callable[[list[str], str], list[tuple[int, dict, bytes]]]


def fetch_from_kernel(urls: list[str], accept: str = "", *,
                      timeout: float = 5.0) -> list[tuple[int, dict, bytes]]:
    """Ask the registry from this kernel (the engine is local, or its registry is reachable)."""
    replies = []
    with requests.Session() as http:
        for url in urls:
            reply = http.get(url, headers={"Accept": accept} if accept else {}, timeout=timeout)
            replies.append((reply.status_code, dict(reply.headers), reply.content))
    return replies


def fetch_via_engine(run_helper: Callable[[str], str]) -> Fetch:
    """Ask the registry from a busybox helper on the engine's host network: ``localhost:5000``
    then means the engine's host, as it does for ``docker push``, even when the engine is remote."""

    def fetch(urls: list[str], accept: str = "") -> list[tuple[int, dict, bytes]]:
        header = f"--header {shlex.quote('Accept: ' + accept)} " if accept else ""
        script = "".join(
            f"timeout 10 wget -S -q -O /tmp/b {header}{shlex.quote(url)} 2>/tmp/h; "
            "echo @@@REPLY; cat /tmp/h; echo @@@BODY; cat /tmp/b; echo; rm -f /tmp/b /tmp/h; "
            for url in urls)
        out = run_helper(script)
        replies = []
        for chunk in out.split("@@@REPLY\n")[1:]:
            head, _, body = chunk.partition("@@@BODY\n")
            status, headers = 0, {}
            for line in head.splitlines():
                line = line.strip()
                match = re.match(r"HTTP/\S+ (\d{3})", line)
                if match:
                    status = int(match.group(1))
                elif ": " in line and not line.startswith("wget:"):
                    key, _, value = line.partition(": ")
                    headers[key] = value
            replies.append((status, headers, body.rstrip("\n").encode()))
        return replies

    return fetch


def read_registry(url: str, *, fetch: Fetch | None = None) -> list[dict]:
    """Every repository with its tags: digest, media type, config and layers (digest, size)."""
    fetch = fetch or fetch_from_kernel
    base = url.rstrip("/")
    ((status, _, body),) = fetch([f"{base}/v2/_catalog?n=1000"], "")
    if status == 0:
        raise requests.ConnectionError(f"nothing answers at {base}")
    if status != 200:
        raise requests.HTTPError(f"GET /v2/_catalog: HTTP {status}")
    names = sorted(json.loads(body or b"{}").get("repositories") or [])
    tag_replies = fetch([f"{base}/v2/{repo}/tags/list" for repo in names], "")
    wanted = []
    for repo, (status, _, body) in zip(names, tag_replies):
        tags = sorted(json.loads(body or b"{}").get("tags") or []) if status == 200 else []
        wanted += [(repo, tag) for tag in tags]
    manifests = fetch([f"{base}/v2/{repo}/manifests/{tag}" for repo, tag in wanted],
                      MANIFEST_TYPES) if wanted else []
    by_repo: dict[str, list[dict]] = {repo: [] for repo in names}
    for (repo, tag), (status, headers, body) in zip(wanted, manifests):
        if status != 200:
            by_repo[repo].append({"tag": tag, "digest": "", "error": f"HTTP {status}",
                                  "layers": [], "size": 0})
            continue
        manifest = json.loads(body)
        digest = next((v for k, v in headers.items() if k.lower() == "docker-content-digest"), "")
        entry = {"tag": tag, "digest": digest, "media_type": manifest.get("mediaType", ""),
                 "layers": []}
        if "manifests" in manifest:  # a multi-platform list: name its platforms
            entry["platforms"] = [
                f"{m.get('platform', {}).get('os', '?')}/"
                f"{m.get('platform', {}).get('architecture', '?')}"
                for m in manifest["manifests"]]
        else:
            entry["config_size"] = (manifest.get("config") or {}).get("size", 0)
            entry["layers"] = [{"digest": layer.get("digest", ""),
                                "size": int(layer.get("size") or 0)}
                               for layer in manifest.get("layers") or []]
        entry["size"] = sum(layer["size"] for layer in entry["layers"])
        by_repo[repo].append(entry)
    return [{"name": repo, "tags": by_repo[repo]} for repo in names]


class RegistryView(EngineView):
    """Repositories, tags, digests and layer sizes in a registry (HTTP API v2)."""

    url = t.Unicode("http://localhost:5000", help="the registry's base URL").tag(sync=True)
    repositories = t.List(t.Dict(), help="name and tags (tag, digest, media_type, layers "
                          "[digest, size], size) of each repository").tag(sync=True)
    error = t.Unicode(help="why the registry could not be read, if it could not").tag(sync=True)
    _state_traits = ("url", "repositories", "error")
    _title = "Registry"

    via = t.Unicode(help="who asks the registry: 'kernel' (this machine) or 'engine' (a helper "
                    "container on the engine's host network)").tag(sync=True)

    def __init__(self, client: docker.DockerClient | None = None,
                 url: str = "http://localhost:5000", *, lesson=None, live: bool = True,
                 via: str = "auto", **kwargs):
        super().__init__(client, lesson=lesson, **kwargs)
        self.url = url if "://" in url else f"http://{url}"
        if via == "auto":  # a remote engine's localhost:5000 is on its host, not on this one
            via = "kernel" if engine_address().startswith("unix://") else "engine"
        self.via = via
        self._fetch = fetch_from_kernel if via == "kernel" else fetch_via_engine(self._helper)
        self._live = live
        self._refresher = Debouncer(self.refresh, delay=0.3)
        self._listeners.append(self._refresher)
        if live:
            self._listen(filters={"type": "image", "event": ["push", "delete", "untag"]},
                         on_event=lambda _: self._refresher.poke())
        self.refresh()

    def _on_reconnect(self) -> None:
        self._refresher.poke()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        return self._refresher.wait_idle(timeout)

    def refresh(self) -> None:
        """Ask the registry again."""
        try:
            self.repositories = read_registry(self.url, fetch=self._fetch)
        except docker.errors.DockerException as exc:  # the helper could not run
            self._engine_failed(exc)
            return
        except (requests.RequestException, ValueError) as exc:  # (RequestException is an OSError)
            reason = str(exc).splitlines()[0][:200]
            if isinstance(exc, requests.ConnectionError):
                reason = "nothing answers there (is the registry container running?)"
            self.error = f"cannot read {self.url}: {reason}"
        else:
            self.error = ""
        if not self.status.startswith("engine unreachable"):
            self._looked(self._live)

    def _helper(self, script: str) -> str:
        kwargs = {"detach": False, "remove": True, "network_mode": "host"}
        command = ["sh", "-c", script]
        try:
            if self._lesson is not None:
                out = self._lesson.run("busybox", command, **kwargs)
            else:
                out = self.client.containers.run("busybox", command,
                                                 labels=L.labels_for("widgets", kind="container"),
                                                 **kwargs)
        except requests.RequestException as exc:  # the engine, not the registry, is not answering
            raise docker.errors.DockerException(str(exc)) from exc
        return out.decode(errors="replace")

    def _render(self) -> str:
        if self.error:
            return f"<p style='color:{COLORS['bad']}'>{esc(self.error)}</p>"
        if not self.repositories:
            return (f"<i>{esc(self.url)} has no repositories yet: "
                    "<code>docker push localhost:5000/NAME:TAG</code> puts one there.</i>")
        seen: dict[str, int] = {}
        for repo in self.repositories:
            for tag in repo["tags"]:
                for layer in tag.get("layers", []):
                    seen[layer["digest"]] = seen.get(layer["digest"], 0) + 1
        rows = []
        for repo in self.repositories:
            for tag in repo["tags"] or [{"tag": "(no tags)", "digest": "", "layers": [], "size": 0}]:
                layers = " ".join(
                    f"<span title='{esc(layer['digest'])}' style='display:inline-block;"
                    f"margin:1px;padding:0 3px;border-radius:2px;font-size:85%;"
                    f"background:{COLORS['shared'] if seen.get(layer['digest'], 0) > 1 else '#eef'}'>"
                    f"{esc(layer['digest'][7:15])} {esc(human_size(layer['size']))}</span>"
                    for layer in tag.get("layers", []))
                if tag.get("platforms"):
                    layers = "manifest list: " + esc(", ".join(tag["platforms"]))
                rows.append([f"<b>{esc(repo['name'])}</b>", badge(tag["tag"], COLORS["accent"]),
                             f"<code>{esc(tag.get('digest', '')[:19])}…</code>",
                             esc(human_size(tag.get("size", 0))), layers])
        total = sum(len(r["tags"]) for r in self.repositories)
        shared = sum(1 for count in seen.values() if count > 1)
        return (f"<p>{esc(self.url)}: {len(self.repositories)} repositories, {total} tags; "
                f"{shared} layer(s) shared between tags (highlighted) are stored once.</p>" +
                table(["repository", "tag", "digest", "size (compressed)", "layers"], rows,
                      cls="docklab-registry", nowrap=4))
