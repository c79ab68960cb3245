mod audit_damage;
mod store;
