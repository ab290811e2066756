//! smooch-operator: Smooch messaging apps, keys, integrations and webhooks
//! as Kubernetes custom resources, and a local Smooch API emulator.

pub mod emulator;
pub mod smooch;
