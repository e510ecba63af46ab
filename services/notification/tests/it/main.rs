//! Integration tests of notification-controller: provider payloads against local HTTP servers,
//! real peers (Prometheus Alertmanager, nats-server), and the alerting pipeline against the test
//! API server (crates/testenv).

mod alerting;
mod peers;
mod providers;
mod providers_cloud;
mod providers_comments;
mod receivers;
mod receivers_tokens;
mod support;
