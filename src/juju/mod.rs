//! The only code that talks to Juju: the hook environment parsed once ([`JujuContext`]), the event it names
//! ([`Event`]), and the hook tools behind one trait ([`HookTools`]) with a real implementation and, for unit tests, a fake one.

pub mod context;
pub mod event;
#[cfg(test)]
pub mod fake;
pub mod tools;

pub use context::{ContextError, JujuContext};
pub use event::{Event, RelationKind};
pub use tools::{HookToolError, HookTools, LogLevel, RealHookTools, WorkloadStatus};
