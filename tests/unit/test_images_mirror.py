"""Which Debian mirror local builds use, read from the host's apt configuration."""

import pytest

from docklab.errors import ImageError
from docklab.images.mirror import (
    AptSource,
    Mirrors,
    choose_mirrors,
    debian_mirrors,
    host_sources,
    parse_deb822,
    parse_one_line,
)

DEB822 = """\
Types: deb deb-src
# a comment between fields
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example.org/debian-security
Suites: bookworm-security
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 -----END PGP PUBLIC KEY BLOCK-----

Types: deb
Enabled: no
URIs: http://disabled.example.org/debian
Suites: bookworm
Components: main
"""

ONE_LINE = """\
# deb http://commented.example.org/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://one.example.org/debian bookworm main
deb-src http://one.example.org/debian bookworm main
deb [ arch=amd64 ] http://one.example.org/debian-security bookworm-security main # trailing
"""


def test_deb822_stanzas():
    sources = parse_deb822(DEB822)
    assert sources == [
        AptSource("http://mirror.example.org/debian", ("bookworm", "bookworm-updates"),
                  ("main", "contrib")),
        AptSource("http://mirror.example.org/debian-security", ("bookworm-security",), ("main",)),
    ]


def test_one_line_format_skips_comments_deb_src_and_options():
    assert parse_one_line(ONE_LINE) == [
        AptSource("http://one.example.org/debian", ("bookworm",), ("main",)),
        AptSource("http://one.example.org/debian-security", ("bookworm-security",), ("main",)),
    ]


def test_choose_mirrors_from_deb822():
    assert choose_mirrors(parse_deb822(DEB822)) == Mirrors(
        "http://mirror.example.org/debian", "http://mirror.example.org/debian-security")


def test_security_mirror_is_derived_when_the_host_has_none():
    sources = [AptSource("http://proxy.example.org:3142/debian/", ("bookworm",))]
    assert choose_mirrors(sources) == Mirrors("http://proxy.example.org:3142/debian",
                                              "http://proxy.example.org:3142/debian-security")


def test_a_host_without_debian_sources_has_no_mirror():
    sources = [AptSource("http://archive.example.org/ubuntu", ("jammy",)),
               AptSource("file:/srv/debian", ("bookworm",))]
    assert choose_mirrors(sources) is None


def _apt_dir(tmp_path, sources_list="", parts=None):
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text(sources_list)
    for name, text in (parts or {}).items():
        (apt / "sources.list.d" / name).write_text(text)
    return apt


def test_host_sources_reads_both_formats(tmp_path):
    apt = _apt_dir(tmp_path, ONE_LINE, {"debian.sources": DEB822, "other.list": "",
                                        "ignored.list.disabled": "deb http://x.example.org/d a b"})
    uris = [source.uri for source in host_sources(apt)]
    assert uris == ["http://one.example.org/debian", "http://one.example.org/debian-security",
                    "http://mirror.example.org/debian", "http://mirror.example.org/debian-security"]


def test_debian_mirrors_prefers_the_environment(tmp_path):
    apt = _apt_dir(tmp_path, parts={"debian.sources": DEB822})
    assert debian_mirrors(apt, environ={}).debian == "http://mirror.example.org/debian"
    env = {"DOCKLAB_DEBIAN_MIRROR": "http://env.example.org/debian/"}
    assert debian_mirrors(apt, environ=env) == Mirrors("http://env.example.org/debian",
                                                       "http://env.example.org/debian-security")
    env["DOCKLAB_DEBIAN_SECURITY_MIRROR"] = "http://sec.example.org/ds"
    assert debian_mirrors(apt, environ=env).security == "http://sec.example.org/ds"


def test_no_mirror_anywhere_is_an_error_with_a_hint(tmp_path):
    apt = _apt_dir(tmp_path, "deb http://archive.example.org/ubuntu jammy main\n")
    with pytest.raises(ImageError) as raised:
        debian_mirrors(apt, environ={})
    assert "DOCKLAB_DEBIAN_MIRROR" in raised.value.hint


def test_image_sources_file_lists_all_three_suites():
    text = Mirrors("http://m.example.org/debian", "http://m.example.org/debian-security").sources()
    stanzas = parse_deb822(text)
    assert stanzas[0].suites == ("bookworm", "bookworm-updates")
    assert stanzas[1].suites == ("bookworm-security",)
    assert Mirrors("http://m.example.org/debian", None).sources().count("Types: deb") == 1
