//! Conformance suite: drives testenv through kube-rs and kubectl, as controllers and people do.

mod common;

mod auth;
mod binary;
mod controller;
mod crd;
mod discovery;
mod flux;
mod gc;
mod helm;
mod kubectl;
mod listwatch;
mod objects;
mod persist;
mod simulator;
mod writes;
