mod common;
mod openai;
mod replay;
mod responses;
mod spans;
