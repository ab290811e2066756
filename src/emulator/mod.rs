//! The local Smooch API server.
