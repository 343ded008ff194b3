#!/bin/sh
# notes: a tiny notes app. It keeps everything it knows in /data:
#   /data/notes/notes.txt   the notes, one a line
#   /data/starts            how many times the app has started
DATA=/data
case "$1" in
    add)
        shift
        mkdir -p "$DATA/notes" && echo "$*" >> "$DATA/notes/notes.txt" && echo "added: $*"
        ;;
    list)
        cat "$DATA/notes/notes.txt" 2>/dev/null
        ;;
    serve|"")
        if ! mkdir -p "$DATA/notes" 2>/dev/null || ! touch "$DATA/starts" 2>/dev/null; then
            echo "notes: cannot write to $DATA" >&2
            exit 1
        fi
        starts=$(( $(cat "$DATA/starts" 2>/dev/null || echo 0) + 1 ))
        echo "$starts" > "$DATA/starts"
        count=$(cat "$DATA/notes/notes.txt" 2>/dev/null | wc -l)
        echo "ready: notes started $starts time(s), $count note(s) kept in $DATA"
        # Stop promptly on docker stop (SIGTERM), as PID 1 must handle it itself.
        trap 'echo "notes: stopping"; exit 0' TERM INT
        while :; do sleep 1 & wait $!; done
        ;;
    *)
        echo "usage: notes.sh [serve | add <text> | list]" >&2
        exit 2
        ;;
esac
