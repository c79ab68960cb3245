mod latency;
mod normalize;
mod oracles;
mod separation_model;
mod stream;
mod tools;
