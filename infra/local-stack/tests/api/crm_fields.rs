//! Bookings as CRM fields: the field map (default and the organization's), applied once per
//! booking with its write, never over a salesperson's edit under `fill_empty`; the prospect
//! fields through the prospects API; the settings that set the map, refused when wrong.

use crate::helpers::{StoreKind, TestApp, in_days, on_both_stores};
use calendly_sim::BookingSpec;
use serde_json::{Value, json};

fn field(source: &str, target: &str, mode: &str) -> Value {
    json!({ "source": source, "target": target, "mode": mode })
}

async fn the_default_map_takes_the_phone_from_the_sms_number_else_the_call_and_keeps_a_typed_one(app: TestApp) {
    let host = app.host("Camille Martin");
    app.post("/prospects", "org-a", json!({ "email": "known@example.com", "phone": "01 02 03 04 05" }))
        .await
        .expect(201);
    let mut called = BookingSpec::new("Carl Call", "called@example.com", "Appel découverte", in_days(2));
    called.call_phone = Some("+33 7 00 00 00 01".into());
    let mut texted = BookingSpec::new("Sam Sms", "texted@example.com", "Appel découverte", in_days(3));
    texted.text_reminder_number = Some("+33 6 11 22 33 44".into());
    texted.call_phone = Some("+33 7 00 00 00 02".into());
    let mut known = BookingSpec::new("Kim Known", "known@example.com", "Appel découverte", in_days(4));
    known.text_reminder_number = Some("+33 6 99 99 99 99".into());
    known.guests = vec!["associate@example.com".into()];
    app.sim.seed_bookings(&host, vec![called, texted, known]);
    app.connect("org-a", &host).await;

    let phone = async |email: &str| app.prospect_by_email("org-a", email).await.unwrap()["phone"].clone();
    assert_eq!(phone("called@example.com").await, "+33 7 00 00 00 01", "an outbound call's number");
    assert_eq!(phone("texted@example.com").await, "+33 6 11 22 33 44", "the SMS number first");
    assert_eq!(phone("known@example.com").await, "01 02 03 04 05", "fill_empty keeps what was typed");
    let known = app.prospect_by_email("org-a", "known@example.com").await.unwrap();
    assert!(known["owner_email"].is_null(), "user scope: no owner by default: {known}");
    assert_eq!(known["custom_fields"], json!({}));

    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["field_map_is_default"], true);
    assert_eq!(
        status["field_map"],
        json!([field("text_reminder_number", "phone", "fill_empty"), field("location_phone", "phone", "fill_empty"),])
    );

    let events = app.get("/calendly/events?limit=10", "org-a").await.expect(200)["items"].as_array().unwrap().clone();
    let of = |email: &str| events.iter().find(|e| e["invitee_email"] == email).unwrap().clone();
    assert_eq!(of("called@example.com")["location"], "+33 7 00 00 00 01");
    assert_eq!(of("texted@example.com")["invitee_phone"], "+33 6 11 22 33 44");
    assert_eq!(of("known@example.com")["guests"][0]["email"], "associate@example.com");
    assert!(of("known@example.com")["guests"][0]["created_at"].is_string());
}

on_both_stores!(the_default_map_takes_the_phone_from_the_sms_number_else_the_call_and_keeps_a_typed_one);

async fn a_custom_map_fills_fields_once_per_booking_and_fill_empty_keeps_a_salespersons_edit(app: TestApp) {
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let map = json!([
        field("question: Votre entreprise ? ", "company", "fill_empty"),
        field("utm_campaign", "custom.campaign", "overwrite"),
        field("event_name", "custom.last_event", "overwrite"),
        field("host_name", "owner_name", "fill_empty"),
    ]);
    let status = app.patch("/calendly/settings", "org-a", json!({ "field_map": map })).await.expect(200);
    assert_eq!(status["field_map_is_default"], false);
    assert_eq!(status["field_map"][0]["source"], "question:Votre entreprise ?", "the question is trimmed");
    // Calendly on a bad day: each delivery twice, in reverse order.
    app.sim.set_chaotic_deliveries(true);

    let mut first = BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", in_days(2));
    first.questions = vec![("VOTRE ENTREPRISE ?".into(), "Acme".into())];
    first.utm = Some(("google".into(), "cpc".into(), "hiver".into()));
    let booked = app.sim.book(&host, first).await;
    let john = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    assert_eq!(john["company"], "Acme", "the question matched whatever its case: {john}");
    assert_eq!(john["custom_fields"], json!({ "campaign": "hiver", "last_event": "Découverte 30min" }));
    assert_eq!(john["owner_name"], "Camille Martin");
    assert!(john["phone"].is_null(), "a map set replaces the default one");

    // A salesperson corrects the company and the campaign.
    let id = john["id"].as_str().unwrap();
    let edit =
        json!({ "company": "Acme Corp", "custom_fields": { "campaign": "salon", "last_event": "Découverte 30min" } });
    app.patch(&format!("/prospects/{id}"), "org-a", edit).await.expect(200);

    // A change of the same booking applies nothing again (the map is the first write's).
    app.sim.cancel(&booked, "Empêchement").await;
    app.sync("org-a").await;
    let john = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    assert_eq!(john["company"], "Acme Corp");
    assert_eq!(john["custom_fields"]["campaign"], "salon", "a cancellation is no new booking: {john}");

    // A further booking: fill_empty keeps the edit, overwrite takes the booking's value.
    let mut second = BookingSpec::new("John Doe", "john@example.com", "Démo produit", in_days(5));
    second.questions = vec![("Votre entreprise ?".into(), "Other Co".into())];
    second.utm = Some(("newsletter".into(), "email".into(), "printemps".into()));
    app.sim.book(&host, second).await;
    app.sync("org-a").await;
    let john = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    assert_eq!(john["company"], "Acme Corp", "fill_empty never overwrites: {john}");
    assert_eq!(john["custom_fields"], json!({ "campaign": "printemps", "last_event": "Démo produit" }));
    let notes = john["notes"].as_str().unwrap();
    assert_eq!(notes.matches("Rendez-vous Calendly prévu le").count(), 2, "one line per booking: {notes}");
    assert_eq!(notes.matches("Rendez-vous Calendly annulé").count(), 1, "{notes}");
    assert_eq!(app.prospects("org-a").await.len(), 1);
}

on_both_stores!(a_custom_map_fills_fields_once_per_booking_and_fill_empty_keeps_a_salespersons_edit);

async fn concurrent_deliveries_of_one_booking_fill_the_fields_and_the_note_once(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let host = app.host("Camille Martin");
    app.post("/prospects", "org-a", json!({ "email": "john@example.com", "notes": "Rencontré au salon" }))
        .await
        .expect(201);
    app.connect("org-a", &host).await;
    let map =
        json!([field("utm_campaign", "custom.campaign", "overwrite"), field("utm_source", "company", "fill_empty")]);
    app.patch("/calendly/settings", "org-a", json!({ "field_map": map })).await.expect(200);
    app.sim.set_webhook_deliveries(false);
    let mut spec = BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", in_days(2));
    spec.utm = Some(("google".into(), "cpc".into(), "hiver".into()));
    let booked = app.sim.book(&host, spec).await;
    let url = app.sim.webhook_subscriptions(&host)[0].1.clone();
    let now = shared::clock::Clock::now(app.stack.clock.as_ref());
    let (body, header) = app.sim.signed_delivery("invitee.created", &booked, now);

    // Twenty deliveries of the same booking and a sync, all at once.
    let deliveries =
        (0..20).map(|_| {
            let (http, url, body, header) = (app.http.clone(), url.clone(), body.clone(), header.clone());
            async move {
                http.post(&url).header("calendly-webhook-signature", header).body(body).send().await.unwrap().status()
            }
        });
    let (statuses, _) = tokio::join!(futures::future::join_all(deliveries), app.sync("org-a"));
    assert!(statuses.iter().all(|s| s.is_success()), "{statuses:?}");

    let john = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    assert_eq!(john["company"], "google");
    assert_eq!(john["custom_fields"], json!({ "campaign": "hiver" }));
    let notes = john["notes"].as_str().unwrap();
    assert_eq!(notes.matches("Rendez-vous Calendly prévu le").count(), 1, "{notes}");
    assert!(notes.starts_with("Rencontré au salon"), "{notes}");
}

on_both_stores!(concurrent_deliveries_of_one_booking_fill_the_fields_and_the_note_once, kind);

#[tokio::test]
async fn in_organization_scope_the_host_becomes_the_owner_by_default() {
    let app = TestApp::spawn().await;
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    let bob = app.sim.add_colleague(&admin, "Bob Sales", "bob.sales@team.example");
    app.seed(&bob, "Lead One", "lead1@client.example", "Découverte 30min", in_days(2));
    let start = app.post("/calendly/connect", "org-a", json!({ "scope": "organization" })).await.expect(200);
    let code = app.sim.approve(&admin, start["authorize_url"].as_str().unwrap()).unwrap();
    let body = json!({ "code": code, "state": start["state"] });
    app.post("/auth/calendly/callback", "org-a", body).await.expect(200);
    app.wait_for_sync("org-a").await;

    let lead = app.prospect_by_email("org-a", "lead1@client.example").await.unwrap();
    assert_eq!(lead["owner_email"], "bob.sales@team.example", "the round-robin assignee owns the lead: {lead}");
    assert_eq!(lead["owner_name"], "Bob Sales");
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    let targets: Vec<&str> =
        status["field_map"].as_array().unwrap().iter().map(|m| m["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["phone", "phone", "owner_email", "owner_name"]);

    // Back to the default after a map was set: `null`.
    app.patch("/calendly/settings", "org-a", json!({ "field_map": [field("event_name", "company", "overwrite")] }))
        .await
        .expect(200);
    let status = app.patch("/calendly/settings", "org-a", json!({ "field_map": null })).await.expect(200);
    assert_eq!(status["field_map_is_default"], true);
    assert_eq!(status["field_map"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_wrong_field_map_is_a_400_naming_the_entry_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let too_many: Vec<Value> = (0..51).map(|i| field("event_name", &format!("custom.k{i}"), "overwrite")).collect();
    for (map, named) in [
        (json!([field("utm_nowhere", "company", "fill_empty")]), "utm_nowhere"),
        (json!([field("event_name", "birthday", "fill_empty")]), "birthday"),
        (json!([field("event_name", "custom.a b", "fill_empty")]), "custom.a b"),
        (json!([field("event_name", "company", "fill_empty"), field("utm_source", "company", "overwrite")]), "company"),
        (json!([field("question:  ", "company", "fill_empty")]), "question:"),
        (Value::Array(too_many), "51"),
    ] {
        let reply = app.patch("/calendly/settings", "org-a", json!({ "field_map": map, "retention_days": 90 })).await;
        assert_eq!(reply.error_code(), "invalid_field_map", "{map}");
        let message = reply.expect(400)["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(named), "{message} names {named}");
    }
    let reply = app
        .patch(
            "/calendly/settings",
            "org-a",
            json!({ "field_map": [{ "source": "event_name", "target": "company", "mode": "sometimes" }] }),
        )
        .await;
    assert_eq!(reply.error_code(), "invalid_field", "{}", reply.body);
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["field_map_is_default"], true);
    assert!(status["retention_days"].is_null(), "nothing of a refused change is written");
    let reply = app.patch("/calendly/settings", "org-a", json!({ "guests_as_prospects": null })).await;
    assert_eq!(reply.error_code(), "invalid_field", "{}", reply.body);
}

async fn prospects_carry_company_owner_and_custom_fields(app: TestApp) {
    let body = json!({
        "email": "ada@example.com",
        "company": " Analytical Engines ",
        "owner_email": "camille@velvena.example",
        "owner_name": "Camille Martin",
        "custom_fields": { "secteur": "Industrie", "empty": "  " },
    });
    let created = app.post("/prospects", "org-a", body).await.expect(201);
    assert_eq!(created["company"], "Analytical Engines");
    assert_eq!(created["custom_fields"], json!({ "secteur": "Industrie" }), "empty values are dropped");
    let id = created["id"].as_str().unwrap();
    let path = format!("/prospects/{id}");
    let updated =
        app.patch(&path, "org-a", json!({ "owner_name": null, "custom_fields": { "taille": "12" } })).await.expect(200);
    assert!(updated["owner_name"].is_null());
    assert_eq!(updated["owner_email"], "camille@velvena.example", "absent fields stay");
    assert_eq!(updated["custom_fields"], json!({ "taille": "12" }), "the set is replaced as a whole");
    let read = app.get(&path, "org-a").await.expect(200);
    assert_eq!(read["custom_fields"], json!({ "taille": "12" }));
    let cleared = app.patch(&path, "org-a", json!({ "custom_fields": null })).await.expect(200);
    assert_eq!(cleared["custom_fields"], json!({}));

    let bad_key = app.patch(&path, "org-a", json!({ "custom_fields": { "a.b": "x" } })).await;
    assert_eq!(bad_key.error_code(), "invalid_field", "{}", bad_key.body);
    let long = "x".repeat(1_001);
    let bad_value = app.patch(&path, "org-a", json!({ "custom_fields": { "k": long } })).await;
    assert_eq!(bad_value.error_code(), "invalid_field", "{}", bad_value.body);
    let not_text = app.patch(&path, "org-a", json!({ "custom_fields": { "k": 3 } })).await;
    assert_eq!(not_text.error_code(), "invalid_field", "{}", not_text.body);
}

on_both_stores!(prospects_carry_company_owner_and_custom_fields);

/// The booking of `email` as `GET /calendly/events` lists it.
async fn booking_of(app: &TestApp, email: &str) -> Value {
    let events = app.get("/calendly/events?limit=100", "org-a").await.expect(200)["items"].as_array().unwrap().clone();
    events.into_iter().find(|e| e["invitee_email"] == email).unwrap_or_else(|| panic!("{email}'s booking"))
}

async fn a_no_show_marked_in_the_crm_is_marked_at_calendly_noted_once_and_taken_back(app: TestApp) {
    let host = app.host("Camille Martin");
    let past = app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(-1));
    app.seed(&host, "Jane Roe", "jane@example.com", "Découverte 30min", in_days(3));
    let gone = app.seed(&host, "Gus Gone", "gus@example.com", "Découverte 30min", in_days(-2));
    app.connect("org-a", &host).await;
    app.sim.cancel(&gone, "Empêchement").await;

    let id = booking_of(&app, "john@example.com").await["id"].as_str().unwrap().to_string();
    let path = format!("/calendly/events/{id}/no-show");
    let marked = app.post(&path, "org-a", json!({})).await.expect(200);
    assert_eq!(marked["no_show"], true, "{marked}");
    assert_eq!(app.sim.request_count("invitee_no_shows"), 1, "marked at Calendly");
    // Calendly's echo (`invitee_no_show.created`) and a sync find nothing new.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.sim.request_count("delivery_accepted") < 1 {
        assert!(tokio::time::Instant::now() < deadline, "Calendly echoes the mark");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.sync("org-a").await;
    let john = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    let notes = john["notes"].as_str().unwrap();
    assert_eq!(notes.matches("Absence au rendez-vous Calendly").count(), 1, "one Absence note: {notes}");
    let absences = app.notifications("org-a").await.iter().filter(|n| n["type"] == "calendly_no_show").count();
    assert_eq!(absences, 1);
    // Marked again: answered as it is, Calendly not called.
    assert_eq!(app.post(&path, "org-a", json!({})).await.expect(200)["no_show"], true);
    assert_eq!(app.sim.request_count("invitee_no_shows"), 1);

    let cleared = app.delete(&path, "org-a").await.expect(200);
    assert_eq!(cleared["no_show"], false, "{cleared}");
    assert_eq!(app.sim.request_count("invitee_no_shows"), 2, "taken back at Calendly");
    app.sync("org-a").await;
    assert_eq!(booking_of(&app, "john@example.com").await["no_show"], false, "Calendly agrees");
    let notes =
        app.prospect_by_email("org-a", "john@example.com").await.unwrap()["notes"].as_str().unwrap().to_string();
    assert_eq!(notes.matches("Absence au rendez-vous Calendly").count(), 1, "the note of what happened stays");

    // What can't be marked, said before Calendly is called.
    let future = booking_of(&app, "jane@example.com").await["id"].as_str().unwrap().to_string();
    let reply = app.post(&format!("/calendly/events/{future}/no-show"), "org-a", json!({})).await;
    assert_eq!(reply.error_code(), "event_not_started", "{}", reply.body);
    let reply = app.post(&format!("/calendly/events/{}/no-show", gone.invitee_uuid), "org-a", json!({})).await;
    assert_eq!(reply.error_code(), "booking_canceled", "{}", reply.body);
    let reply = app.post("/calendly/events/nobody/no-show", "org-a", json!({})).await;
    assert_eq!(reply.expect(404)["error"]["code"], "not_found");
    let reply = app.post(&path, "org-b", json!({})).await;
    assert_eq!(reply.status.as_u16(), 409, "another organization's booking is not theirs: {}", reply.body);
    assert_eq!(app.sim.request_count("invitee_no_shows"), 2);
    let _ = past;
}

on_both_stores!(a_no_show_marked_in_the_crm_is_marked_at_calendly_noted_once_and_taken_back);

#[tokio::test]
async fn a_no_show_without_the_write_scope_is_a_named_403() {
    let app = TestApp::spawn().await;
    app.sim.set_app_scopes(&["users:read", "scheduled_events:read", "event_types:read", "webhooks:write"]);
    let host = app.host("Camille Martin");
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(-1));
    app.connect("org-a", &host).await;
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert!(status["missing_scopes"].as_array().unwrap().iter().any(|s| s == "scheduled_events:write"), "{status}");
    let id = booking_of(&app, "john@example.com").await["id"].as_str().unwrap().to_string();
    let reply = app.post(&format!("/calendly/events/{id}/no-show"), "org-a", json!({})).await;
    assert_eq!(reply.error_code(), "calendly_scope_missing", "{}", reply.body);
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("scheduled_events:write"));
    assert_eq!(app.sim.request_count("invitee_no_shows"), 0);
}
