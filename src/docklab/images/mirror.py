"""Which Debian mirror local builds use: the one this host's apt is configured with.

Read at run time from /etc/apt/sources.list (one-line format) and /etc/apt/sources.list.d/
(``*.list`` one-line, ``*.sources`` deb822), so an image built here fetches packages where the
host does (a local mirror, a snapshot, a caching proxy). DOCKLAB_DEBIAN_MIRROR and
DOCKLAB_DEBIAN_SECURITY_MIRROR override what is found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from docklab.errors import ImageError

#: The Debian release the catalogue's Debian images are made of.
RELEASE = "bookworm"

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` source: a URI and the suites taken from it."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mirrors:
    """The Debian archive and its security archive (None where none is known)."""

    debian: str
    security: str | None

    def sources(self, release: str = RELEASE) -> str:
        """The image's /etc/apt/sources.list.d/debian.sources, as Debian's images have it."""
        stanzas = [_stanza(self.debian, f"{release} {release}-updates")]
        if self.security:
            stanzas.append(_stanza(self.security, f"{release}-security"))
        return "\n".join(stanzas)


def _stanza(uri: str, suites: str) -> str:
    return (f"Types: deb\nURIs: {uri}\nSuites: {suites}\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")


def parse_one_line(text: str) -> list[AptSource]:
    """``deb [options] URI suite [component...]`` lines (sources.list); deb-src is skipped."""
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb ") and not line.startswith("deb\t"):
            continue
        words = line.split()[1:]
        if words and words[0].startswith("["):
            # Options may contain spaces: skip to the word closing them.
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 2:
            found.append(AptSource(words[0], (words[1],), tuple(words[2:])))
    return found


def parse_deb822(text: str) -> list[AptSource]:
    """Stanzas of a ``.sources`` file; those with ``Enabled: no`` or without ``deb`` are skipped."""
    found = []
    for stanza in _deb822_stanzas(text):
        if stanza.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in stanza.get("types", "").split():
            continue
        suites = tuple(stanza.get("suites", "").split())
        components = tuple(stanza.get("components", "").split())
        for uri in stanza.get("uris", "").split():
            found.append(AptSource(uri, suites, components))
    return found


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = None
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
            continue
        if raw[0] in " \t" and key:
            current[key] += " " + raw.strip()
            continue
        if ":" in raw:
            key, value = raw.split(":", 1)
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def host_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    """Every enabled ``deb`` source of this host's apt, in the order apt reads them."""
    found: list[AptSource] = []
    main = apt_dir / "sources.list"
    if main.is_file():
        found += parse_one_line(main.read_text(errors="replace"))
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                found += parse_one_line(path.read_text(errors="replace"))
            elif path.suffix == ".sources":
                found += parse_deb822(path.read_text(errors="replace"))
    return found


def _usable(uri: str) -> bool:
    # A container can reach http(s) mirrors; file:, cdrom: or mirror+file: lists are the host's.
    return uri.startswith(("http://", "https://"))


def choose_mirrors(sources: list[AptSource], release: str = RELEASE) -> Mirrors | None:
    """The Debian mirror and security mirror among ``sources``, or None when none is Debian's.

    The mirror is the source that carries ``release`` (else one whose path ends in /debian); the
    security mirror the one that carries ``release-security`` (else one ending in
    /debian-security, else the mirror's sibling .../debian-security).
    """
    usable = [s for s in sources if _usable(s.uri)]
    debian = next((s.uri for s in usable if release in s.suites), None)
    if debian is None:
        debian = next((s.uri for s in usable if s.uri.rstrip("/").endswith("/debian")), None)
    if debian is None:
        return None
    security = next((s.uri for s in usable if f"{release}-security" in s.suites), None)
    if security is None:
        security = next(
            (s.uri for s in usable if s.uri.rstrip("/").endswith("/debian-security")), None)
    if security is None and debian.rstrip("/").endswith("/debian"):
        security = debian.rstrip("/") + "-security"
    return Mirrors(debian.rstrip("/"), security.rstrip("/") if security else None)


def debian_mirrors(apt_dir: Path = APT_DIR, environ=None) -> Mirrors:
    """The mirrors local builds use: the environment's overrides, else the host's apt sources."""
    environ = os.environ if environ is None else environ
    found = choose_mirrors(host_sources(apt_dir))
    debian = environ.get("DOCKLAB_DEBIAN_MIRROR") or (found.debian if found else None)
    if not debian:
        raise ImageError(
            "Cannot tell which Debian mirror to build course images from: this host's apt has "
            "no Debian source.",
            "Set DOCKLAB_DEBIAN_MIRROR to a Debian mirror's URL (the folder holding dists/ and "
            "pool/), and DOCKLAB_DEBIAN_SECURITY_MIRROR to its security archive.",
        )
    debian = debian.rstrip("/")
    security = environ.get("DOCKLAB_DEBIAN_SECURITY_MIRROR")
    if not security:
        if environ.get("DOCKLAB_DEBIAN_MIRROR"):
            security = debian + "-security" if debian.endswith("/debian") else None
        else:
            security = found.security if found else None
    return Mirrors(debian, security.rstrip("/") if security else None)
