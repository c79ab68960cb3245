mod latency;
mod oracles;
mod separation_model;
mod tools;
