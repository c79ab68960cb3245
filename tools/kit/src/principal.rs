use std::collections::BTreeSet;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A role a principal holds. Policies grant on roles, never on names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Calls tools; may request approvals, never grant them.
    Agent,
    /// Decides approvals requested by someone else.
    Reviewer,
    /// Configures Baton; holds every right a reviewer has.
    Admin,
}

impl Role {
    /// The lowercase name used in configuration and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is calling: resolved by the transport (stdio → the local user; HTTP → the bearer
/// token's principal; an agent → its own identity) before any policy runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Principal {
    /// Stable identifier, e.g. `alice`, `agent:builder`.
    pub id: String,
    /// Roles held.
    pub roles: BTreeSet<Role>,
    /// The worker this principal's calls run on and whom it acts for, when a worker runs
    /// another principal's work: recorded with every call, never used to decide one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting: Option<Acting>,
}

/// A worker running someone's work: the calls are that work's principal's, made on the
/// worker's machine for the requester.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Acting {
    /// The worker's principal, `worker:<name>`.
    pub worker: String,
    /// Who asked for the work.
    pub requester: String,
}

impl Principal {
    /// A principal holding `roles`.
    pub fn new(id: impl Into<String>, roles: impl IntoIterator<Item = Role>) -> Self {
        Principal {
            id: id.into(),
            roles: roles.into_iter().collect(),
            acting: None,
        }
    }

    /// The same principal, its calls run by `worker` for `requester`.
    pub fn acting(&self, worker: &str, requester: &str) -> Principal {
        Principal {
            acting: Some(Acting {
                worker: worker.to_owned(),
                requester: requester.to_owned(),
            }),
            ..self.clone()
        }
    }

    /// Who the audit log names for this principal's calls: its id, with the worker and the
    /// requester when a worker acts (`agent:builder (worker:w1 for alice)`).
    pub fn audited(&self) -> String {
        match &self.acting {
            Some(acting) => format!("{} ({} for {})", self.id, acting.worker, acting.requester),
            None => self.id.clone(),
        }
    }

    /// Whether the principal holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}
