mod common;
mod openai;
mod replay;
