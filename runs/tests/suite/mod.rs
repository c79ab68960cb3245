mod audit_damage;
mod backends;
mod postgres;
mod queue;
mod store;
