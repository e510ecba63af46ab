//! `ferroflux events`: the Kubernetes Events of Flux objects as `flux events` prints them
//! (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE; NAMESPACE with -A or when a referenced source is in
//! another namespace), oldest first; `--for Kind/name` adds the events of the object's source.

use std::io::Write;

use anyhow::{anyhow, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use serde_json::Value;

use super::cluster::{ClusterArgs, describe, run, with_timeout};
use super::kinds;
use super::log;
use super::table;

/// `ferroflux events`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  # Events of the Flux objects of flux-system
  ferroflux events

  # Events of a Kustomization and of its source
  ferroflux events --for Kustomization/podinfo

  # Warnings in all namespaces
  ferroflux events -A --types warning")]
pub struct EventsArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Display events from Flux resources across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Stream the events.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Get events for a particular object: <kind>[/<name>].
    #[arg(long = "for")]
    pub for_: Option<String>,
    /// Filter events for certain types (Normal, Warning).
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
}

/// The Flux kinds whose events are shown (flux's kind map, image and source-watcher kinds
/// included).
const FLUX_KINDS: &[&str] = &[
    "Kustomization",
    "HelmRelease",
    "Alert",
    "Receiver",
    "Provider",
    "ImagePolicy",
    "HelmChart",
    "GitRepository",
    "OCIRepository",
    "Bucket",
    "HelmRepository",
    "ImageUpdateAutomation",
    "ImageRepository",
    "ArtifactGenerator",
];

fn flux_kind(kind: &str) -> Option<&'static str> {
    FLUX_KINDS
        .iter()
        .copied()
        .find(|k| k.eq_ignore_ascii_case(kind))
}

/// k8s.io/apimachinery's `HumanDuration`.
pub fn human_duration(seconds: i64, _nanos: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        None => "<unknown>".into(),
        Some(t) => {
            let secs = now.as_second() - t.as_second();
            let secs = if now.subsec_nanosecond() < t.subsec_nanosecond() {
                secs - 1
            } else {
                secs
            };
            human_duration(secs, 0)
        }
    }
}

fn event_time(e: &Event) -> Option<Timestamp> {
    if let Some(s) = &e.series
        && let Some(t) = &s.last_observed_time
    {
        return Some(t.0);
    }
    if let Some(t) = &e.last_timestamp {
        return Some(t.0);
    }
    e.event_time.as_ref().map(|t| t.0)
}

fn last_seen(e: &Event, now: Timestamp) -> String {
    let first = match &e.event_time {
        Some(t) => since(Some(t.0), now),
        None => since(e.first_timestamp.as_ref().map(|t| t.0), now),
    };
    if let Some(s) = &e.series {
        format!(
            "{} (x{} over {first})",
            since(s.last_observed_time.as_ref().map(|t| t.0), now),
            s.count.unwrap_or(0)
        )
    } else if e.count.unwrap_or(0) > 1 {
        format!(
            "{} (x{} over {first})",
            since(e.last_timestamp.as_ref().map(|t| t.0), now),
            e.count.unwrap_or(0)
        )
    } else {
        first
    }
}

fn event_row(e: &Event, show_ns: bool, now: Timestamp) -> Vec<String> {
    let mut row = Vec::with_capacity(6);
    if show_ns {
        row.push(e.metadata.namespace.clone().unwrap_or_default());
    }
    row.push(last_seen(e, now));
    row.push(e.type_.clone().unwrap_or_default());
    row.push(e.reason.clone().unwrap_or_default());
    row.push(format!(
        "{}/{}",
        e.involved_object.kind.clone().unwrap_or_default(),
        e.involved_object.name.clone().unwrap_or_default()
    ));
    row.push(e.message.clone().unwrap_or_default());
    row
}

fn headers(show_ns: bool) -> Vec<&'static str> {
    let mut h = vec![];
    if show_ns {
        h.push("Namespace");
    }
    h.extend(["Last seen", "Type", "Reason", "Object", "Message"]);
    h
}

/// The objects an object refers to (`Kind/name.namespace`), as flux's `getObjectRef`.
fn references(kind: &str, obj: &Value, ns: &str) -> Vec<(String, String, String)> {
    let field = |p: &str| obj.pointer(p);
    let s = |v: Option<&Value>, k: &str| {
        v.and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let name = kinds::name(obj);
    match kind {
        "Kustomization" | "HelmChart" => {
            let r = field("/spec/sourceRef");
            let k = s(r, "kind").unwrap_or_default();
            let n = s(r, "name").unwrap_or_default();
            let rns = s(r, "namespace").unwrap_or_else(|| ns.to_string());
            vec![(k, n, rns)]
        }
        "HelmRelease" => {
            let r = field("/spec/chart/spec/sourceRef");
            let k = s(r, "kind").unwrap_or_default();
            let n = s(r, "name").unwrap_or_default();
            let rns = s(r, "namespace").unwrap_or_else(|| ns.to_string());
            vec![
                (k, n, rns.clone()),
                ("HelmChart".into(), format!("{ns}-{name}"), rns),
            ]
        }
        "Alert" => {
            let n = s(field("/spec/providerRef"), "name").unwrap_or_default();
            vec![("Provider".into(), n, ns.to_string())]
        }
        _ => vec![],
    }
}

/// Runs `ferroflux events`.
pub fn command(args: EventsArgs) -> anyhow::Result<()> {
    let timeout = args.cluster.timeout;
    run(with_timeout(timeout, async move {
        for t in &args.types {
            if !t.eq_ignore_ascii_case("Warning") && !t.eq_ignore_ascii_case("Normal") {
                bail!("type '{t}' not supported. Supported types are Normal, Warning");
            }
        }
        let cluster = args.cluster.connect().await?;
        let ns = cluster.namespace.clone();
        let scope: Option<&str> = (!args.all_namespaces).then_some(ns.as_str());
        let mut queries: Vec<(Option<String>, Option<String>, Option<String>)> = Vec::new();
        let mut diff_ns = false;
        match &args.for_ {
            Some(sel) => {
                let (kind, name) = match sel.split_once('/') {
                    Some((k, n)) => (k.to_string(), n.to_string()),
                    None => (sel.to_string(), String::new()),
                };
                if kind.is_empty() {
                    bail!("--for selector must be of format <kind>[/<name>]");
                }
                let Some(kind) = flux_kind(&kind) else {
                    bail!("'{kind}' is not a recognized Flux kind");
                };
                queries.push((
                    scope.map(str::to_string),
                    Some(kind.to_string()),
                    (!name.is_empty()).then(|| name.clone()),
                ));
                if !name.is_empty()
                    && matches!(
                        kind,
                        "Kustomization" | "HelmRelease" | "HelmChart" | "Alert"
                    )
                    && let Some(k) = kinds::by_kind(kind)
                {
                    let obj = cluster
                        .get(k, &ns, &name)
                        .await
                        .map_err(|e| anyhow!(describe(&e)))?;
                    for (rk, rn, rns) in references(kind, &obj, &ns) {
                        if Some(rns.as_str()) != scope {
                            diff_ns = true;
                        }
                        queries.push((Some(rns), Some(rk), Some(rn)));
                    }
                }
            }
            None => queries.push((scope.map(str::to_string), None, None)),
        }
        let show_ns = args.all_namespaces || diff_ns;
        let keep = |e: &Event| {
            let Some(k) = e.involved_object.kind.as_deref() else {
                return false;
            };
            if flux_kind(k).is_none() {
                return false;
            }
            args.types.is_empty()
                || args.types.iter().any(|t| {
                    Some(t.to_ascii_lowercase()) == e.type_.as_ref().map(|x| x.to_ascii_lowercase())
                })
        };
        let selector = |kind: &Option<String>, name: &Option<String>| {
            let mut parts = vec![];
            if let Some(k) = kind {
                parts.push(format!("involvedObject.kind={k}"));
            }
            if let Some(n) = name {
                parts.push(format!("involvedObject.name={n}"));
            }
            parts.join(",")
        };
        let matches_query = |e: &Event, kind: &Option<String>, name: &Option<String>| {
            kind.as_ref()
                .is_none_or(|k| e.involved_object.kind.as_ref() == Some(k))
                && name
                    .as_ref()
                    .is_none_or(|n| e.involved_object.name.as_ref() == Some(n))
        };
        if args.watch {
            let mut streams = Vec::new();
            for (qns, kind, name) in &queries {
                let api: Api<Event> = match qns {
                    Some(n) => Api::namespaced(cluster.client.clone(), n),
                    None => Api::all(cluster.client.clone()),
                };
                let wp = WatchParams::default().fields(&selector(kind, name));
                let s = api
                    .watch(&wp, "0")
                    .await
                    .map_err(|e| anyhow!(describe(&e)))?;
                let (kind, name) = (kind.clone(), name.clone());
                streams.push(
                    s.into_stream()
                        .map(move |ev| (ev, kind.clone(), name.clone()))
                        .boxed(),
                );
            }
            let mut all = futures::stream::select_all(streams);
            let mut first = true;
            while let Some((ev, kind, name)) = all.next().await {
                let e = match ev {
                    Ok(WatchEvent::Added(e)) | Ok(WatchEvent::Modified(e)) => e,
                    Ok(_) => continue,
                    Err(e) => {
                        log::failure(format!("error watching events: {}", describe(&e)));
                        continue;
                    }
                };
                if !keep(&e) || !matches_query(&e, &kind, &name) {
                    continue;
                }
                let header = if first { headers(show_ns) } else { vec![] };
                first = false;
                let text = table::render(&header, &[event_row(&e, show_ns, Timestamp::now())]);
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            return Ok(());
        }
        let mut events: Vec<Event> = Vec::new();
        for (qns, kind, name) in &queries {
            let api: Api<Event> = match qns {
                Some(n) => Api::namespaced(cluster.client.clone(), n),
                None => Api::all(cluster.client.clone()),
            };
            let mut lp = ListParams::default()
                .fields(&selector(kind, name))
                .limit(500);
            loop {
                let page = api
                    .list(&lp)
                    .await
                    .map_err(|e| anyhow!("error getting events: {}", describe(&e)))?;
                let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
                events.extend(
                    page.items
                        .into_iter()
                        .filter(|e| matches_query(e, kind, name)),
                );
                match next {
                    Some(c) => lp = lp.continue_token(&c),
                    None => break,
                }
            }
        }
        // stable sort by time, as Go's sort.Sort over the concatenated lists
        events.sort_by_key(event_time);
        let now = Timestamp::now();
        let rows: Vec<Vec<String>> = events
            .iter()
            .filter(|e| keep(e))
            .map(|e| event_row(e, show_ns, now))
            .collect();
        if rows.is_empty() {
            if args.all_namespaces {
                log::failure("No events found.");
            } else {
                log::failure(format!("No events found in {ns} namespace."));
            }
            return Ok(());
        }
        let text = table::render(&headers(show_ns), &rows);
        std::io::stdout().lock().write_all(text.as_bytes())?;
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn human_duration_as_apimachinery() {
        assert_eq!(human_duration(5, 0), "5s");
        assert_eq!(human_duration(119, 0), "119s");
        assert_eq!(human_duration(125, 0), "2m5s");
        assert_eq!(human_duration(600, 0), "10m");
        assert_eq!(human_duration(3 * 3600 + 60, 0), "3h1m");
        assert_eq!(human_duration(30 * 3600, 0), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600, 0), "3d1h");
        assert_eq!(human_duration(-5, 0), "<invalid>");
    }
}
