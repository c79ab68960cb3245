use std::sync::Arc;

use baton_gate::Gate;
use baton_kit::{Invocation, Invoker, Outcome, Principal, Registry, ToolDescriptor};
use baton_policies::{Policy, PolicyStore};
use baton_runs::{Ownership, StoreHandle, StoreOptions};
use futures::future::BoxFuture;

/// A real gate over `registry` with the default policy (read-only, `untrusted`), recording
/// in a store in a temporary folder that lives as long as the fixture.
#[derive(Debug)]
pub struct GateFixture {
    /// The gate.
    pub gate: Arc<Gate>,
    /// The store's folder.
    pub dir: tempfile::TempDir,
}

impl GateFixture {
    /// A gate over `registry`, its store on the backend of this pass (see
    /// [`crate::store_url`]).
    pub fn new(registry: Registry) -> GateFixture {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            url: crate::store_url(),
            ..StoreOptions::default()
        };
        let store =
            StoreHandle::new(dir.path().to_owned(), Ownership::Borrow).with_options(options);
        let policy = Arc::new(PolicyStore::fixed(Policy::default()));
        GateFixture {
            gate: Arc::new(Gate::new(Arc::new(registry), policy, store)),
            dir,
        }
    }
}

/// The fixture is an invoker that owns its store's folder, so a runner can be handed it alone.
impl Invoker for GateFixture {
    fn tools(&self, principal: &Principal) -> Vec<ToolDescriptor> {
        self.gate.tools(principal)
    }

    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, baton_kit::Result<Outcome>> {
        self.gate.invoke(invocation)
    }
}
