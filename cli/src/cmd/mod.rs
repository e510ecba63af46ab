//! The Flux workflow commands (issue 17): each command in its own module, sharing the client
//! plumbing (`cluster`), the table of Flux kinds (`kinds`), flux's table layout (`table`), its
//! progress lines (`log`) and the wait on an object's status (`wait`).

pub mod check;
pub mod cluster;
pub mod create;
pub mod delete;
pub mod events;
pub mod export;
pub mod get;
pub mod kinds;
pub mod log;
pub mod reconcile;
pub mod stats;
pub mod suspend;
pub mod table;
pub mod target;
pub mod tree;
pub mod version;
pub mod wait;
