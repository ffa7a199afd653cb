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
    let ctdb_capi = root.join("src/ffi/ctdb.rs");
    let config = root.join("cbindgen.toml");
    let ctdb_config = root.join("cbindgen-ctdb.toml");
    for path in [&table, &capi, &config, &ctdb_capi, &ctdb_config] {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    let nodes = read_table(&table);
    let sources = fs::read_to_string(&capi).expect("read src/ffi/tdb.rs")
        + &fs::read_to_string(&ctdb_capi).expect("read src/ffi/ctdb.rs");
    check_symbols(&nodes, &sources);

    // One file of directives per source file: each symbol's .symver must be
    // assembled with the object that defines it.
    let is_ctdb = |s: &str| s.starts_with("ctdb_");
    fs::write(
        out.join("symver.s"),
        symver_directives(&nodes, |s| !is_ctdb(s)),
    )
    .expect("write symver.s");
    fs::write(
        out.join("symver-ctdb.s"),
        symver_directives(&nodes, is_ctdb),
    )
    .expect("write symver-ctdb.s");
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

    let header = add_printf_attribute(&generate_header(&capi, &config));
    publish_header(&root, &out, "tdb.h", &header);
    let ctdb_header = generate_header(&ctdb_capi, &ctdb_config);
    publish_header(&root, &out, "ctdb.h", &ctdb_header);
}

/// Writes a generated header to OUT_DIR and <target>/<profile>, and warns
/// when the committed include/NAME differs.
fn publish_header(root: &Path, out: &Path, name: &str, header: &str) {
    fs::write(out.join(name), header).expect("write the header to OUT_DIR");
    if let Some(profile_dir) = profile_dir(out) {
        fs::write(profile_dir.join(name), header).expect("write the header to <profile>");
    }
    if fs::read_to_string(root.join("include").join(name))
        .ok()
        .as_deref()
        != Some(header)
    {
        println!(
            "cargo:warning=include/{name} differs from the header generated from src/ffi; \
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

/// Fails the build unless the table and src/ffi/{tdb,ctdb}.rs export the same names.
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
        "src/ffi/versions.txt and src/ffi/{{tdb,ctdb}}.rs disagree: listed but not defined {missing:?}, \
         defined but not listed {unlisted:?}"
    );
}

/// `.symver NAME, NAME@@NODE` for every symbol `pick` selects: its default
/// (and only) version.
fn symver_directives(nodes: &[Node], pick: impl Fn(&str) -> bool) -> String {
    let mut asm = String::from("/* Generated by build.rs from src/ffi/versions.txt. */\n");
    for node in nodes {
        for symbol in node.symbols.iter().filter(|s| pick(s)) {
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

/// Runs cbindgen over one source file of src/ffi with its configuration.
fn generate_header(capi: &Path, config: &Path) -> String {
    let config = cbindgen::Config::from_file(config).expect("read cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(capi)
        .generate()
        .expect("cbindgen failed on src/ffi");
    let mut raw = Vec::new();
    bindings.write(&mut raw);
    String::from_utf8(raw).expect("cbindgen wrote UTF-8")
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
