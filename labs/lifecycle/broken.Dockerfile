# The app's recipe as it was handed to you: the image builds, but its containers exit at once.
FROM busybox
WORKDIR /app
COPY start.sh /app/start.sh
COPY greeting.txt /app/
CMD ["sh", "/app/start.sh"]
