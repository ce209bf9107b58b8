//! A router that does what the message text tells it, to test the host's sandbox:
//!
//! | text | behaviour |
//! |---|---|
//! | `loop` | spins forever |
//! | `alloc:N` | allocates N MiB and touches every page |
//! | `big:N` | returns a reason of N KiB |
//! | `panic` | panics |
//! | `http:URL` | GETs URL, reason is `status:<code>` or `error:<message>` |
//! | `kv-set:K=V`, `kv-get:K`, `kv-list` | uses its key-value store |
//! | `log:N` | logs N lines of 100 bytes |
//! | `remember:X` / `recall` | keeps X in a static, to prove no state survives a call |
//! | `clock` | reports the wall clock in ms since the Unix epoch |
//! | `assign:A` | routes to queue `<tag config>` and assigns agent A |
//! | `team` | reason lists the queues (`id=w<waiting>:open/closed`) and agents (`id=<status>:<load>/<capacity>`) it sees |
//! | anything else | routes to queue `<tag config>` |

use seam_sdk::prelude::*;
use seam_sdk::router::AgentStatus;
use std::sync::Mutex;

static REMEMBERED: Mutex<Option<String>> = Mutex::new(None);

struct Hostile;

fn act(text: &str) -> Result<String, String> {
    if text == "loop" {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    } else if let Some(mb) = text.strip_prefix("alloc:") {
        let mb: usize = mb.parse().map_err(|_| "alloc:N needs a number")?;
        let mut blocks = Vec::new();
        for _ in 0..mb {
            blocks.push(vec![1u8; 1024 * 1024]);
        }
        Ok(format!("allocated {}", blocks.iter().map(Vec::len).sum::<usize>()))
    } else if let Some(kb) = text.strip_prefix("big:") {
        let kb: usize = kb.parse().map_err(|_| "big:N needs a number")?;
        Ok("x".repeat(kb * 1024))
    } else if text == "panic" {
        panic!("hostile plugin panics on purpose");
    } else if let Some(url) = text.strip_prefix("http:") {
        Ok(match http::Request::new("GET", url).send() {
            Ok(response) => format!("status:{}:{}", response.status, String::from_utf8_lossy(&response.body)),
            Err(e) => format!("error:{e}"),
        })
    } else if let Some(kv_pair) = text.strip_prefix("kv-set:") {
        let (k, v) = kv_pair.split_once('=').ok_or("kv-set:K=V")?;
        kv::set(k, v.as_bytes()).map(|()| "set".to_owned()).map_err(|e| format!("{e:?}"))
    } else if let Some(k) = text.strip_prefix("kv-get:") {
        kv::get(k)
            .map(|v| v.map_or("none".to_owned(), |v| format!("value:{}", String::from_utf8_lossy(&v))))
            .map_err(|e| format!("{e:?}"))
    } else if text == "kv-list" {
        kv::list_keys("", 100).map(|keys| keys.join(",")).map_err(|e| format!("{e:?}"))
    } else if let Some(n) = text.strip_prefix("log:") {
        let n: usize = n.parse().map_err(|_| "log:N needs a number")?;
        for i in 0..n {
            log::info(&format!("{i:>6} {}", "l".repeat(93)));
        }
        Ok(format!("logged {n}"))
    } else if let Some(x) = text.strip_prefix("remember:") {
        *REMEMBERED.lock().map_err(|_| "poisoned")? = Some(x.to_owned());
        Ok("remembered".into())
    } else if text == "clock" {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?;
        Ok(format!("clock:{}", now.as_millis()))
    } else if text == "recall" {
        Ok(format!("recalled:{:?}", REMEMBERED.lock().map_err(|_| "poisoned")?.clone()))
    } else {
        Ok(String::new())
    }
}

/// What the router sees of the team, in one line.
fn team(context: &RouteContext) -> String {
    let queues = context
        .queues
        .iter()
        .map(|q| format!("{}=w{}:{}", q.id, q.waiting, if q.open { "open" } else { "closed" }));
    let agents = context.agents.iter().map(|a| {
        let status = match a.status {
            AgentStatus::Online => "online",
            AgentStatus::Away => "away",
            AgentStatus::Offline => "offline",
        };
        format!("{}={status}:{}/{}", a.id, a.load, a.capacity)
    });
    queues.chain(agents).collect::<Vec<_>>().join(" ")
}

impl Router for Hostile {
    fn route(context: RouteContext) -> Result<Decision, String> {
        let tag = config::get("tag").unwrap_or_default();
        let text = context.text().unwrap_or_default().to_owned();
        if text == "team" {
            return Ok(Decision::to_queue(&tag, &team(&context)));
        }
        if let Some(agent) = text.strip_prefix("assign:") {
            return Ok(Decision { agent: Some(agent.to_owned()), ..Decision::to_queue(&tag, "assigned") });
        }
        let outcome = act(context.text().unwrap_or_default())?;
        Ok(Decision::to_queue(&tag, &outcome))
    }
}

seam_sdk::export_router!(Hostile);
