use super::*;

fn parse(body: &str) -> Result<Vec<Target<'static>>, String> {
    let body: &'static str = Box::leak(body.to_owned().into_boxed_str());
    let incoming: Incoming<'static> =
        super::parse(body.as_bytes(), 64).map_err(|e| format!("{e:?}"))?;
    let messages: Vec<Message<'static>> = match incoming {
        Incoming::Single(m) => vec![m],
        Incoming::Batch(v) => v,
    };
    let messages: &'static [Message<'static>] = Box::leak(messages.into_boxed_slice());
    messages
        .iter()
        .map(|m| m.target().map_err(str::to_owned))
        .collect()
}

#[test]
fn targets() {
    assert_eq!(
        parse(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"name":"x"},"name":"echo"}}"#
        ),
        Ok(vec![Target::Tool("echo")])
    );
    assert_eq!(
        parse(r#"{"method":"tools\/call","params":{"name":"e\u0063ho"}}"#),
        Ok(vec![Target::Tool("echo")])
    );
    assert_eq!(
        parse(r#"{"method":"resources/read","params":{"uri":"notes://a"}}"#),
        Ok(vec![Target::Resource("notes://a")])
    );
    assert_eq!(
        parse(
            r#"[{"method":"prompts/get","params":{"name":"p"}},{"method":"tools/list","params":null},{"id":1,"result":{}}]"#
        ),
        Ok(vec![
            Target::Prompt("p"),
            Target::Method("tools/list"),
            Target::Response
        ])
    );
}

#[test]
fn malformed() {
    assert_eq!(parse("{").unwrap_err(), "Syntax");
    assert_eq!(parse("{} x").unwrap_err(), "Syntax");
    assert_eq!(parse("42").unwrap_err(), "Shape");
    assert_eq!(parse("[1]").unwrap_err(), "Shape");
    assert_eq!(
        parse(r#"{"method":"a","method":"b"}"#).unwrap_err(),
        "Shape"
    );
    assert_eq!(
        parse(r#"{"method":"tools/call","params":{"name":"a","name":"b"}}"#).unwrap_err(),
        "Shape"
    );
    assert_eq!(
        parse(r#"{"method":"x","params":{},"params":{}}"#).unwrap_err(),
        "Shape"
    );
    assert!(parse(r#"{"method":7}"#).unwrap_err().contains("string"));
    assert!(parse(r#"{"method":"tools/call","params":{"name":7}}"#)
        .unwrap_err()
        .contains("params.name"));
    assert!(parse(r#"{"method":"tools/call","params":[]}"#)
        .unwrap_err()
        .contains("params.name"));
    assert!(
        parse(r#"{"method":"resources/read","params":{"name":"x"}}"#)
            .unwrap_err()
            .contains("params.uri")
    );
    assert_eq!(
        parse(r#"{"method":"tools/list","Method":"tools/call"}"#).unwrap_err(),
        "Shape"
    );
    assert_eq!(
        parse(r#"{"method":"tools/list","param\u017f":{}}"#).unwrap_err(),
        "Shape"
    );
    assert!(
        parse(r#"{"method":"tools/call","params":{"name":"echo","NAME":"write"}}"#)
            .unwrap_err()
            .contains("only in case")
    );
    assert!(
        parse(r#"{"method":"resources/read","params":{"uri":"a","\u212Ari":"b"}}"#).is_ok(),
        "not a lookalike of uri"
    );
    assert!(parse(r#"{"method":"resources/read","params":{"uri":"a","Uri":"b"}}"#).is_err());
    // Other methods may carry such keys.
    assert!(parse(r#"{"method":"x/y","params":{"Name":"a"},"Params2":1}"#).is_ok());
    assert!(parse(r#"{"jsonrpc":"2.0","id":1}"#)
        .unwrap_err()
        .contains("neither"));
}

#[test]
fn batches_are_bounded_and_ids_kept_only_when_valid() {
    let batch = |n: usize| format!("[{}]", vec![r#"{"method":"ping"}"#; n].join(","));
    assert!(super::parse(batch(3).as_bytes(), 3).is_ok());
    assert_eq!(
        super::parse(batch(4).as_bytes(), 3).err(),
        Some(ParseError::TooManyMembers)
    );
    let id = |body: &'static str| match super::parse(body.as_bytes(), 1).ok() {
        Some(Incoming::Single(message)) => message.id,
        _ => panic!("{body}"),
    };
    assert_eq!(id(r#"{"id":"a","method":"x"}"#), Some(Value::from("a")));
    assert_eq!(id(r#"{"id":7,"method":"x"}"#), Some(Value::from(7)));
    assert_eq!(id(r#"{"id":null,"method":"x"}"#), Some(Value::Null));
    assert_eq!(id(r#"{"id":[1,[2,{"a":3}]],"method":"x"}"#), None);
    assert_eq!(id(r#"{"id":{"a":1},"method":"x"}"#), None);
    assert_eq!(id(r#"{"method":"x"}"#), None);
}

#[test]
fn folding() {
    assert!(folds_to("METHOD", "method"));
    assert!(folds_to("param\u{17F}", "params"));
    assert!(folds_to("ID", "id"));
    assert!(!folds_to("method2", "method"));
    assert!(!folds_to("metho", "method"));
    assert!(!folds_to("m\u{e9}thod", "method"));
}
