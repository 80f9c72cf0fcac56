//! Calendly at real team sizes: organizations of 150+ members (every list paginated, the
//! member list refreshed daily), every member's event types in the picker, a 12,000-event
//! organization synced upcoming bookings first.

use crate::helpers::{StoreKind, TestApp, in_days};
use calendly_sim::{BookingSpec, SimConfig, SimUser};
use local_stack::StackOptions;
use serde_json::{Value, json};

async fn connect_organization(app: &TestApp, org: &str, admin: &SimUser) -> Value {
    let start = app.post("/calendly/connect", org, json!({ "scope": "organization" })).await.expect(200);
    let code = app.sim.approve(admin, start["authorize_url"].as_str().unwrap()).expect("approved");
    let state = start["state"].as_str().unwrap();
    let mut answer =
        app.post("/auth/calendly/callback", org, json!({ "code": code, "state": state })).await.expect(200);
    answer["sync"] = app.wait_for_sync_within(org, std::time::Duration::from_secs(300)).await;
    answer
}

fn booking(name: &str, email: &str, days: i64) -> BookingSpec {
    BookingSpec::new(name, email, "Découverte 30min", in_days(days))
}

async fn a_150_member_organization_is_covered_whole_and_its_members_are_never_prospects(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    let team = app.sim.add_team(&admin, 150);
    // Members 101–150 are on the memberships' second page.
    app.sim.seed_bookings(&team[139], vec![booking("Member 120", "member120@team.example", 2)]);
    app.sim.seed_bookings(&team[129], vec![booking("Outside Lead", "lead@client.example", 3)]);
    let answer = connect_organization(&app, "org-a", &admin).await;
    assert_eq!(answer["scope"], "organization", "{answer}");
    assert_eq!(answer["sync"]["state"], "succeeded", "{answer}");
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["members_covered"], 151, "{status}");
    assert!(app.prospect_by_email("org-a", "lead@client.example").await.is_some());
    assert!(app.prospect_by_email("org-a", "member120@team.example").await.is_none(), "a colleague is no lead");
    assert!(app.sim.request_count("organization_memberships") >= 3, "the role, then both pages of members");

    // A hire after the connect books a colleague: the daily refresh knows them before the sync.
    let hire = app.sim.add_colleague(&admin, "New Hire", "new.hire@team.example");
    app.sim.seed_bookings(&team[9], vec![booking("New Hire", "new.hire@team.example", 4)]);
    app.advance_clocks(chrono::Duration::hours(25));
    let ran = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(ran["queued"], 1);
    assert_eq!(app.wait_for_sync("org-a").await["state"], "succeeded");
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["members_covered"], 152);
    assert!(app.prospect_by_email("org-a", &hire.email).await.is_none(), "the hire is a member, not a lead");
}

crate::helpers::on_both_stores!(a_150_member_organization_is_covered_whole_and_its_members_are_never_prospects, kind);

#[tokio::test]
async fn in_organization_scope_the_picker_lists_every_members_types_and_a_filter_from_it_keeps_them() {
    let app = TestApp::spawn().await;
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    let team = app.sim.add_team(&admin, 120);
    // The same name at every member: each member's own event type.
    app.sim.seed_bookings(&admin, vec![BookingSpec::new("Admin Lead", "a@client.example", "Démo", in_days(2))]);
    app.sim.seed_bookings(&team[109], vec![BookingSpec::new("Colleague Lead", "c@client.example", "Démo", in_days(2))]);
    for member in &team[..109] {
        app.sim.seed_bookings(member, vec![BookingSpec::new("Other", "o@client.example", "Autre", in_days(9))]);
    }
    connect_organization(&app, "org-a", &admin).await;
    let picker = app.get("/calendly/event-types", "org-a").await.expect(200);
    let items = picker["items"].as_array().unwrap();
    assert_eq!(items.len(), 111, "every member's types, past the first page of 100");
    let demos: Vec<&Value> = items.iter().filter(|t| t["name"] == "Démo").collect();
    assert_eq!(demos.len(), 2, "{demos:?}");
    assert_ne!(demos[0]["uri"], demos[1]["uri"], "each member has their own event type");
    let colleagues = demos.iter().find(|t| t["host_name"] == "Member 110").expect("the host is named");
    assert_eq!(colleagues["host_user_uri"], team[109].uri);

    // Picking the colleague's type brings the colleague's bookings of it, and only those.
    app.patch("/calendly/settings", "org-a", json!({ "event_types": [colleagues["uri"]] })).await.expect(200);
    app.seed(&team[109], "Second Lead", "second@client.example", "Démo", in_days(5));
    app.seed(&admin, "Admin Second", "admin.second@client.example", "Démo", in_days(5));
    app.sync("org-a").await;
    assert!(app.prospect_by_email("org-a", "second@client.example").await.is_some());
    assert!(app.prospect_by_email("org-a", "admin.second@client.example").await.is_none());
}

#[tokio::test]
async fn upcoming_bookings_are_synced_before_the_past_part_of_the_window() {
    // 40 requests a second: the job pauses long before it is done.
    let simulator =
        SimConfig { rate_limit: 40, rate_window: std::time::Duration::from_secs(1), ..SimConfig::default() };
    let app = TestApp::spawn_with(StackOptions { simulator, ..Default::default() }).await;
    let host = app.host("Camille Martin");
    let past: Vec<BookingSpec> =
        (0..100).map(|i| booking(&format!("Past {i}"), &format!("past{i}@x.example"), -1 - (i % 25))).collect();
    let upcoming: Vec<BookingSpec> =
        (0..100).map(|i| booking(&format!("Next {i}"), &format!("next{i}@x.example"), 1 + (i % 60))).collect();
    app.sim.seed_bookings(&host, past);
    app.sim.seed_bookings(&host, upcoming);
    app.connect_queued("org-a", &host).await;
    // At the first pause, what is recorded is upcoming only.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let recorded = loop {
        let status = app.get("/calendly/status", "org-a").await.expect(200);
        if !status["sync"]["waiting_until"].is_null() || status["sync"]["state"] == "succeeded" {
            break app.get("/calendly/events?limit=100", "org-a").await.expect(200)["items"]
                .as_array()
                .unwrap()
                .clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "the job never paused: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(!recorded.is_empty() && recorded.len() < 200, "{}", recorded.len());
    let now = chrono::Utc::now();
    for b in &recorded {
        let start: chrono::DateTime<chrono::Utc> = b["event_start_time"].as_str().unwrap().parse().unwrap();
        assert!(start > now, "a past booking came before the upcoming ones were done: {b}");
    }
    let ended = app.wait_for_sync_within("org-a", std::time::Duration::from_secs(60)).await;
    assert_eq!((ended["state"].as_str(), ended["bookings_new"].as_u64()), (Some("succeeded"), Some(200)), "{ended}");
}

#[tokio::test]
async fn a_12000_event_organization_is_synced_whole() {
    // Calendly's limit is the bench's business (`scripts/bench`); here, the size.
    let simulator = SimConfig { rate_limit: 1_000_000, ..SimConfig::default() };
    let app = TestApp::spawn_with(StackOptions { simulator, ..Default::default() }).await;
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    let team = app.sim.add_team(&admin, 149);
    app.sim.set_webhook_deliveries(false);
    for (n, member) in std::iter::once(&admin).chain(&team).enumerate() {
        let specs = (0..80)
            .map(|i| booking(&format!("Lead {n}-{i}"), &format!("lead{n}x{i}@client.example"), -29 + (i % 200)))
            .collect();
        app.sim.seed_bookings(member, specs);
    }
    let answer = connect_organization(&app, "org-a", &admin).await;
    let ended = &answer["sync"];
    assert_eq!(ended["state"], "succeeded", "{ended}");
    assert_eq!(ended["events_seen"], 12_000, "{ended}");
    assert_eq!(ended["bookings_new"], 12_000, "{ended}");
    // Upcoming part, then past part: 120 pages of 100, one more where the parts meet.
    assert!((120..=121).contains(&app.sim.request_count("scheduled_events")));
}

/// The simulator's subscription rules are Calendly's, not kinder: one user's URL once per
/// organization (other users may share it), organization listings and others' deletions for
/// owners and admins only.
#[tokio::test]
async fn the_simulator_enforces_calendlys_subscription_rules() {
    let app = TestApp::spawn().await;
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    let member = app.sim.add_colleague(&admin, "Bob Sales", "bob@team.example");
    let outsider = app.host("Olga Outside");
    let base = app.sim.base_url().to_string();
    let create = |user: &SimUser, url: &str| {
        let body = json!({ "url": url, "events": ["invitee.created"], "organization": user.organization_uri, "user": user.uri, "scope": "user" });
        app.http
            .post(format!("{base}/webhook_subscriptions"))
            .bearer_auth(app.sim.access_token_of(user))
            .json(&body)
            .send()
    };
    let url = "https://hooks.example/one";
    let admins = create(&admin, url).await.unwrap();
    assert_eq!(admins.status().as_u16(), 201);
    let admins: Value = admins.json().await.unwrap();
    assert_eq!(create(&admin, url).await.unwrap().status().as_u16(), 409, "the same user's URL twice");
    assert_eq!(create(&member, url).await.unwrap().status().as_u16(), 201, "another user may share it");
    assert_eq!(create(&outsider, url).await.unwrap().status().as_u16(), 201, "another organization too");

    let list = |user: &SimUser, scope: &str| {
        app.http
            .get(format!("{base}/webhook_subscriptions"))
            .bearer_auth(app.sim.access_token_of(user))
            .query(&[("organization", user.organization_uri.as_str()), ("scope", scope)])
            .send()
    };
    assert_eq!(list(&member, "organization").await.unwrap().status().as_u16(), 403);
    assert_eq!(list(&admin, "organization").await.unwrap().status().as_u16(), 200);
    let uuid = admins["resource"]["uri"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let delete = |user: &SimUser| {
        app.http
            .delete(format!("{base}/webhook_subscriptions/{uuid}"))
            .bearer_auth(app.sim.access_token_of(user))
            .send()
    };
    assert_eq!(delete(&member).await.unwrap().status().as_u16(), 403, "a member can't delete an admin's");
    assert_eq!(delete(&outsider).await.unwrap().status().as_u16(), 404, "nor anyone outside the organization");
    assert_eq!(delete(&admin).await.unwrap().status().as_u16(), 204);
}
