//! Finding and rewriting image references in Kubernetes manifests, Compose files and Dockerfiles.
