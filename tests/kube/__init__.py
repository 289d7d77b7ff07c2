"""A test Kubernetes API server for the kubernetes platform's tests (see apiserver/)."""
