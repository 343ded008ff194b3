# The notes app's image. VOLUME /data: without a volume of your own, every container
# gets a fresh anonymous volume there.
FROM busybox
COPY notes.sh /app/notes.sh
VOLUME /data
CMD ["sh", "/app/notes.sh", "serve"]
