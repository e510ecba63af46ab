//! `generic` and `generic-hmac`: the event JSON POSTed as is, with `gotk-component` set to the
//! reporting controller, the Secret's headers, and for `generic-hmac` an `X-Signature` of the
//! body (`sha256=<hex HMAC-SHA256 keyed with the token>`).

use super::{Request, Settings, parse_request_uri};
use crate::event::Event;

/// The header naming the controller that emitted the event.
pub const COMPONENT_HEADER: &str = "gotk-component";

/// Hex HMAC-SHA256 of `payload` keyed with `key`.
pub fn sign(payload: &[u8], key: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    hex::encode(aws_lc_rs::hmac::sign(&key, payload).as_ref())
}

pub fn build(s: &Settings, event: &Event, hmac: bool) -> Result<Request, String> {
    parse_request_uri(&s.url).map_err(|e| format!("invalid hook URL {}: {e}", s.url))?;
    if hmac && s.token.is_empty() {
        return Err("HMAC key is empty".into());
    }
    let body = event.to_go_json();
    let mut req = Request::post_json(&s.url, body);
    req.set(COMPONENT_HEADER, event.reporting_controller.clone());
    for (k, v) in &s.headers {
        req.set(k, v.clone());
    }
    if hmac {
        let sig = format!("sha256={}", sign(&req.body, s.token.as_bytes()));
        req.set("X-Signature", sig);
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            super::sign(b"what do ya want for nothing?", b"Jefe"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
