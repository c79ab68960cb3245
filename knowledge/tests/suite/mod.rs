mod library;
mod reload;
mod shelf;
