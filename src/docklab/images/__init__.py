"""The course image catalogue and how to make each image present (pull, or build from Debian).

    from docklab.images import CATALOGUE, image_status, prepare
    prepare(client)                 # docklab images prepare
    image_status(client)            # docklab images list --json
"""

from docklab.images.build import ImageBuildError, recipe_hash
from docklab.images.catalogue import (
    CATALOGUE,
    DIND_DOCKER_RUN_FLAGS,
    DIND_RUN_OPTIONS,
    CourseImage,
    dind_docker_run_flags,
    dind_run_options,
    find,
)
from docklab.images.prepare import image_status, prepare

__all__ = [
    "CATALOGUE",
    "DIND_DOCKER_RUN_FLAGS",
    "DIND_RUN_OPTIONS",
    "CourseImage",
    "ImageBuildError",
    "dind_docker_run_flags",
    "dind_run_options",
    "find",
    "image_status",
    "prepare",
    "recipe_hash",
]
