//! baton-runs integration tests: one binary, one module per concern.

mod suite;
