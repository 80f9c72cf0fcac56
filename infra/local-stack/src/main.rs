//! `local-stack`: runs the whole product on 127.0.0.1 (see README, "The two commands").

use local_stack::{LocalStack, StackOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::telemetry::init(false);
    let port = std::env::var("PORT").ok().map(|p| p.parse::<u16>()).transpose()?.unwrap_or(3000);
    let schedule = std::env::var("LOCAL_SCHEDULE_SECONDS").ok().map(|s| s.parse::<u64>()).transpose()?.unwrap_or(60);
    // The console at `/` is the frontend: Calendly's callback sends the browser back to it.
    let mut env = std::collections::HashMap::new();
    if std::env::var("FRONTEND_URL").is_err() {
        env.insert("FRONTEND_URL".to_string(), format!("http://127.0.0.1:{port}"));
    }
    let stack = LocalStack::start(StackOptions {
        port,
        env,
        schedule_every: Some(schedule),
        read_process_env: true,
        ..Default::default()
    })
    .await?;
    let url = stack.url();
    let addr = stack.addr;
    let token = stack.jwt(local_stack::console::DEMO_USER, local_stack::console::DEMO_ORGANIZATION);
    match stack.seed_demo() {
        Some(host) => println!(
            "\nVelvena Calendly — local stack on {url} ({} store, Calendly simulator)\n\
             Demo host: {} <{}> with 4 bookings.\n\n\
             Open {url}/ in a browser: connect Calendly, simulate bookings, watch prospects arrive live.\n\n\
             Or by hand: export TOKEN={token}\n\
             1. curl -s -X POST {url}/calendly/connect -H \"Authorization: Bearer $TOKEN\"\n\
             2. follow authorize_url (curl -si \"<authorize_url>\"): the simulator approves and the callback\n\
                sends the browser to {url}/settings/integrations?calendly_code=…&calendly_state=…\n\
             3. complete it as the user who started it (a GET alone connects nothing):\n\
                curl -s -X POST {url}/auth/calendly/callback -H \"Authorization: Bearer $TOKEN\" \\\n\
                     -H 'content-type: application/json' -d '{{\"code\": \"<code>\", \"state\": \"<state>\"}}'\n\
             4. curl -s {url}/calendly/status -H \"Authorization: Bearer $TOKEN\"   (and /prospects, /notifications)\n\
             Scheduled sync every {schedule} s, or now: curl -s -X POST {url}/_local/scheduled-sync\n\
             Live pushes: ws://{addr}/ws?token=$TOKEN\n",
            if stack.dynamo.is_some() { "DynamoDB" } else { "embedded" },
            host.name,
            host.email
        ),
        None => {
            println!("\nVelvena Calendly — local stack on {url}, talking to the real Calendly.\nexport TOKEN={token}\n")
        }
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}
