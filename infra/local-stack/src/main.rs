//! `local-stack`: runs the whole product on 127.0.0.1 (see README "Run it locally").

use local_stack::{LocalStack, StackOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::telemetry::init(false);
    let port = std::env::var("PORT").ok().map(|p| p.parse::<u16>()).transpose()?.unwrap_or(3000);
    let schedule = std::env::var("LOCAL_SCHEDULE_SECONDS").ok().map(|s| s.parse::<u64>()).transpose()?.unwrap_or(60);
    let stack = LocalStack::start(StackOptions {
        port,
        schedule_every: Some(schedule),
        read_process_env: true,
        ..Default::default()
    })
    .await?;
    let url = stack.url();
    let addr = stack.addr;
    let token = stack.jwt("demo-user", "demo-org");
    match stack.seed_demo() {
        Some(host) => println!(
            "\nVelvena Calendly — local stack on {url} ({} store, Calendly simulator)\n\
             Demo host: {} <{}> with 4 bookings.\n\n\
             export TOKEN={token}\n\
             1. Start the connect:   curl -s -X POST {url}/calendly/connect -H \"Authorization: Bearer $TOKEN\"\n\
             2. Open authorize_url in a browser (or: curl -si \"<authorize_url>\"; follow the Location):\n\
                the simulator approves and redirects to {url}/auth/calendly/callback, whose page shows the\n\
                code and state (without FRONTEND_URL; with it, the browser goes to the frontend with them).\n\
             3. Complete it as the user who started it (a GET alone connects nothing):\n\
                curl -s -X POST {url}/auth/calendly/callback -H \"Authorization: Bearer $TOKEN\" \\\n\
                     -H 'content-type: application/json' -d '{{\"code\": \"<code>\", \"state\": \"<state>\"}}'\n\
                It connects and queues the initial sync job (progress: `sync` in the status, `calendly:sync` pushes).\n\
             4. Look:   curl -s {url}/calendly/status -H \"Authorization: Bearer $TOKEN\"\n\
                        curl -s {url}/prospects -H \"Authorization: Bearer $TOKEN\"\n\
                        curl -s {url}/notifications -H \"Authorization: Bearer $TOKEN\"\n\
                        curl -s -X POST {url}/calendly/sync -H \"Authorization: Bearer $TOKEN\"\n\
             Scheduled sync every {schedule} s, or now: curl -s -X POST {url}/_local/scheduled-sync\n\
             Live pushes: connect a WebSocket client to ws://{addr}/ws?token=$TOKEN (e.g. websocat)\n",
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
