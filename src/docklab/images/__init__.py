"""The course image catalogue and how to make each image present (pull, or build from Debian)."""
