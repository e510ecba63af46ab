//! The parts of the ferroflux CLI other crates reuse: installing the CRDs and the flux-system
//! namespace, and the loopback Git smart-HTTP server (the embedded demo serves its sample
//! repository with them; the end-to-end tests their fixtures), and the OCI artifact commands
//! (the end-to-end tests push with them).

pub mod artifact;
pub mod bootstrap;
pub mod gitserver;
