//! rmq-registrar-gen: writes the man pages and the bash, zsh and fish completions of
//! rmq-registrar from the very definition its command line is parsed with (src/cli.rs), so they
//! cannot drift from it. `scripts/package.sh` runs it before `cargo deb`.
//!
//! Usage: `rmq-registrar-gen OUT_DIR` writes `OUT_DIR/man/*.1` (one page for the command and
//! one per subcommand) and `OUT_DIR/completions/{rmq-registrar,_rmq-registrar,rmq-registrar.fish}`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Roff};
use rmq_registrar::cli;

/// The name users type, whatever this generator is called.
const BIN: &str = "rmq-registrar";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: rmq-registrar-gen OUT_DIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(&out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rmq-registrar-gen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes every page and completion script under `out`; returns the files written.
fn generate(out: &Path) -> io::Result<Vec<PathBuf>> {
    let man = out.join("man");
    let completions = out.join("completions");
    fs::create_dir_all(&man)?;
    fs::create_dir_all(&completions)?;
    let mut written = Vec::new();

    // One page per subcommand (rmq-registrar-check-config.1, ...), named by clap.
    clap_mangen::generate_to(cli::Cli::command(), &man)?;
    // The main page again, with what an operator looks for besides the options (and, as the
    // pages above, without clap's `help` subcommand, which has no page).
    let main_page = man.join(format!("{BIN}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cli::Cli::command().disable_help_subcommand(true)).render(&mut page)?;
    extra_sections().to_writer(&mut page)?;
    fs::write(&main_page, page)?;
    let mut pages: Vec<PathBuf> = fs::read_dir(&man)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    pages.sort();
    written.extend(pages);

    // File names as Debian's bash-completion, zsh and fish look them up.
    for (shell, name) in [
        (Shell::Bash, BIN.to_string()),
        (Shell::Zsh, format!("_{BIN}")),
        (Shell::Fish, format!("{BIN}.fish")),
    ] {
        let path = completions.join(name);
        let mut file = File::create(&path)?;
        clap_complete::generate(shell, &mut cli::Cli::command(), BIN, &mut file);
        file.flush()?;
        written.push(path);
    }
    Ok(written)
}

/// FILES, ENVIRONMENT, EXIT STATUS, SIGNALS and SEE ALSO: how the packaged daemon is laid out.
fn extra_sections() -> Roff {
    let mut r = Roff::default();
    r.control("SH", ["FILES"]);
    for (path, what) in [
        (
            "/etc/rmq-registrar/rmq-registrar.toml",
            "Configuration of rmq-registrar.service: every key with its default, commented \
             out, so that it overrides nothing; no broker identity and no NameServer (set \
             broker.conf_file, or broker.name, broker.addr and namesrv.addrs).",
        ),
        (
            "/etc/rmq-registrar/INSTANCE.toml",
            "Configuration of rmq-registrar@INSTANCE.service, one per broker on the host \
             (the instance is the broker name); each sets its own http.listen port.",
        ),
        (
            "/usr/lib/systemd/system/rmq-registrar.service, rmq-registrar@.service",
            "The units, installed disabled.",
        ),
        (
            "/usr/share/doc/rmq-registrar/examples/slave-files.conf",
            "Drop-in for a slave whose broker reads the pulled files.",
        ),
    ] {
        r.control("TP", std::iter::empty::<&str>());
        r.text([bold(path)]);
        r.text([roman(what)]);
    }
    r.control("SH", ["ENVIRONMENT"]);
    r.text([
        bold("RMQ_REGISTRAR_"),
        italic("SECTION"),
        bold("__"),
        italic("KEY"),
        roman(
            " overrides a key of the file (e.g. RMQ_REGISTRAR_BROKER__NAME=broker-a); \
             NAMESRV_ADDR is read below the file; ",
        ),
        bold(cli::ENV_CONFIG),
        roman(" names the file as --config does."),
    ]);
    r.control("SH", ["EXIT STATUS"]);
    r.text([roman(
        "0 after a clean stop (SIGTERM or SIGINT: the broker is unregistered from every \
         NameServer first); 2 for a bad configuration, naming the key and where it came from.",
    )]);
    r.control("SH", ["SIGNALS"]);
    r.text([roman(
        "SIGHUP re-reads the configuration; a bad one is logged and the old one kept.",
    )]);
    r.control("SH", ["SEE ALSO"]);
    r.text([roman("systemctl(1), systemd.service(5)")]);
    r
}
