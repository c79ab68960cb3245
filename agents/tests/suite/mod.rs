mod common;
mod openai;
mod replay;
mod spans;
