//! Integration tests of source-controller against real servers started on 127.0.0.1.

mod bucket;
mod controller;
mod gitrepository;
mod helm_controller;
mod helm_support;
mod helmchart;
mod helmchart_oci;
mod helmrepository;
mod ocirepository;
mod provider;
mod registry;
mod shared_storage;
mod support;
mod verify;
