#!/bin/sh
# Entry of the course's registry image: a config file (or nothing) means `registry serve`.
set -e
case "$1" in
  *.yaml|*.yml) set -- registry serve "$@" ;;
  serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac
exec "$@"
