"""The host ports the course publishes, in one place, so lessons and `doctor` agree."""

#: port -> what publishes it
COURSE_PORTS: dict[int, str] = {
    5000: "the local registry (registry:2) in the registry lesson and lab",
    5443: "the private registry with TLS and passwords in the registry lesson (on 127.0.0.1)",
    8080: "web servers published in the running, networking and compose lessons",
    8081: "the second app behind the reverse proxy in the networking lesson",
    8082: "the reverse proxy in the networking and best-practices lessons",
    8083: "the Flask development server in the multi-stage lesson (developer workflow)",
}
