//! baton-agents integration tests: one binary; tools run through the real gate.

mod suite;
