//! End-to-end tests and examples for valkey-proxy live in `tests/` and `examples/`.
