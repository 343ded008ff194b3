#!/bin/sh
# The lab's tiny web app: it serves the greeting in /app/config/greeting.txt on port 8080.
CONFIG=/app/config/greeting.txt
if [ ! -f "$CONFIG" ]; then
    echo "start.sh: cannot start: $CONFIG: No such file or directory" >&2
    exit 3
fi
mkdir -p /tmp/www
cp "$CONFIG" /tmp/www/index.html
echo "ready: serving $CONFIG on port 8080"
# exec: httpd replaces this shell as the container's main process (PID 1), in the foreground (-f).
exec httpd -f -p 8080 -h /tmp/www
