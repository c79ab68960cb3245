//! baton-cli integration tests: one binary; the real `baton` binary, real MCP clients, real
//! HTTP on loopback.

mod suite;
