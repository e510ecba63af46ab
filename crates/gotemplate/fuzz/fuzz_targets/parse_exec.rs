//! Fuzz the template parser and executor: any input must parse or fail, and execute or fail,
//! without panics, stack overflows or unbounded work.
#![no_main]

use std::collections::BTreeMap;

use ferroflux_gotemplate::{MissingKey, Templates, Value};
use libfuzzer_sys::fuzz_target;

fn data() -> Value {
    let list = Value::list(vec![
        Value::Int(1),
        Value::str("two"),
        Value::Float(3.5),
        Value::Nil,
    ]);
    let mut m = BTreeMap::new();
    m.insert("l".to_string(), list.clone());
    m.insert("s".to_string(), Value::str("str"));
    m.insert("f".to_string(), Value::Float(1e6));
    let inner = Value::map(m.clone());
    m.insert("self".to_string(), inner);
    let map = Value::map(m);
    let mut top = BTreeMap::new();
    top.insert("m".to_string(), map);
    top.insert("l".to_string(), list);
    Value::map(top)
}

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    for mk in [MissingKey::Default, MissingKey::Zero] {
        let mut t = Templates::new("f");
        t.options.missing_key = mk;
        t.options.max_depth = 100;
        t.options.max_nesting = 200;
        t.options.max_steps = Some(20_000);
        t.options.max_output = 1 << 20;
        if t.parse("f", &text).is_ok() {
            let _ = t.execute("f", &data());
            for name in t.names() {
                let _ = t.execute(&name, &data());
            }
        }
    }
});
