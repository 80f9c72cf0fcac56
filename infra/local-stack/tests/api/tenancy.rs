use crate::helpers::{TestApp, in_days};
use serde_json::json;

async fn organization_b_never_sees_or_changes_organization_a_data(app: TestApp) {
    let host_a = app.host("Host A");
    app.seed(&host_a, "John Doe", "john@example.com", "Découverte 30min", in_days(2));
    app.connect("org-a", &host_a).await;
    let a_prospect = app.prospects("org-a").await[0].clone();
    let id = a_prospect["id"].as_str().unwrap();

    assert!(app.prospects("org-b").await.is_empty());
    assert!(app.notifications("org-b").await.is_empty());
    assert!(app.get("/calendly/events", "org-b").await.expect(200)["items"].as_array().unwrap().is_empty());
    assert_eq!(app.get("/calendly/status", "org-b").await.expect(200)["connected"], false);
    assert_eq!(app.get(&format!("/prospects/{id}"), "org-b").await.status.as_u16(), 404);
    assert_eq!(app.patch(&format!("/prospects/{id}"), "org-b", json!({ "status": "lost" })).await.status.as_u16(), 404);
    assert_eq!(app.delete(&format!("/prospects/{id}"), "org-b").await.status.as_u16(), 404);
    assert_eq!(app.post("/calendly/sync", "org-b", json!({})).await.status.as_u16(), 409);
    app.post("/calendly/disconnect", "org-b", json!({})).await.expect(200);

    // A's data is intact and A is still connected.
    assert_eq!(app.get(&format!("/prospects/{id}"), "org-a").await.expect(200), a_prospect);
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["connected"], true);
}

#[tokio::test]
async fn the_same_invitee_email_in_two_organizations_makes_two_prospects() {
    let app = TestApp::spawn().await;
    let (host_a, host_b) = (app.host("Host A"), app.host("Host B"));
    app.seed(&host_a, "John Doe", "john@example.com", "Découverte 30min", in_days(2));
    app.seed(&host_b, "John Doe", "john@example.com", "Démo", in_days(3));
    app.connect("org-a", &host_a).await;
    app.connect("org-b", &host_b).await;
    let (a, b) = (app.prospects("org-a").await, app.prospects("org-b").await);
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_ne!(a[0]["id"], b[0]["id"]);
    assert!(a[0]["notes"].as_str().unwrap().contains("Découverte 30min"));
    assert!(b[0]["notes"].as_str().unwrap().contains("Démo"));
}

crate::helpers::on_both_stores!(organization_b_never_sees_or_changes_organization_a_data);
