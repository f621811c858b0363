//! What a token looks like, without verifying anything: is it a JWT (a compact JWS)?
//!
//! Used to keep JWTs away from validators that should not judge them: by default an introspection
//! validator refuses a JWT locally instead of sending it to the authorization server (a JWT whose issuer no
//! JWT validator trusts would otherwise cost one remote call per request, for nothing).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// How much of the header is decoded to look for the opening brace (a multiple of 4 base64 characters).
const PEEK_CHARS: usize = 16;

/// Does `token` have the shape of a compact JWS: exactly three dot-separated parts, the first being
/// base64url of a JSON object (its first non-blank byte is `{`)? Cheap: no allocation, at most
/// [`PEEK_CHARS`] characters decoded.
pub(crate) fn looks_like_jwt(token: &[u8]) -> bool {
    let dots = memchr::memchr_iter(b'.', token).count();
    let Some(header_end) = memchr::memchr(b'.', token) else {
        return false;
    };
    if dots != 2 || header_end == 0 {
        return false;
    }
    let header = &token[..header_end];
    let peek = header.len().min(PEEK_CHARS) / 4 * 4;
    let mut decoded = [0u8; PEEK_CHARS / 4 * 3];
    let bytes = if peek == 0 {
        // Under four characters: at most two bytes; decode what there is.
        match URL_SAFE_NO_PAD.decode_slice(header, &mut decoded) {
            Ok(n) => &decoded[..n],
            Err(_) => return false,
        }
    } else {
        match URL_SAFE_NO_PAD.decode_slice(&header[..peek], &mut decoded) {
            Ok(n) => &decoded[..n],
            Err(_) => return false,
        }
    };
    bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        == Some(&b'{')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_and_lookalikes() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"at+jwt"}"#);
        assert!(looks_like_jwt(format!("{header}.e30.sig").as_bytes()));
        assert!(looks_like_jwt(format!("{header}..").as_bytes()));
        let spaced = URL_SAFE_NO_PAD.encode(b" \n{\"alg\":\"x\"}");
        assert!(looks_like_jwt(format!("{spaced}.e30.sig").as_bytes()));
        assert!(looks_like_jwt(b"e30.e30.x"), "an empty JSON object");
        for opaque in [
            &b"2YotnFZFEjr1zCsicMWpAA"[..],
            b"a.b",
            b"a.b.c.d",
            b".e30.x",
            b"YWJj.e30.x",
            b"!!!!.e30.x",
            b"",
        ] {
            assert!(
                !looks_like_jwt(opaque),
                "{:?}",
                String::from_utf8_lossy(opaque)
            );
        }
    }
}
