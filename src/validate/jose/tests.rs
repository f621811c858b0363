use super::*;

fn header(json: &str) -> Option<Header<'_>> {
    Header::parse(json.as_bytes())
}

#[test]
fn header_is_as_strict_as_a_value_map() {
    let h = header(r#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#).unwrap();
    assert_eq!(h.alg, Member::Str("RS256".into()));
    assert_eq!(h.typ, Member::Str("at+jwt".into()));
    assert_eq!(h.kid, Member::Str("k1".into()));
    assert!(!h.crit);
    // Escaped names and values are unescaped (and still compared for duplicates).
    let h = header(r#"{"\u0061lg":"R\u0053256","x":[1,{"a":null}],"crit":false}"#).unwrap();
    assert_eq!(h.alg, Member::Str("RS256".into()));
    assert!(h.crit);
    assert_eq!(h.kid, Member::Absent);
    assert_eq!(header(r#"{"alg":1}"#).unwrap().alg, Member::Other);
    for bad in [
        r#"{"alg":"RS256","alg":"none"}"#,
        r#"{"alg":"RS256","\u0061lg":"none"}"#,
        r#"{"x":1,"x":2}"#,
        r#"{"crit":1,"crit":2}"#,
        r#"{"alg":"RS256"} x"#,
        r#"["alg"]"#,
        r#"{"alg":"\ud800"}"#,
        r#"{"x":"\ud800"}"#,
        "{\"x\":\"\u{1}\"}",
        "",
    ] {
        assert!(header(bad).is_none(), "{bad}");
        assert_eq!(
            header(bad).is_none(),
            crate::json::parse_object(bad.as_bytes()).is_none(),
            "{bad}"
        );
    }
    assert!(Header::parse(b"{\"x\":\"\xff\"}").is_none());
}

#[test]
fn claims_are_as_strict_as_a_value_map() {
    let json = br#"{"iss":"https://i","aud":["a","b"],"exp":1.5e9,"nbf":1,"iat":-1,"sub":"s",
        "azp":"c","scope":"x y","scp":["z",1],"jti":"j","custom":{"a":[1,"\u00e9"]}}"#;
    let c = Claims::parse(json).unwrap();
    assert_eq!(c.iss, Member::Str("https://i".into()));
    assert_eq!(c.aud, Audience::Many(vec!["a".into(), "b".into()]));
    assert_eq!(
        (c.exp, c.nbf, c.iat),
        (Date::At(1.5e9), Date::At(1.0), Date::At(-1.0))
    );
    assert_eq!(
        (c.sub, c.azp),
        (Member::Str("s".into()), Member::Str("c".into()))
    );
    assert_eq!(c.client_id, Member::Absent);
    assert_eq!(c.scp, Scp::Many(vec!["z".into()]));
    let c = Claims::parse(br#"{"aud":["a",1],"exp":"1"}"#).unwrap();
    assert_eq!((c.aud, c.exp), (Audience::Invalid, Date::Invalid));
    assert_eq!(
        Claims::parse(br#"{"aud":{}}"#).unwrap().aud,
        Audience::Invalid
    );
    for bad in [
        &br#"{"iss":"a","iss":"a"}"#[..],
        br#"{"x":1,"x":1}"#,
        br#"{"jti":1,"jti":1}"#,
        br#"{"x":"\ud800"}"#,
        br#"{"x":["\udc00"]}"#,
        br#"{"x":{"\ud800":1}}"#,
        b"{\"x\":\"\xff\"}",
        br#"{"x":01}"#,
        br#"[]"#,
        br#"{"a":1}{}"#,
    ] {
        assert!(
            Claims::parse(bad).is_none(),
            "{}",
            String::from_utf8_lossy(bad)
        );
        assert!(
            crate::json::parse_object(bad).is_none(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let deep = format!("{{\"x\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    assert_eq!(
        Claims::parse(deep.as_bytes()).is_none(),
        crate::json::parse_object(deep.as_bytes()).is_none()
    );
}

#[test]
fn issuer_for_routing() {
    assert_eq!(
        issuer_of(br#"{"sub":"a","iss":"https://i","n":[1,2]}"#),
        Ok(Some("https://i".into()))
    );
    assert_eq!(issuer_of(br#"{"iss":1}"#), Ok(None));
    assert_eq!(issuer_of(br#"{}"#), Ok(None));
    assert_eq!(issuer_of(br#"{"iss":"a","iss":"b"}"#), Err(()));
    assert_eq!(issuer_of(b"{\"x\":\"\xff\",\"iss\":\"a\"}"), Err(()));
    assert_eq!(issuer_of(b"[1]"), Err(()));
}

#[test]
fn stack_or_heap_decoding() {
    let mut stack = [0u8; 4];
    let mut heap = Vec::new();
    assert_eq!(
        decode_b64(b"YWJj", &mut stack, &mut heap),
        Some(&b"abc"[..])
    );
    let mut heap = Vec::new();
    assert_eq!(
        decode_b64(b"YWJjZGVmZ2g", &mut stack, &mut heap),
        Some(&b"abcdefgh"[..])
    );
    let mut heap = Vec::new();
    assert_eq!(decode_b64(b"YWJj=", &mut stack, &mut heap), None);
    assert_eq!(decode_b64(b"Y", &mut [0u8; 8], &mut Vec::new()), None);
}

#[test]
fn kid_inline() {
    assert_eq!(Kid::new("abc").unwrap().as_str(), "abc");
    for len in [0, 1, INLINE_KID_LEN, INLINE_KID_LEN + 1, MAX_KID_LEN] {
        let kid = "k".repeat(len);
        assert_eq!(Kid::new(&kid).unwrap().as_str(), kid);
    }
    assert!(Kid::new(&"k".repeat(MAX_KID_LEN + 1)).is_none());
}
