//! A real SMTP server for the email tests: `tests/smtp/relay.py`, which runs aiosmtpd
//! (Debian's `python3-aiosmtpd`, installed by `tests/run.sh`) on a loopback port with AUTH,
//! optional STARTTLS, and recipient checks that refuse `reject*@` (550) and `later*@` (451).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The login the relay accepts.
pub const USER: &str = "seam-relay";
/// Its password.
pub const PASSWORD: &str = "relay-pw-7";

/// A running relay; killed when dropped.
pub struct SmtpRelay {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where it writes what it accepted.
    pub dir: PathBuf,
    child: Child,
}

/// One message the relay accepted.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// `MAIL FROM`.
    pub mail_from: String,
    /// `RCPT TO` addresses accepted.
    pub rcpt_tos: Vec<String>,
    /// The user that logged in.
    pub user: Option<String>,
    /// Whether the session was upgraded with STARTTLS.
    pub tls: bool,
    /// The DATA as received.
    pub raw: Vec<u8>,
}

impl Delivered {
    /// The raw message as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The first value of header `name` (unfolded), if any.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let head =
            text.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n ", " ").replace("\r\n\t", " ");
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    }
}

/// The Python that has aiosmtpd: `SEAM_TEST_PYTHON`, else Debian's `/usr/bin/python3`, else
/// `python3` on the path. Panics with what to install if none has it.
fn python() -> String {
    let candidates: Vec<String> = std::env::var("SEAM_TEST_PYTHON")
        .into_iter()
        .chain(["/usr/bin/python3".to_owned(), "python3".to_owned()])
        .collect();
    for candidate in &candidates {
        let ok = Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return candidate.clone();
        }
    }
    panic!(
        "no Python with aiosmtpd among {candidates:?}: install Debian's python3-aiosmtpd \
         (tests/run.sh does) or set SEAM_TEST_PYTHON"
    );
}

impl SmtpRelay {
    /// Starts the relay in scratch directory `name`; with `tls` (certificate and key PEM
    /// files) it requires STARTTLS before AUTH.
    pub fn start(name: &str, tls: Option<(&Path, &Path)>) -> SmtpRelay {
        let dir = crate::scratch(name);
        // A free port: bind, read it, release it for the relay.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/smtp/relay.py");
        let mut command = Command::new(python());
        command.arg(script).arg("--port").arg(port.to_string()).arg("--dir").arg(&dir);
        command.args(["--user", USER, "--password", PASSWORD]);
        if let Some((cert, key)) = tls {
            command.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/smtp/relay.py");
        let stdout = child.stdout.take().expect("relay stdout");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("relay output");
        assert_eq!(line.trim(), "ready", "the SMTP relay did not start");
        SmtpRelay { port, dir, child }
    }

    /// The messages accepted so far, in order.
    pub fn delivered(&self) -> Vec<Delivered> {
        let mut out = Vec::new();
        for n in 1.. {
            let base = self.dir.join(n.to_string());
            let Ok(meta) = std::fs::read(base.with_extension("json")) else { break };
            let meta: serde_json::Value = serde_json::from_slice(&meta).expect("relay metadata");
            let strings = |v: &serde_json::Value| -> Vec<String> {
                v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
            };
            out.push(Delivered {
                mail_from: meta["mail_from"].as_str().unwrap_or_default().to_owned(),
                rcpt_tos: strings(&meta["rcpt_tos"]),
                user: meta["user"].as_str().map(str::to_owned),
                tls: meta["tls"].as_bool().unwrap_or(false),
                raw: std::fs::read(base.with_extension("eml")).expect("relay message"),
            });
        }
        out
    }

    /// Waits up to 20 s until `n` messages were accepted.
    pub async fn wait_for(&self, n: usize) -> Vec<Delivered> {
        for _ in 0..200 {
            let got = self.delivered();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the SMTP relay got {} messages, expected {n}", self.delivered().len());
    }
}

impl Drop for SmtpRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
