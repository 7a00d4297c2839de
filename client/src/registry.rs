//! Reading manifests from an OCI distribution registry.
