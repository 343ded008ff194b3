"""Registry: the repositories, tags, digests and layer sizes in a registry, via its HTTP API v2.

    from docklab.widgets.registry import RegistryView
    RegistryView(lesson.client)                            # the course registry on localhost:5000
    RegistryView(lesson.client, "http://localhost:5001")   # another one

What it asks: ``GET /v2/_catalog`` (repositories), ``GET /v2/<repo>/tags/list`` (tags) and
``GET /v2/<repo>/manifests/<tag>`` with ``Accept: application/vnd.docker.distribution.manifest.v2+json``
(the layers and their compressed sizes; the ``Docker-Content-Digest`` header is the digest that
``docker pull repo@sha256:...`` names). Layers that several tags share are stored once: the view
marks them. It re-reads when the engine reports a push (``docker events --filter event=push``),
and on ``refresh()``. The registry is asked from this kernel: with a remote engine, pass the URL
under which this machine reaches that engine's registry.
"""

from __future__ import annotations

import docker
import requests
import traitlets as t

from docklab.widgets._base import COLORS, Debouncer, EngineView, badge, esc, human_size, table

__all__ = ["RegistryView", "read_registry"]

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


def read_registry(url: str, *, session: requests.Session | None = None,
                  timeout: float = 5.0) -> list[dict]:
    """Every repository with its tags: digest, media type, config and layers (digest, size)."""
    http = session or requests.Session()
    base = url.rstrip("/")
    catalog = http.get(f"{base}/v2/_catalog", params={"n": 1000}, timeout=timeout)
    catalog.raise_for_status()
    repositories = []
    for repo in sorted(catalog.json().get("repositories") or []):
        tags_reply = http.get(f"{base}/v2/{repo}/tags/list", timeout=timeout)
        tags = sorted((tags_reply.json().get("tags") or []) if tags_reply.ok else [])
        entries = []
        for tag in tags:
            reply = http.get(f"{base}/v2/{repo}/manifests/{tag}",
                             headers={"Accept": MANIFEST_TYPES}, timeout=timeout)
            if not reply.ok:
                entries.append({"tag": tag, "digest": "", "error": f"HTTP {reply.status_code}"})
                continue
            manifest = reply.json()
            entry = {"tag": tag, "digest": reply.headers.get("Docker-Content-Digest", ""),
                     "media_type": manifest.get("mediaType", ""), "layers": []}
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
            entries.append(entry)
        repositories.append({"name": repo, "tags": entries})
    return repositories


class RegistryView(EngineView):
    """Repositories, tags, digests and layer sizes in a registry (HTTP API v2)."""

    url = t.Unicode("http://localhost:5000", help="the registry's base URL").tag(sync=True)
    repositories = t.List(t.Dict(), help="name and tags (tag, digest, media_type, layers "
                          "[digest, size], size) of each repository").tag(sync=True)
    error = t.Unicode(help="why the registry could not be read, if it could not").tag(sync=True)
    _state_traits = ("url", "repositories", "error")
    _title = "Registry"

    def __init__(self, client: docker.DockerClient | None = None,
                 url: str = "http://localhost:5000", *, lesson=None, live: bool = True,
                 **kwargs):
        super().__init__(client, lesson=lesson, **kwargs)
        self.url = url if "://" in url else f"http://{url}"
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
            self.repositories = read_registry(self.url)
        except (requests.RequestException, ValueError) as exc:
            reason = str(exc).splitlines()[0][:200]
            if isinstance(exc, requests.ConnectionError):
                reason = "nothing answers there (is the registry container running?)"
            self.error = f"cannot read {self.url}: {reason}"
        else:
            self.error = ""
        if not self.status.startswith("engine unreachable"):
            self._looked(self._live)

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
