//! `nats`: the event JSON published on the subject in `channel` of the server in `address`,
//! with user/password authentication. A small client of NATS's text protocol: INFO, CONNECT,
//! PUB, then PING/PONG to flush, as nats.go's Publish + Flush do.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::Settings;
use crate::event::Event;

/// One message to publish.
#[derive(Clone, Debug)]
pub struct Publish {
    pub server: String,
    pub subject: String,
    pub username: String,
    pub password: String,
    pub payload: Vec<u8>,
}

pub fn build(s: &Settings, event: &Event) -> Result<Publish, String> {
    if s.url.is_empty() {
        return Err("NATS server (address) cannot be empty".into());
    }
    if s.channel.is_empty() {
        return Err("NATS subject (channel) cannot be empty".into());
    }
    if s.secret_data.get("creds").is_some_and(|v| !v.is_empty())
        || s.secret_data.get("nkey").is_some_and(|v| !v.is_empty())
    {
        return Err("NATS creds and nkey authentication are not supported yet".into());
    }
    let (username, password) = if !s.username.is_empty() && !s.password.is_empty() {
        (s.username.clone(), s.password.clone())
    } else {
        (String::new(), String::new())
    };
    Ok(Publish {
        server: s.url.clone(),
        subject: s.channel.clone(),
        username,
        password,
        payload: event.to_go_json(),
    })
}

/// `host:port` of a NATS URL (`nats://host:port`, `host:port` or `host`; default port 4222).
fn address(server: &str) -> Result<String, String> {
    let first = server.split(',').next().unwrap_or_default().trim();
    let rest = first
        .strip_prefix("nats://")
        .or_else(|| first.strip_prefix("tcp://"))
        .unwrap_or(first);
    if first.starts_with("tls://") || first.starts_with("wss://") || first.starts_with("ws://") {
        return Err(format!("unsupported NATS URL scheme in {first:?}"));
    }
    let hostport = rest
        .rsplit('@')
        .next()
        .unwrap_or(rest)
        .trim_end_matches('/');
    if hostport.is_empty() {
        return Err(format!("invalid NATS server URL {first:?}"));
    }
    Ok(if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:4222")
    })
}

pub async fn publish(p: &Publish) -> Result<(), String> {
    let io = |e: std::io::Error| format!("error connecting to server: {e}");
    let addr = address(&p.server).map_err(|e| format!("error connecting to server: {e}"))?;
    let stream = tokio::net::TcpStream::connect(&addr).await.map_err(io)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = String::new();
    lines.read_line(&mut line).await.map_err(io)?;
    if !line.starts_with("INFO ") {
        return Err(format!(
            "error connecting to server: unexpected greeting {:?}",
            line.trim_end()
        ));
    }
    let mut connect = serde_json::json!({
        "verbose": false, "pedantic": false, "tls_required": false,
        "name": "NATS Provider Publisher", "lang": "rust", "version": env!("CARGO_PKG_VERSION"),
        "protocol": 1, "echo": true, "headers": false, "no_responders": false,
    });
    if !p.username.is_empty() {
        connect["user"] = p.username.clone().into();
        connect["pass"] = p.password.clone().into();
    }
    let mut out = format!("CONNECT {connect}\r\nPING\r\n").into_bytes();
    write.write_all(&out).await.map_err(io)?;
    // The first PONG confirms the connection (authentication errors come as -ERR).
    wait_pong(&mut lines, "error connecting to server").await?;
    out.clear();
    out.extend_from_slice(format!("PUB {} {}\r\n", p.subject, p.payload.len()).as_bytes());
    out.extend_from_slice(&p.payload);
    out.extend_from_slice(b"\r\nPING\r\n");
    write
        .write_all(&out)
        .await
        .map_err(|e| format!("error publishing message to server: {e}"))?;
    wait_pong(&mut lines, "error publishing message to server").await?;
    let _ = write.shutdown().await;
    Ok(())
}

async fn wait_pong<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut R,
    what: &str,
) -> Result<(), String> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = tokio::time::timeout(Duration::from_secs(10), lines.read_line(&mut line))
            .await
            .map_err(|_| format!("{what}: timeout"))?
            .map_err(|e| format!("{what}: {e}"))?;
        if n == 0 {
            return Err(format!("{what}: connection closed"));
        }
        let l = line.trim_end();
        if l == "PONG" {
            return Ok(());
        }
        if let Some(err) = l.strip_prefix("-ERR ") {
            return Err(format!("{what}: nats: {}", err.trim_matches('\'')));
        }
        // +OK, INFO updates and PINGs from the server are fine.
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses() {
        assert_eq!(
            super::address("nats://127.0.0.1:4333").unwrap(),
            "127.0.0.1:4333"
        );
        assert_eq!(super::address("example.com").unwrap(), "example.com:4222");
        assert_eq!(super::address("nats://u:p@h:1").unwrap(), "h:1");
        assert!(super::address("tls://h:1").is_err());
    }
}
