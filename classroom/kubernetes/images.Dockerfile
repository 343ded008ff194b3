# docklab/classroom-images: the course images, saved (`docker save ... -o course.tar`), in an image
# a Kubernetes node pulls once. Its init container (classroom/kubernetes/values.yaml) starts the
# dockerd of the course's docker:dind on the pod's engine volume and loads them there, before the
# learner's engine starts. Build it in a folder holding course.tar (README, "Classroom ->
# Kubernetes"): docker build -t REGISTRY/docklab/classroom-images:TAG -f images.Dockerfile FOLDER
FROM docker:dind
COPY course.tar /images/course.tar
