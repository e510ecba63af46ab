//! Writes: patches (JSON, merge, strategic), server-side apply, dry-run, status and scale.

use crate::common::*;
use crate::objects::deployment;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn json_merge_and_strategic_patches() {
    let (_env, client) = env().await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deps.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();

    let j = deps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([
                    {"op": "replace", "path": "/spec/replicas", "value": 4},
                    {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}
                ]))
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(j.spec.as_ref().unwrap().replicas, Some(4));

    // strategic merge: containers by name, env by name, ports by containerPort
    let smp = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "B", "value": "2"}], "ports": [{"containerPort": 443}]},
        {"name": "sidecar", "image": "busybox"}
    ]}}}});
    let s = deps
        .patch("web", &PatchParams::default(), &Patch::Strategic(smp))
        .await
        .unwrap();
    let cs = s.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0].image.as_deref(), Some("nginx:1"));
    assert_eq!(cs[0].env.as_ref().unwrap().len(), 2);
    assert_eq!(cs[0].ports.as_ref().unwrap().len(), 2);
    // $patch: delete removes a merge-keyed item
    let del = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}});
    let s = deps
        .patch("web", &PatchParams::default(), &Patch::Strategic(del))
        .await
        .unwrap();
    assert_eq!(s.spec.unwrap().template.spec.unwrap().containers.len(), 1);

    // merge patch replaces lists
    let m = deps
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x"}]}}}})))
        .await
        .unwrap();
    let cs = m.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!((cs.len(), cs[0].name.as_str()), (1, "only"));

    // a bad JSON patch is rejected
    let bad = deps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(
                    json!([{"op": "test", "path": "/spec/replicas", "value": 99}]),
                )
                .unwrap(),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(bad).code, 422);
}

fn cm_apply(data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data})
}

#[tokio::test]
async fn server_side_apply_ownership_conflicts_force_and_removal() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let a = PatchParams::apply("manager-a");
    let b = PatchParams::apply("manager-b");
    let created = cms
        .patch(
            "ssa",
            &a,
            &Patch::Apply(cm_apply(json!({"k": "1", "j": "2"}))),
        )
        .await
        .unwrap();
    let mf = created.metadata.managed_fields.unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("manager-a"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));

    // same value from another manager: shared, no conflict
    cms.patch("ssa", &b, &Patch::Apply(cm_apply(json!({"j": "2"}))))
        .await
        .unwrap();
    // different value: conflict naming the field and the owner
    let s = status_of(
        cms.patch("ssa", &b, &Patch::Apply(cm_apply(json!({"k": "9"}))))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Apply failed with 1 conflict: conflict with \"manager-a\": .data.k"
    );
    assert_eq!(s.details.unwrap().causes[0].field, ".data.k");
    // force takes ownership
    let forced = cms
        .patch(
            "ssa",
            &b.clone().force(),
            &Patch::Apply(cm_apply(json!({"k": "9"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["k"], "9");
    // b stopped applying j, but a still owns it: stays. a stops applying j: removed (b dropped it too)
    let after = cms
        .patch("ssa", &a, &Patch::Apply(cm_apply(json!({}))))
        .await
        .unwrap();
    let data = after.data.unwrap();
    assert_eq!(
        data.get("k").map(String::as_str),
        Some("9"),
        "k is owned by b"
    );
    assert!(
        !data.contains_key("j"),
        "j is no longer applied by anyone: {data:?}"
    );

    // an Update (non-apply) write takes ownership without conflicts
    cms.patch(
        "ssa",
        &PatchParams {
            field_manager: Some("editor".into()),
            ..Default::default()
        },
        &Patch::Merge(json!({"data": {"k": "10"}})),
    )
    .await
    .unwrap();
    let s = status_of(
        cms.patch("ssa", &b, &Patch::Apply(cm_apply(json!({"k": "11"}))))
            .await
            .unwrap_err(),
    );
    assert!(
        s.message.contains("conflict with \"editor\""),
        "{}",
        s.message
    );

    // a resourceVersion in an apply configuration is a precondition
    let mut stale = cm_apply(json!({"k": "12"}));
    stale["metadata"]["resourceVersion"] = json!("1");
    let s = status_of(
        cms.patch("ssa", &b.clone().force(), &Patch::Apply(stale))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));

    // apply without a field manager is refused
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/ssa")
        .header("content-type", "application/apply-patch+yaml")
        .body(
            b"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"ssa\"}}"
                .to_vec(),
        )
        .unwrap();
    assert_eq!(
        status_of(client.request_text(req).await.unwrap_err()).code,
        422
    );
}

#[tokio::test]
async fn apply_merges_lists_by_key_and_removes_owned_items() {
    let (_env, client) = env().await;
    let deps: Api<Deployment> = Api::namespaced(client, "default");
    let base = |containers: serde_json::Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}},
                "spec": {"containers": containers}}}})
    };
    let a = PatchParams::apply("a");
    deps.patch(
        "d",
        &a,
        &Patch::Apply(base(
            json!([{"name": "one", "image": "x"}, {"name": "two", "image": "y"}]),
        )),
    )
    .await
    .unwrap();
    // another manager adds its own container
    let side = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "z"}]}}}});
    deps.patch("d", &PatchParams::apply("b"), &Patch::Apply(side))
        .await
        .unwrap();
    // a drops "two": removed; b's "side" stays
    let d = deps
        .patch(
            "d",
            &a,
            &Patch::Apply(base(json!([{"name": "one", "image": "x2"}]))),
        )
        .await
        .unwrap();
    let names: Vec<String> = d
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(
        names.contains(&"one".to_string()) && names.contains(&"side".to_string()),
        "{names:?}"
    );
    assert!(!names.contains(&"two".to_string()), "{names:?}");
}

#[tokio::test]
async fn dry_run_never_persists() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let o: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "dry"}, "data": {"a": "1"}})).unwrap();
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let r = cms.create(&pp, &o).await.unwrap();
    assert_eq!(r.metadata.name.as_deref(), Some("dry"));
    assert_eq!(status_of(cms.get("dry").await.unwrap_err()).code, 404);

    cms.create(&PostParams::default(), &o).await.unwrap();
    let dp = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let r = cms
        .patch("dry", &dp, &Patch::Merge(json!({"data": {"a": "2"}})))
        .await
        .unwrap();
    assert_eq!(r.data.unwrap()["a"], "2");
    let r = cms.patch("dry", &PatchParams::apply("m").force().dry_run(), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {"a": "3"}}))).await.unwrap();
    assert_eq!(r.data.unwrap()["a"], "3");
    let mut cur = cms.get("dry").await.unwrap();
    assert_eq!(cur.data.as_ref().unwrap()["a"], "1");
    cur.data.as_mut().unwrap().insert("a".into(), "4".into());
    cms.replace("dry", &pp, &cur).await.unwrap();
    cms.delete("dry", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    cms.delete_collection(&DeleteParams::default().dry_run(), &ListParams::default())
        .await
        .unwrap();
    let still = cms.get("dry").await.unwrap();
    assert_eq!(still.data.unwrap()["a"], "1");
}

#[tokio::test]
async fn status_subresource_separates_spec_and_status() {
    let (_env, client) = env().await;
    let deps: Api<Deployment> = Api::namespaced(client, "default");
    let mut d = deployment("s");
    d.status = Some(serde_json::from_value(json!({"replicas": 7})).unwrap());
    let created = deps.create(&PostParams::default(), &d).await.unwrap();
    assert!(created.status.is_none(), "status is dropped on create");
    // status writes change only status
    let s = deps
        .patch_status(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 9}, "status": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(s.status.as_ref().unwrap().replicas, Some(3));
    assert_eq!(s.spec.as_ref().unwrap().replicas, Some(1));
    // main writes leave status alone
    let m = deps
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}, "status": {"replicas": 99}})),
        )
        .await
        .unwrap();
    assert_eq!(m.status.unwrap().replicas, Some(3));
    assert_eq!(m.spec.unwrap().replicas, Some(2));
    // status via server-side apply with its own manager
    let st = deps
        .patch_status("s", &PatchParams::apply("status-mgr"), &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "s"}, "status": {"readyReplicas": 2}})))
        .await
        .unwrap();
    assert_eq!(st.status.unwrap().ready_replicas, Some(2));
    let entry = st
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|e| e.manager.as_deref() == Some("status-mgr"))
        .unwrap();
    assert_eq!(entry.subresource.as_deref(), Some("status"));
}

#[tokio::test]
async fn scale_subresource() {
    let (_env, client) = env().await;
    let deps: Api<Deployment> = Api::namespaced(client, "default");
    deps.create(&PostParams::default(), &deployment("sc"))
        .await
        .unwrap();
    let s = deps.get_scale("sc").await.unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(1));
    assert_eq!(s.status.unwrap().selector.as_deref(), Some("app=sc"));
    deps.patch_scale(
        "sc",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .unwrap();
    assert_eq!(
        deps.get("sc").await.unwrap().spec.unwrap().replicas,
        Some(5)
    );
}

#[tokio::test]
async fn delete_collection_with_selector() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for (n, l) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let o: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": n, "labels": {"grp": l}}})).unwrap();
        cms.create(&PostParams::default(), &o).await.unwrap();
    }
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("grp=x"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, vec!["c".to_string()]);
}

#[tokio::test]
async fn apply_keys_ports_by_port_and_protocol() {
    let (_env, client) = env().await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let dns = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "dns"},
        "spec": {"selector": {"matchLabels": {"app": "dns"}}, "template": {"metadata": {"labels": {"app": "dns"}},
            "spec": {"containers": [{"name": "dns", "image": "coredns", "ports": [
                {"containerPort": 53, "protocol": "UDP", "name": "dns"},
                {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"},
                {"containerPort": 9153, "name": "metrics"}]}]}}}});
    let pp = PatchParams::apply("dns-mgr");
    deps.patch("dns", &pp, &Patch::Apply(&dns)).await.unwrap();
    let d = deps.patch("dns", &pp, &Patch::Apply(&dns)).await.unwrap();
    let ports = d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .ports
        .clone()
        .unwrap();
    assert_eq!(ports.len(), 3, "{ports:?}");
    let f = to_value(&d.metadata.managed_fields.unwrap()[0].fields_v1);
    let c = &f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"dns\"}"]["f:ports"];
    assert!(
        c["k:{\"containerPort\":53,\"protocol\":\"UDP\"}"].is_object(),
        "{c}"
    );
    assert!(
        c["k:{\"containerPort\":53,\"protocol\":\"TCP\"}"].is_object(),
        "{c}"
    );
    assert!(
        c["k:{\"containerPort\":9153,\"protocol\":\"TCP\"}"].is_object(),
        "{c}"
    );

    // a Service re-applied without protocol keeps one port (protocol defaults to TCP)
    let svcs: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client, "default");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns"},
        "spec": {"selector": {"app": "dns"}, "ports": [{"port": 53, "protocol": "UDP", "name": "dns"}, {"port": 80, "name": "http"}]}});
    svcs.patch("dns", &pp, &Patch::Apply(&svc)).await.unwrap();
    let s = svcs.patch("dns", &pp, &Patch::Apply(&svc)).await.unwrap();
    let ports = s.spec.unwrap().ports.unwrap();
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert_eq!(ports[1].protocol.as_deref(), Some("TCP"));
}

#[tokio::test]
async fn lease_locking_the_way_kube_lease_manager_does() {
    use k8s_openapi::api::coordination::v1::Lease;
    let (_env, client) = env().await;
    let leases: Api<Lease> = Api::namespaced(client, "default");
    leases
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "leader"}})).unwrap(),
        )
        .await
        .unwrap();
    let lock = |who: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "spec": {"holderIdentity": who, "acquireTime": "2025-01-01T00:00:00.000000Z", "renewTime": "2025-01-01T00:00:00.000000Z", "leaseDurationSeconds": 15}})
    };
    // an apply configuration without metadata.name takes the URL's name
    leases
        .patch(
            "leader",
            &PatchParams::apply("lease-a"),
            &Patch::Apply(lock("a")),
        )
        .await
        .unwrap();
    // a second contender conflicts on holderIdentity
    let e = leases
        .patch(
            "leader",
            &PatchParams::apply("lease-b"),
            &Patch::Apply(lock("b")),
        )
        .await
        .unwrap_err();
    let s = status_of(e);
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert!(s.message.contains(".spec.holderIdentity"), "{}", s.message);
    // the holder releases with a strategic merge patch of nulls; then b can take it
    let release = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "spec": {"acquireTime": null, "renewTime": null, "holderIdentity": null, "leaseDurationSeconds": null}});
    leases
        .patch(
            "leader",
            &PatchParams {
                field_manager: Some("lease-a".into()),
                ..Default::default()
            },
            &Patch::Strategic(release),
        )
        .await
        .unwrap();
    let l = leases
        .patch(
            "leader",
            &PatchParams::apply("lease-b"),
            &Patch::Apply(lock("b")),
        )
        .await
        .unwrap();
    assert_eq!(l.spec.unwrap().holder_identity.as_deref(), Some("b"));
}
