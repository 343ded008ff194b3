#!/bin/sh
# No init system runs in a container: packages must not try to start their services while they
# are installed (101 = action forbidden).
exit 101
