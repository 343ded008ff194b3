#!/bin/sh
# Entry of the course's redis image: what the official image's entry script does that matters.
set -e

# `docker run redis --appendonly yes` and `docker run redis /conf/redis.conf` mean redis-server.
case "$1" in
  -*|*.conf) set -- redis-server "$@" ;;
esac

if [ "$1" = "redis-server" ]; then
  shift
  # Without a config file redis listens on every interface but, in protected mode, refuses
  # clients from other addresses: other containers and published ports could not reach it.
  # The official image turns protected mode off; a config file given first decides for itself.
  case "$1" in
    *.conf) set -- redis-server "$@" ;;
    *) set -- redis-server --protected-mode no "$@" ;;
  esac
  # Run as the redis user, owning its data folder, unless started as another user already.
  if [ "$(id -u)" = 0 ]; then
    find . ! -user redis -exec chown redis:redis '{}' + 2>/dev/null || true
    umask 0077
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
