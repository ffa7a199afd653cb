//! Build script: the ELF identity of libtdb.so.1 and its C header.
//!
//! 1. Reads src/ffi/versions.txt, the one table of symbol versions, and writes
//!    into OUT_DIR a linker version script defining every version node (each
//!    inheriting from the one before, as Samba's generated script does) and the
//!    `.symver` directives src/ffi/tdb.rs assembles, which bind each exported
//!    symbol to its node. It also checks that the table and src/ffi/tdb.rs name the
//!    same symbols.
//! 2. Sets the SONAME to libtdb.so.1.
//! 3. Generates the C header with cbindgen into OUT_DIR/tdb.h and copies it to
//!    <target>/<profile>/tdb.h, where `make check-header` compares it with the
//!    committed include/tdb.h (and `make header` copies it there).

use std::collections::BTreeSet;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// The library's SONAME.
const SONAME: &str = "libtdb.so.1";

/// One version node and the symbols first published at it.
struct Node {
    name: String,
    symbols: Vec<String>,
}

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let table = root.join("src/ffi/versions.txt");
    let capi = root.join("src/ffi/tdb.rs");
    let config = root.join("cbindgen.toml");
    for path in [&table, &capi, &config] {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    let nodes = read_table(&table);
    check_symbols(
        &nodes,
        &fs::read_to_string(&capi).expect("read src/ffi/tdb.rs"),
    );

    fs::write(out.join("symver.s"), symver_directives(&nodes)).expect("write symver.s");
    let script = out.join("libtdb.map");
    fs::write(&script, version_script(&nodes)).expect("write libtdb.map");

    // Only the cdylib gets the SONAME and the version nodes; rustc adds its own
    // anonymous version script (global: the #[no_mangle] symbols; local: *),
    // which GNU ld merges with this one. Tests and binaries linking the rlib
    // ignore the .symver directives for their non-exported symbols.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
            script.display()
        );
    }

    let header = generate_header(&capi, &config);
    fs::write(out.join("tdb.h"), &header).expect("write OUT_DIR/tdb.h");
    if let Some(profile_dir) = profile_dir(&out) {
        fs::write(profile_dir.join("tdb.h"), &header).expect("write <profile>/tdb.h");
    }
    if fs::read_to_string(root.join("include/tdb.h"))
        .ok()
        .as_deref()
        != Some(header.as_str())
    {
        println!(
            "cargo:warning=include/tdb.h differs from the header generated from src/ffi/tdb.rs; \
             run `make header` to update it"
        );
    }
}

/// Parses versions.txt: node names in column 0, their symbols indented below them.
fn read_table(path: &Path) -> Vec<Node> {
    let text = fs::read_to_string(path).expect("read src/ffi/versions.txt");
    let mut nodes: Vec<Node> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("");
        let word = content.trim();
        if word.is_empty() {
            continue;
        }
        if content.starts_with(char::is_whitespace) {
            let node = nodes
                .last_mut()
                .unwrap_or_else(|| panic!("versions.txt:{}: symbol before any node", number + 1));
            node.symbols.push(word.to_string());
        } else {
            nodes.push(Node {
                name: word.to_string(),
                symbols: Vec::new(),
            });
        }
    }
    assert!(!nodes.is_empty(), "versions.txt defines no version node");
    nodes
}

/// Fails the build unless the table and src/ffi/tdb.rs export the same tdb_* names.
fn check_symbols(nodes: &[Node], capi: &str) {
    let mut listed = BTreeSet::new();
    for symbol in nodes.iter().flat_map(|n| &n.symbols) {
        assert!(
            listed.insert(symbol.as_str()),
            "versions.txt lists {symbol} twice"
        );
    }
    let mut defined = BTreeSet::new();
    let mut lines = capi.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != "#[no_mangle]" {
            continue;
        }
        // The item follows its attributes (#[deprecated] and the like).
        let item = lines.by_ref().find(|l| !l.starts_with("#[")).unwrap_or("");
        let name = item
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .skip_while(|w| !matches!(*w, "fn" | "static" | "mut"))
            .find(|w| !w.is_empty() && !matches!(*w, "fn" | "static" | "mut"))
            .unwrap_or_else(|| {
                panic!("src/ffi/tdb.rs: cannot name the item after #[no_mangle]: {item}")
            });
        defined.insert(name);
    }
    let missing: Vec<_> = listed.difference(&defined).collect();
    let unlisted: Vec<_> = defined.difference(&listed).collect();
    assert!(
        missing.is_empty() && unlisted.is_empty(),
        "src/ffi/versions.txt and src/ffi/tdb.rs disagree: listed but not defined {missing:?}, \
         defined but not listed {unlisted:?}"
    );
}

/// `.symver NAME, NAME@@NODE` for every symbol: its default (and only) version.
fn symver_directives(nodes: &[Node]) -> String {
    let mut asm = String::from("/* Generated by build.rs from src/ffi/versions.txt. */\n");
    for node in nodes {
        for symbol in &node.symbols {
            asm.push_str(&format!(".symver {symbol}, {symbol}@@{}\n", node.name));
        }
    }
    asm
}

/// The version script: every node, each inheriting from its predecessor. The
/// nodes bind no names themselves (the .symver directives do).
fn version_script(nodes: &[Node]) -> String {
    let mut script = String::from("/* Generated by build.rs from src/ffi/versions.txt. */\n");
    let mut previous: Option<&str> = None;
    for node in nodes {
        match previous {
            None => script.push_str(&format!("{} {{ }};\n", node.name)),
            Some(p) => script.push_str(&format!("{} {{ }} {p};\n", node.name)),
        }
        previous = Some(&node.name);
    }
    script
}

/// Runs cbindgen over src/ffi/tdb.rs and adds what it cannot express.
fn generate_header(capi: &Path, config: &Path) -> String {
    let config = cbindgen::Config::from_file(config).expect("read cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(capi)
        .generate()
        .expect("cbindgen failed on src/ffi/tdb.rs");
    let mut raw = Vec::new();
    bindings.write(&mut raw);
    let text = String::from_utf8(raw).expect("cbindgen wrote UTF-8");
    add_printf_attribute(&text)
}

/// Samba declares tdb_log_func printf-like; cbindgen has no way to say so.
fn add_printf_attribute(header: &str) -> String {
    let mut found = false;
    let lines: Vec<String> = header
        .lines()
        .map(|line| {
            if line.starts_with("typedef void (*tdb_log_func)(") && line.ends_with(");") {
                found = true;
                format!("{} PRINTF_ATTRIBUTE(3, 4);", &line[..line.len() - 1])
            } else {
                line.to_string()
            }
        })
        .collect();
    assert!(
        found,
        "generated header has no one-line tdb_log_func typedef to annotate"
    );
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// <target>/<profile> from OUT_DIR (<target>/<profile>/build/<pkg>-<hash>/out).
fn profile_dir(out: &Path) -> Option<PathBuf> {
    let dir = out.ancestors().nth(3)?;
    dir.is_dir().then(|| dir.to_path_buf())
}
