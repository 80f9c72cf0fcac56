//! Teams: an owner or admin of a Calendly organization connects once with organization scope
//! and every member's bookings become prospects, their host recorded; a plain member asking
//! for it gets user scope and says why (Calendly answers members 403).

use crate::helpers::{TestApp, in_days};
use calendly_sim::BookingSpec;
use serde_json::{Value, json};

/// Connects `org` to `host`'s Calendly asking for `scope`; the callback's answer.
async fn connect_with_scope(app: &TestApp, org: &str, host: &calendly_sim::SimUser, scope: &str) -> Value {
    let start = app.post("/calendly/connect", org, json!({ "scope": scope })).await.expect(200);
    let code = app.sim.approve(host, start["authorize_url"].as_str().unwrap()).expect("approved");
    let state = start["state"].as_str().unwrap();
    app.post("/auth/calendly/callback", org, json!({ "code": code, "state": state })).await.expect(200)
}

async fn an_admin_brings_every_members_bookings(app: TestApp) {
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    let members: Vec<_> = ["Bob Sales", "Chloe Sales", "Dan Sales"]
        .iter()
        .map(|name| {
            app.sim.add_colleague(&admin, name, &format!("{}@team.example", name.to_lowercase().replace(' ', ".")))
        })
        .collect();
    for (i, member) in members.iter().enumerate() {
        let lead = format!("lead{i}@client.example");
        app.seed(member, &format!("Lead {i}"), &lead, "Découverte 30min", in_days(2 + i as i64));
    }
    // A member booking a colleague is no lead.
    app.seed(&members[0], "Chloe Sales", "chloe.sales@team.example", "Point interne", in_days(3));

    let answer = connect_with_scope(&app, "org-a", &admin, "organization").await;
    assert_eq!(answer["scope"], "organization", "{answer}");
    assert!(answer["scope_error"].is_null());
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(ended["state"], "succeeded", "{ended}");

    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["scope"], "organization");
    assert_eq!(status["members_covered"], 4, "the admin and three members");
    assert_eq!(status["calendly_organization_uri"], admin.organization_uri);

    let prospects = app.prospects("org-a").await;
    assert_eq!(prospects.len(), 3, "one prospect per member's lead, none for a colleague: {prospects:?}");
    let bookings =
        app.get("/calendly/events?limit=100", "org-a").await.expect(200)["items"].as_array().unwrap().clone();
    for (i, member) in members.iter().enumerate() {
        let booking = bookings
            .iter()
            .find(|b| b["invitee_email"] == format!("lead{i}@client.example"))
            .unwrap_or_else(|| panic!("lead {i}'s booking is recorded"));
        assert_eq!(booking["host_user_uri"], member.uri, "its host is recorded");
        assert_eq!(booking["host_name"], member.name);
        assert_eq!(booking["host_email"], member.email);
    }

    // A fourth member's booking arrives by the organization's webhook, live.
    let mut browser = app.browser("org-a").await;
    let newcomer = app.sim.add_colleague(&admin, "Eve Sales", "eve.sales@team.example");
    app.sim.book(&newcomer, BookingSpec::new("Late Lead", "late@client.example", "Démo produit", in_days(5))).await;
    let created = browser.expect_event("prospect:created", std::time::Duration::from_secs(10)).await;
    assert_eq!(created["email"], "late@client.example");
    let notification = browser.expect_event("notification", std::time::Duration::from_secs(10)).await;
    assert_eq!(notification["meta"]["host_email"], "eve.sales@team.example", "{notification}");
}

crate::helpers::on_both_stores!(an_admin_brings_every_members_bookings);

#[tokio::test]
async fn a_plain_member_asking_for_organization_scope_stays_in_user_scope_and_is_told_why() {
    let app = TestApp::spawn().await;
    let owner = app.host("Olga Owner");
    let member = app.sim.add_colleague(&owner, "Max Member", "max.member@team.example");
    app.seed(&owner, "Owner Lead", "owner.lead@client.example", "Découverte 30min", in_days(2));
    app.seed(&member, "Member Lead", "member.lead@client.example", "Découverte 30min", in_days(2));

    let answer = connect_with_scope(&app, "org-a", &member, "organization").await;
    assert_eq!(answer["scope"], "user", "{answer}");
    let why = answer["scope_error"].as_str().unwrap_or_default();
    assert!(why.contains("owners and admins") && why.contains("user"), "a clear reason: {why}");
    app.wait_for_sync("org-a").await;
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["scope"], "user");
    let emails: Vec<Value> = app.prospects("org-a").await.iter().map(|p| p["email"].clone()).collect();
    assert_eq!(emails, vec![json!("member.lead@client.example")], "only the member's own bookings");

    // Calendly itself refuses a member the organization's events and subscriptions.
    let token = app.sim.access_token_of(&member);
    let refused = app
        .http
        .get(format!("{}/scheduled_events", app.sim.base_url()))
        .query(&[("organization", member.organization_uri.as_str())])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn an_unknown_connect_option_is_refused() {
    let app = TestApp::spawn().await;
    let reply = app.post("/calendly/connect", "org-a", json!({ "scope": "everyone" })).await;
    assert_eq!(reply.status.as_u16(), 400);
    assert_eq!(reply.error_code(), "invalid_body");
}

async fn one_calendly_organization_feeds_one_organization_in_organization_scope(app: TestApp) {
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    let other_admin = app.sim.add_colleague(&admin, "Oscar Admin", "oscar.admin@team.example");
    app.sim.set_role(&other_admin, "admin");
    assert_eq!(connect_with_scope(&app, "org-a", &admin, "organization").await["scope"], "organization");
    app.wait_for_sync("org-a").await;

    // Another Velvena organization, through another admin of the same Calendly organization.
    let start = app.post("/calendly/connect", "org-b", json!({ "scope": "organization" })).await.expect(200);
    let code = app.sim.approve(&other_admin, start["authorize_url"].as_str().unwrap()).expect("approved");
    let reply = app.post("/auth/calendly/callback", "org-b", json!({ "code": code, "state": start["state"] })).await;
    assert_eq!(reply.status.as_u16(), 409, "{:?}", reply.body);
    assert_eq!(reply.error_code(), "calendly_organization_in_use");
    assert_eq!(app.get("/calendly/status", "org-b").await.expect(200)["connected"], false);
    // The user claim was let go too: that admin can still connect org-b in user scope.
    assert_eq!(connect_with_scope(&app, "org-b", &other_admin, "user").await["scope"], "user");

    // Once org-a disconnects, the Calendly organization is free.
    app.post("/calendly/disconnect", "org-a", json!({})).await.expect(200);
    let org_c = connect_with_scope(&app, "org-c", &admin, "organization").await;
    assert_eq!(org_c["scope"], "organization", "{org_c}");
}

crate::helpers::on_both_stores!(one_calendly_organization_feeds_one_organization_in_organization_scope);

#[tokio::test]
async fn an_admin_who_loses_the_role_falls_back_to_user_scope_with_a_notification() {
    let app = TestApp::spawn().await;
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    let member = app.sim.add_colleague(&admin, "Bob Sales", "bob.sales@team.example");
    assert_eq!(connect_with_scope(&app, "org-a", &admin, "organization").await["scope"], "organization");
    app.wait_for_sync("org-a").await;

    app.sim.set_role(&admin, "user");
    app.seed(&member, "Member Lead", "member.lead@client.example", "Découverte 30min", in_days(2));
    app.seed(&admin, "Own Lead", "own.lead@client.example", "Découverte 30min", in_days(3));
    let ended = app.sync("org-a").await;
    assert_eq!(ended["bookings_new"], 1, "the admin's own booking only: {ended}");
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["scope"], "user");
    assert!(status["members_covered"].is_null());
    let kinds: Vec<Value> = app.notifications("org-a").await.iter().map(|n| n["type"].clone()).collect();
    assert!(kinds.contains(&json!("calendly_scope_reduced")), "{kinds:?}");
    let emails: Vec<Value> = app.prospects("org-a").await.iter().map(|p| p["email"].clone()).collect();
    assert_eq!(emails, vec![json!("own.lead@client.example")]);
}

#[tokio::test]
async fn the_scope_changes_later_in_the_settings_for_an_admin_and_not_for_a_member() {
    let app = TestApp::spawn().await;
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    let member = app.sim.add_colleague(&admin, "Bob Sales", "bob.sales@team.example");
    app.seed(&member, "Member Lead", "member.lead@client.example", "Découverte 30min", in_days(2));
    app.connect("org-a", &admin).await;
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["scope"], "user");

    let status = app.patch("/calendly/settings", "org-a", json!({ "scope": "organization" })).await.expect(200);
    assert_eq!(status["scope"], "organization", "{status}");
    assert_eq!(status["members_covered"], 2);
    app.sync("org-a").await;
    assert!(app.prospect_by_email("org-a", "member.lead@client.example").await.is_some());
    // The subscription follows: a colleague's new booking arrives by webhook.
    let mut browser = app.browser("org-a").await;
    app.sim.book(&member, BookingSpec::new("Live Lead", "live@client.example", "Démo produit", in_days(4))).await;
    let created = browser.expect_event("prospect:created", std::time::Duration::from_secs(10)).await;
    assert_eq!(created["email"], "live@client.example");

    let back = app.patch("/calendly/settings", "org-a", json!({ "scope": "user" })).await.expect(200);
    assert_eq!(back["scope"], "user");
    assert!(back["members_covered"].is_null());

    // A plain member is refused, clearly, and stays in user scope.
    app.post("/calendly/disconnect", "org-a", json!({})).await.expect(200);
    app.connect("org-b", &member).await;
    let refused = app.patch("/calendly/settings", "org-b", json!({ "scope": "organization" })).await;
    assert_eq!(refused.status.as_u16(), 403, "{:?}", refused.body);
    assert_eq!(refused.error_code(), "calendly_scope_forbidden");
    assert_eq!(app.get("/calendly/status", "org-b").await.expect(200)["scope"], "user");
}

#[tokio::test]
async fn a_member_who_leaves_the_calendly_organization_stops_contributing() {
    let app = TestApp::spawn().await;
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    let member = app.sim.add_colleague(&admin, "Bob Sales", "bob.sales@team.example");
    app.seed(&member, "Early Lead", "early@client.example", "Découverte 30min", in_days(2));
    assert_eq!(connect_with_scope(&app, "org-a", &admin, "organization").await["scope"], "organization");
    app.wait_for_sync("org-a").await;
    assert!(app.prospect_by_email("org-a", "early@client.example").await.is_some());

    app.sim.leave_organization(&member);
    app.seed(&member, "Later Lead", "later@client.example", "Découverte 30min", in_days(3));
    app.sim.book(&member, BookingSpec::new("Live Lead", "live@client.example", "Démo produit", in_days(4))).await;
    app.sync("org-a").await;
    for email in ["later@client.example", "live@client.example"] {
        assert!(app.prospect_by_email("org-a", email).await.is_none(), "{email} is no longer the organization's");
    }
}
