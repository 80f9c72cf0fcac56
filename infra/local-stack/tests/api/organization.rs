use crate::helpers::TestApp;
use serde_json::json;

#[tokio::test]
async fn settings_merge_key_by_key_and_null_removes_one() {
    let app = TestApp::spawn().await;
    app.patch("/organization", "org-a", json!({ "settings": { "currency": "EUR", "language": "fr" } }))
        .await
        .expect(200);
    let org = app
        .patch("/organization", "org-a", json!({ "settings": { "language": null, "timezone": "Europe/Brussels" } }))
        .await
        .expect(200);
    assert_eq!(org["id"], "org-a");
    assert_eq!(org["settings"], json!({ "currency": "EUR", "timezone": "Europe/Brussels" }));
    assert_eq!(app.get("/organization", "org-b").await.expect(200)["settings"], json!({}));
}

#[tokio::test]
async fn invalid_organization_patches_are_refused() {
    let app = TestApp::spawn().await;
    for body in
        [json!({ "settings": { "timezone": "Mars/Olympus" } }), json!({ "settings": 3 }), json!({ "id": "org-b" })]
    {
        assert_eq!(app.patch("/organization", "org-a", body.clone()).await.status.as_u16(), 400, "{body}");
    }
}
