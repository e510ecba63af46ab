//! The parts of the ferroflux CLI other crates reuse: the loopback Git smart-HTTP server (the
//! embedded demo serves its sample repository with it; the end-to-end tests their fixtures).

pub mod gitserver;
