//! `azureeventhub`: the event sent to an Azure Event Hub.
//!
//! Upstream sends one event whose body is the event JSON (`json.Marshal(event)`) over AMQP 1.0
//! with the azeventhubs SDK, authenticated either by a SAS connection string in `address`
//! (`Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...;EntityPath=<hub>`) or by a
//! JWT in the Secret's `token`, with `address` = the hub and `channel` = the namespace. Here the
//! same body goes through Event Hubs' REST send API
//! (`POST https://<namespace>/<hub>/messages`) with a SAS token computed from the connection
//! string's key, or the JWT as bearer token: the transport differs, the event is the same.
//! A connection string with `UseDevelopmentEmulator=true` (only `sb://localhost:<port>`, as the
//! SDK allows) is sent over plain HTTP to that port.

use super::zulip::query_escape;
use super::{Request, Settings, Validate};
use crate::event::Event;

/// How long a computed SAS token is valid.
pub const SAS_VALIDITY_SECS: i64 = 3600;

/// The parts of a connection string upstream's SDK reads.
#[derive(Debug, Default, PartialEq)]
pub struct ConnectionString {
    pub endpoint: String,
    /// Host (and port) of the endpoint.
    pub namespace: String,
    pub key_name: Option<String>,
    pub key: Option<String>,
    pub entity_path: Option<String>,
    pub signature: Option<String>,
    pub emulator: bool,
}

/// Parses a connection string as the SDK does (keys case-insensitive, `;`-separated,
/// the value may contain `=`).
pub fn parse_connection_string(s: &str) -> Result<ConnectionString, String> {
    let mut c = ConnectionString::default();
    for part in s.split(';') {
        if part.is_empty() {
            continue;
        }
        let Some((key, value)) = part.split_once('=') else {
            return Err(
                "failed parsing connection string due to unmatched key value separated by '='"
                    .into(),
            );
        };
        let value = value.to_string();
        if key.eq_ignore_ascii_case("Endpoint") {
            let u = reqwest::Url::parse(&value).map_err(|_| {
                "failed parsing connection string due to an incorrectly formatted Endpoint value"
                    .to_string()
            })?;
            c.namespace = match (u.host_str(), u.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => String::new(),
            };
            c.endpoint = value;
        } else if key.eq_ignore_ascii_case("SharedAccessKeyName") {
            c.key_name = Some(value);
        } else if key.eq_ignore_ascii_case("SharedAccessKey") {
            c.key = Some(value);
        } else if key.eq_ignore_ascii_case("EntityPath") {
            c.entity_path = Some(value);
        } else if key.eq_ignore_ascii_case("SharedAccessSignature") {
            c.signature = Some(value);
        } else if key.eq_ignore_ascii_case("UseDevelopmentEmulator") {
            c.emulator = match value.as_str() {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
                "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
                _ => {
                    return Err(format!(
                        "strconv.ParseBool: parsing {value:?}: invalid syntax"
                    ));
                }
            };
        }
    }
    if c.emulator && !c.endpoint.starts_with("sb://localhost:") {
        return Err(format!(
            "UseEmulator=true can only be used with sb://localhost:<port>, not {}",
            c.endpoint
        ));
    }
    if c.namespace.is_empty() {
        return Err("key \"Endpoint\" must not be empty".into());
    }
    if c.signature.is_none() && c.key_name.is_none() {
        return Err("key \"SharedAccessKeyName\" must not be empty".into());
    }
    if c.key.is_none() && c.signature.is_none() {
        return Err(
            "key \"SharedAccessKey\" or \"SharedAccessSignature\" cannot both be empty".into(),
        );
    }
    Ok(c)
}

/// How the send is authorised.
#[derive(Clone)]
pub enum Auth {
    /// A SAS token computed at send time from the key.
    Key { name: String, key: String },
    /// A ready-made `Authorization` value (a SAS from the connection string, or `Bearer <jwt>`).
    Header(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Key { name, .. } => write!(f, "Key({name})"),
            Auth::Header(_) => f.write_str("Header(..)"),
        }
    }
}

/// One send: the request without its `Authorization`, the signed resource and the auth.
#[derive(Clone, Debug)]
pub struct Plan {
    pub request: Request,
    /// The resource URI a SAS token is signed for (`https://<namespace>/<hub>`).
    pub resource: String,
    pub auth: Auth,
}

/// The Event Hubs DNS suffix for the cloud named by `AZURE_AUTHORITY_HOST` (upstream's mapping).
fn suffix(authority_host: &str) -> &'static str {
    if authority_host.contains("chinacloudapi.cn") {
        ".servicebus.chinacloudapi.cn"
    } else if authority_host.contains("microsoftonline.us") {
        ".servicebus.usgovcloudapi.net"
    } else {
        ".servicebus.windows.net"
    }
}

/// Upstream's `ensureFullyQualifiedNamespace`.
pub fn fully_qualified_namespace(namespace: &str, authority_host: &str) -> String {
    if namespace.contains(".servicebus.") {
        namespace.to_string()
    } else {
        format!("{namespace}{}", suffix(authority_host))
    }
}

pub fn build(s: &Settings, event: &Event) -> Result<Plan, String> {
    let invalid = |e: &str| format!("invalid authentication options: {e}");
    if s.url.is_empty() {
        return Err(invalid("endpoint URL cannot be empty"));
    }
    let sas = s.url.contains("SharedAccessKey");
    let (scheme, namespace, hub, auth) = if sas {
        if !s.token.is_empty() {
            return Err(invalid(
                "jwt token and SAS authentication cannot be set at the same time",
            ));
        }
        let wrap = |e: String| format!("failed to create a eventhub using SAS: {e}");
        let c = parse_connection_string(&s.url).map_err(wrap)?;
        let hub = c.entity_path.clone().filter(|h| !h.is_empty()).ok_or_else(|| {
            wrap("connection string does not contain an EntityPath. eventHub cannot be an empty string".into())
        })?;
        let auth = match (&c.signature, &c.key_name, &c.key) {
            (Some(sig), _, _) => Auth::Header(sig.clone()),
            (None, Some(name), Some(key)) => Auth::Key {
                name: name.clone(),
                key: key.clone(),
            },
            _ => return Err(wrap("no shared access key".into())),
        };
        let scheme = if c.emulator { "http" } else { "https" };
        (scheme, c.namespace, hub, auth)
    } else {
        if s.token.is_empty() {
            // Upstream then gets a token through Azure workload identity, which ferroflux
            // does not have.
            return Err("failed to create a eventhub using managed identity: no token in the Provider's secret and workload identity is not supported".into());
        }
        let authority = std::env::var("AZURE_AUTHORITY_HOST").unwrap_or_default();
        (
            "https",
            fully_qualified_namespace(&s.channel, &authority),
            s.url.clone(),
            Auth::Header(format!("Bearer {}", s.token)),
        )
    };
    let resource = format!("{scheme}://{namespace}/{}", hub);
    let base = if s.api_base.is_empty() {
        resource.clone()
    } else {
        format!("{}/{hub}", s.api_base.trim_end_matches('/'))
    };
    let mut request = Request::post_json(
        format!("{base}/messages?timeout=60&api-version=2014-01"),
        event.to_go_json(),
    );
    request.set(
        "Content-Type",
        "application/atom+xml;type=entry;charset=utf-8",
    );
    request.validate = Validate::Status2xx;
    Ok(Plan {
        request,
        resource,
        auth,
    })
}

/// A SAS token for `resource`: HMAC-SHA256 keyed with the key over the URL-encoded resource and
/// the expiry (seconds since the epoch), as Service Bus checks it.
pub fn sas_token(resource: &str, key_name: &str, key: &str, expiry: i64) -> String {
    use base64::Engine;
    let sr = query_escape(resource);
    let to_sign = format!("{sr}\n{expiry}");
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::hmac::sign(&k, to_sign.as_bytes()).as_ref());
    format!(
        "SharedAccessSignature sr={sr}&sig={}&se={expiry}&skn={}",
        query_escape(&sig),
        query_escape(key_name)
    )
}

pub async fn send(client: &reqwest::Client, plan: &Plan) -> Result<(), String> {
    let mut req = plan.request.clone();
    let value = match &plan.auth {
        Auth::Header(v) => v.clone(),
        Auth::Key { name, key } => sas_token(
            &plan.resource,
            name,
            key,
            jiff::Timestamp::now().as_second() + SAS_VALIDITY_SECS,
        ),
    };
    req.set("Authorization", value);
    super::send_request(client, &req)
        .await
        .map_err(|e| format!("failed to send msg: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_as_the_sdk_reads_them() {
        let c = parse_connection_string(
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=a2V5=;EntityPath=flux",
        )
        .unwrap();
        assert_eq!(c.namespace, "ns.servicebus.windows.net");
        assert_eq!(c.key_name.as_deref(), Some("send"));
        assert_eq!(c.key.as_deref(), Some("a2V5="));
        assert_eq!(c.entity_path.as_deref(), Some("flux"));
        assert!(!c.emulator);
        assert_eq!(
            parse_connection_string("Endpoint=sb://ns/;SharedAccessKey=x").unwrap_err(),
            "key \"SharedAccessKeyName\" must not be empty"
        );
        assert_eq!(
            parse_connection_string(
                "Endpoint=sb://ns.example/;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=true"
            )
            .unwrap_err(),
            "UseEmulator=true can only be used with sb://localhost:<port>, not sb://ns.example/"
        );
        assert_eq!(
            fully_qualified_namespace("ns", ""),
            "ns.servicebus.windows.net"
        );
        assert_eq!(
            fully_qualified_namespace("ns", "https://login.chinacloudapi.cn/"),
            "ns.servicebus.chinacloudapi.cn"
        );
        assert_eq!(
            fully_qualified_namespace("ns.servicebus.usgovcloudapi.net", ""),
            "ns.servicebus.usgovcloudapi.net"
        );
    }

    #[test]
    fn sas_token_as_service_bus_checks_it() {
        // Independently computed: Python's hmac/base64/urllib.parse.quote_plus over
        // "https%3A%2F%2Fns.servicebus.windows.net%2Fflux\n1700000000" keyed with "secret".
        assert_eq!(
            sas_token(
                "https://ns.servicebus.windows.net/flux",
                "send",
                "secret",
                1_700_000_000
            ),
            "SharedAccessSignature sr=https%3A%2F%2Fns.servicebus.windows.net%2Fflux&sig=NwRnESdx2uOe7WO9S3VgFiSN00dNGwQIRcmbfUKOr7Y%3D&se=1700000000&skn=send"
        );
    }
}
