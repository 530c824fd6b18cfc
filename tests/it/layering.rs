//! The library's layering, read from its source: the configuration stays plain data that the
//! daemon converts, so no component below the daemon names it, and no module depends on
//! itself through others. Every `crate::`, `super::` and `self::` path counts, not only `use`
//! lines; test code (`#[cfg(test)]` items, `tests.rs` files) does not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The components below the daemon: the daemon (or the app) hands them their settings.
const BELOW_DAEMON: [&str; 6] = [
    "client",
    "tls",
    "address_server",
    "broker",
    "protocol",
    "metrics",
];

/// Modules whose submodules may still depend on each other in a cycle (none: the daemon's
/// context names only value modules, and the tasks name it).
const SUBMODULE_CYCLES_ALLOWED: [&str; 0] = [];

/// Modules grouped by concern, each group holding a task beside its values: the task names
/// the shared context, which names the values, so the groups as wholes depend on each other.
/// Under these the rule is per file: no file depends on itself through others (a group's
/// re-exports count as the file they come from).
const CYCLES_CHECKED_PER_FILE: [&str; 1] = ["daemon"];

/// A module's path from the crate root (`["daemon", "register", "round"]`).
type ModPath = Vec<String>;

/// Every library module with its file's non-test text.
fn modules() -> BTreeMap<ModPath, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut out = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let mut parts: ModPath = rel
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        // The binaries are crates of their own; tests are not what ships.
        if parts == ["main"] || parts[0] == "bin" || parts.iter().any(|p| p == "tests") {
            continue;
        }
        if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
            parts.pop();
        }
        let text = std::fs::read_to_string(&file).unwrap();
        out.insert(parts, without_tests(&text));
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `text` without its `#[cfg(test)]` items (a `mod tests { … }`, an `impl` for tests, a `use`).
fn without_tests(text: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut at = 0;
    while let Some(found) = text[at..].find(MARK) {
        out.push_str(&text[at..at + found]);
        let mut i = at + found + MARK.len();
        let mut depth = 0usize;
        while i < bytes.len() {
            match bytes[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        at = i;
    }
    out.push_str(&text[at..]);
    out
}

/// `text` without `//` and `/* */` comments: a doc link is no dependency.
fn without_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let line = rest.find("//");
        let block = rest.find("/*");
        match (line, block) {
            (Some(l), b) if b.is_none_or(|b| l < b) => {
                out.push_str(&rest[..l]);
                rest = rest[l..].find('\n').map_or("", |n| &rest[l + n..]);
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                rest = rest[b..].find("*/").map_or("", |e| &rest[b + e + 2..]);
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths named in a `{ … }` group starting at `text[0] == '{'`, each as its segments.
fn group(text: &str) -> Vec<Vec<String>> {
    let mut depth = 0;
    let mut items = vec![String::new()];
    for c in text.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => {
                items.push(String::new());
                continue;
            }
            _ => {}
        }
        items.last_mut().unwrap().push(c);
    }
    items.iter().map(|i| segments(i.trim())).collect()
}

/// The leading `a::b::c` of `text`, as segments.
fn segments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if end == 0 {
            return out;
        }
        out.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(next) if next.starts_with(is_ident) => rest = next,
            _ => return out,
        }
    }
}

/// The modules `code` (the text of module `me`) names through paths.
fn targets(me: &ModPath, code: &str, known: &BTreeSet<ModPath>) -> BTreeSet<ModPath> {
    full_paths(me, code)
        .into_iter()
        .map(|mut path| {
            // The deepest module the path goes through.
            while !path.is_empty() && !known.contains(&path) {
                path.pop();
            }
            path
        })
        .collect()
}

/// Every `crate::`, `super::` or `self::` path in `code` (the text of module `me`), from the
/// crate root.
fn full_paths(me: &ModPath, code: &str) -> Vec<ModPath> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("::") {
        // The path's first segment, and where the path starts.
        let start = code[..i].rfind(|c: char| !is_ident(c)).map_or(0, |s| s + 1);
        let head = &code[start..i];
        if !matches!(head, "crate" | "super" | "self") {
            continue;
        }
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c == ':' || c == '$') {
            continue; // part of a longer path (`super::super::`) or `$crate`
        }
        // Walk `super::super::…` from the start.
        let mut base: ModPath = if head == "crate" {
            Vec::new()
        } else {
            me.clone()
        };
        let mut rest = &code[start..];
        loop {
            if let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            } else if let Some(r) = rest.strip_prefix("self::") {
                rest = r;
            } else if let Some(r) = rest.strip_prefix("crate::") {
                rest = r;
            } else {
                break;
            }
        }
        let named = if rest.starts_with('{') {
            group(rest)
        } else {
            vec![segments(rest)]
        };
        for segs in named {
            let mut path = base.clone();
            path.extend(segs);
            out.push(path);
        }
    }
    out
}

/// `module -> module` edges between modules of the library.
fn edges() -> BTreeSet<(ModPath, ModPath)> {
    let modules = modules();
    let known: BTreeSet<ModPath> = modules.keys().cloned().collect();
    let mut out = BTreeSet::new();
    for (me, text) in &modules {
        for to in targets(me, &without_comments(text), &known) {
            if &to != me {
                out.insert((me.clone(), to));
            }
        }
    }
    out
}

/// `module -> module` edges where a path through a module's re-export (`pub(crate) use
/// inbox::TopicsAsk;` in `topics/mod.rs`) names the file the item comes from.
fn file_edges() -> BTreeSet<(ModPath, ModPath)> {
    let modules = modules();
    let known: BTreeSet<ModPath> = modules.keys().cloned().collect();
    // (module, item) -> the child module it is re-exported from.
    let mut reexports: BTreeMap<(ModPath, String), ModPath> = BTreeMap::new();
    for (me, text) in &modules {
        let text = without_comments(text);
        for line in text.lines().map(str::trim) {
            let Some(rest) = line
                .strip_prefix("pub(crate) use ")
                .or_else(|| line.strip_prefix("pub use "))
            else {
                continue;
            };
            let child = segments(rest);
            let Some(first) = child.first() else { continue };
            let mut from = me.clone();
            from.push(first.clone());
            if !known.contains(&from) {
                continue;
            }
            let items: Vec<Vec<String>> = match rest.find('{') {
                Some(at) => group(&rest[at..]),
                None => vec![child[child.len() - 1..].to_vec()],
            };
            for item in items {
                if let Some(name) = item.last() {
                    reexports.insert((me.clone(), name.clone()), from.clone());
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    for (me, text) in &modules {
        let code = without_comments(text);
        for (to, item) in targets_with_item(me, &code, &known) {
            let to = item
                .and_then(|i| reexports.get(&(to.clone(), i)).cloned())
                .unwrap_or(to);
            if &to != me {
                out.insert((me.clone(), to));
            }
        }
    }
    out
}

/// As [`targets`], with the segment after the deepest module named (the item), if any.
fn targets_with_item(
    me: &ModPath,
    code: &str,
    known: &BTreeSet<ModPath>,
) -> BTreeSet<(ModPath, Option<String>)> {
    let mut out = BTreeSet::new();
    for path in full_paths(me, code) {
        let mut module = path.clone();
        while !module.is_empty() && !known.contains(&module) {
            module.pop();
        }
        let item = path.get(module.len()).cloned();
        out.insert((module, item));
    }
    out
}

/// The edges between children of one parent: `a::x::… -> a::y::…` as `x -> y` under `a`.
fn sibling_edges(
    edges: &BTreeSet<(ModPath, ModPath)>,
) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (from, to) in edges {
        let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
        if common < from.len() && common < to.len() {
            let parent = if common == 0 {
                "crate".to_string()
            } else {
                from[..common].join("::")
            };
            out.entry(parent)
                .or_default()
                .entry(from[common].clone())
                .or_default()
                .insert(to[common].clone());
        }
    }
    out
}

/// A cycle in `graph`, when there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn show(graph: &BTreeMap<String, BTreeSet<String>>) -> String {
    graph
        .iter()
        .map(|(from, to)| {
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            format!("{from} -> {}\n", to.join(", "))
        })
        .collect()
}

#[test]
fn no_component_below_the_daemon_names_the_configuration() {
    for (module, text) in modules() {
        let Some(top) = module.first() else { continue };
        if BELOW_DAEMON.contains(&top.as_str()) {
            // Comments too: a doc link to the configuration is a component that knows it.
            assert!(
                !text.contains("crate::config"),
                "{} names crate::config: the daemon converts the configuration into its settings",
                module.join("::")
            );
        }
    }
    let named: Vec<String> = edges()
        .into_iter()
        .filter(|(from, to)| {
            from.first()
                .is_some_and(|f| BELOW_DAEMON.contains(&f.as_str()))
                && to.first().is_some_and(|t| t == "config")
        })
        .map(|(from, _)| from.join("::"))
        .collect();
    assert!(
        named.is_empty(),
        "below the daemon, naming config: {named:?}"
    );
}

#[test]
fn modules_have_no_dependency_cycle() {
    let siblings = sibling_edges(&edges());
    let top = siblings.get("crate").cloned().unwrap_or_default();
    // cargo test -- --nocapture layering shows the graph.
    println!("top-level modules:\n{}", show(&top));
    assert!(
        top.contains_key("daemon") && top.contains_key("config"),
        "the source was not read"
    );
    assert_eq!(cycle(&top), None, "a cycle among the top-level modules");
    for (parent, graph) in &siblings {
        if CYCLES_CHECKED_PER_FILE
            .iter()
            .any(|p| parent == p || parent.starts_with(&format!("{p}::")))
        {
            continue;
        }
        let found = cycle(graph);
        if SUBMODULE_CYCLES_ALLOWED.contains(&parent.as_str()) {
            println!(
                "{parent} (cycles still allowed: {found:?}):\n{}",
                show(graph)
            );
            continue;
        }
        println!("{parent}:\n{}", show(graph));
        assert_eq!(found, None, "a cycle among the submodules of {parent}");
    }
    let files = file_edges();
    for parent in CYCLES_CHECKED_PER_FILE {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in &files {
            let under = |m: &ModPath| m.len() > 1 && m[0] == parent;
            // An edge up to a group's own module names nothing of it but what it re-exports,
            // which `file_edges` already followed.
            if under(from) && under(to) && !from.starts_with(to) {
                graph
                    .entry(from.join("::"))
                    .or_default()
                    .insert(to.join("::"));
            }
        }
        println!("{parent}, per file:\n{}", show(&graph));
        assert!(graph.len() > 20, "the files under {parent} were not read");
        assert_eq!(
            cycle(&graph),
            None,
            "a cycle among the files under {parent}"
        );
    }
}

/// The non-test, comment-free text of the module at `path`.
fn code_of(modules: &BTreeMap<ModPath, String>, path: &[&str]) -> String {
    let key: ModPath = path.iter().map(|s| s.to_string()).collect();
    without_comments(modules.get(&key).unwrap_or_else(|| panic!("{path:?}")))
}

/// One writer per state, read from the source: every daemon state's channel is made in one
/// place (`daemon/publisher.rs`, one `Publisher::new` per state), the shared context holds no
/// sending end of any, `Publisher` is not `Clone`, and no other daemon module makes a watch
/// channel of daemon state (the fleet's per-NameServer channels are its own: each status has
/// its NameServer's task as its one writer, each command channel the fleet).
#[test]
fn every_daemon_state_has_one_publisher_and_the_shared_context_no_sender() {
    let modules = modules();
    let code = |path: &[&str]| code_of(&modules, path);
    let shared = code(&["daemon", "shared"]);
    for sender in [
        "Sender<",
        "Sender::new",
        "Publisher",
        "send_replace",
        "send_modify",
        "send_if_modified",
    ] {
        assert!(
            !shared.contains(sender),
            "daemon/shared.rs holds or uses a sending end ({sender}): a second writer could use it"
        );
    }
    let publisher = code(&["daemon", "publisher"]);
    let made: Vec<&str> = publisher
        .match_indices("Publisher::new(")
        .map(|(at, _)| {
            let line_start = publisher[..at].rfind('\n').map_or(0, |n| n + 1);
            publisher[line_start..at].trim()
        })
        .collect();
    // `let (config, config_rx) = Publisher::new(...)`: the state each one makes, once each.
    let states: BTreeSet<&str> = made
        .iter()
        .filter_map(|l| l.strip_prefix("let (")?.split(',').next())
        .collect();
    assert_eq!(states.len(), made.len(), "a state made twice: {made:?}");
    assert!(states.len() >= 10, "{states:?}");
    // Not Clone: the derive on the struct names Debug only.
    let def = publisher
        .split("pub(crate) struct Publisher<T>")
        .next()
        .and_then(|before| before.rsplit("#[derive(").next())
        .unwrap_or_default();
    assert!(!def.contains("Clone"), "Publisher must not be Clone: {def}");
    for (path, text) in &modules {
        if path.first().map(String::as_str) != Some("daemon") || path == &["daemon", "publisher"] {
            continue;
        }
        let text = without_comments(text);
        assert!(
            !text.contains("Publisher::new("),
            "{path:?} makes a Publisher: only daemon/publisher.rs does"
        );
        if path != &["daemon", "namesrv", "fleet"] {
            assert!(
                !text.contains("watch::channel(") && !text.contains("watch::Sender::new"),
                "{path:?} makes a watch channel of its own: daemon state goes through publisher.rs"
            );
        }
    }
}

/// Each sending end of daemon state (a publisher, the drain requests' sender, the topics
/// task's two inboxes) goes to one task: in `daemon/run.rs` every field of `TaskEnds`
/// is named inside exactly one `sup.spawn…` call, and the inbox ends are not `Clone`.
#[test]
fn every_sending_end_is_moved_into_one_task() {
    let modules = modules();
    let code = |path: &[&str]| code_of(&modules, path);
    let run = code(&["daemon", "run"]);
    let fields: Vec<String> = run
        .split("struct TaskEnds {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("TaskEnds in daemon/run.rs")
        .lines()
        .filter_map(|l| Some(l.trim().split_once(':')?.0.trim().to_string()))
        .filter(|f| !f.is_empty())
        .collect();
    assert!(fields.len() >= 8, "{fields:?}");
    let body = run
        .split("fn spawn_tasks(")
        .nth(1)
        .expect("spawn_tasks in daemon/run.rs");
    // `let TaskEnds { health: health_out, … } = ends;`: the names the spawns use.
    let bound = body
        .split("let TaskEnds {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("the publishers taken apart");
    let spawns: Vec<&str> = body.split("sup.spawn").skip(1).collect();
    assert!(spawns.len() >= 8, "{} spawns", spawns.len());
    for field in &fields {
        let name = bound
            .split(',')
            .map(str::trim)
            .find_map(|b| match b.split_once(':') {
                Some((f, n)) if f.trim() == field => Some(n.trim().to_string()),
                None if b == field => Some(b.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{field} is not taken apart in spawn_tasks"));
        let holders = spawns
            .iter()
            .filter(|s| {
                s.match_indices(name.as_str()).any(|(at, _)| {
                    let before = s[..at].chars().next_back();
                    let after = s[at + name.len()..].chars().next();
                    !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
                })
            })
            .count();
        assert_eq!(
            holders, 1,
            "{field} ({name}) goes to {holders} tasks, not one"
        );
    }
    let inbox = code(&["daemon", "topics", "inbox"]);
    for end in [
        "pub(crate) struct TopicsAsk(",
        "pub(crate) struct MasterTopics(",
    ] {
        let derive = inbox
            .split(end)
            .next()
            .and_then(|before| before.rsplit("#[derive(").next())
            .unwrap_or_default();
        assert!(inbox.contains(end), "{end} not found");
        assert!(
            !derive.contains("Clone"),
            "{end} must not be Clone: {derive}"
        );
    }
}

/// No function under `src/daemon` is longer than [`LONGEST_DAEMON_FN`] lines: a task is a
/// value with a handler per event, not one long loop (test code aside).
#[test]
fn no_daemon_function_is_over_80_lines() {
    const LONGEST_DAEMON_FN: usize = 80;
    let mut seen = 0;
    let mut long = Vec::new();
    for (path, text) in modules() {
        if path.first().map(String::as_str) != Some("daemon") {
            continue;
        }
        let code = without_comments(&text);
        let lines: Vec<&str> = code.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let t = t
                .strip_prefix("pub(crate) ")
                .or_else(|| t.strip_prefix("pub(super) "))
                .or_else(|| t.strip_prefix("pub "))
                .unwrap_or(t);
            let t = t.strip_prefix("async ").unwrap_or(t);
            let Some(name) = t.strip_prefix("fn ") else {
                continue;
            };
            seen += 1;
            // The body: from the first `{` to the brace that closes it.
            let mut depth = 0i32;
            let mut opened = false;
            let mut end = at;
            'body: for (i, l) in lines.iter().enumerate().skip(at) {
                if !opened && l.trim_end().ends_with(';') {
                    break; // a declaration in a trait
                }
                for c in l.chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                    if opened && depth == 0 {
                        end = i;
                        break 'body;
                    }
                }
            }
            let len = end + 1 - at;
            if len > LONGEST_DAEMON_FN {
                let name: String = name.chars().take_while(|c| is_ident(*c)).collect();
                long.push(format!("{}::{name}: {len} lines", path.join("::")));
            }
        }
    }
    assert!(seen > 150, "only {seen} functions found under src/daemon");
    assert!(long.is_empty(), "too long: {long:?}");
}

/// Each component writes its series through its own handle: the metric groups are private to
/// `src/metrics` (no `pub` setter outside a handle), and the handles are made only where the
/// tasks are spawned (`daemon/publisher.rs`, `daemon/run.rs`), each moved into its task with
/// the rest of its ends.
#[test]
fn every_component_writes_its_series_through_its_own_handle() {
    let modules = modules();
    let metrics = code_of(&modules, &["metrics"]);
    let def = metrics
        .split("pub struct Metrics {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("Metrics in src/metrics/mod.rs");
    assert!(
        !def.contains("pub "),
        "Metrics has a public group: any task holding it could write any series\n{def}"
    );
    for group in ["broker", "daemon", "remoting"] {
        let text = code_of(&modules, &["metrics", group]);
        let setters: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("pub fn ") || l.starts_with("pub(crate) fn "))
            .filter(|l| !l.starts_with("pub(crate) fn new("))
            .collect();
        assert!(setters.is_empty(), "metrics/{group}.rs: {setters:?}");
    }
    let handles = code_of(&modules, &["metrics", "handles"]);
    let mut made: Vec<String> = handles
        .match_indices("handle!(")
        .filter_map(|(at, _)| {
            let rest = &handles[at..];
            let name = rest.lines().find(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with("handle!(") && !t.starts_with("///")
            })?;
            Some(format!("{}::new(", name.trim()))
        })
        .collect();
    made.push("namesrv_handle(".to_string());
    assert!(made.len() >= 9, "{made:?}");
    for (path, text) in &modules {
        if path.first().map(String::as_str) == Some("metrics") {
            continue;
        }
        let at_spawn = path == &["daemon", "publisher"] || path == &["daemon", "run"];
        let text = without_comments(text);
        for m in &made {
            assert!(
                at_spawn || !text.contains(m.as_str()),
                "{path:?} makes a metrics handle ({m}): only the app layer does"
            );
        }
    }
}
