use crate::helpers::TestApp;
use serde_json::json;

#[tokio::test]
async fn a_prospect_can_be_created_read_updated_and_deleted() {
    let app = TestApp::spawn().await;
    let created = app
        .post("/prospects", "org-a", json!({ "firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com", "phone": "+44 20", "notes": "Première note" }))
        .await
        .expect(201);
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["source"], "manual");
    assert_eq!(created["status"], "new");
    for field in
        ["id", "firstname", "lastname", "email", "phone", "status", "source", "notes", "created_at", "updated_at"]
    {
        assert!(created.get(field).is_some(), "missing {field}");
    }
    assert_eq!(app.get(&format!("/prospects/{id}"), "org-a").await.expect(200)["email"], "ada@example.com");

    let updated = app
        .patch(&format!("/prospects/{id}"), "org-a", json!({ "status": "qualified", "phone": null }))
        .await
        .expect(200);
    assert_eq!(updated["status"], "qualified");
    assert!(updated["phone"].is_null());
    assert_eq!(updated["notes"], "Première note");

    app.delete(&format!("/prospects/{id}"), "org-a").await.expect(204);
    assert_eq!(app.get(&format!("/prospects/{id}"), "org-a").await.status.as_u16(), 404);
    // The email is free again.
    app.post("/prospects", "org-a", json!({ "email": "ADA@example.com" })).await.expect(201);
}

#[tokio::test]
async fn invalid_bodies_are_400s_that_say_why() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({ "email": "not-an-email" }), "invalid_email"),
        (json!({ "email": 42 }), "invalid_field"),
        (json!({ "firstname": ["x"] }), "invalid_field"),
        (json!({ "email": "a@example.com", "favourite_colour": "blue" }), "unknown_field"),
        (json!({}), "invalid_body"),
        (json!([1, 2]), "invalid_body"),
    ];
    for (body, code) in cases {
        let reply = app.post("/prospects", "org-a", body.clone()).await;
        assert_eq!(reply.status.as_u16(), 400, "{body}");
        assert_eq!(reply.error_code(), code, "{body}");
    }
    let raw = app
        .http
        .post(app.url("/prospects"))
        .bearer_auth(app.token("org-a"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
}

async fn an_email_is_unique_per_organization_whatever_its_case(app: TestApp) {
    app.post("/prospects", "org-a", json!({ "email": "john@example.com" })).await.expect(201);
    let dup = app.post("/prospects", "org-a", json!({ "email": "John@Example.COM" })).await;
    assert_eq!(dup.status.as_u16(), 409);
    assert_eq!(dup.error_code(), "email_taken");
    app.post("/prospects", "org-b", json!({ "email": "john@example.com" })).await.expect(201);

    let other = app.post("/prospects", "org-a", json!({ "email": "other@example.com" })).await.expect(201);
    let clash = app
        .patch(
            &format!("/prospects/{}", other["id"].as_str().unwrap()),
            "org-a",
            json!({ "email": "JOHN@example.com" }),
        )
        .await;
    assert_eq!(clash.status.as_u16(), 409);
}

#[tokio::test]
async fn lists_page_with_a_cursor_and_filter_by_source() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.post("/prospects", "org-a", json!({ "email": format!("m{i}@example.com") })).await.expect(201);
    }
    app.post("/prospects", "org-a", json!({ "email": "c@example.com", "source": "calendly" })).await.expect(201);
    let page1 = app.get("/prospects?limit=4", "org-a").await.expect(200);
    assert_eq!(page1["items"].as_array().unwrap().len(), 4);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = app.get(&format!("/prospects?limit=4&cursor={cursor}"), "org-a").await.expect(200);
    assert_eq!(page2["items"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());
    let calendly = app.get("/prospects?source=calendly", "org-a").await.expect(200);
    assert_eq!(calendly["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.get("/prospects?limit=abc", "org-a").await.status.as_u16(), 400);
}

#[tokio::test]
async fn notifications_can_be_marked_read() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", crate::helpers::in_days(2));
    app.connect("org-a", &host).await;
    let id = app.notifications("org-a").await[0]["id"].as_str().unwrap().to_string();
    app.post(&format!("/notifications/{id}/read"), "org-a", json!({})).await.expect(200);
    assert_eq!(app.notifications("org-a").await[0]["read"], true);
    assert_eq!(app.post(&format!("/notifications/{id}/read"), "org-b", json!({})).await.status.as_u16(), 404);
}

crate::helpers::on_both_stores!(an_email_is_unique_per_organization_whatever_its_case);
