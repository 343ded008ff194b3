"""Image layers: an image's layer stack (size and the instruction that made each), and the layers
two images share.

    from docklab.widgets.layers import LayersView
    LayersView(lesson.client, "python:3.11-slim")                  # one image's stack
    LayersView(lesson.client, "my-app:1", compare="python:3.11-slim")   # shared layers highlighted

Equivalent CLI: ``docker history --no-trunc IMAGE`` and ``docker image inspect --format
'{{json .RootFS.Layers}}' IMAGE``. Two images share the layers at the bottom of their stacks that
came from the same base: the engine stores those once. Steps that change only metadata (ENV, CMD,
LABEL, ...) add a history entry of 0 bytes and no filesystem layer. For a build as it happens, see
``docklab.widgets.build``.
"""

from __future__ import annotations

import docker
import traitlets as t

from docklab.widgets._base import COLORS, EngineView, badge, esc, human_size, table

__all__ = ["LayersView", "history_entries", "shared_prefix"]


def history_entries(history: list[dict]) -> list[dict]:
    """``docker history`` (newest first) → layers oldest first, each with the instruction."""
    layers = []
    for entry in reversed(history):
        created_by = entry.get("CreatedBy") or ""
        instruction = created_by.replace("/bin/sh -c #(nop) ", "").strip()
        if created_by.startswith("/bin/sh -c ") and "#(nop)" not in created_by:
            instruction = "RUN " + created_by[len("/bin/sh -c "):].strip()
        layers.append({"id": (entry.get("Id") or "")[:19], "created": entry.get("Created", 0),
                       "created_by": instruction, "size": int(entry.get("Size") or 0),
                       "tags": entry.get("Tags") or [], "shared": False})
    return layers


def shared_prefix(a: list[dict], b: list[dict]) -> int:
    """How many history entries, from the bottom, two images have in common."""
    count = 0
    for x, y in zip(a, b):
        if (x["created_by"], x["size"], x["created"]) != (y["created_by"], y["size"], y["created"]):
            break
        count += 1
    return count


class LayersView(EngineView):
    """An image's layers bottom-up, with the layers it shares with ``compare`` highlighted."""

    image = t.Unicode(help="the image shown").tag(sync=True)
    compare = t.Unicode(help="the image compared with, if any").tag(sync=True)
    layers = t.List(t.Dict(), help="the image's history entries, oldest first: id, created, "
                    "created_by, size, tags, shared").tag(sync=True)
    compare_layers = t.List(t.Dict(), help="the same for the compared image").tag(sync=True)
    summary = t.Dict(help="sizes: total, shared, own; filesystem layer counts").tag(sync=True)
    _state_traits = ("image", "compare", "layers", "compare_layers", "summary")
    _title = "Image layers"

    def __init__(self, client: docker.DockerClient | None = None, image: str = "", *,
                 compare: str | None = None, lesson=None, **kwargs):
        super().__init__(client, lesson=lesson, **kwargs)
        self.image = getattr(image, "tags", None) and image.tags[0] or str(getattr(image, "id",
                                                                                   image))
        self.compare = compare or ""
        self.refresh()

    def refresh(self) -> None:
        """Read both images' history from the engine again."""
        mine = self._engine_call(self._read, self.image)
        if mine is None:
            self._rerender()
            return
        layers, fs_layers = mine
        other, other_fs = ([], [])
        if self.compare:
            read = self._engine_call(self._read, self.compare)
            if read is None:
                self._rerender()
                return
            other, other_fs = read
        shared = shared_prefix(layers, other) if other else 0
        for index, layer in enumerate(layers):
            layer["shared"] = index < shared
        for index, layer in enumerate(other):
            layer["shared"] = index < shared
        shared_fs = 0
        for x, y in zip(fs_layers, other_fs):
            if x != y:
                break
            shared_fs += 1
        total = sum(layer["size"] for layer in layers)
        shared_bytes = sum(layer["size"] for layer in layers[:shared])
        self.summary = {"total": total, "shared": shared_bytes, "own": total - shared_bytes,
                        "filesystem_layers": len(fs_layers), "shared_filesystem_layers": shared_fs,
                        "history_entries": len(layers)}
        self.compare_layers = other
        self.layers = layers
        self._looked(live=False)

    def _read(self, name: str) -> tuple[list[dict], list[str]]:
        image = self.client.images.get(name)
        return history_entries(image.history()), image.attrs.get("RootFS", {}).get("Layers", [])

    def _render(self) -> str:
        if not self.layers:
            return f"<i>no history for {esc(self.image)}</i>"
        biggest = max((layer["size"] for layer in self.layers + self.compare_layers), default=1) or 1

        def stack(name: str, layers: list[dict]) -> str:
            rows = []
            for layer in reversed(layers):  # newest on top, like `docker history`
                width = 2 + 180 * layer["size"] / biggest
                color = COLORS["accent"] if layer["size"] else "#ccc"
                bar = (f"<span style='display:inline-block;width:{width:.0f}px;height:10px;"
                       f"background:{color};border-radius:2px'></span>")
                mark = badge("shared", COLORS["warn"]) if layer["shared"] else ""
                style = f"background:{COLORS['shared']}" if layer["shared"] else ""
                rows.append([f"<span style='{style}'>{mark}</span>",
                             f"<code style='{style}'>{esc(layer['created_by'][:90])}</code>",
                             f"{bar} {esc(human_size(layer['size']))}"])
            return (f"<div style='margin:4px 0'><b>{esc(name)}</b> — {len(layers)} history "
                    "entries, newest on top</div>" +
                    table(["", "instruction", "size"], rows, cls="docklab-layers", nowrap=1))

        s = self.summary
        text = (f"<p>{esc(self.image)}: {esc(human_size(s.get('total')))} in "
                f"{s.get('filesystem_layers', 0)} filesystem layers.")
        if self.compare:
            text += (f" It shares its bottom {s.get('shared_filesystem_layers', 0)} filesystem "
                     f"layer(s) ({esc(human_size(s.get('shared')))}) with {esc(self.compare)}: "
                     "the engine stores them once, and a pull or push skips them.")
        text += "</p>"
        out = text + stack(self.image, self.layers)
        if self.compare:
            out += stack(self.compare, self.compare_layers)
        return out
