//! flux's progress lines, on stderr: `►` action, `✔` success, `◎` waiting, `✗` failure,
//! `✚` generated, as `flux` prints them.

pub fn action(msg: impl std::fmt::Display) {
    eprintln!("► {msg}");
}

pub fn success(msg: impl std::fmt::Display) {
    eprintln!("✔ {msg}");
}

pub fn waiting(msg: impl std::fmt::Display) {
    eprintln!("◎ {msg}");
}

pub fn failure(msg: impl std::fmt::Display) {
    eprintln!("✗ {msg}");
}

pub fn generate(msg: impl std::fmt::Display) {
    eprintln!("✚ {msg}");
}
