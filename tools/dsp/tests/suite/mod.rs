mod latency;
mod oracles;
mod separation_model;
mod support;
mod tools;
